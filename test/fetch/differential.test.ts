// Differential: every case goes through uvfetch's fetch() and through Node's global fetch against
// the same loopback servers, and everything observable must agree — status, statusText, ok,
// type, redirected, url, response headers, body, whether the body is null, what the server
// received (method, path, body, the headers that matter), and for failures the error's name and
// message (and for aborts, the very same reason object). The documented differences (README,
// "Differences from Node's fetch") are excluded from the comparison and checked on their own.

import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../../lib/index.js';
import { closedPort, readBody, startHttpServer, type HttpTestServer } from '../helpers/http-servers.js';

type Fetcher = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

let a: HttpTestServer; // the main origin
let b: HttpTestServer; // another origin (another port), for cross-origin redirects
let session: Session;
let refused: number;
const seen: Array<Record<string, unknown>> = [];

/** Request headers compared (the others are documented differences or connection-level). */
const COMPARED_REQUEST_HEADERS = [
  'content-type',
  'content-length',
  'transfer-encoding',
  'authorization',
  'cookie',
  'proxy-authorization',
  'accept',
  'x-a',
  'x-b',
  'x-keep',
];

async function handler(srv: () => HttpTestServer, req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
  const body = await readBody(req);
  const h: Record<string, string | undefined> = {};
  for (const n of COMPARED_REQUEST_HEADERS) {
    const v = req.headers[n];
    h[n] = Array.isArray(v) ? v.join(', ') : v;
  }
  const ct = h['content-type'] ?? '';
  let fields: unknown = null;
  if (ct.startsWith('multipart/form-data')) {
    // Boundaries differ by design: compare what the platform's parser reads, and that a length was sent.
    const form = await new Response(new Uint8Array(body), { headers: { 'content-type': ct } }).formData();
    fields = await Promise.all([...form].map(async ([n, v]) => (typeof v === 'string' ? [n, v] : [n, v.name, v.type, await v.text()])));
    h['content-type'] = 'multipart/form-data; boundary=<boundary>';
    h['content-length'] = h['content-length'] === undefined ? undefined : '<present>';
  }
  seen.push({ origin: srv() === a ? 'a' : 'b', method: req.method, url: req.url, headers: h, body: fields ?? body.toString('latin1') });
  const u = new URL(req.url!, 'http://x');
  const m = /^\/r\/(\d+)$/.exec(u.pathname);
  if (m) {
    const to = u.searchParams.get('to');
    res.writeHead(Number(m[1]), to === null ? {} : { location: to });
    res.end('redirect body');
    return;
  }
  const st = /^\/status\/(\d+)$/.exec(u.pathname);
  if (st) {
    res.writeHead(Number(st[1]), 'Custom Reason', { 'content-type': 'text/plain' });
    res.end(Number(st[1]) === 204 || Number(st[1]) === 304 ? undefined : `status ${st[1]}`);
    return;
  }
  switch (u.pathname) {
    case '/loop':
      res.writeHead(302, { location: '/loop' });
      res.end();
      return;
    case '/headers':
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2']);
      res.setHeader('x-dup', ['one', 'two']);
      res.setHeader('x-Mixed-Case', 'v');
      res.end('h');
      return;
    case '/gzip': {
      const gz = zlib.gzipSync('gzipped body '.repeat(50));
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': gz.length, 'content-type': 'text/plain' });
      res.end(gz);
      return;
    }
    case '/json':
      res.setHeader('content-type', 'application/json');
      res.end('{"a":[1,2,3]}');
      return;
    default:
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end(`ok ${req.method} ${req.url}`);
  }
}

beforeAll(async () => {
  a = await startHttpServer((req, res) => handler(() => a, req, res));
  b = await startHttpServer((req, res) => handler(() => b, req, res));
  session = new Session();
  refused = await closedPort();
});
afterAll(async () => {
  await session.destroy();
  await a.close();
  await b.close();
});

const clients: Record<'uvfetch' | 'node', Fetcher> = {
  uvfetch: (input, init) => session.fetch(input, init),
  node: (input, init) => globalThis.fetch(input, init),
};

