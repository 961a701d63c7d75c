// fetch() semantics through uvfetch: a real global Response (status, headers, every body reader,
// clone), each request body kind checked by a server that parses it (multipart with the
// platform's own parser), redirects in all three modes (303 → GET, 307 keeps the body, header
// stripping on a cross-origin hop to a second listener), abort before and during the body,
// streaming both ways with backpressure (bounded by what the server could write / the client
// produced while the other side stalled), errors and their causes, Request inputs and cloning.

import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { fetch as moduleFetch, UvfetchError, type UvfetchResponse } from '../../lib/index.js';
import { tlsFixtures } from '../helpers/tls-fixtures.js';
import { Cleanup, closedPort, readBody, rejection, sessionFactory, sleep, startHttpServer, waitFor, type HttpTestServer } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const session = sessionFactory(cleanup);

/** Echoes method, url, headers and body (as text and as multipart/urlencoded fields when it is one). */
async function echoServer(): Promise<HttpTestServer> {
  return startHttpServer(async (req, res) => {
    const body = await readBody(req);
    const ct = req.headers['content-type'] ?? '';
    let fields: unknown = null;
    if (ct.startsWith('multipart/form-data') || ct.startsWith('application/x-www-form-urlencoded')) {
      // The platform's form parser (undici's) reads what uvfetch encoded.
      const form = await new Response(new Uint8Array(body), { headers: { 'content-type': ct } }).formData();
      const out: unknown[] = [];
      for (const [name, value] of form) {
        out.push(typeof value === 'string' ? [name, value] : [name, { filename: value.name, type: value.type, text: await value.text() }]);
      }
      fields = out;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString('latin1'), length: body.length, fields }));
  });
}

describe('Response', () => {
  it('is a real global Response with global Headers, url, type, redirected and every reader', async () => {
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(201, 'Made It', { 'content-type': 'application/json', 'x-a': '1', 'set-cookie': ['a=1', 'b=2'] });
      res.end('{"x":1}');
    });
    const s = session();
    const res = await s.fetch(srv.url('/p?q=1#frag'));
    expect(res).toBeInstanceOf(Response);
    expect(res.headers).toBeInstanceOf(Headers);
    expect(res.status).toBe(201);
    expect(res.statusText).toBe('Made It');
    expect(res.ok).toBe(true);
    expect(res.url).toBe(srv.url('/p?q=1')); // no fragment, as fetch
    expect(res.type).toBe('basic');
    expect(res.redirected).toBe(false);
    expect(res.headers.get('x-a')).toBe('1');
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(res.body).toBeInstanceOf(ReadableStream);
    expect(res.bodyUsed).toBe(false);
    const c = res.clone();
    expect(c).toBeInstanceOf(Response);
    expect(c.url).toBe(res.url);
    expect(await res.json()).toEqual({ x: 1 });
    expect(res.bodyUsed).toBe(true);
    expect(await (await c.blob()).text()).toBe('{"x":1}');
    expect((res as UvfetchResponse).uvfetch.info.httpVersionMinor).toBe(1);
  });

  it('text(), arrayBuffer(), blob() and formData() read the native stream', async () => {
    const srv = await startHttpServer((req, res) => {
      if (req.url === '/form') {
        res.setHeader('content-type', 'application/x-www-form-urlencoded');
        res.end('a=1&b=two');
        return;
      }
      res.end('héllo');
    });
    const s = session();
    expect(await (await s.fetch(srv.url('/'))).text()).toBe('héllo');
    expect(Buffer.from(await (await s.fetch(srv.url('/'))).arrayBuffer()).toString()).toBe('héllo');
    expect((await (await s.fetch(srv.url('/'))).blob()).size).toBe(6);
    const fd = await (await s.fetch(srv.url('/form'))).formData();
    expect([...fd]).toEqual([
      ['a', '1'],
      ['b', 'two'],
    ]);
  });

  it('null-body statuses and HEAD have res.body === null; 4xx/5xx resolve', async () => {
    const srv = await startHttpServer((req, res) => {
      const code = Number(req.url!.slice(1)) || 200;
      res.writeHead(code);
      res.end(code === 204 || code === 304 ? undefined : 'body');
    });
    const s = session();
    expect((await s.fetch(srv.url('/204'))).body).toBeNull();
    expect((await s.fetch(srv.url('/304'))).body).toBeNull();
    const head = await s.fetch(srv.url('/200'), { method: 'HEAD' });
    expect(head.body).toBeNull();
    expect(head.status).toBe(200);
    const nf = await s.fetch(srv.url('/404'));
    expect([nf.status, nf.ok, await nf.text()]).toEqual([404, false, 'body']);
    const err = await s.fetch(srv.url('/503'));
    expect(err.status).toBe(503);
    await err.body?.cancel();
  });

  it('decodes gzip natively and leaves the headers as sent (as Node fetch)', async () => {
    const srv = await startHttpServer((_req, res) => {
      const gz = zlib.gzipSync('compressed text '.repeat(100));
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': gz.length });
      res.end(gz);
    });
    const res = await session().fetch(srv.url('/'));
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(await res.text()).toBe('compressed text '.repeat(100));
  });

  it('supports BYOB readers on res.body (a byte stream, as Node fetch)', async () => {
    const srv = await startHttpServer((_req, res) => res.end(Buffer.alloc(100_000, 7)));
    const res = await session().fetch(srv.url('/'));
    const reader = res.body!.getReader({ mode: 'byob' });
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read(new Uint8Array(10_000));
      if (done) break;
      expect(value.every((b) => b === 7)).toBe(true);
      n += value.byteLength;
    }
    expect(n).toBe(100_000);
  });

  it('module-level fetch() uses a module-wide session', async () => {
    const srv = await echoServer();
    const res = await moduleFetch(srv.url('/m'));
    expect((await res.json()).url).toBe('/m');
  });
});

