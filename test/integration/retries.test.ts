// Retries: off by default; statuses and error codes retried for idempotent methods with
// replayable bodies; Retry-After (seconds and HTTP date) and maxRetryAfter; abort and total timeout
// while backing off; res.attempts next to the engine's own res.info.attempts; stream() bodies of
// retried responses; the CSPRNG jitter; option validation and per-request overrides.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { Session, type UvfetchError } from '../../lib/index.js';
import { backoffDelay, DEFAULT_RETRY, retryAfterMs, retryPolicy } from '../../lib/policies/retry.js';
import {
  Cleanup,
  closedPort,
  readBody,
  rejection,
  sessionFactory,
  startHttpServer,
  startNetServer,
  thrown,
  type HttpTestServer,
} from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const session = sessionFactory(cleanup);

const FAST = { backoff: { base: 5, max: 20 } };

/** Fails the first `failures` requests of each path with `status` (and `headers`), then 200 "<method> <body>". */
async function flaky(failures: number, status = 503, headers: Record<string, string> = {}): Promise<HttpTestServer> {
  const seen = new Map<string, number>();
  return startHttpServer(async (req, res) => {
    const body = (await readBody(req)).toString();
    const n = (seen.get(req.url!) ?? 0) + 1;
    seen.set(req.url!, n);
    if (n <= failures) {
      res.writeHead(status, headers);
      res.end(`fail ${n}`);
      return;
    }
    res.end(`${req.method} ${body}`);
  });
}

describe('statuses', () => {
  it('are not retried unless `retry` is given (default off)', async () => {
    const srv = await flaky(1);
    const res = await session().request(srv.url('/'));
    expect(res.status).toBe(503);
    expect(res.attempts).toBe(1);
    expect(srv.requests).toHaveLength(1);
  });

  it('429, 502, 503, 504 are retried up to `attempts`, res.attempts counts them', async () => {
    for (const status of [429, 502, 503, 504]) {
      const srv = await flaky(2, status);
      const res = await session({ retry: FAST }).request(srv.url('/'));
      expect(res.status).toBe(200);
      expect(res.attempts).toBe(3);
      expect(res.info.attempts).toBe(1); // the engine's own stale-socket retry did not happen
      expect(srv.requests).toHaveLength(3);
      expect(srv.connections).toBe(1); // the failed responses were read: the socket was reused
    }
  });

  it('gives up after `attempts` and returns the last response', async () => {
    const srv = await flaky(10);
    const res = await session({ retry: { ...FAST, attempts: 4 } }).request(srv.url('/'));
    expect(res.status).toBe(503);
    expect(res.body.toString()).toBe('fail 4');
    expect(res.attempts).toBe(4);
  });

  it('500 is not retried by default; `statuses` changes that', async () => {
    const srv = await flaky(1, 500);
    expect((await session({ retry: FAST }).request(srv.url('/a'))).status).toBe(500);
    expect((await session({ retry: { ...FAST, statuses: [500] } }).request(srv.url('/b'))).status).toBe(200);
  });

  it('only idempotent methods by default; POST when listed in `methods`', async () => {
    const srv = await flaky(1);
    const s = session({ retry: FAST });
    const post = await s.request(srv.url('/p'), { method: 'POST', body: 'x' });
    expect(post.status).toBe(503);
    const put = await s.request(srv.url('/u'), { method: 'PUT', body: 'y' });
    expect(put.body.toString()).toBe('PUT y'); // the body is sent again
    const post2 = await s.request(srv.url('/p2'), { method: 'post', body: 'z', retry: { methods: ['post'] } });
    expect(post2.body.toString()).toBe('POST z');
    expect(post2.attempts).toBe(2);
  });

  it('a body that cannot be replayed is not retried', async () => {
    const srv = await flaky(1);
    async function* gen(): AsyncGenerator<string> {
      yield 'once';
    }
    const res = await session({ retry: FAST }).request(srv.url('/'), { method: 'PUT', body: gen() });
    expect(res.status).toBe(503);
    expect(res.attempts).toBe(1);
  });

  it('stream(): the retried response body is read so the socket is reused', async () => {
    const srv = await flaky(1);
    const s = session({ retry: FAST });
    const res = await s.stream(srv.url('/'));
    expect(res.attempts).toBe(2);
    expect(await res.text()).toBe('GET ');
    expect(srv.connections).toBe(1);
  });
});