/** Everything observable about one fetch, origins replaced by 'A'/'B'. */
async function observe(f: Fetcher, input: () => string | URL | Request, init: () => RequestInit | undefined, connectionLevel = true): Promise<unknown> {
  const from = seen.length;
  const norm = (s: string) => s.split(a.url('/').slice(0, -1)).join('A').split(b.url('/').slice(0, -1)).join('B');
  try {
    const res = await f(input(), init());
    const bodyNull = res.body === null;
    const text = await res.text();
    return {
      status: res.status,
      statusText: res.statusText,
      ok: res.ok,
      type: res.type,
      redirected: res.redirected,
      url: norm(res.url),
      instance: res instanceof Response && res.headers instanceof Headers,
      headers: [...res.headers].filter(([n]) => n !== 'date' && (connectionLevel || (n !== 'connection' && n !== 'keep-alive'))),
      setCookie: res.headers.getSetCookie(),
      bodyNull,
      text,
      seen: seen.slice(from),
    };
  } catch (e) {
    const err = e as Error & { cause?: unknown };
    return { error: err.name, message: norm(err.message), isTypeError: err instanceof TypeError, hasCause: err.cause !== undefined, seen: seen.slice(from) };
  }
}

interface Case {
  name: string;
  input: () => string | URL | Request;
  init?: () => RequestInit | undefined;
  /** Compare without connection / keep-alive response headers (see HEAD). */
  connectionLevel?: false;
}

const stream = (...parts: string[]) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      for (const p of parts) c.enqueue(new TextEncoder().encode(p));
      c.close();
    },
  });
const form = () => {
  const fd = new FormData();
  fd.append('field', 'value\nwith newline');
  fd.append('file', new File(['file body'], 'name.txt', { type: 'text/plain' }));
  fd.append('blob', new Blob([new Uint8Array([0, 1, 2])]));
  return fd;
};
const A = (p: string) => () => a.url(p);
const enc = encodeURIComponent;