describe('request bodies (each checked by a server that parses it)', () => {
  const cases: Array<[string, () => unknown, { type: string | null; body: string }]> = [
    ['string', () => 'héllo', { type: 'text/plain;charset=UTF-8', body: Buffer.from('héllo').toString('latin1') }],
    ['URLSearchParams', () => new URLSearchParams({ a: '1 2', b: 'é' }), { type: 'application/x-www-form-urlencoded;charset=UTF-8', body: 'a=1+2&b=%C3%A9' }],
    ['ArrayBuffer', () => new Uint8Array([104, 105]).buffer, { type: null, body: 'hi' }],
    ['Uint8Array (a view into a larger buffer)', () => new Uint8Array(Buffer.from('xxhiyy')).subarray(2, 4), { type: null, body: 'hi' }],
    ['DataView', () => new DataView(new Uint8Array([104, 105]).buffer), { type: null, body: 'hi' }],
    ['Buffer', () => Buffer.from('buf'), { type: null, body: 'buf' }],
    ['Blob with a type', () => new Blob(['blob!'], { type: 'text/x-blob' }), { type: 'text/x-blob', body: 'blob!' }],
    ['File', () => new File(['file!'], 'f.txt'), { type: null, body: 'file!' }],
  ];
  for (const [name, make, want] of cases) {
    it(`${name}: body, content-type and content-length`, async () => {
      const srv = await echoServer();
      const seen = await (await session().fetch(srv.url('/'), { method: 'POST', body: make() as BodyInit })).json();
      expect(seen.body).toBe(want.body);
      expect(seen.headers['content-type']).toBe(want.type ?? undefined);
      expect(seen.headers['content-length']).toBe(String(seen.length));
      expect(seen.headers['transfer-encoding']).toBeUndefined();
    });
  }

  it('a large Blob is streamed with its content-length', async () => {
    const srv = await echoServer();
    const big = new Blob([Buffer.alloc(1_000_000, 120)], { type: 'application/x-big' });
    const seen = await (await session().fetch(srv.url('/'), { method: 'PUT', body: big })).json();
    expect(seen.length).toBe(1_000_000);
    expect(seen.headers['content-length']).toBe('1000000');
    expect(seen.headers['content-type']).toBe('application/x-big');
  });

  it('FormData: multipart with a correct boundary, text fields and streamed files, parsed back', async () => {
    const srv = await echoServer();
    const fd = new FormData();
    fd.append('plain', 'value');
    fd.append('multi\nline"name', 'a\nb\r\nc');
    fd.append('file', new File([Buffer.alloc(200_000, 65)], 'big "one".bin', { type: 'application/octet-stream' }));
    fd.append('blob', new Blob(['tiny']));
    const seen = await (await session().fetch(srv.url('/'), { method: 'POST', body: fd })).json();
    expect(seen.headers['content-type']).toMatch(/^multipart\/form-data; boundary=-{4}uvfetch-formdata-[0-9a-f]{24}$/);
    expect(seen.headers['content-length']).toBe(String(seen.length));
    // Names: newlines normalized to CRLF, then CR, LF and '"' percent-escaped; values: newlines as CRLF.
    expect(seen.body).toContain('name="multi%0D%0Aline%22name"\r\n\r\na\r\nb\r\nc\r\n');
    expect(seen.body).toContain('name="file"; filename="big %22one%22.bin"\r\nContent-Type: application/octet-stream\r\n\r\n');
    const summary = (seen.fields as Array<[string, unknown]>).map(([n, v]) =>
      typeof v === 'string' ? [n, v] : [n, { ...(v as object), text: (v as { text: string }).text.length }],
    );
    expect(summary).toEqual([
      ['plain', 'value'],
      ['multi\r\nline"name', 'a\r\nb\r\nc'], // the parser undoes the escaping
      ['file', { filename: 'big "one".bin', type: 'application/octet-stream', text: 200_000 }],
      ['blob', { filename: 'blob', type: 'application/octet-stream', text: 4 }],
    ]);
    expect((seen.fields as Array<[string, { text: string }]>)[2]![1].text).toBe('A'.repeat(200_000));
  });

  it("ReadableStream with duplex: 'half' is sent chunked; a user content-length makes it fixed-length", async () => {
    const srv = await echoServer();
    const s = session();
    const stream = () =>
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode('part1-'));
          c.enqueue(new TextEncoder().encode('part2'));
          c.close();
        },
      });
    const a = await (await s.fetch(srv.url('/'), { method: 'POST', body: stream(), duplex: 'half' })).json();
    expect([a.body, a.headers['transfer-encoding']]).toEqual(['part1-part2', 'chunked']);
    const b = await (await s.fetch(srv.url('/'), { method: 'POST', body: stream(), duplex: 'half', headers: { 'content-length': '11' } })).json();
    expect([b.body, b.headers['content-length'], b.headers['transfer-encoding']]).toEqual(['part1-part2', '11', undefined]);
  });

  it('headers: any HeadersInit, normalized like Headers (combined, lower-cased); accept */* by default', async () => {
    const srv = await echoServer();
    const s = session();
    const a = await (await s.fetch(srv.url('/'), { headers: { 'X-A': '1', 'x-a': '2', Accept: 'text/html' } })).json();
    expect(a.headers['x-a']).toBe('1, 2');
    expect(a.headers.accept).toBe('text/html');
    const b = await (await s.fetch(srv.url('/'), { headers: [['x-b', ' padded ']] })).json();
    expect(b.headers['x-b']).toBe('padded');
    expect(b.headers.accept).toBe('*/*');
    const c = await (await s.fetch(srv.url('/'), { headers: new Headers({ 'x-c': 'h' }) })).json();
    expect(c.headers['x-c']).toBe('h');
  });

  it('a Request input: its method, headers and body; init overrides', async () => {
    const srv = await echoServer();
    const s = session();
    const req = new Request(srv.url('/req'), { method: 'PUT', body: 'from request', headers: { 'x-r': '1' } });
    const a = await (await s.fetch(req.clone())).json();
    expect([a.method, a.body, a.headers['x-r'], a.headers['content-length'], a.headers['content-type']]).toEqual([
      'PUT',
      'from request',
      '1',
      '12',
      'text/plain;charset=UTF-8',
    ]);
    const b = await (await s.fetch(req, { method: 'POST', body: 'override' })).json();
    expect([b.method, b.body]).toEqual(['POST', 'override']);
  });
});

