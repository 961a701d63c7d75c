// Rate limits: per-origin token buckets (spacing seen from the server), origins independent, a
// global bucket across origins, burst, queued requests holding no socket, stats().rateLimit,
// abort / total timeout / close while waiting, AIMD on 429 and recovery, option validation.

import { afterEach, describe, expect, it } from 'vitest';
import { Session } from '../../lib/index.js';
import { Cleanup, rejection, sessionFactory, sleep, startHttpServer, thrown, type HttpTestServer } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const session = sessionFactory(cleanup);

/** A server that records when each request arrived (ms, performance.now()). */
async function timed(status = 200): Promise<HttpTestServer & { at: number[] }> {
  const at: number[] = [];
  const srv = (await startHttpServer((_req, res) => {
    at.push(performance.now());
    res.writeHead(status);
    res.end('x');
  })) as HttpTestServer & { at: number[] };
  srv.at = at;
  return srv;
}

function gaps(at: number[]): number[] {
  return at.slice(1).map((t, i) => t - at[i]!);
}

describe('per origin', () => {
  it('spaces requests at 1/rps (burst 1), in order', async () => {
    const srv = await timed();
    const s = session({ rateLimit: { perHost: { rps: 20 } } });
    const t0 = performance.now();
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3, 4, 5].map((i) => s.request(srv.url(`/${i}`)).then(() => order.push(i))));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(5 * 50 - 10);
    // Arrival times at the server carry delivery jitter (a few ms, more under sanitizers): each
    // gap is well above 0 (no burst), and the whole span is the 5 intervals the bucket enforces.
    for (const g of gaps(srv.at)) expect(g).toBeGreaterThanOrEqual(10); // a burst would show ~0
    expect(srv.at.at(-1)! - srv.at[0]!).toBeGreaterThanOrEqual(5 * 50 - 15);
    expect(srv.requests.map((r) => r.url)).toEqual(['/0', '/1', '/2', '/3', '/4', '/5']);
  });

  it('burst lets that many go at once after an idle period', async () => {
    const srv = await timed();
    const s = session({ rateLimit: { perHost: { rps: 5, burst: 3 } } });
    await Promise.all([1, 2, 3].map(() => s.request(srv.url('/'))));
    // Sent together (arrival span well under one 200 ms interval; connection set-up is not counted).
    expect(srv.at.at(-1)! - srv.at[0]!).toBeLessThan(120);
    const t1 = performance.now();
    await s.request(srv.url('/'));
    expect(performance.now() - t1).toBeGreaterThanOrEqual(150); // next token after ~200 ms
  });

  it('origins have their own buckets', async () => {
    const a = await timed();
    const b = await timed();
    const s = session({ rateLimit: { perHost: { rps: 10 } } });
    const t0 = performance.now();
    await Promise.all([a.url('/1'), b.url('/1'), a.url('/2'), b.url('/2')].map((u) => s.request(u)));
    const dt = performance.now() - t0;
    expect(dt).toBeGreaterThanOrEqual(90);
    expect(dt).toBeLessThan(260); // one interval (100 ms), not three
  });

  it('global bounds all origins together', async () => {
    const a = await timed();
    const b = await timed();
    const s = session({ rateLimit: { perHost: { rps: 1000 }, global: { rps: 20 } } });
    const t0 = performance.now();
    await Promise.all([a, b, a, b].map((x) => s.request(x.url('/'))));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(3 * 50 - 10);
    // Round robin across origins.
    expect(a.requests).toHaveLength(2);
    expect(b.requests).toHaveLength(2);
    const only = session({ rateLimit: { global: { rps: 20, burst: 2 } } });
    await Promise.all([a, b].map((x) => only.request(x.url('/'))));
    // Burst 2: both go at once (without it the second would wait one 50 ms interval).
    expect(Math.abs(a.at.at(-1)! - b.at.at(-1)!)).toBeLessThan(35);
  });
});

