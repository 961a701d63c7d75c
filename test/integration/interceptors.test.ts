// Interceptors against a real local server: order, request changes, next() 0/1/many times,
// replaced responses, errors, streams passed through untouched, the built-in policies under the
// session's interceptors, and every entry point (request, stream, fetchMany, fetch, UvfetchAgent).
import { afterEach, describe, expect, it } from 'vitest';
import {
  bearerToken,
  createResponse,
  type Interceptor,
  type LogEntry,
  loggingInterceptor,
  responseCache,
  StreamResponse,
  UvfetchAgent,
  UvfetchError,
} from '../../lib/index.js';
import { Cleanup, readBody, rejection, sessionFactory, startHttpServer } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const session = sessionFactory(cleanup);

/** Echoes method, path and the request headers it was asked about as JSON; /redirect → 302 /; /big → 1 MiB. */
async function echoServer() {
  return startHttpServer(async (req, res) => {
    const body = await readBody(req);
    if (req.url === '/redirect') {
      res.writeHead(302, { location: '/' });
      res.end();
      return;
    }
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.alloc(1024 * 1024, 7));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'sid=secret' });
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString() }));
  });
}

describe('interceptors: the chain', () => {
  it('runs the first listed outermost; use() appends inside them', async () => {
    const srv = await echoServer();
    const order: string[] = [];
    const tag =
      (name: string): Interceptor =>
      async (req, next) => {
        order.push(`${name}>`);
        const res = await next(req);
        order.push(`<${name}`);
        return res;
      };
    const s = session({ interceptors: [tag('a'), tag('b')] });
    expect(s.use(tag('c'))).toBe(s);
    const res = await s.request(srv.url('/'));
    expect(res.status).toBe(200);
    expect(order).toEqual(['a>', 'b>', 'c>', '<c', '<b', '<a']);
  });

  it('an interceptor changes the request: url, method, headers, body', async () => {
    const srv = await echoServer();
    const s = session({
      interceptors: [
        async (req, next) => {
          expect(req.headers).toBeInstanceOf(Headers);
          expect(req.method).toBe('GET');
          req.headers.set('x-signed', 'yes');
          return next({ ...req, url: srv.url('/changed'), method: 'POST', body: 'payload' });
        },
      ],
    });
    const res = await s.request(srv.url('/orig'), { headers: { 'x-a': '1' } });
    const echo = (await res.json()) as { method: string; url: string; headers: Record<string, string>; body: string };
    expect(echo.method).toBe('POST');
    expect(echo.url).toBe('/changed');
    expect(echo.headers['x-signed']).toBe('yes');
    expect(echo.headers['x-a']).toBe('1');
    expect(echo.body).toBe('payload');
  });

  it('answers without calling next, calls next several times, replaces the response', async () => {
    const srv = await echoServer();
    const short = session({ interceptors: [async () => createResponse(203, { cached: true }, { 'x-from': 'interceptor' })] });
    const r1 = await short.request(srv.url('/'));
    expect(r1.status).toBe(203);
    expect(r1.headers.get('content-type')).toBe('application/json');
    expect(await r1.json()).toEqual({ cached: true });
    expect(srv.requests.length).toBe(0);

    const twice = session({
      interceptors: [
        async (req, next) => {
          const a = await next(req);
          const b = await next({ ...req, url: srv.url('/second') });
          return createResponse(200, `${a.status}+${b.status}`);
        },
      ],
    });
    const r2 = await twice.request(srv.url('/first'));
    expect(await r2.text()).toBe('200+200');
    expect(srv.requests.map((r) => r.url)).toEqual(['/first', '/second']);
  });

  it('a throwing interceptor rejects the request with its error; next() refuses a malformed request', async () => {
    const srv = await echoServer();
    const boom = new Error('boom');
    const s = session({
      interceptors: [
        async () => {
          throw boom;
        },
      ],
    });
    expect(await rejection(s.request(srv.url('/')))).toBe(boom);
    const bad = session({ interceptors: [async (_req, next) => next({} as never)] });
    const err = await rejection(bad.request(srv.url('/')));
    expect(err).toBeInstanceOf(UvfetchError);
    expect(err.code).toBe('ERR_INVALID_OPTION');
    // A synchronous throw is a rejection too.
    const sync = session({
      interceptors: [
        (() => {
          throw boom;
        }) as unknown as Interceptor,
      ],
    });
    expect(await rejection(sync.request(srv.url('/')))).toBe(boom);
  });

  it('bad options: interceptors must be an array of functions', () => {
    expect(() => session({ interceptors: 'x' as never })).toThrow(/interceptors/);
    expect(() => session({ interceptors: [1 as never] })).toThrow(/interceptors/);
    expect(() => session().use(null as never)).toThrow(/interceptor/);
  });

  it('streams pass through untouched: the same StreamResponse, body unread', async () => {
    const srv = await echoServer();
    let seen: unknown;
    const s = session({
      interceptors: [
        async (req, next, ctx) => {
          expect(ctx.stream).toBe(true);
          seen = await next(req);
          return seen as StreamResponse;
        },
      ],
    });
    const res = await s.stream(srv.url('/big'));
    expect(res).toBe(seen);
    expect(res).toBeInstanceOf(StreamResponse);
    expect((await res.buffer()).length).toBe(1024 * 1024);
  });

  it('a buffered response returned to a stream() caller is handed over as a StreamResponse, and the other way round', async () => {
    const srv = await echoServer();
    const s = session({ interceptors: [async () => createResponse(200, 'made')] });
    const st = await s.stream(srv.url('/'));
    expect(st).toBeInstanceOf(StreamResponse);
    expect(await st.text()).toBe('made');
    const s2 = session({ interceptors: [async () => createResponse(200, 'made', undefined, { stream: true })] });
    const b = await s2.request(srv.url('/'));
    expect(b.body.toString()).toBe('made');
  });

  it('the built-in policies run inside: the interceptor sees the final response after redirects and retries', async () => {
    let n = 0;
    const srv = await startHttpServer((req, res) => {
      if (req.url === '/flaky' && ++n < 3) {
        res.writeHead(503);
        res.end();
        return;
      }
      if (req.url === '/hop') {
        res.writeHead(302, { location: '/flaky' });
        res.end();
        return;
      }
      res.end('ok');
    });
    const statuses: number[] = [];
    const s = session({
      retry: { attempts: 3, backoff: { base: 1, max: 5, jitter: 0 } },
      interceptors: [
        async (req, next) => {
          const res = await next(req);
          statuses.push(res.status);
          return res;
        },
      ],
    });
    const res = await s.request(srv.url('/hop'));
    expect(res.status).toBe(200);
    expect(res.attempts).toBe(3);
    expect(res.redirects.map((h) => h.status)).toEqual([302]);
    expect(statuses).toEqual([200]);
  });

  it('cookies are added below the interceptors and stored from responses', async () => {
    const srv = await echoServer();
    const seen: Array<string | null> = [];
    const s = session({
      cookies: true,
      interceptors: [
        async (req, next) => {
          seen.push(req.headers.get('cookie'));
          return next(req);
        },
      ],
    });
    await s.request(srv.url('/'));
    const res = await s.request(srv.url('/'));
    expect(((await res.json()) as { headers: Record<string, string> }).headers.cookie).toBe('sid=secret');
    expect(seen).toEqual([null, null]);
  });

  it('fetchMany, fetch() and UvfetchAgent go through the session interceptors', async () => {
    const srv = await echoServer();
    const calls: string[] = [];
    const mark: Interceptor = async (req, next) => {
      calls.push(new URL(req.url).pathname);
      req.headers.set('x-mark', '1');
      return next(req);
    };
    const s = session({ interceptors: [mark] });
    for await (const r of s.fetchMany([{ url: srv.url('/many') }], { concurrency: 1 })) expect(r.response?.status).toBe(200);
    const fr = await s.fetch(srv.url('/fetch'));
    expect(((await fr.json()) as { headers: Record<string, string> }).headers['x-mark']).toBe('1');
    // fetch() follows redirects itself, so the interceptors see each hop.
    const redirected = await s.fetch(srv.url('/redirect'));
    expect(redirected.redirected).toBe(true);
    await redirected.arrayBuffer();
    const agent = new UvfetchAgent({ interceptors: [mark] });
    cleanup.add(() => agent.destroy());
    const ar = await fetch(srv.url('/agent'), { dispatcher: agent } as RequestInit);
    expect(((await ar.json()) as { headers: Record<string, string> }).headers['x-mark']).toBe('1');
    expect(calls).toEqual(['/many', '/fetch', '/redirect', '/', '/agent']);
  });
});