describe('redirects', () => {
  async function redirector(): Promise<HttpTestServer> {
    return startHttpServer(async (req, res) => {
      const u = new URL(req.url!, 'http://x');
      const m = /^\/r\/(\d+)$/.exec(u.pathname);
      const body = (await readBody(req)).toString();
      if (u.pathname === '/loop') {
        res.writeHead(302, { location: '/loop' });
        res.end();
        return;
      }
      if (m) {
        res.writeHead(Number(m[1]), { location: u.searchParams.get('to') ?? '/' });
        res.end('redirect body');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, body, headers: req.headers }));
    });
  }
  const e = encodeURIComponent;

  it('follow: 301/302 POST → GET, 303 PUT → GET (body headers dropped), 307/308 keep method and body', async () => {
    const srv = await redirector();
    const s = session();
    for (const [status, method, want] of [
      [301, 'POST', 'GET'],
      [302, 'POST', 'GET'],
      [303, 'PUT', 'GET'],
      [307, 'POST', 'POST'],
      [308, 'PUT', 'PUT'],
    ] as const) {
      const res = await s.fetch(srv.url(`/r/${status}?to=${e('/final')}`), { method, body: 'payload', headers: { 'content-type': 'text/x' } });
      expect(res.redirected).toBe(true);
      expect(res.url).toBe(srv.url('/final'));
      const seen = await res.json();
      expect(seen.method).toBe(want);
      if (want === 'GET') {
        expect(seen.body).toBe('');
        expect(seen.headers['content-type']).toBeUndefined();
      } else {
        expect(seen.body).toBe('payload');
        expect(seen.headers['content-type']).toBe('text/x');
      }
      expect((res as UvfetchResponse).uvfetch.redirects).toEqual([
        { url: srv.url(`/r/${status}?to=${e('/final')}`), method, status, location: srv.url('/final') },
      ]);
    }
  });

  it('cross-origin hops strip Authorization, Cookie and Proxy-Authorization; same-origin hops keep them', async () => {
    const a = await redirector();
    const b = await redirector(); // another port: another origin
    const s = session();
    const headers = { authorization: 'Bearer secret', cookie: 'c=1', 'proxy-authorization': 'Basic x', 'x-keep': 'k' };
    const cross = await (await s.fetch(a.url(`/r/302?to=${e(b.url('/there'))}`), { headers })).json();
    expect(cross.headers.authorization).toBeUndefined();
    expect(cross.headers.cookie).toBeUndefined();
    expect(cross.headers['proxy-authorization']).toBeUndefined();
    expect(cross.headers['x-keep']).toBe('k');
    const same = await (await s.fetch(a.url(`/r/302?to=${e('/here')}`), { headers })).json();
    expect([same.headers.authorization, same.headers.cookie]).toEqual(['Bearer secret', 'c=1']);
  });

  it("manual returns the 3xx as is; error rejects TypeError('fetch failed') with ERR_REDIRECT", async () => {
    const srv = await redirector();
    const s = session();
    const res = await s.fetch(srv.url(`/r/302?to=${e('/x')}`), { redirect: 'manual' });
    expect([res.status, res.headers.get('location'), res.redirected, await res.text()]).toEqual([302, '/x', false, 'redirect body']);
    const err = await rejection(s.fetch(srv.url(`/r/302?to=${e('/x')}`), { redirect: 'error' }));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toBe('fetch failed');
    expect(err.cause).toBeInstanceOf(UvfetchError);
    expect(err.cause.code).toBe('ERR_REDIRECT');
  });

  it('loops end with ERR_TOO_MANY_REDIRECTS (20, or maxRedirects); a streamed body is not resent on 307', async () => {
    const srv = await redirector();
    const s = session();
    const loop = await rejection(s.fetch(srv.url('/loop')));
    expect([loop.message, loop.cause.code]).toEqual(['fetch failed', 'ERR_TOO_MANY_REDIRECTS']);
    expect(srv.requests.length).toBe(21);
    const limited = await rejection(s.fetch(srv.url(`/r/302?to=${e('/r/302?to=/final')}`), { maxRedirects: 1 }));
    expect(limited.cause.code).toBe('ERR_TOO_MANY_REDIRECTS');
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array([1]));
        c.close();
      },
    });
    const once = await rejection(s.fetch(srv.url(`/r/307?to=/final`), { method: 'POST', body: stream, duplex: 'half' }));
    expect(once.cause.code).toBe('ERR_REDIRECT_BODY');
    // 303 drops the body, so a stream is fine there.
    const stream2 = new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array([1]));
        c.close();
      },
    });
    const ok = await s.fetch(srv.url(`/r/303?to=/final`), { method: 'POST', body: stream2, duplex: 'half' });
    expect((await ok.json()).method).toBe('GET');
  });
});

