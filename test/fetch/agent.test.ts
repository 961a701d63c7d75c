// UvfetchAgent as an undici Dispatcher: Node's own global fetch through setGlobalDispatcher (the
// bundled undici reads Symbol.for('undici.globalDispatcher.1')) and through init.dispatcher;
// undici 7's request, stream, pipeline and fetch; both handler styles driven directly, with
// pause/resume reaching the socket (the server cannot write while the handler is paused);
// aborts from the handler; Upgrade/CONNECT refused clearly; close(), destroy(), stats(),
// compose() with undici 7's interceptors.

import { once } from 'node:events';
import { Readable, Writable, PassThrough } from 'node:stream';
import { pipeline as pipe } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import * as undici from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { Session, UvfetchAgent, UvfetchError, type UvfetchDispatchController, type UvfetchDispatchHandler } from '../../lib/index.js';
import { Cleanup, closedPort, readBody, rejection, sleep, startHttpServer, waitFor, type HttpTestServer } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** undici's Dispatcher type (structurally: UvfetchAgent has what undici calls). */
const d = (x: UvfetchAgent): undici.Dispatcher => x as unknown as undici.Dispatcher;

function agent(opts?: ConstructorParameters<typeof UvfetchAgent>[0]): UvfetchAgent {
  const a = new UvfetchAgent(opts);
  cleanup.add(() => a.destroy());
  return a;
}

async function app(): Promise<HttpTestServer> {
  return startHttpServer(async (req, res) => {
    const body = await readBody(req);
    const u = new URL(req.url!, 'http://x');
    if (u.pathname === '/gzip') {
      const gz = zlib.gzipSync('zipped '.repeat(20));
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': gz.length });
      res.end(gz);
      return;
    }
    if (u.pathname === '/redirect') {
      res.writeHead(303, { location: '/echo?from=redirect' });
      res.end();
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString() }));
  });
}

/** A server whose response is far larger than socket buffers; `written` counts what it got out. */
async function firehose(total = 64 * 1024 * 1024): Promise<{ srv: HttpTestServer; written: () => number; total: number }> {
  let written = 0;
  const srv = await startHttpServer((_req, res) => {
    written = 0; // counts the latest response
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
  return { srv, written: () => written, total };
}

describe("Node's global fetch", () => {
  it('setGlobalDispatcher(new UvfetchAgent()) sends it through uvfetch (and restores)', async () => {
    const srv = await app();
    const a = agent();
    const key = Symbol.for('undici.globalDispatcher.1');
    const prev = undici.getGlobalDispatcher();
    undici.setGlobalDispatcher(a as unknown as undici.Dispatcher);
    try {
      expect((globalThis as Record<symbol, unknown>)[key]).toBe(a);
      const res = await fetch(srv.url('/echo'), { method: 'POST', body: 'hi', headers: { 'x-t': '1' } });
      expect(res).toBeInstanceOf(Response);
      const seen = await res.json();
      expect([seen.method, seen.body, seen.headers['x-t'], seen.headers['user-agent']]).toEqual(['POST', 'hi', '1', 'node']);
      expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
      // The dispatcher hands over encoded bytes; fetch decodes them once.
      expect(await (await fetch(srv.url('/gzip'))).text()).toBe('zipped '.repeat(20));
      // fetch follows the redirect itself (the dispatcher never does).
      const r = await fetch(srv.url('/redirect'), { method: 'POST', body: 'x' });
      expect([r.redirected, (await r.json()).method]).toEqual([true, 'GET']);
      const stream = new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode('streamed body'));
          c.close();
        },
      });
      expect((await (await fetch(srv.url('/echo'), { method: 'PUT', body: stream, duplex: 'half' } as RequestInit)).json()).body).toBe('streamed body');
      expect(a.stats().requests.completed).toBe(5);
      const err = await rejection(fetch(`http://127.0.0.1:${await closedPort()}/`));
      expect(err.message).toBe('fetch failed');
      expect(err.cause).toBeInstanceOf(UvfetchError);
      expect(err.cause.code).toBe('ERR_CONNECTION_REFUSED');
    } finally {
      undici.setGlobalDispatcher(prev);
    }
    expect((globalThis as Record<symbol, unknown>)[key]).toBe(prev);
  });

  it('init.dispatcher, abort during the body, and a response larger than buffers', async () => {
    const srv = await app();
    const a = agent();
    const init = { dispatcher: d(a) } as RequestInit;
    expect((await (await fetch(srv.url('/echo?q=1'), init)).json()).url).toBe('/echo?q=1');
    const big = await firehose(8 * 1024 * 1024);
    const ac = new AbortController();
    const res = await fetch(big.srv.url('/'), { ...init, signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    expect((await rejection(reader.read())).name).toBe('AbortError');
    await waitFor(() => big.srv.closed === 1, 5_000, 'aborted socket closed');
    const whole = await fetch(big.srv.url('/'), init);
    expect((await whole.arrayBuffer()).byteLength).toBe(big.total);
  });
});