const CASES: Case[] = [
  { name: 'GET text', input: A('/text?q=1#frag') },
  { name: 'GET json', input: A('/json') },
  { name: 'URL object input', input: () => new URL(a.url('/url-object')) },
  { name: '404 with a reason phrase', input: A('/status/404') },
  { name: '500', input: A('/status/500') },
  { name: '204 (null body)', input: A('/status/204') },
  // Node's fetch sends HEAD with Connection: close (so the server answers close): connection-level only.
  { name: 'HEAD (null body)', input: A('/text'), init: () => ({ method: 'HEAD' }), connectionLevel: false },
  { name: 'set-cookie and repeated headers', input: A('/headers') },
  { name: 'gzip body, decoded, headers kept', input: A('/gzip') },
  { name: 'POST string', input: A('/echo'), init: () => ({ method: 'POST', body: 'héllo' }) },
  { name: 'POST empty string', input: A('/echo'), init: () => ({ method: 'POST', body: '' }) },
  { name: 'POST without body', input: A('/echo'), init: () => ({ method: 'POST' }) },
  { name: 'POST URLSearchParams', input: A('/echo'), init: () => ({ method: 'POST', body: new URLSearchParams({ x: '1 2', y: 'ü' }) }) },
  { name: 'PUT ArrayBuffer', input: A('/echo'), init: () => ({ method: 'PUT', body: new Uint8Array([65, 66, 67]).buffer }) },
  { name: 'PUT Uint8Array', input: A('/echo'), init: () => ({ method: 'PUT', body: new Uint8Array([68, 69]) }) },
  { name: 'PUT DataView', input: A('/echo'), init: () => ({ method: 'PUT', body: new DataView(new Uint8Array([70, 71, 72, 73]).buffer, 1, 2) }) },
  { name: 'PUT Blob with type', input: A('/echo'), init: () => ({ method: 'PUT', body: new Blob(['blob'], { type: 'application/x-thing' }) }) },
  { name: 'PUT File', input: A('/echo'), init: () => ({ method: 'PUT', body: new File(['file'], 'f.bin') }) },
  { name: 'POST FormData', input: A('/echo'), init: () => ({ method: 'POST', body: form() }) },
  {
    name: 'POST ReadableStream (duplex half)',
    input: A('/echo'),
    init: () => ({ method: 'POST', body: stream('one ', 'two'), duplex: 'half' }) as RequestInit,
  },
  { name: 'headers object, mixed case, combined', input: A('/echo'), init: () => ({ headers: { 'X-A': '1', 'x-a': '2', 'x-b': ' spaced ' } }) },
  {
    name: 'headers as pairs and Headers',
    input: A('/echo'),
    init: () => ({
      headers: new Headers([
        ['x-a', 'h'],
        ['accept', 'text/html'],
      ]),
    }),
  },
  { name: 'DELETE / OPTIONS / lower-case get', input: A('/echo'), init: () => ({ method: 'delete' }) },
  { name: 'custom method kept as given', input: A('/echo'), init: () => ({ method: 'PURGE' }) },
  { name: 'PROPFIND without body', input: A('/echo'), init: () => ({ method: 'PROPFIND' }) },
  { name: 'Request input with body', input: () => new Request(a.url('/echo'), { method: 'POST', body: 'from request', headers: { 'x-a': 'r' } }) },
  {
    name: 'Request input, init overrides',
    input: () => new Request(a.url('/echo'), { method: 'POST', body: 'orig' }),
    init: () => ({ method: 'PUT', body: 'new' }),
  },
  ...([301, 302, 303, 307, 308] as const).flatMap((code) => [
    {
      name: `${code} POST with body`,
      input: A(`/r/${code}?to=${enc('/final')}`),
      init: () => ({ method: 'POST', body: 'payload', headers: { 'content-type': 'text/x', 'x-a': 'kept' } }),
    },
    { name: `${code} PUT`, input: A(`/r/${code}?to=${enc('/final')}`), init: () => ({ method: 'PUT', body: 'payload' }) },
    { name: `${code} GET`, input: A(`/r/${code}?to=${enc('/final')}`) },
  ]),
  { name: 'relative Location', input: A(`/r/302?to=${enc('sub/x?y=1')}`) },
  { name: 'no Location: the 3xx is the answer', input: A('/r/302') },
  {
    name: 'cross-origin hop strips credentials',
    input: () => a.url(`/r/302?to=${enc(b.url('/other'))}`),
    init: () => ({ headers: { authorization: 'Bearer s', cookie: 'c=1', 'proxy-authorization': 'Basic p', 'x-keep': 'k' } }),
  },
  { name: 'cross-origin hop: type cors, headers unfiltered', input: () => a.url(`/r/301?to=${enc(b.url('/headers'))}`) },
  { name: 'there and back again: still cors', input: () => a.url(`/r/302?to=${enc(b.url(`/r/302?to=${enc(a.url('/back'))}`))}`) },
  { name: 'same-origin hop keeps them', input: A(`/r/307?to=${enc('/same')}`), init: () => ({ headers: { authorization: 'Bearer s', cookie: 'c=1' } }) },
  { name: 'redirect: manual', input: A(`/r/301?to=${enc('/final')}`), init: () => ({ redirect: 'manual' }) },
  { name: 'redirect: error', input: A(`/r/301?to=${enc('/final')}`), init: () => ({ redirect: 'error' }) },
  { name: 'redirect loop', input: A('/loop') },
  {
    name: '307 with a stream body',
    input: A(`/r/307?to=${enc('/final')}`),
    init: () => ({ method: 'POST', body: stream('x'), duplex: 'half' }) as RequestInit,
  },
  {
    name: '303 with a stream body',
    input: A(`/r/303?to=${enc('/final')}`),
    init: () => ({ method: 'POST', body: stream('x'), duplex: 'half' }) as RequestInit,
  },
  { name: 'invalid URL', input: () => 'no scheme here' },
  { name: 'URL with credentials', input: () => a.url('/x').replace('http://', 'http://u:p@') },
  { name: 'GET with body', input: A('/x'), init: () => ({ method: 'GET', body: 'x' }) },
  { name: 'HEAD with body', input: A('/x'), init: () => ({ method: 'HEAD', body: 'x' }) },
  { name: 'invalid method', input: A('/x'), init: () => ({ method: 'BAD METHOD' }) },
  { name: 'CONNECT', input: A('/x'), init: () => ({ method: 'CONNECT' }) },
  { name: 'TRACE', input: A('/x'), init: () => ({ method: 'trace' }) },
  { name: 'stream without duplex', input: A('/x'), init: () => ({ method: 'POST', body: stream('x') }) },
  { name: 'invalid header name', input: A('/x'), init: () => ({ headers: { 'bad header': 'x' } }) },
  { name: 'invalid header value', input: A('/x'), init: () => ({ headers: { 'x-a': 'line\nbreak' } }) },
  { name: 'invalid redirect mode', input: A('/x'), init: () => ({ redirect: 'sideways' as RequestRedirect }) },
  { name: 'connection refused', input: () => `http://127.0.0.1:${refused}/` },
  { name: 'unsupported scheme', input: () => 'ftp://127.0.0.1/' },
  { name: 'data: URL', input: () => 'data:text/plain;charset=utf-8,hello%20data' },
];

