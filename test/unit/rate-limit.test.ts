// Token buckets (lib/policies/rate-limit.ts) on a fake clock: performance.now() and the timers are
// vitest's, so every expectation is exact. Pure: no sockets.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UvfetchError } from '../../lib/core/errors.js';
import { RateLimiter } from '../../lib/policies/rate-limit.js';

const A = 'http://a.test';
const B = 'http://b.test';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Acquires a token; records when (fake ms) it was granted. */
function take(l: RateLimiter, origin: string, log: Array<[string, number]>, opts: { signal?: AbortSignal; deadline?: number } = {}): Promise<void> {
  const p = l.acquire(origin, opts.signal, opts.deadline ?? Infinity, `${origin}/`, 'GET');
  if (p === undefined) {
    log.push([origin, performance.now()]);
    return Promise.resolve();
  }
  return p.then(() => {
    log.push([origin, performance.now()]);
  });
}

describe('RateLimiter', () => {
  it('options: undefined/false is off; bad buckets are rejected by name', () => {
    expect(RateLimiter.from(undefined)).toBeUndefined();
    expect(RateLimiter.from(false)).toBeUndefined();
    const bad: Array<[unknown, string]> = [
      [{}, 'rateLimit'],
      [{ perHost: { rps: 0 } }, 'rateLimit.perHost.rps'],
      [{ perHost: { rps: 1, burst: 0.5 } }, 'rateLimit.perHost.burst'],
      [{ global: { rps: 1, extra: 1 } }, 'rateLimit.global.extra'],
      [{ global: { rps: 1 }, adaptive: true }, 'rateLimit.adaptive'],
      [{ perHost: { rps: 1 }, nope: 1 }, 'rateLimit.nope'],
    ];
    for (const [v, name] of bad) {
      let err: unknown;
      try {
        RateLimiter.from(v);
      } catch (e) {
        err = e;
      }
      expect((err as UvfetchError).reason, JSON.stringify(v)).toBe(name);
    }
  });

  it('perHost 10 rps, burst 1: one at once, then one every 100 ms, FIFO', async () => {
    const l = RateLimiter.from({ perHost: { rps: 10 } })!;
    const log: Array<[string, number]> = [];
    const t0 = performance.now();
    const all = Promise.all([0, 1, 2, 3].map(() => take(l, A, log)));
    expect(log).toHaveLength(1); // the first needs no wait
    expect(l.stats().queued).toBe(3);
    await vi.advanceTimersByTimeAsync(350);
    await all;
    expect(log.map(([, t]) => Math.round(t - t0))).toEqual([0, 100, 200, 300]);
    expect(l.stats().queued).toBe(0);
  });

  it('burst lets that many through after idling, then paces', async () => {
    const l = RateLimiter.from({ perHost: { rps: 2, burst: 3 } })!;
    const log: Array<[string, number]> = [];
    const t0 = performance.now();
    const all = Promise.all([0, 1, 2, 3, 4].map(() => take(l, A, log)));
    await vi.advanceTimersByTimeAsync(1000);
    await all;
    expect(log.map(([, t]) => Math.round(t - t0))).toEqual([0, 0, 0, 500, 1000]);
  });

  it('origins have their own buckets; global caps their sum', async () => {
    const own = RateLimiter.from({ perHost: { rps: 1 } })!;
    const log: Array<[string, number]> = [];
    await Promise.all([take(own, A, log), take(own, B, log)]);
    expect(log.map(([o, t]) => [o, t])).toEqual([
      [A, log[0]![1]],
      [B, log[0]![1]],
    ]); // both at once

    const shared = RateLimiter.from({ perHost: { rps: 100 }, global: { rps: 10 } })!;
    const log2: Array<[string, number]> = [];
    const t0 = performance.now();
    const all = Promise.all([take(shared, A, log2), take(shared, B, log2), take(shared, A, log2), take(shared, B, log2)]);
    await vi.advanceTimersByTimeAsync(400);
    await all;
    expect(log2.map(([, t]) => Math.round(t - t0))).toEqual([0, 100, 200, 300]);
    // Round-robin between the waiting origins, not all of A first.
    expect(log2.map(([o]) => o)).toEqual([A, B, A, B]);
  });

  it('a waiting request is rejected by its signal (ERR_ABORTED) or its deadline (ERR_TIMEOUT), and leaves the queue', async () => {
    const l = RateLimiter.from({ perHost: { rps: 1 } })!;
    const log: Array<[string, number]> = [];
    await take(l, A, log);
    const ac = new AbortController();
    const aborted = take(l, A, log, { signal: ac.signal });
    const timed = take(l, A, log, { deadline: performance.now() + 50 });
    expect(l.stats().queued).toBe(2);
    const timedOut = expect(timed).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    ac.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    await vi.advanceTimersByTimeAsync(60);
    await timedOut;
    expect(l.stats().queued).toBe(0);
  });

  it('adaptive: a 429 halves the origin rate, other responses add rps/20 back up to the maximum', () => {
    const l = RateLimiter.from({ perHost: { rps: 20 }, adaptive: true })!;
    expect(l.acquire(A, undefined, Infinity, A, 'GET')).toBeUndefined();
    const rps = () => l.stats().hosts.find((h) => h.origin === A)!.rps;
    expect(rps()).toBeCloseTo(20);
    l.feedback(A, 429);
    expect(rps()).toBeCloseTo(10);
    l.feedback(A, 503); // within the same token interval: not halved again
    expect(rps()).toBeCloseTo(10);
    vi.advanceTimersByTime(200);
    l.feedback(A, 503);
    expect(rps()).toBeCloseTo(5);
    l.feedback(A, 200);
    expect(rps()).toBeCloseTo(6);
    for (let i = 0; i < 50; i++) l.feedback(A, 200);
    expect(rps()).toBeCloseTo(20);
  });

  it('clear() rejects every waiter with the given error', async () => {
    const l = RateLimiter.from({ perHost: { rps: 1 } })!;
    const log: Array<[string, number]> = [];
    await take(l, A, log);
    const w = take(l, A, log);
    l.clear(() => new UvfetchError('ERR_SESSION_CLOSED', 'closed'));
    await expect(w).rejects.toMatchObject({ code: 'ERR_SESSION_CLOSED' });
    expect(l.stats().queued).toBe(0);
  });
});