describe("undici 7's APIs with dispatcher: agent", () => {
  it('request(): status, parsed headers, body mixins, every body kind, query', async () => {
    const srv = await app();
    const a = agent();
    const { statusCode, headers, body } = await undici.request(srv.url('/echo'), { dispatcher: d(a), method: 'POST', body: 'plain', query: { q: 'x y' } });
    expect(statusCode).toBe(200);
    expect(headers['set-cookie']).toEqual(['a=1', 'b=2']);
    const seen = (await body.json()) as { url: string; body: string; headers: Record<string, string> };
    expect([seen.url, seen.body, seen.headers['content-length']]).toEqual(['/echo?q=x+y', 'plain', '5']);
    for (const b of [Buffer.from('buffer'), Readable.from([Buffer.from('read'), Buffer.from('able')])]) {
      const r = await undici.request(srv.url('/echo'), { dispatcher: d(a), method: 'PUT', body: b });
      expect(((await r.body.json()) as { body: string }).body).toBe(b instanceof Buffer ? 'buffer' : 'readable');
    }
    const fd = new FormData();
    fd.append('k', 'v');
    const r = await undici.request(srv.url('/echo'), { dispatcher: d(a), method: 'POST', body: fd as never });
    const s = (await r.body.json()) as { body: string; headers: Record<string, string> };
    expect(s.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(s.body).toContain('name="k"\r\n\r\nv\r\n');
    // No decoding, no redirects, nothing added: what a dispatcher must do.
    const gz = await undici.request(srv.url('/gzip'), { dispatcher: d(a) });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(zlib.gunzipSync(Buffer.from(await gz.body.arrayBuffer())).toString()).toBe('zipped '.repeat(20));
    const rd = await undici.request(srv.url('/redirect'), { dispatcher: d(a) });
    expect(rd.statusCode).toBe(303);
    await rd.body.dump();
    const h = (await (await undici.request(srv.url('/echo'), { dispatcher: d(a) })).body.json()) as { headers: Record<string, string> };
    expect(h.headers['user-agent']).toBeUndefined();
    expect(h.headers['accept-encoding']).toBeUndefined();
  });

  it('stream(), pipeline() and fetch()', async () => {
    const srv = await app();
    const a = agent();
    const parts: Buffer[] = [];
    await undici.stream(
      srv.url('/echo'),
      { dispatcher: d(a), method: 'POST', body: 'to stream', opaque: parts },
      ({ opaque }) =>
        new Writable({
          write(c, _e, cb) {
            (opaque as Buffer[]).push(c as Buffer);
            cb();
          },
        }),
    );
    expect(JSON.parse(Buffer.concat(parts).toString()).body).toBe('to stream');
    const out: Buffer[] = [];
    await pipe(
      Readable.from([Buffer.from('piped in')]),
      undici.pipeline(srv.url('/echo'), { dispatcher: d(a), method: 'PUT' }, ({ body }) => body),
      new Writable({
        write(c, _e, cb) {
          out.push(c as Buffer);
          cb();
        },
      }),
    );
    expect(JSON.parse(Buffer.concat(out).toString()).body).toBe('piped in');
    const res = await undici.fetch(srv.url('/gzip'), { dispatcher: d(a) });
    expect(await res.text()).toBe('zipped '.repeat(20));
  });

  it("agent.request() / agent.stream(): undici's own methods over this dispatcher", async () => {
    const srv = await app();
    const a = agent();
    const r = (await a.request({ origin: srv.url('/'), path: '/echo?via=method', method: 'GET' })) as undici.Dispatcher.ResponseData;
    expect(((await r.body.json()) as { url: string }).url).toBe('/echo?via=method');
  });

  it('compose() with undici 7 interceptors (new-style handlers wrapped around old-style ones)', async () => {
    const srv = await app();
    const a = agent();
    const composed = a.compose(undici.interceptors.redirect({ maxRedirections: 3 }));
    const r = await undici.request(srv.url('/redirect'), { dispatcher: d(composed) });
    expect(r.statusCode).toBe(200);
    expect(((await r.body.json()) as { url: string }).url).toBe('/echo?from=redirect');
  });
});

describe('handlers driven directly', () => {
  it('undici 7 style: onRequestStart → onResponseStart → onResponseData* → onResponseEnd; controller.pause() stops the socket', async () => {
    const { srv, written, total } = await firehose();
    const a = agent();
    const calls: string[] = [];
    let ctl!: UvfetchDispatchController;
    let received = 0;
    let paused = false;
    const done = new Promise<void>((resolve, reject) => {
      const h: UvfetchDispatchHandler = {
        onRequestStart(c) {
          ctl = c;
          calls.push('start');
        },
        onResponseStart(c, status, headers) {
          calls.push(`head ${status} ${String(headers['content-length'])}`);
          expect(c).toBe(ctl);
        },
        onResponseData(c, chunk) {
          received += chunk.length;
          if (!paused && received > 1024 * 1024) {
            paused = true;
            c.pause();
          }
        },
        onResponseEnd() {
          calls.push('end');
          resolve();
        },
        onResponseError(_c, err) {
          reject(err);
        },
      };
      expect(a.dispatch({ origin: srv.url('/').slice(0, -1), path: '/', method: 'GET' }, h)).toBe(true);
    });
    await waitFor(() => paused, 10_000, 'paused');
    await sleep(400);
    const stalled = written();
    await sleep(300);
    expect(written()).toBe(stalled);
    expect(stalled).toBeLessThan(24 * 1024 * 1024);
    expect(ctl.paused).toBe(true);
    ctl.resume();
    await done;
    expect(received).toBe(total);
    expect(calls).toEqual(['start', `head 200 ${total}`, 'end']);
  });

  it('old style (Node 20 bundled undici): onData returning false pauses until resume()', async () => {
    const { srv, written, total } = await firehose();
    const a = agent();
    let resume!: () => void;
    let received = 0;
    let stopped = false;
    const calls: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      a.dispatch(
        { origin: srv.url('/'), path: '/', method: 'GET' },
        {
          onConnect(abort) {
            expect(typeof abort).toBe('function');
            calls.push('connect');
          },
          onResponseStarted() {
            calls.push('started');
          },
          onHeaders(status, raw, r, statusText) {
            calls.push(`headers ${status} ${statusText}`);
            expect(raw.every((x) => Buffer.isBuffer(x))).toBe(true);
            resume = r;
            return true;
          },
          onData(chunk) {
            received += chunk.length;
            if (!stopped && received > 1024 * 1024) {
              stopped = true;
              return false;
            }
            return true;
          },
          onComplete(trailers) {
            calls.push(`complete ${JSON.stringify(trailers)}`);
            resolve();
          },
          onError: reject,
        },
      );
    });
    await waitFor(() => stopped, 10_000, 'stopped');
    await sleep(400);
    const stalled = written();
    await sleep(300);
    expect(written()).toBe(stalled);
    expect(stalled).toBeLessThan(24 * 1024 * 1024);
    resume();
    // Seen twice in full runs on a loaded machine (never alone): the body did not finish within
    // the test's 30 s. Fail early with the state, so the log says where it stopped.
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const st = a.stats();
        reject(
          new Error(
            `no end 15 s after resume(): received ${received} of ${total}, server wrote ${written()}, stats ${JSON.stringify(st.connections)} requests ${JSON.stringify(st.requests)}`,
          ),
        );
      }, 15_000);
    });
    try {
      await Promise.race([done, hung]);
    } finally {
      clearTimeout(timer);
    }
    expect(received).toBe(total);
    expect(calls).toEqual(['connect', 'started', 'headers 200 OK', 'complete []']);
  });

  it('aborts: controller.abort(reason) after the head, abort(err) in onConnect (nothing sent)', async () => {
    const srv = await app();
    const a = agent();
    const reason = new Error('handler gave up');
    const got = await new Promise<Error>((resolve) => {
      a.dispatch(
        { origin: srv.url('/'), path: '/echo', method: 'GET' },
        {
          onResponseStart(c) {
            c.abort(reason);
          },
          onResponseData() {
            throw new Error('no data after abort');
          },
          onResponseEnd() {
            throw new Error('no end after abort');
          },
          onResponseError(_c, err) {
            resolve(err);
          },
        },
      );
    });
    expect(got).toBe(reason);
    const before = srv.requests.length;
    const early = new Error('never mind');
    const got2 = await new Promise<Error>((resolve) => {
      a.dispatch(
        { origin: srv.url('/'), path: '/echo', method: 'GET' },
        {
          onConnect(abort) {
            abort(early);
          },
          onError: resolve,
        },
      );
    });
    expect(got2).toBe(early);
    await sleep(50);
    expect(srv.requests.length).toBe(before);
  });

  it('Upgrade and CONNECT are refused with a clear ERR_UNSUPPORTED_PROTOCOL', async () => {
    const srv = await app();
    const a = agent();
    const errs: Error[] = [];
    for (const opts of [
      { origin: srv.url('/'), path: '/', method: 'GET', upgrade: 'websocket' },
      { origin: srv.url('/'), path: '/', method: 'CONNECT' },
      { origin: srv.url('/'), path: '/', method: 'GET', headers: { upgrade: 'h2c', connection: 'upgrade' } },
    ]) {
      errs.push(await new Promise<Error>((resolve) => a.dispatch(opts, { onError: resolve })));
    }
    for (const e of errs) {
      expect(e).toBeInstanceOf(UvfetchError);
      expect((e as UvfetchError).code).toBe('ERR_UNSUPPORTED_PROTOCOL');
      expect(e.message).toMatch(/not supported by UvfetchAgent/);
    }
    const viaUndici = await rejection(undici.connect(srv.url('/'), { dispatcher: d(a) }));
    expect(viaUndici.code).toBe('ERR_UNSUPPORTED_PROTOCOL');
    expect(srv.requests.length).toBe(0);
  });
});