describe('ready-made interceptors against a server', () => {
  it('loggingInterceptor logs request and response with credentials redacted', async () => {
    const srv = await echoServer();
    const entries: LogEntry[] = [];
    const s = session({ interceptors: [loggingInterceptor({ log: (e) => entries.push(e), redactHeaders: ['X-Api-Key'] })] });
    const url = srv.url('/path?q=1').replace('http://', 'http://user:pa55@');
    await s.request(url, { headers: { authorization: 'Bearer t0ken', cookie: 'a=b', 'x-api-key': 'k3y', 'x-ok': 'visible' } });
    expect(entries.map((e) => e.type)).toEqual(['request', 'response']);
    const text = JSON.stringify(entries);
    for (const secret of ['pa55', 'user:', 't0ken', 'a=b', 'k3y', 'sid=secret']) expect(text).not.toContain(secret);
    expect(entries[0]!.url).toBe(`http://[REDACTED]@${srv.host}:${srv.port}/path?q=1`);
    expect(entries[0]!.headers!['x-ok']).toBe('visible');
    expect(entries[1]!.status).toBe(200);
    expect(entries[1]!.headers!['set-cookie']).toEqual(['[REDACTED]']);
    const refused = session({ interceptors: [loggingInterceptor({ log: (e) => entries.push(e) })] });
    await rejection(refused.request('http://127.0.0.1:1/'));
    expect(entries.at(-1)!.type).toBe('error');
    expect(entries.at(-1)!.error!.code).toMatch(/^ERR_/);
  });

  it('bearerToken refreshes once on 401 (single-flight across concurrent requests) and resends', async () => {
    let valid = 'token-2';
    const srv = await startHttpServer((req, res) => {
      if (req.headers.authorization !== `Bearer ${valid}`) {
        res.writeHead(401, { 'www-authenticate': 'Bearer' });
        res.end('no');
        return;
      }
      res.end('yes');
    });
    let refreshes = 0;
    const auth = bearerToken({
      token: 'token-1',
      refresh: async () => {
        refreshes++;
        await new Promise((r) => setTimeout(r, 20));
        return `token-${refreshes + 1}`;
      },
    });
    const s = session({ interceptors: [auth] });
    const all = await Promise.all(Array.from({ length: 5 }, () => s.request(srv.url('/'))));
    expect(all.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(refreshes).toBe(1);
    expect(auth.token).toBe('token-2');
    // Still refused after the refresh: the 401 is the answer (no loop).
    valid = 'never';
    const res = await s.request(srv.url('/'));
    expect(res.status).toBe(401);
    expect(refreshes).toBe(2);
  });

  it('responseCache serves fresh responses and revalidates stale ones with ETag', async () => {
    let etagHits = 0;
    const srv = await startHttpServer((req, res) => {
      if (req.url === '/fresh') {
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.end('fresh body');
        return;
      }
      if (req.headers['if-none-match'] === '"v1"') {
        etagHits++;
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'no-cache' });
        res.end();
        return;
      }
      res.writeHead(200, { etag: '"v1"', 'cache-control': 'no-cache' });
      res.end('tagged body');
    });
    const cache = responseCache();
    const s = session({ interceptors: [cache] });
    expect(await (await s.request(srv.url('/fresh'))).text()).toBe('fresh body');
    const hit = await s.request(srv.url('/fresh'));
    expect(await hit.text()).toBe('fresh body');
    expect(hit.headers.get('age')).toBe('0');
    expect(srv.requests.length).toBe(1);
    expect(await (await s.request(srv.url('/tagged'))).text()).toBe('tagged body');
    const again = await s.request(srv.url('/tagged'));
    expect(again.status).toBe(200);
    expect(await again.text()).toBe('tagged body');
    expect(etagHits).toBe(1);
    // A stream() caller is served from the cache too (as a StreamResponse).
    const st = await s.stream(srv.url('/fresh'));
    expect(await st.text()).toBe('fresh body');
    expect(cache.stats()).toMatchObject({ hits: 2, revalidated: 1, misses: 2, entries: 2 });
  });
});