describe('abort', () => {
  it("before the request: rejects with the signal's reason (AbortError DOMException by default), nothing sent", async () => {
    const srv = await echoServer();
    const s = session();
    const ac = new AbortController();
    ac.abort();
    const err = await rejection(s.fetch(srv.url('/'), { signal: ac.signal }));
    expect(err).toBeInstanceOf(DOMException);
    expect(err.name).toBe('AbortError');
    expect(err).toBe(ac.signal.reason);
    const custom = new Error('mine');
    expect(await rejection(s.fetch(srv.url('/'), { signal: AbortSignal.abort(custom) }))).toBe(custom);
    expect(srv.requests.length).toBe(0);
  });

  it('while waiting for the head and during the body: the reason, the socket closed', async () => {
    const srv = await startHttpServer((req, res) => {
      if (req.url === '/slow-head') return; // never answers
      res.writeHead(200, { 'content-length': '1000000' });
      res.write(Buffer.alloc(1000, 1)); // then stalls
    });
    const s = session();
    const ac = new AbortController();
    const p = s.fetch(srv.url('/slow-head'), { signal: ac.signal });
    await waitFor(() => srv.requests.length === 1);
    ac.abort(new Error('stop waiting'));
    expect((await rejection(p)).message).toBe('stop waiting');

    const ac2 = new AbortController();
    const res = await s.fetch(srv.url('/stall'), { signal: ac2.signal });
    const reader = res.body!.getReader();
    expect((await reader.read()).value!.byteLength).toBeGreaterThan(0);
    const pending = reader.read();
    ac2.abort();
    const err = await rejection(pending);
    expect(err.name).toBe('AbortError');
    await waitFor(() => srv.closed === 2, 5_000, 'both sockets closed');
  });

  it('during text() (the fast path, no web stream), and an error that came while nobody read', async () => {
    const srv = await startHttpServer((req, res) => {
      res.writeHead(200, { 'content-length': '1000000' });
      res.write(Buffer.alloc(1000, 1), () => {
        if (req.url === '/die') setTimeout(() => res.socket?.destroy(), 20);
      });
    });
    const s = session();
    const ac = new AbortController();
    const res = await s.fetch(srv.url('/stall'), { signal: ac.signal });
    const p = res.text();
    await sleep(50);
    ac.abort();
    expect(await rejection(p)).toBe(ac.signal.reason);
    const dead = await s.fetch(srv.url('/die'));
    await sleep(300); // the socket dies before anyone reads
    const err = await rejection(dead.arrayBuffer());
    expect([err.message, err.cause.code]).toEqual(['terminated', 'ERR_SOCKET_CLOSED']);
    const dead2 = await s.fetch(srv.url('/die'));
    await sleep(300);
    const reader = dead2.body!.getReader(); // the web stream made after the error: it errors too
    let err2: any;
    for (let i = 0; i < 10 && err2 === undefined; i++) {
      try {
        if ((await reader.read()).done) break;
      } catch (e) {
        err2 = e;
      }
    }
    expect([err2?.message, err2?.cause?.code]).toEqual(['terminated', 'ERR_SOCKET_CLOSED']);
  });

  it('cancelling res.body closes the socket (never reused)', async () => {
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-length': '1000000' });
      res.write(Buffer.alloc(1000));
    });
    const res = await session().fetch(srv.url('/'));
    await res.body!.cancel();
    await waitFor(() => srv.closed === 1, 5_000, 'socket closed');
  });
});