describe('lifecycle and stats', () => {
  it('close() lets dispatched requests finish, then refuses; destroy(err) fails in-flight ones with err', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const srv = await startHttpServer(async (_req, res) => {
      await gate;
      res.end('late');
    });
    const a = agent();
    const p = undici.request(srv.url('/'), { dispatcher: d(a) });
    await waitFor(() => srv.requests.length === 1);
    const closing = a.close();
    expect(a.closed).toBe(true);
    release();
    expect(await (await p).body.text()).toBe('late');
    await closing;
    const after = await rejection(undici.request(srv.url('/'), { dispatcher: d(a) }));
    expect(after.code).toBe('ERR_SESSION_CLOSED');

    const hang = await startHttpServer(() => {});
    const b = agent();
    const q = undici.request(hang.url('/'), { dispatcher: d(b) }).catch((e: unknown) => Promise.reject(e));
    q.catch(() => {}); // observed below, after destroy()
    await waitFor(() => hang.requests.length === 1);
    const boom = new Error('shutting down');
    await b.destroy(boom);
    expect(b.destroyed).toBe(true);
    expect(await rejection(q)).toBe(boom);
    await new Promise<void>((resolve) => b.close(() => resolve())); // callback form, already closed
  });

  it('stats() has the shape of session.stats()', async () => {
    const srv = await app();
    const a = agent({ connections: 8 });
    await (await undici.request(srv.url('/echo'), { dispatcher: d(a) })).body.dump();
    const s = new Session();
    cleanup.add(() => s.destroy());
    const shape = (o: unknown): unknown =>
      o !== null && typeof o === 'object' ? Object.fromEntries(Object.entries(o).map(([k, v]) => [k, shape(v)])) : typeof o;
    expect(shape(a.stats())).toEqual(shape(s.stats()));
    expect(a.stats().requests.completed).toBe(1);
    expect(a.stats().connections.idle).toBe(1);
  });

  it('agent options are the session options (validated the same way)', () => {
    expect(() => new UvfetchAgent({ connections: -1 })).toThrow(UvfetchError);
  });

  it('works as a PassThrough-fed upload with backpressure on the request body', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const srv = await startHttpServer(async (req, res) => {
      req.pause();
      await gate;
      req.resume();
      let n = 0;
      for await (const c of req) n += (c as Buffer).length;
      res.end(String(n));
    });
    const a = agent();
    const body = new PassThrough({ highWaterMark: 64 * 1024 });
    const p = undici.request(srv.url('/'), { dispatcher: d(a), method: 'POST', body });
    let offered = 0;
    const chunk = Buffer.alloc(64 * 1024);
    const total = 48 * 1024 * 1024;
    const writer = (async () => {
      while (offered < total) {
        offered += chunk.length;
        if (!body.write(chunk)) await once(body, 'drain');
      }
      body.end();
    })();
    await waitFor(() => srv.requests.length === 1);
    await sleep(500);
    expect(offered).toBeLessThan(24 * 1024 * 1024);
    release();
    await writer;
    expect(await (await p).body.text()).toBe(String(total));
  });
});