describe('Retry-After', () => {
  it('in seconds is waited for', async () => {
    const srv = await flaky(1, 503, { 'retry-after': '1' });
    const t0 = Date.now();
    const res = await session({ retry: FAST }).request(srv.url('/'));
    expect(res.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
  });

  it('as an HTTP date is waited for', async () => {
    // Whole seconds: the date is 0.5–1.5 s ahead.
    const srv = await flaky(1, 429, {});
    srv.server.removeAllListeners('request');
    let n = 0;
    srv.server.on('request', (_req, res) => {
      if (++n === 1) {
        res.writeHead(429, { 'retry-after': new Date(Date.now() + 1500).toUTCString() });
        res.end();
      } else res.end('ok');
    });
    const t0 = Date.now();
    const res = await session({ retry: FAST }).request(srv.url('/'));
    expect(res.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
  });

  it('beyond maxRetryAfter: the response is returned at once; respectRetryAfter: false uses the backoff', async () => {
    const srv = await flaky(1, 503, { 'retry-after': '120' });
    const t0 = Date.now();
    const res = await session({ retry: { ...FAST, maxRetryAfter: 1_000 } }).request(srv.url('/a'));
    expect(res.status).toBe(503);
    expect(res.attempts).toBe(1);
    const res2 = await session({ retry: { ...FAST, respectRetryAfter: false } }).request(srv.url('/b'));
    expect(res2.status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('parses delta-seconds and HTTP dates', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(retryAfterMs('0', now)).toBe(0);
    expect(retryAfterMs(' 3 ', now)).toBe(3000);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:05 GMT', now)).toBe(5000);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0); // past
    expect(retryAfterMs('-1', now)).toBeUndefined();
    expect(retryAfterMs('1.5', now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});

describe('errors', () => {
  it('connection failures are retried (server closes the socket twice, then answers)', async () => {
    let conns = 0;
    const srv = await startNetServer((sock) => {
      conns++;
      sock.once('data', () => {
        if (conns <= 2) sock.destroy();
        else sock.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      });
    });
    const res = await session({ retry: FAST }).request(srv.url('/'));
    expect(res.body.toString()).toBe('ok');
    expect(res.attempts).toBe(3);
  });

  it('refused connections: retried, then the last error; `errorCodes` narrows the set', async () => {
    const port = await closedPort();
    const t0 = Date.now();
    const err = await rejection(session({ retry: { attempts: 3, backoff: { base: 50, jitter: 0 } } }).request(`http://127.0.0.1:${port}/`));
    expect(err.code).toBe('ERR_CONNECTION_REFUSED');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140); // 50 + 100 ms of backoff
    const t1 = Date.now();
    const err2 = await rejection(
      session({ retry: { attempts: 3, errorCodes: ['ERR_DNS_TEMPORARY'], backoff: { base: 500 } } }).request(`http://127.0.0.1:${port}/`),
    );
    expect(err2.code).toBe('ERR_CONNECTION_REFUSED');
    expect(Date.now() - t1).toBeLessThan(400);
  });

  it('invalid input is not retried and still throws synchronously', () => {
    const s = session({ retry: true });
    expect(thrown(() => s.request('nope')).code).toBe('ERR_INVALID_URL');
    expect(thrown(() => s.request('ftp://x/')).code).toBe('ERR_UNSUPPORTED_PROTOCOL');
    expect(thrown(() => s.request('http://127.0.0.1/', { bogus: 1 } as never)).code).toBe('ERR_INVALID_OPTION');
  });
});

describe('abort and total timeout while backing off', () => {
  it('the signal ends the wait with ERR_ABORTED', async () => {
    const srv = await flaky(5);
    const ac = new AbortController();
    const p = session({ retry: { backoff: { base: 5_000, jitter: 0 } } }).request(srv.url('/'), { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop')), 100);
    const t0 = Date.now();
    const err = await rejection(p);
    expect(err.code).toBe('ERR_ABORTED');
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(srv.requests).toHaveLength(1);
  });

  it('a wait that would outlast timeout.total is not started: the last response is returned', async () => {
    const srv = await flaky(5);
    const t0 = Date.now();
    const res = await session({ retry: { backoff: { base: 2_000, jitter: 0 } }, timeout: { total: 500 } }).request(srv.url('/'));
    expect(res.status).toBe(503);
    expect(res.attempts).toBe(1);
    expect(Date.now() - t0).toBeLessThan(400);
  });

  it('timeout.total covers all attempts', async () => {
    const srv = await startHttpServer((_req, res) => {
      setTimeout(() => {
        res.writeHead(503);
        res.end();
      }, 150);
    });
    const t0 = Date.now();
    const out = await session({ retry: { attempts: 10, ...FAST } })
      .request(srv.url('/'), { timeout: { total: 400 } })
      .then(
        (r) => r.status,
        (e: UvfetchError) => e.code,
      );
    // Either the third attempt hit the deadline (ERR_TIMEOUT) or the next wait was not started (503).
    expect(['ERR_TIMEOUT', 503]).toContain(out);
    expect(Date.now() - t0).toBeLessThan(900);
    expect(srv.requests.length).toBeLessThanOrEqual(3);
  });
});

describe('backoff', () => {
  it('grows exponentially to max, jitter drawn from a CSPRNG (never Math.random)', () => {
    const spy = vi.spyOn(Math, 'random');
    const p = retryPolicy({ backoff: { base: 100, max: 1_000, jitter: 0.5 } }, undefined)!;
    const seen = new Set<number>();
    for (let retry = 1; retry <= 6; retry++) {
      const full = Math.min(1_000, 100 * 2 ** (retry - 1));
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(p, retry);
        expect(d).toBeGreaterThanOrEqual(full / 2);
        expect(d).toBeLessThanOrEqual(full);
        seen.add(d);
      }
    }
    expect(seen.size).toBeGreaterThan(20);
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
    const exact = retryPolicy({ backoff: { base: 100, jitter: 0 } }, undefined)!;
    expect([1, 2, 3].map((r) => backoffDelay(exact, r))).toEqual([100, 200, 400]);
  });

  it('defaults', () => {
    expect(DEFAULT_RETRY.attempts).toBe(3);
    expect([...DEFAULT_RETRY.statuses]).toEqual([429, 502, 503, 504]);
    expect([...DEFAULT_RETRY.methods]).toEqual(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']);
  });
});

describe('options', () => {
  it('per request over the session: retry: false turns it off, fields override one by one', async () => {
    const srv = await flaky(3);
    const s = session({ retry: { ...FAST, attempts: 2 } });
    expect((await s.request(srv.url('/a'), { retry: false })).attempts).toBe(1);
    const r = await s.request(srv.url('/b'), { retry: { attempts: 4 } });
    expect(r.status).toBe(200);
    expect(r.attempts).toBe(4);
    const plain = session();
    expect((await plain.request(srv.url('/c'), { retry: { attempts: 4, ...FAST } })).attempts).toBe(4);
  });

  it('are validated per session and per request', () => {
    const bad: Array<[unknown, string]> = [
      ['yes', 'retry'],
      [{ attempts: 0 }, 'retry.attempts'],
      [{ attempts: 1.5 }, 'retry.attempts'],
      [{ tries: 2 }, 'retry.tries'],
      [{ methods: 'GET' }, 'retry.methods'],
      [{ methods: ['G ET'] }, 'retry.methods'],
      [{ statuses: [99] }, 'retry.statuses'],
      [{ errorCodes: ['ECONNRESET'] }, 'retry.errorCodes'],
      [{ backoff: { base: -1 } }, 'retry.backoff.base'],
      [{ backoff: { jitter: 2 } }, 'retry.backoff.jitter'],
      [{ backoff: { factor: 2 } }, 'retry.backoff.factor'],
      [{ respectRetryAfter: 1 }, 'retry.respectRetryAfter'],
      [{ maxRetryAfter: -5 }, 'retry.maxRetryAfter'],
    ];
    const s = session();
    for (const [retry, name] of bad) {
      const e1 = thrown(() => new Session({ retry } as never));
      expect(e1.code).toBe('ERR_INVALID_OPTION');
      expect(e1.reason).toBe(name);
      const e2 = thrown(() => s.request('http://127.0.0.1:1/', { retry } as never));
      expect(e2.code).toBe('ERR_INVALID_OPTION');
      expect(e2.reason).toBe(name);
    }
  });

  it('fetchMany items take `retry`', async () => {
    const srv = await flaky(1);
    const s = session();
    const statuses: number[] = [];
    for await (const r of s.fetchMany([{ url: srv.url('/x'), retry: FAST }, srv.url('/y')], { concurrency: 2, ordered: true })) {
      statuses.push(r.response!.status);
    }
    expect(statuses).toEqual([200, 503]);
  });
});