describe('streaming with backpressure', () => {
  it('response: an unread body stops the socket (the server cannot write it all), then reads to the end', async () => {
    const total = 64 * 1024 * 1024;
    let written = 0;
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(total) });
      const chunk = Buffer.alloc(256 * 1024, 1);
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const res = await session().fetch(srv.url('/'));
    const reader = res.body!.getReader();
    await reader.read();
    await sleep(500);
    const stalled = written;
    await sleep(300);
    expect(written).toBe(stalled); // the server is blocked on a full socket
    expect(stalled).toBeLessThan(24 * 1024 * 1024);
    let n = 0;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      n += r.value.byteLength;
    }
    expect(n).toBeGreaterThan(total - 300 * 1024);
    expect(written).toBe(total);
  });

  it('request: a stream body is pulled only as fast as the server reads it', async () => {
    let pulled = 0;
    const chunk = new Uint8Array(64 * 1024);
    const total = 64 * 1024 * 1024;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const srv = await startHttpServer(async (req, res) => {
      req.pause();
      await released;
      let n = 0;
      req.resume();
      for await (const c of req) n += (c as Buffer).length;
      res.end(String(n));
    });
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (pulled >= total) {
          c.close();
          return;
        }
        pulled += chunk.byteLength;
        c.enqueue(chunk.slice());
      },
    });
    const p = session().fetch(srv.url('/'), { method: 'POST', body, duplex: 'half' });
    await waitFor(() => srv.requests.length === 1);
    await sleep(500);
    expect(pulled).toBeLessThan(24 * 1024 * 1024);
    release();
    const res = await p;
    expect(await res.text()).toBe(String(total));
  });
});

