// Basic request/response behaviour of Session against loopback node:http and raw node:net servers:
// methods, headers in both directions, status text, bodies of bodiless responses, default
// headers (User-Agent, Host, Authorization from userinfo), IPv6 and name resolution.

import { afterEach, describe, expect, it } from 'vitest';
import * as os from 'node:os';
import { UvfetchError, Response } from '../../lib/index.js';
import { Cleanup, rejection, startHttpServer, startNetServer, within, sessionFactory } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const session = sessionFactory(cleanup);

/** Raw server that records each request head and answers each with `reply(head, n)`. */
async function rawServer(reply: (head: string, n: number) => string) {
  const heads: string[] = [];
  const srv = await startNetServer((sock) => {
    let buf = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\r\n\r\n')) !== -1) {
        const head = buf.slice(0, i + 4);
        const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
        const len = cl ? Number(cl[1]) : 0;
        if (buf.length < i + 4 + len) break;
        buf = buf.slice(i + 4 + len);
        heads.push(head);
        sock.write(reply(head, heads.length), 'latin1');
      }
    });
  });
  return { srv, heads };
}

describe('methods', () => {
  it('GET returns status, statusText, ok, url, headers and body', async () => {
    const srv = await startHttpServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.setHeader('x-echo-method', req.method!);
      res.end('hello world');
    });
    const s = session();
    const res = await s.request(srv.url('/greet'));
    expect(res).toBeInstanceOf(Response);
    expect(res.status).toBe(200);
    expect(res.statusText).toBe('OK');
    expect(res.ok).toBe(true);
    expect(res.url).toBe(srv.url('/greet'));
    expect(res.headers.get('Content-Type')).toBe('text/plain');
    expect(res.headers.get('x-echo-method')).toBe('GET');
    expect(Buffer.isBuffer(res.body)).toBe(true);
    expect(res.body.toString()).toBe('hello world');
    expect(await res.text()).toBe('hello world');
    expect(res.info).toEqual({ httpVersion: '1.1', httpVersionMinor: 1, reused: false, attempts: 1 });
    expect(srv.requests).toHaveLength(1);
    expect(srv.requests[0]!.method).toBe('GET');
    expect(srv.requests[0]!.url).toBe('/greet');
    // A GET without a body carries no framing headers.
    expect(srv.requests[0]!.headers['content-length']).toBeUndefined();
    expect(srv.requests[0]!.headers['transfer-encoding']).toBeUndefined();
  });

  it('HEAD gets the headers and no body, and the socket stays reusable', async () => {
    const srv = await startHttpServer((req, res) => {
      res.setHeader('content-length', '1234');
      res.setHeader('x-m', req.method!);
      if (req.method === 'HEAD') res.end();
      else res.end('x'.repeat(1234));
    });
    const s = session();
    const head = await s.request(srv.url('/h'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('1234');
    expect(head.headers.get('x-m')).toBe('HEAD');
    expect(head.body.length).toBe(0);
    const get = await s.request(srv.url('/h'));
    expect(get.body.length).toBe(1234);
    expect(get.info.reused).toBe(true);
    expect(srv.connections).toBe(1);
  });

  it('POST, PUT, PATCH, DELETE send the right method, framing and body', async () => {
    const srv = await startHttpServer(
      (req, res) => {
        res.end(`${req.method} ${req.url}`);
      },
      { collectBody: true },
    );
    const s = session();
    const post = await s.request(srv.url('/p'), { method: 'POST', body: 'a=1&b=2', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(await post.text()).toBe('POST /p');
    const put = await s.request(srv.url('/u'), { method: 'PUT', body: Buffer.from('put-body') });
    expect(await put.text()).toBe('PUT /u');
    const del = await s.request(srv.url('/d'), { method: 'DELETE' });
    expect(await del.text()).toBe('DELETE /d');
    const patch = await s.request(srv.url('/pa'), { method: 'PATCH', body: '{"x":1}' });
    expect(await patch.text()).toBe('PATCH /pa');

    const [p, u, d, pa] = srv.requests;
    expect(p!.method).toBe('POST');
    expect(p!.headers['content-length']).toBe('7');
    expect(p!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(p!.body!.toString()).toBe('a=1&b=2');
    expect(u!.method).toBe('PUT');
    expect(u!.headers['content-length']).toBe('8');
    expect(u!.body!.toString()).toBe('put-body');
    expect(d!.method).toBe('DELETE');
    expect(d!.headers['content-length']).toBeUndefined();
    expect(d!.headers['transfer-encoding']).toBeUndefined();
    expect(d!.body!.length).toBe(0);
    expect(pa!.method).toBe('PATCH');
    expect(pa!.body!.toString()).toBe('{"x":1}');
    // All on one kept-alive socket.
    expect(srv.connections).toBe(1);
  });

  it('POST, PUT and PATCH without a body send content-length: 0', async () => {
    const srv = await startHttpServer((_req, res) => res.end('ok'), { collectBody: true });
    const s = session();
    for (const method of ['POST', 'PUT', 'PATCH']) {
      const res = await s.request(srv.url('/'), { method });
      expect(res.status).toBe(200);
    }
    expect(srv.requests.map((r) => [r.method, r.headers['content-length'], r.headers['transfer-encoding']])).toEqual([
      ['POST', '0', undefined],
      ['PUT', '0', undefined],
      ['PATCH', '0', undefined],
    ]);
  });

  it('standard methods are upper-cased; custom methods are sent exactly as given', async () => {
    const { srv, heads } = await rawServer(() => 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    const s = session();
    await s.request(srv.url('/a'), { method: 'get' });
    await s.request(srv.url('/b'), { method: 'post', body: 'x' });
    await s.request(srv.url('/c'), { method: 'PURGE' });
    await s.request(srv.url('/d'), { method: 'frob' });
    await s.request(srv.url('/e'), { method: 'M-SEARCH' });
    expect(heads.map((h) => h.slice(0, h.indexOf('\r\n')))).toEqual([
      'GET /a HTTP/1.1',
      'POST /b HTTP/1.1',
      'PURGE /c HTTP/1.1',
      'frob /d HTTP/1.1',
      'M-SEARCH /e HTTP/1.1',
    ]);
  });

  it('OPTIONS with an asterisk-free path and a long path/query are sent verbatim', async () => {
    const { srv, heads } = await rawServer(() => 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    const s = session();
    const q = `k=${'v'.repeat(3000)}`;
    await s.request(srv.url(`/deep/path/?${q}`), { method: 'OPTIONS' });
    expect(heads[0]!.startsWith(`OPTIONS /deep/path/?${q} HTTP/1.1\r\n`)).toBe(true);
  });
});

describe('headers', () => {
  it('sends multi-value, numeric and iterable request headers', async () => {
    const srv = await startHttpServer((_req, res) => res.end());
    const s = session();
    await s.request(srv.url('/'), {
      headers: { 'X-Multi': ['one', 'two'], 'x-num': 42, 'x-empty': '', 'X-Skip': undefined as unknown as string },
    });
    await s.request(srv.url('/'), {
      headers: new Map([
        ['x-a', '1'],
        ['X-B', 'two words'],
      ]),
    });
    await s.request(srv.url('/'), {
      headers: [
        ['x-dup', 'first'],
        ['x-dup', 'second'],
      ],
    });
    const raw0 = srv.requests[0]!.rawHeaders;
    const pairs0: Array<[string, string]> = [];
    for (let i = 0; i < raw0.length; i += 2) pairs0.push([raw0[i]!, raw0[i + 1]!]);
    expect(pairs0.filter(([n]) => n.toLowerCase() === 'x-multi')).toEqual([
      ['X-Multi', 'one'],
      ['X-Multi', 'two'],
    ]);
    expect(srv.requests[0]!.headers['x-num']).toBe('42');
    expect(srv.requests[0]!.headers['x-empty']).toBe('');
    expect(srv.requests[0]!.headers['x-skip']).toBeUndefined();
    expect(srv.requests[1]!.headers['x-a']).toBe('1');
    expect(srv.requests[1]!.headers['x-b']).toBe('two words');
    expect(srv.requests[1]!.rawHeaders).toContain('X-B');
    expect(srv.requests[2]!.headers['x-dup']).toBe('first, second');
  });

  it('exposes repeated response headers: get() joins, raw(), rawPairs(), getSetCookie()', async () => {
    const { srv } = await rawServer(
      () =>
        'HTTP/1.1 200 OK\r\n' +
        'X-Multi: a\r\n' +
        'Set-Cookie: a=1; Path=/\r\n' +
        'x-multi: b\r\n' +
        'Set-Cookie: b=2, with comma; HttpOnly\r\n' +
        'X-Spaced:   padded value \t\r\n' +
        'Content-Length: 0\r\n' +
        '\r\n',
    );
    const s = session();
    const res = await s.request(srv.url('/'));
    expect(res.headers.get('x-multi')).toBe('a, b');
    expect(res.headers.get('X-MULTI')).toBe('a, b');
    expect(res.headers.get('x-spaced')).toBe('padded value');
    expect(res.headers.get('missing')).toBeNull();
    expect(res.headers.has('set-cookie')).toBe(true);
    expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2, with comma; HttpOnly']);
    const raw = res.headers.raw();
    expect(raw['x-multi']).toEqual(['a', 'b']);
    expect(raw['set-cookie']).toEqual(['a=1; Path=/', 'b=2, with comma; HttpOnly']);
    expect(raw['content-length']).toEqual(['0']);
    expect(res.headers.rawPairs()).toEqual([
      'X-Multi',
      'a',
      'Set-Cookie',
      'a=1; Path=/',
      'x-multi',
      'b',
      'Set-Cookie',
      'b=2, with comma; HttpOnly',
      'X-Spaced',
      'padded value',
      'Content-Length',
      '0',
    ]);
  });

  it('node:http set-cookie arrays arrive as separate values', async () => {
    const srv = await startHttpServer((_req, res) => {
      res.setHeader('set-cookie', ['s1=v1', 's2=v2', 's3=v3']);
      res.end();
    });
    const s = session();
    const res = await s.request(srv.url('/'));
    expect(res.headers.getSetCookie()).toEqual(['s1=v1', 's2=v2', 's3=v3']);
  });

  it('status text: standard, custom, empty', async () => {
    const { srv } = await rawServer((head) => {
      const path = head.split(' ')[1];
      if (path === '/404') return 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n';
      if (path === '/custom') return 'HTTP/1.1 299 Totally Custom Reason\r\ncontent-length: 0\r\n\r\n';
      if (path === '/empty') return 'HTTP/1.1 503 \r\ncontent-length: 0\r\n\r\n';
      return "HTTP/1.1 418 I'm a teapot\r\ncontent-length: 0\r\n\r\n";
    });
    const s = session();
    const r404 = await s.request(srv.url('/404'));
    expect([r404.status, r404.statusText, r404.ok]).toEqual([404, 'Not Found', false]);
    const rc = await s.request(srv.url('/custom'));
    expect([rc.status, rc.statusText, rc.ok]).toEqual([299, 'Totally Custom Reason', true]);
    const re = await s.request(srv.url('/empty'));
    expect([re.status, re.statusText, re.ok]).toEqual([503, '', false]);
    const rt = await s.request(srv.url('/tea'));
    expect([rt.status, rt.statusText]).toEqual([418, "I'm a teapot"]);
  });

  it('json() parses the body', async () => {
    const payload = { a: 1, b: [true, null, 'ü'], nested: { x: 'y' } };
    const srv = await startHttpServer((_req, res) => {
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.end(JSON.stringify(payload));
    });
    const s = session();
    const res = await s.request(srv.url('/j'));
    expect(await res.json()).toEqual(payload);
  });

  it('json() on invalid JSON rejects with a SyntaxError', async () => {
    const srv = await startHttpServer((_req, res) => res.end('{not json'));
    const s = session();
    const res = await s.request(srv.url('/'));
    await expect(res.json()).rejects.toBeInstanceOf(SyntaxError);
  });
});

describe('URLs', () => {
  it('sends the path and query exactly, for string and URL inputs', async () => {
    const srv = await startHttpServer((req, res) => res.end(req.url));
    const s = session();
    const a = await s.request(srv.url('/search?q=a%20b&x=1&x=2&empty=#fragment'));
    expect(await a.text()).toBe('/search?q=a%20b&x=1&x=2&empty=');
    const u = new URL(srv.url('/p/ä ö'));
    u.searchParams.set('k', 'v w&z');
    const b = await s.request(u);
    expect(await b.text()).toBe('/p/%C3%A4%20%C3%B6?k=v+w%26z');
    const c = await s.request(srv.url(''));
    expect(await c.text()).toBe('/');
  });

  it('sends Host as host:port, and a user-supplied Host replaces it', async () => {
    const srv = await startHttpServer((req, res) => res.end(req.headers.host));
    const s = session();
    const a = await s.request(srv.url('/'));
    expect(await a.text()).toBe(`127.0.0.1:${srv.port}`);
    const b = await s.request(srv.url('/'), { headers: { Host: 'virtual.example' } });
    expect(await b.text()).toBe('virtual.example');
    expect(srv.requests[1]!.rawHeaders.filter((h) => h.toLowerCase() === 'host')).toHaveLength(1);
  });

  it('resolves localhost', async () => {
    const srv = await startHttpServer((req, res) => res.end(req.headers.host));
    const s = session();
    const res = await s.request(`http://localhost:${srv.port}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(`localhost:${srv.port}`);
  });

  it('connects to IPv6 [::1] and sends a bracketed Host', async (ctx) => {
    const has6 = Object.values(os.networkInterfaces()).some((l) => l?.some((a) => a.address === '::1'));
    let srv;
    try {
      if (!has6) throw new Error('no ::1 interface');
      srv = await startHttpServer((req, res) => res.end(req.headers.host), { host: '::1' });
    } catch (e) {
      console.log(`skipping IPv6 test: ::1 is not available (${(e as Error).message})`);
      ctx.skip();
      return;
    }
    const s = session();
    const res = await s.request(`http://[::1]:${srv.port}/v6`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(`[::1]:${srv.port}`);
    expect(res.url).toBe(`http://[::1]:${srv.port}/v6`);
  });

  it('sends Basic authorization from URL userinfo (percent-decoded, UTF-8)', async () => {
    const srv = await startHttpServer((req, res) => res.end(req.headers.authorization ?? 'none'));
    const s = session();
    const a = await s.request(`http://alice:p%40ss%3Aw%C3%B6rd@127.0.0.1:${srv.port}/`);
    expect(await a.text()).toBe(`Basic ${Buffer.from('alice:p@ss:wörd', 'utf8').toString('base64')}`);
    const b = await s.request(`http://bob@127.0.0.1:${srv.port}/`);
    expect(await b.text()).toBe(`Basic ${Buffer.from('bob:').toString('base64')}`);
    // An explicit Authorization header wins over userinfo.
    const c = await s.request(`http://alice:secret@127.0.0.1:${srv.port}/`, { headers: { authorization: 'Bearer tok' } });
    expect(await c.text()).toBe('Bearer tok');
    const d = await s.request(srv.url('/'));
    expect(await d.text()).toBe('none');
    // Credentials never leak into res.url or error URLs (they end up in logs).
    expect(a.url).toBe(`http://127.0.0.1:${srv.port}/`);
    let err: unknown;
    try {
      void s.request(`http://alice:secret@127.0.0.1:${srv.port}/`, { headers: { 'x-bad': 'a\r\nb' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UvfetchError);
    expect((err as UvfetchError).url ?? '').not.toContain('secret');
    expect((err as UvfetchError).message).not.toContain('secret');
    // Userinfo never leaks into the request target or Host.
    for (const r of srv.requests) {
      expect(r.url).toBe('/');
      expect(r.headers.host).toBe(`127.0.0.1:${srv.port}`);
    }
  });
});

describe('bodiless responses', () => {
  it('204 and 304 complete with an empty body even if they claim a length, and the socket is reused', async () => {
    // The server lies: a Content-Length on 204/304 must not make the client wait for a body.
    const { srv } = await rawServer((head) => {
      const path = head.split(' ')[1];
      if (path === '/204') return 'HTTP/1.1 204 No Content\r\nX-K: 1\r\n\r\n';
      if (path === '/304') return 'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 10\r\n\r\n';
      return 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter';
    });
    const s = session();
    const r204 = await within(s.request(srv.url('/204')), 5000, '204');
    expect(r204.status).toBe(204);
    expect(r204.body.length).toBe(0);
    expect(r204.headers.get('x-k')).toBe('1');
    const r304 = await within(s.request(srv.url('/304')), 5000, '304');
    expect(r304.status).toBe(304);
    expect(r304.body.length).toBe(0);
    expect(r304.headers.get('etag')).toBe('"e"');
    const next = await within(s.request(srv.url('/next')), 5000, 'next');
    expect(await next.text()).toBe('after');
    expect(next.info.reused).toBe(true);
    expect(srv.connections).toBe(1);
  });

  it('HEAD with Content-Length and with chunked framing reads no body', async () => {
    const { srv } = await rawServer((head) => {
      const path = head.split(' ')[1];
      if (path === '/len') return 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n';
      if (path === '/chunked') return 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
      return 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend';
    });
    const s = session();
    const a = await within(s.request(srv.url('/len'), { method: 'HEAD' }), 5000, 'HEAD len');
    expect([a.status, a.body.length, a.headers.get('content-length')]).toEqual([200, 0, '100']);
    const b = await within(s.request(srv.url('/chunked'), { method: 'HEAD' }), 5000, 'HEAD chunked');
    expect([b.status, b.body.length]).toEqual([200, 0]);
    const c = await within(s.request(srv.url('/x')), 5000, 'GET');
    expect(await c.text()).toBe('end');
    expect(srv.connections).toBe(1);
  });

  it('node:http 204 and 304 responses', async () => {
    const srv = await startHttpServer((req, res) => {
      res.statusCode = req.url === '/204' ? 204 : 304;
      res.end();
    });
    const s = session();
    const a = await s.request(srv.url('/204'));
    const b = await s.request(srv.url('/304'));
    expect([a.status, a.body.length, b.status, b.body.length]).toEqual([204, 0, 304, 0]);
  });

  it("HTTP/1.0 responses report httpVersion '1.0' (and httpVersionMinor 0)", async () => {
    const { srv } = await rawServer(() => 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nv0');
    const s = session();
    const res = await s.request(srv.url('/'));
    expect(res.info.httpVersion).toBe('1.0');
    expect(res.info.httpVersionMinor).toBe(0);
    expect(await res.text()).toBe('v0');
    const streamed = await s.stream(srv.url('/'));
    expect(streamed.info.httpVersion).toBe('1.0');
    expect((await streamed.buffer()).toString()).toBe('v0');
  });
});

describe('user-agent', () => {
  it('sends uvfetch/0.1.0 by default', async () => {
    const srv = await startHttpServer((req, res) => res.end(req.headers['user-agent'] ?? '<none>'));
    const s = session();
    expect(await (await s.request(srv.url('/'))).text()).toBe('uvfetch/0.1.0');
  });

  it('session userAgent overrides, a request header overrides both, and exactly one is sent', async () => {
    const srv = await startHttpServer((req, res) => res.end(req.headers['user-agent'] ?? '<none>'));
    const s = session({ userAgent: 'my-agent/2.0 (test)' });
    expect(await (await s.request(srv.url('/'))).text()).toBe('my-agent/2.0 (test)');
    expect(await (await s.request(srv.url('/'), { headers: { 'User-Agent': 'per-request' } })).text()).toBe('per-request');
    for (const r of srv.requests) expect(r.rawHeaders.filter((h) => h.toLowerCase() === 'user-agent')).toHaveLength(1);
  });

  it("userAgent '' sends no User-Agent at all", async () => {
    const srv = await startHttpServer((req, res) => res.end(req.headers['user-agent'] ?? '<none>'));
    const s = session({ userAgent: '' });
    expect(await (await s.request(srv.url('/'))).text()).toBe('<none>');
    expect(srv.requests[0]!.rawHeaders.map((h) => h.toLowerCase())).not.toContain('user-agent');
  });
});

describe('closed session', () => {
  it('request() after close() returns a promise rejecting with ERR_SESSION_CLOSED and sends nothing', async () => {
    const srv = await startHttpServer((_req, res) => res.end());
    const s = session();
    await s.close();
    expect(s.closed).toBe(true);
    let p: Promise<unknown> | undefined;
    expect(() => {
      p = s.request(srv.url('/'));
    }).not.toThrow();
    const err = await rejection(p!);
    expect(err).toBeInstanceOf(UvfetchError);
    expect(err.code).toBe('ERR_SESSION_CLOSED');
    const err2 = await rejection(s.stream(srv.url('/')));
    expect(err2.code).toBe('ERR_SESSION_CLOSED');
    expect(srv.connections).toBe(0);
  });

  it('close() is idempotent and waits for an in-flight request to finish', async () => {
    const srv = await startHttpServer((_req, res) => {
      setTimeout(() => res.end('late'), 150);
    });
    const s = session();
    const p = s.request(srv.url('/'));
    await new Promise((r) => setTimeout(r, 30));
    const c1 = s.close();
    const c2 = s.close();
    expect(c1).toBe(c2);
    const res = await within(p, 5000, 'in-flight request');
    expect(await res.text()).toBe('late');
    await within(c1, 5000, 'close');
    expect(s.stats().connections.open).toBe(0);
  });

  it('destroy() rejects in-flight requests with ERR_SESSION_CLOSED', async () => {
    const srv = await startHttpServer(() => {
      /* never answers */
    });
    const s = session();
    const p = s.request(srv.url('/'));
    const errP = rejection(p);
    await new Promise((r) => setTimeout(r, 50));
    await within(s.destroy(), 5000, 'destroy');
    const err = await errP;
    expect(err.code).toBe('ERR_SESSION_CLOSED');
    await srv.socketClosed(1);
  });
});
