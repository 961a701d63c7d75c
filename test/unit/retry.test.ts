// Retry policy: option parsing and merging, the backoff schedule, Retry-After. Pure: no sockets.
import { describe, expect, it } from 'vitest';
import { UvfetchError } from '../../lib/core/errors.js';
import { backoffDelay, DEFAULT_RETRY, type RetryPolicy, retryAfterMs, retryPolicy } from '../../lib/policies/retry.js';

const exact = (o: Partial<RetryPolicy>): RetryPolicy => ({ ...DEFAULT_RETRY, jitter: 0, ...o });

describe('retryPolicy', () => {
  it('undefined keeps the base, false turns retries off, true means the defaults', () => {
    expect(retryPolicy(undefined, undefined)).toBeUndefined();
    const base = retryPolicy({ attempts: 5 }, undefined)!;
    expect(retryPolicy(undefined, base)).toBe(base);
    expect(retryPolicy(false, base)).toBeUndefined();
    expect(retryPolicy(true, undefined)).toBe(DEFAULT_RETRY);
    expect(retryPolicy(true, base)).toBe(base);
  });

  it("an object's fields replace the base's one by one", () => {
    const session = retryPolicy({ attempts: 5, statuses: [500], backoff: { base: 10 } }, undefined)!;
    const req = retryPolicy({ statuses: [503], backoff: { max: 50 } }, session)!;
    expect(req.attempts).toBe(5);
    expect([...req.statuses]).toEqual([503]);
    expect(req.base).toBe(10);
    expect(req.max).toBe(50);
    expect(req.jitter).toBe(DEFAULT_RETRY.jitter);
    expect(req.methods).toBe(DEFAULT_RETRY.methods);
  });

  it('standard method names are upper-cased, others kept as given', () => {
    const p = retryPolicy({ methods: ['get', 'post', 'PURGE', 'custom'] }, undefined)!;
    expect([...p.methods]).toEqual(['GET', 'POST', 'PURGE', 'custom']);
  });

  it.each([
    [{ attempts: 0 }, 'retry.attempts'],
    [{ attempts: 1.5 }, 'retry.attempts'],
    [{ statuses: [99] }, 'retry.statuses'],
    [{ statuses: 'x' }, 'retry.statuses'],
    [{ methods: ['GE T'] }, 'retry.methods'],
    [{ errorCodes: ['ECONNRESET'] }, 'retry.errorCodes'],
    [{ backoff: { jitter: 2 } }, 'retry.backoff.jitter'],
    [{ backoff: { base: -1 } }, 'retry.backoff.base'],
    [{ backoff: { nope: 1 } }, 'retry.backoff.nope'],
    [{ respectRetryAfter: 'yes' }, 'retry.respectRetryAfter'],
    [{ bogus: true }, 'retry.bogus'],
    [null, 'retry'],
    [[1], 'retry'],
  ])('rejects %j naming %s', (v, name) => {
    let err: unknown;
    try {
      retryPolicy(v, undefined);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UvfetchError);
    expect((err as UvfetchError).code).toBe('ERR_INVALID_OPTION');
    expect((err as UvfetchError).reason).toBe(name);
  });
});

describe('backoffDelay', () => {
  it('without jitter: base·2^(n−1), capped at max', () => {
    const p = exact({ base: 100, max: 1000 });
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(p, n))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('huge retry numbers do not overflow', () => {
    expect(backoffDelay(exact({ base: 100, max: 5000 }), 10_000)).toBe(5000);
  });

  it('base 0 means no delay', () => {
    expect(backoffDelay({ ...DEFAULT_RETRY, base: 0 }, 3)).toBe(0);
  });

  it('jitter draws from [(1 − jitter)·d, d]', () => {
    const p = { ...DEFAULT_RETRY, base: 1000, max: 1000, jitter: 0.5 };
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const d = backoffDelay(p, 1);
      expect(d).toBeGreaterThanOrEqual(500);
      expect(d).toBeLessThanOrEqual(1000);
      seen.add(d);
    }
    // A CSPRNG over 500 draws: far more than a handful of distinct values.
    expect(seen.size).toBeGreaterThan(50);
  });
});

describe('retryAfterMs', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('delta-seconds', () => {
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
  });
  it('an HTTP date, relative to now; a past date is 0', () => {
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(retryAfterMs('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
  });
  it('absent or invalid: undefined', () => {
    expect(retryAfterMs(null, now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs('-5', now)).toBeUndefined();
    expect(retryAfterMs('2026-01-02', now)).toBeUndefined(); // Date.parse takes it, but it is no HTTP date
  });
});
