// Redirects: follow/manual/error, method and body rules per status, relative and unusable
// Locations, loops and maxRedirects, header and credential stripping on cross-origin hops (a
// second listener is the other origin and records what it received), https → http downgrades,
// intermediate stream bodies (drained for reuse, or destroyed), abort and total timeout across
// hops, option validation, fetchMany items.

import type * as http from 'node:http';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Session, UvfetchError, type StreamResponse } from '../../lib/index.js';
import { startCapturingTlsServer } from '../helpers/client-hello.js';
import { Cleanup, readBody, rejection, sessionFactory, sleep, startHttpServer, thrown, waitFor, type HttpTestServer } from '../helpers/http-servers.js';
import { tlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const session = sessionFactory(cleanup);

/** Answers `/r/<status>?to=<location>` with that redirect, anything else with 200 "<method> <url> <body>". */
async function redirector(): Promise<HttpTestServer> {
  return startHttpServer(
    async (req, res) => {
      const u = new URL(req.url!, 'http://x');
      const m = /^\/r\/(\d+)$/.exec(u.pathname);
      if (m) {
        const to = u.searchParams.get('to');
        res.writeHead(Number(m[1]), to === null ? {} : { location: to });
        res.end('redirect body');
        return;
      }
      const body = (await readBody(req)).toString();
      res.end(`${req.method} ${req.url} ${body}`);
    },
    { keepAliveTimeout: 60_000 },
  );
}

const enc = encodeURIComponent;

describe('follow (default)', () => {
  it('follows 301, 302, 303, 307, 308 and lists the hops in res.redirects', async () => {
    const srv = await redirector();
    const s = session();
    // /r/301 → /r/302 → /r/303 → /r/307 → /r/308 → /end
    const chain = ['/end', '/r/308', '/r/307', '/r/303', '/r/302'].reduce((to, p) => `${p}?to=${enc(to)}`);
    const start = srv.url(`/r/301?to=${enc(chain)}`);
    const res = await s.request(start);
    expect(res.status).toBe(200);
    expect(res.url).toBe(srv.url('/end'));
    expect(res.body.toString()).toBe('GET /end ');
    expect(res.redirects.map((h) => h.status)).toEqual([301, 302, 303, 307, 308]);
    expect(res.redirects[0]).toMatchObject({ url: start, method: 'GET', status: 301 });
    expect(res.redirects[0]!.location.startsWith(srv.url('/r/302?to='))).toBe(true);
    expect(res.redirects.at(-1)!.location).toBe(srv.url('/end'));
    expect(res.attempts).toBe(1);
    // Every hop on the one kept-alive connection.
    expect(srv.connections).toBe(1);
  });

  it('a response without redirects has an empty res.redirects', async () => {
    const srv = await redirector();
    const res = await session().request(srv.url('/plain'));
    expect(res.redirects).toEqual([]);
  });

  it('POST → GET on 301 and 302, body and content-* headers dropped; 303 turns PUT into GET; HEAD stays HEAD', async () => {
    const srv = await redirector();
    const s = session();
    for (const status of [301, 302, 303]) {
      const res = await s.request(srv.url(`/r/${status}?to=/t${status}`), {
        method: status === 303 ? 'PUT' : 'POST',
        headers: { 'content-type': 'application/json', 'content-language': 'en', 'x-keep': '1' },
        body: '{"a":1}',
      });
      expect(res.body.toString()).toBe(`GET /t${status} `);
      const seen = srv.requests.at(-1)!;
      expect(seen.headers['content-type']).toBeUndefined();
      expect(seen.headers['content-language']).toBeUndefined();
      expect(seen.headers['content-length']).toBeUndefined();
      expect(seen.headers['x-keep']).toBe('1');
    }
    const head = await s.request(srv.url('/r/303?to=/h'), { method: 'HEAD' });
    expect(srv.requests.at(-1)!.method).toBe('HEAD');
    expect(head.status).toBe(200);
    // 301/302 keep methods other than POST.
    const put = await s.request(srv.url('/r/301?to=/p'), { method: 'PUT', body: 'data' });
    expect(put.body.toString()).toBe('PUT /p data');
  });

  it('307 and 308 keep the method and the body', async () => {
    const srv = await redirector();
    const s = session();
    for (const status of [307, 308]) {
      const res = await s.request(srv.url(`/r/${status}?to=/k`), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: Buffer.from('payload') });
      expect(res.body.toString()).toBe('POST /k payload');
      expect(srv.requests.at(-1)!.headers['content-type']).toBe('text/plain');
    }
  });

  it('a streamed body that cannot be replayed: ERR_REDIRECT_BODY on 307/308, dropped on 303', async () => {
    const srv = await redirector();
    const s = session();
    async function* gen(): AsyncGenerator<string> {
      yield 'a';
      yield 'b';
    }
    const err = await rejection(s.request(srv.url('/r/307?to=/x'), { method: 'POST', body: gen() }));
    expect(err).toBeInstanceOf(UvfetchError);
    expect(err.code).toBe('ERR_REDIRECT_BODY');
    const res = await s.request(srv.url('/r/303?to=/y'), { method: 'POST', body: gen() });
    expect(res.body.toString()).toBe('GET /y ');
    // An array of chunks can be sent again.
    const arr = await s.request(srv.url('/r/308?to=/z'), { method: 'POST', body: ['c', 'd'] });
    expect(arr.body.toString()).toBe('POST /z cd');
  });

  it('resolves relative Locations against the current URL', async () => {
    const srv = await redirector();
    const s = session();
    expect((await s.request(srv.url(`/r/302?to=${enc('../rel/x?y=1')}`))).url).toBe(srv.url('/rel/x?y=1'));
    expect((await s.request(srv.url(`/r/302?to=${enc('?only=query')}`))).url).toBe(srv.url('/r/302?only=query'));
    // /r/302?only=query has no "to": that second 302 has no Location and is the answer.
    expect((await s.request(srv.url(`/r/302?to=${enc(`//127.0.0.1:${srv.port}/net`)}`))).url).toBe(srv.url('/net'));
  });

  it('a 3xx without a Location, or with an unusable one, is returned as is', async () => {
    const srv = await redirector();
    const s = session();
    const none = await s.request(srv.url('/r/302'));
    expect(none.status).toBe(302);
    expect(none.redirects).toEqual([]);
    const bad = await s.request(srv.url(`/r/301?to=${enc('http://[::1')}`));
    expect(bad.status).toBe(301);
    // 300 and 304 are not followed.
    expect((await s.request(srv.url('/r/300?to=/x'))).status).toBe(300);
    expect((await s.request(srv.url('/r/304?to=/x'))).status).toBe(304);
  });

  it('a Location with another scheme is refused with ERR_REDIRECT', async () => {
    const srv = await redirector();
    const err = await rejection(session().request(srv.url(`/r/302?to=${enc('ftp://127.0.0.1/x')}`)));
    expect(err.code).toBe('ERR_REDIRECT');
    expect(err.reason).toBe('unsupported scheme');
  });
});

describe('modes and limits', () => {
  it("'manual' returns the 3xx; 'error' rejects with ERR_REDIRECT; per request over the session", async () => {
    const srv = await redirector();
    const manual = session({ redirect: 'manual' });
    const r = await manual.request(srv.url('/r/302?to=/x'));
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('/x');
    expect((await manual.request(srv.url('/r/302?to=/x'), { redirect: 'follow' })).status).toBe(200);
    const err = await rejection(manual.request(srv.url('/r/302?to=/x'), { redirect: 'error' }));
    expect(err.code).toBe('ERR_REDIRECT');
    expect(err.url).toBe(srv.url('/r/302?to=/x'));
    const st = await manual.stream(srv.url('/r/307?to=/x'));
    expect(st.status).toBe(307);
    expect(await st.text()).toBe('redirect body');
  });

  it('loops end with ERR_TOO_MANY_REDIRECTS after maxRedirects (default 10)', async () => {
    let hits = 0;
    const srv = await startHttpServer((_req, res) => {
      hits++;
      res.writeHead(302, { location: '/loop' });
      res.end();
    });
    const s = session();
    const err = await rejection(s.request(srv.url('/loop')));
    expect(err.code).toBe('ERR_TOO_MANY_REDIRECTS');
    expect(hits).toBe(11);
    hits = 0;
    expect((await rejection(s.request(srv.url('/loop'), { maxRedirects: 2 }))).code).toBe('ERR_TOO_MANY_REDIRECTS');
    expect(hits).toBe(3);
    hits = 0;
    expect((await rejection(session({ maxRedirects: 0 }).request(srv.url('/loop')))).code).toBe('ERR_TOO_MANY_REDIRECTS');
    expect(hits).toBe(1);
  });

  it('maxRedirects allows exactly that many', async () => {
    const srv = await redirector();
    const two = `/r/302?to=${enc(`/r/302?to=${enc('/end')}`)}`;
    expect((await session({ maxRedirects: 2 }).request(srv.url(two))).status).toBe(200);
    expect((await rejection(session({ maxRedirects: 1 }).request(srv.url(two)))).code).toBe('ERR_TOO_MANY_REDIRECTS');
  });
});

describe('cross-origin hops', () => {
  it('strip Authorization, Cookie, Proxy-Authorization and redirectStripHeaders; same-origin hops keep them', async () => {
    const other = await redirector(); // another port: another origin
    const srv = await redirector();
    const s = session({ redirectStripHeaders: ['X-Api-Key'] });
    const headers = {
      authorization: 'Bearer secret',
      cookie: 'sid=1',
      'proxy-authorization': 'Basic cHJveHk=',
      'x-api-key': 'k',
      'x-trace': 't',
    };
    // same origin first, then cross
    const cross = other.url('/landing');
    const res = await s.request(srv.url(`/r/302?to=${enc(`/r/307?to=${enc(cross)}`)}`), { headers, redirectStripHeaders: ['x-request-only'] });
    expect(res.url).toBe(cross);
    const sameHop = srv.requests[1]!;
    expect(sameHop.headers.authorization).toBe('Bearer secret');
    expect(sameHop.headers.cookie).toBe('sid=1');
    expect(sameHop.headers['x-api-key']).toBe('k');
    expect(other.requests).toHaveLength(1);
    const seen = other.requests[0]!.headers;
    expect(seen.authorization).toBeUndefined();
    expect(seen.cookie).toBeUndefined();
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen['x-api-key']).toBeUndefined();
    expect(seen['x-trace']).toBe('t');
    expect(seen.host).toBe(`127.0.0.1:${other.port}`);
    // A request's list adds to the session's.
    await s.request(srv.url(`/r/302?to=${enc(cross)}`), { headers: { 'x-request-only': '1', 'x-api-key': 'k' }, redirectStripHeaders: ['x-request-only'] });
    expect(other.requests[1]!.headers['x-request-only']).toBeUndefined();
    expect(other.requests[1]!.headers['x-api-key']).toBeUndefined();
  });

  it('credentials in the URL travel on same-origin hops only', async () => {
    const other = await redirector();
    const srv = await redirector();
    const s = session();
    const base = `http://user:pa%20ss@127.0.0.1:${srv.port}`;
    const res = await s.request(`${base}/r/302?to=${enc(`${srv.url('/r/301')}?to=${enc(other.url('/x'))}`)}`);
    expect(res.status).toBe(200);
    const basic = `Basic ${Buffer.from('user:pa ss').toString('base64')}`;
    expect(srv.requests[0]!.headers.authorization).toBe(basic);
    expect(srv.requests[1]!.headers.authorization).toBe(basic); // absolute Location, same origin
    expect(other.requests[0]!.headers.authorization).toBeUndefined();
    for (const h of res.redirects) {
      expect(h.url).not.toContain('user');
      expect(h.location).not.toContain('user');
    }
  });

  it('once stripped, headers stay stripped when a later hop returns to the first origin', async () => {
    const srv = await redirector();
    const other = await redirector();
    const back = srv.url('/back');
    await session().request(srv.url(`/r/302?to=${enc(other.url(`/r/302?to=${enc(back)}`))}`), { headers: { authorization: 'Bearer x' } });
    expect(srv.requests[1]!.url).toBe('/back');
    expect(srv.requests[1]!.headers.authorization).toBeUndefined();
  });
});

describe('https → http', () => {
  let fx: TlsFixtures;
  beforeAll(async () => {
    fx = await tlsFixtures();
  });

  async function tlsRedirectTo(location: string) {
    const t = await startCapturingTlsServer({
      key: fx.server.key,
      cert: fx.server.cert,
      handler: (req: http.IncomingMessage, res: http.ServerResponse) => {
        if (req.url === '/go') {
          res.writeHead(302, { location });
          res.end();
        } else {
          res.end(`tls ${req.url}`);
        }
      },
    });
    cleanup.add(() => t.close());
    return t;
  }

  it('is refused with ERR_REDIRECT unless allowDowngrade', async () => {
    const plain = await redirector();
    const t = await tlsRedirectTo(plain.url('/insecure'));
    const s = session({ tls: { ca: fx.caPem } });
    const err = await rejection(s.request(`https://127.0.0.1:${t.port}/go`, { headers: { authorization: 'Bearer s' } }));
    expect(err.code).toBe('ERR_REDIRECT');
    expect(err.reason).toBe('downgrade');
    expect(plain.requests).toHaveLength(0);
    const ok = await s.request(`https://127.0.0.1:${t.port}/go`, { allowDowngrade: true, headers: { authorization: 'Bearer s' } });
    expect(ok.body.toString()).toBe('GET /insecure ');
    expect(plain.requests[0]!.headers.authorization).toBeUndefined(); // scheme change = cross-origin
  });

  it('http → https and https → https are followed', async () => {
    const t = await tlsRedirectTo('/final');
    const plain = await redirector();
    const s = session({ tls: { ca: fx.caPem } });
    const res = await s.request(plain.url(`/r/301?to=${enc(`https://127.0.0.1:${t.port}/go`)}`));
    expect(res.url).toBe(`https://127.0.0.1:${t.port}/final`);
    expect(res.body.toString()).toBe('tls /final');
    expect(res.redirects.map((h) => h.status)).toEqual([301, 302]);
  });
});

describe('stream()', () => {
  it('drains a small intermediate body so the connection is reused', async () => {
    const srv = await redirector();
    const s = session();
    const res = await s.stream(srv.url('/r/302?to=/s'));
    expect(res.redirects).toHaveLength(1);
    expect(await res.text()).toBe('GET /s ');
    expect(srv.connections).toBe(1);
    expect(s.stats().requests.inFlight).toBe(0);
  });

  it('destroys a large intermediate body (its socket is closed, not leaked) and follows', async () => {
    const big = Buffer.alloc(1024 * 1024, 97);
    const srv = await startHttpServer((req, res) => {
      if (req.url === '/big') {
        res.writeHead(302, { location: '/after', 'content-length': big.length });
        res.end(big);
      } else {
        res.end('after');
      }
    });
    const s = session();
    const res: StreamResponse = await s.stream(srv.url('/big'));
    expect(await res.text()).toBe('after');
    await waitFor(() => srv.isSocketClosed(1), 5_000, 'the 3xx socket to close');
    expect(srv.connections).toBe(2);
    await waitFor(() => s.stats().requests.inFlight === 0, 2_000, 'no request in flight');
  });

  it('destroys an intermediate body that never ends (after at most 1 s) and follows', async () => {
    const srv = await startHttpServer((req, res) => {
      if (req.url === '/hang') {
        res.writeHead(302, { location: '/after' });
        res.write('never ends'); // chunked, no terminating chunk
      } else {
        res.end('after');
      }
    });
    const s = session();
    const t0 = Date.now();
    const res = await s.stream(srv.url('/hang'));
    expect(await res.text()).toBe('after');
    expect(Date.now() - t0).toBeLessThan(2_500);
    await waitFor(() => srv.isSocketClosed(1), 5_000, 'the 3xx socket to close');
  });
});

describe('abort and total timeout across hops', () => {
  it('the signal aborts a later hop', async () => {
    const srv = await startHttpServer(async (req, res) => {
      if (req.url === '/first') {
        res.writeHead(302, { location: '/slow' });
        res.end();
      } else {
        await sleep(2_000);
        res.end('late');
      }
    });
    const ac = new AbortController();
    const p = session().request(srv.url('/first'), { signal: ac.signal });
    await waitFor(() => srv.requests.length === 2, 5_000, 'the second hop');
    ac.abort();
    const err = await rejection(p, 1_000);
    expect(err.code).toBe('ERR_ABORTED');
  });

  it('timeout.total bounds the whole chain', async () => {
    const srv = await startHttpServer(async (req, res) => {
      await sleep(120);
      res.writeHead(302, { location: `/n${req.url}` });
      res.end();
    });
    const t0 = Date.now();
    const err = await rejection(session({ timeout: { total: 400 } }).request(srv.url('/a')));
    expect(err.code).toBe('ERR_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(1_500);
    const err2 = await rejection(session().request(srv.url('/a'), { timeout: { total: 400 } }));
    expect(err2.code).toBe('ERR_TIMEOUT');
  });
});

describe('options', () => {
  it('are validated per session and per request', () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ redirect: 'always' }, 'redirect'],
      [{ maxRedirects: -1 }, 'maxRedirects'],
      [{ maxRedirects: 1.5 }, 'maxRedirects'],
      [{ redirectStripHeaders: 'x-a' }, 'redirectStripHeaders'],
      [{ redirectStripHeaders: ['bad header'] }, 'redirectStripHeaders'],
      [{ allowDowngrade: 'yes' }, 'allowDowngrade'],
    ];
    const s = session();
    for (const [o, name] of bad) {
      const e1 = thrown(() => new Session(o as never));
      expect(e1.code).toBe('ERR_INVALID_OPTION');
      expect(e1.reason).toBe(name);
      const e2 = thrown(() => s.request('http://127.0.0.1:1/', o as never));
      expect(e2.code).toBe('ERR_INVALID_OPTION');
      expect(e2.reason).toBe(name);
    }
  });

  it('fetchMany items take the same options', async () => {
    const srv = await redirector();
    const s = session();
    const out: number[] = [];
    for await (const r of s.fetchMany(
      [{ url: srv.url('/r/302?to=/a'), redirect: 'manual' }, { url: srv.url('/r/302?to=/a') }, { url: srv.url('/r/302?to=/a'), redirect: 'error' }],
      { concurrency: 3, ordered: true },
    )) {
      if (r.response !== undefined) out.push(r.response.status);
      else out.push((r.error as UvfetchError).code === 'ERR_REDIRECT' ? -1 : 0);
    }
    expect(out).toEqual([302, 200, -1]);
  });
});