describe('waiting', () => {
  it('queued requests hold no socket; stats().rateLimit shows the queue and the rate', async () => {
    const srv = await timed();
    const s = session({ rateLimit: { perHost: { rps: 10 } } });
    const all = Promise.all([1, 2, 3, 4, 5].map(() => s.request(srv.url('/'))));
    await sleep(20);
    const st = s.stats();
    expect(st.rateLimit!.queued).toBe(4);
    expect(st.rateLimit!.hosts).toEqual([expect.objectContaining({ origin: `http://127.0.0.1:${srv.port}`, rps: 10, maxRps: 10, queued: 4 })]);
    expect(st.requests.queued + st.requests.inFlight).toBeLessThanOrEqual(1);
    await all;
    expect(srv.maxInFlight).toBe(1);
    expect(srv.connections).toBe(1);
    expect(s.stats().rateLimit!.queued).toBe(0);
    expect(session().stats().rateLimit).toBeUndefined();
  });

  it('abort while waiting: ERR_ABORTED, the request leaves the queue and is never sent', async () => {
    const srv = await timed();
    const s = session({ rateLimit: { perHost: { rps: 2 } } });
    await s.request(srv.url('/first'));
    const ac = new AbortController();
    const p = s.request(srv.url('/aborted'), { signal: ac.signal });
    await sleep(20);
    expect(s.stats().rateLimit!.queued).toBe(1);
    ac.abort();
    expect((await rejection(p, 200)).code).toBe('ERR_ABORTED');
    expect(s.stats().rateLimit!.queued).toBe(0);
    // An already aborted signal fails at once too.
    expect((await rejection(s.request(srv.url('/x'), { signal: AbortSignal.abort() }), 100)).code).toBe('ERR_ABORTED');
    await sleep(600);
    expect(srv.requests.map((r) => r.url)).toEqual(['/first']);
  });

  it('the total timeout applies while waiting (ERR_TIMEOUT)', async () => {
    const srv = await timed();
    const s = session({ rateLimit: { perHost: { rps: 1 } }, timeout: { total: 200 } });
    await s.request(srv.url('/'));
    const t0 = performance.now();
    const err = await rejection(s.request(srv.url('/')));
    expect(err.code).toBe('ERR_TIMEOUT');
    expect(performance.now() - t0).toBeLessThan(500);
    expect(s.stats().rateLimit!.queued).toBe(0);
  });

  it('close() rejects waiting requests with ERR_SESSION_CLOSED', async () => {
    const srv = await timed();
    const s = new Session({ rateLimit: { perHost: { rps: 1 } } });
    await s.request(srv.url('/'));
    const p = rejection(s.request(srv.url('/')), 500);
    await sleep(10);
    await s.close();
    expect((await p).code).toBe('ERR_SESSION_CLOSED');
  });
});

describe('adaptive (AIMD)', () => {
  it('halves the origin rate on 429/503 and recovers additively on other responses', async () => {
    let mode = 429;
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(mode);
      res.end();
    });
    const s = session({ rateLimit: { perHost: { rps: 40, burst: 4 }, adaptive: true } });
    const rate = () => s.stats().rateLimit!.hosts[0]!.rps;
    await s.request(srv.url('/'));
    expect(rate()).toBe(20);
    // Several 429s in a row within one token interval count once.
    await Promise.all([s.request(srv.url('/')), s.request(srv.url('/'))]);
    expect(rate()).toBe(20);
    await sleep(120);
    await s.request(srv.url('/'));
    const low = rate();
    expect(low).toBe(10);
    mode = 200;
    await s.request(srv.url('/'));
    expect(rate()).toBeCloseTo(low + 2, 5); // + rps/20 per success
    for (let i = 0; i < 25; i++) await s.request(srv.url('/'));
    expect(rate()).toBe(40);
  });

  it('a 503 also counts; 500 does not', async () => {
    let status = 500;
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(status);
      res.end();
    });
    const s = session({ rateLimit: { perHost: { rps: 100, burst: 10 }, adaptive: true } });
    await s.request(srv.url('/'));
    expect(s.stats().rateLimit!.hosts[0]!.rps).toBe(100);
    status = 503;
    await s.request(srv.url('/'));
    expect(s.stats().rateLimit!.hosts[0]!.rps).toBe(50);
  });
});

describe('options', () => {
  it('are validated', () => {
    const bad: Array<[unknown, string]> = [
      [5, 'rateLimit'],
      [{}, 'rateLimit'],
      [{ perHost: { rps: 0 } }, 'rateLimit.perHost.rps'],
      [{ perHost: { rps: Infinity } }, 'rateLimit.perHost.rps'],
      [{ perHost: { rps: 1, burst: 0 } }, 'rateLimit.perHost.burst'],
      [{ perHost: { rps: 1, burst: 1.5 } }, 'rateLimit.perHost.burst'],
      [{ perHost: { rps: 1, size: 1 } }, 'rateLimit.perHost.size'],
      [{ global: 'fast' }, 'rateLimit.global'],
      [{ global: { rps: 1 }, adaptive: true }, 'rateLimit.adaptive'],
      [{ perHost: { rps: 1 }, adaptive: 'yes' }, 'rateLimit.adaptive'],
      [{ perHost: { rps: 1 }, perPath: {} }, 'rateLimit.perPath'],
    ];
    for (const [rateLimit, name] of bad) {
      const e = thrown(() => new Session({ rateLimit } as never));
      expect(e.code).toBe('ERR_INVALID_OPTION');
      expect(e.reason).toBe(name);
    }
    // Session-wide only: a request cannot carry its own buckets.
    const s = session();
    expect(thrown(() => s.request('http://127.0.0.1:1/', { rateLimit: { perHost: { rps: 1 } } } as never)).reason).toBe('rateLimit');
  });

  it('fetchMany requests wait in the same buckets', async () => {
    const srv = await timed();
    const s = session({ rateLimit: { perHost: { rps: 25 } } });
    const t0 = performance.now();
    let n = 0;
    for await (const r of s.fetchMany(
      [1, 2, 3, 4].map((i) => srv.url(`/${i}`)),
      { concurrency: 4 },
    )) {
      expect(r.response!.status).toBe(200);
      n++;
    }
    expect(n).toBe(4);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(3 * 40 - 10);
  });
});