describe('uvfetch fetch() and Node global fetch agree', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const init = c.init ?? (() => undefined);
      const ours = await observe(clients.uvfetch, c.input, init, c.connectionLevel);
      const node = await observe(clients.node, c.input, init, c.connectionLevel);
      expect(ours).toEqual(node);
    });
  }

  it('body state: bodyUsed, second reads, body after a read, clone before and after, blob, bytes, bad JSON', async () => {
    const run = async (f: Fetcher) => {
      const out: unknown[] = [];
      const msg = async (p: () => unknown) => {
        try {
          await p();
          return 'ok';
        } catch (e) {
          return `${(e as Error).name}: ${(e as Error).message}`;
        }
      };
      let r = await f(a.url('/json'));
      out.push(r.bodyUsed, await r.text(), r.bodyUsed, await msg(() => r.text()), await msg(() => r.json()), r.body === null, await msg(() => r.clone()));
      r = await f(a.url('/json'));
      const reader = r.body!.getReader();
      let n = 0;
      for (;;) {
        const x = await reader.read();
        if (x.done) break;
        n += x.value.byteLength;
      }
      reader.releaseLock();
      out.push(n, r.bodyUsed, await msg(() => r.arrayBuffer()));
      r = await f(a.url('/json'));
      const c = r.clone();
      out.push(await c.json(), await r.text(), c.bodyUsed, r.bodyUsed, c.url === r.url, c instanceof Response);
      r = await f(a.url('/json'));
      const blob = await r.blob();
      out.push(blob.type, blob.size, r.bodyUsed);
      r = await f(a.url('/text'));
      out.push([...(await (r as Response & { bytes(): Promise<Uint8Array> }).bytes())].length);
      r = await f(a.url('/text'));
      out.push(await msg(() => r.json()));
      r = await f(a.url('/status/204'));
      out.push(await r.text(), await r.text(), r.bodyUsed, r.body);
      return out;
    };
    expect(await run(clients.uvfetch)).toEqual(await run(clients.node));
  });

  it('abort before the request: both reject with the same reason object', async () => {
    for (const reason of [undefined, new Error('custom reason')]) {
      const ac = new AbortController();
      ac.abort(reason);
      const errs: unknown[] = [];
      for (const f of Object.values(clients)) errs.push(await f(a.url('/x'), { signal: ac.signal }).catch((e) => e));
      expect(errs[0]).toBe(ac.signal.reason);
      expect(errs[1]).toBe(ac.signal.reason);
    }
  });

  it('abort during the body: both reads reject with the reason', async () => {
    const slow = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write('first');
    });
    try {
      for (const f of Object.values(clients)) {
        const ac = new AbortController();
        const res = await f(slow.url('/'), { signal: ac.signal });
        const reader = res.body!.getReader();
        await reader.read();
        const p = reader.read();
        ac.abort();
        const err = await p.catch((e) => e);
        expect(err).toBe(ac.signal.reason);
        expect((err as DOMException).name).toBe('AbortError');
      }
    } finally {
      await slow.close();
    }
  });
});

describe('documented differences (README) are what they say', () => {
  it('request headers: User-Agent, no Accept-Language / Sec-Fetch-Mode, Accept-Encoding with br', async () => {
    const got: Record<string, import('node:http').IncomingHttpHeaders> = {};
    const srv = await startHttpServer((req, res) => {
      got[req.url!.slice(1)] = req.headers;
      res.end();
    });
    try {
      await (await clients.uvfetch(srv.url('/uvfetch'))).text();
      await (await clients.node(srv.url('/node'))).text();
      expect(got.uvfetch!['user-agent']).toMatch(/^uvfetch\//);
      expect(got.node!['user-agent']).toBe('node');
      expect(got.uvfetch!['accept-language']).toBeUndefined();
      expect(got.node!['accept-language']).toBe('*');
      expect(got.uvfetch!['sec-fetch-mode']).toBeUndefined();
      expect(got.uvfetch!['accept-encoding']).toMatch(/^gzip, deflate, br/);
      expect(got.uvfetch!.accept).toBe(got.node!.accept);
    } finally {
      await srv.close();
    }
  });

  it("method 'patch' is sent upper-cased (Node sends it as given)", async () => {
    const methods: string[] = [];
    const srv = await startHttpServer((req, res) => {
      methods.push(req.method!);
      res.end();
    });
    try {
      await (await clients.uvfetch(srv.url('/'), { method: 'patch' })).text();
      expect(methods).toEqual(['PATCH']);
    } finally {
      await srv.close();
    }
  });

  it('response headers are mutable (a fetched Response has immutable ones in Node)', async () => {
    const res = await clients.uvfetch(a.url('/text'));
    expect(() => res.headers.set('x-local', '1')).not.toThrow();
    await res.text();
  });
});