describe('errors', () => {
  it("network failures: TypeError('fetch failed') whose cause is the UvfetchError with its code", async () => {
    const port = await closedPort();
    const err = await rejection(session().fetch(`http://127.0.0.1:${port}/`));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toBe('fetch failed');
    expect(err.cause).toBeInstanceOf(UvfetchError);
    expect(err.cause.code).toBe('ERR_CONNECTION_REFUSED');
  });

  it('timeouts are network failures too (uvfetch option timeout)', async () => {
    const srv = await startHttpServer(() => {});
    const err = await rejection(session().fetch(srv.url('/'), { timeout: { headers: 100 } }));
    expect([err.message, err.cause.code]).toEqual(['fetch failed', 'ERR_HEADERS_TIMEOUT']);
  });

  it('a body that dies mid-way: the read rejects with TypeError("terminated") caused by the UvfetchError', async () => {
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write('partial', () => setTimeout(() => res.socket?.destroy(), 50));
    });
    const res = await session().fetch(srv.url('/'));
    const err = await rejection(res.text());
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toBe('terminated');
    expect(err.cause.code).toBe('ERR_SOCKET_CLOSED');
  });

  it('invalid input rejects with TypeError as fetch does (never throws synchronously)', async () => {
    const s = session();
    const cases: Array<[() => Promise<unknown>, RegExp]> = [
      [() => s.fetch('not a url'), /^Failed to parse URL from not a url$/],
      [() => s.fetch('http://u:p@127.0.0.1/'), /includes credentials/],
      [() => s.fetch('http://127.0.0.1/', { method: 'GET', body: 'x' }), /GET\/HEAD method cannot have body/],
      [() => s.fetch('http://127.0.0.1/', { method: 'bad method' }), /not a valid HTTP method/],
      [() => s.fetch('http://127.0.0.1/', { method: 'connect' }), /HTTP method is unsupported/],
      [() => s.fetch('http://127.0.0.1/', { method: 'POST', body: new ReadableStream() }), /duplex option is required/],
      [() => s.fetch('http://127.0.0.1/', { headers: { 'bad name': 'x' } }), /.+/],
      [() => s.fetch('http://127.0.0.1/', { redirect: 'nope' as RequestRedirect }), /nope/], // the platform's own wording
    ];
    for (const [f, re] of cases) {
      let p: Promise<unknown> | undefined;
      expect(() => (p = f())).not.toThrow();
      const err = await rejection(p!);
      expect(err).toBeInstanceOf(TypeError);
      expect(err.message).toMatch(re);
    }
    const ftp = await rejection(s.fetch('ftp://127.0.0.1/'));
    expect([ftp.message, ftp.cause.code]).toEqual(['fetch failed', 'ERR_UNSUPPORTED_PROTOCOL']);
  });

  it('uvfetch options are validated (ERR_INVALID_OPTION); impersonate is not supported yet', async () => {
    const s = session();
    expect((await rejection(s.fetch('http://127.0.0.1/', { timeout: { headers: -1 } }))).code).toBe('ERR_INVALID_OPTION');
    expect((await rejection(s.fetch('http://127.0.0.1/', { maxRedirects: -1 }))).code).toBe('ERR_INVALID_OPTION');
    const imp = await rejection(s.fetch('http://127.0.0.1/', { impersonate: 'chrome' } as RequestInit));
    expect([imp.code, imp.reason]).toEqual(['ERR_INVALID_OPTION', 'impersonate']);
  });

  it('maxBodySize bounds a fetch body (ERR_BODY_TOO_LARGE through TypeError terminated)', async () => {
    const srv = await startHttpServer((_req, res) => res.end(Buffer.alloc(200_000)));
    const res = await session().fetch(srv.url('/'), { maxBodySize: 100_000 });
    const err = await rejection(res.arrayBuffer());
    expect([err.message, err.cause.code]).toEqual(['terminated', 'ERR_BODY_TOO_LARGE']);
  });

  it('data: URLs are answered as Node fetch answers them (also with globalThis.fetch replaced by uvfetch)', async () => {
    expect(await (await session().fetch('data:text/plain,hi%20there')).text()).toBe('hi there');
    const orig = globalThis.fetch;
    globalThis.fetch = moduleFetch as typeof fetch;
    try {
      expect(await (await fetch('data:,replaced')).text()).toBe('replaced');
    } finally {
      globalThis.fetch = orig;
    }
  });
});

describe('keep-alive', () => {
  it('read bodies free their socket for the next fetch', async () => {
    const srv = await echoServer();
    const s = session();
    for (let i = 0; i < 20; i++) await (await s.fetch(srv.url(`/${i}`), { keepalive: true })).text();
    expect(srv.connections).toBe(1);
  });
});

describe('https and uvfetch options', () => {
  it("tls: the profile's trust decides; untrusted is a fetch failure with ERR_TLS_CERT_UNTRUSTED; res.uvfetch.tls", async () => {
    const fx = await tlsFixtures();
    const srv = https.createServer({ cert: fx.server.cert, key: fx.server.key }, (_req, res) => res.end('secure'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    cleanup.add(() => new Promise<void>((r) => srv.close(() => r())));
    cleanup.add(() => srv.closeAllConnections());
    const url = `https://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
    const s = session();
    const bad = await rejection(s.fetch(url));
    expect([bad.message, bad.cause.code]).toEqual(['fetch failed', 'ERR_TLS_CERT_UNTRUSTED']);
    const res = (await s.fetch(url, { tls: { ca: fx.caPem } })) as UvfetchResponse;
    expect(await res.text()).toBe('secure');
    expect(res.uvfetch.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
  });
});
