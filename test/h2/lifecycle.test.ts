// HTTP/2 stream and connection lifecycle against node:http2 (which shows every stream's fate) and the
// raw server: GOAWAY mid-load (every request succeeds, no POST runs twice: counted where the server
// commits it), REFUSED_STREAM retried whatever the method, no new stream on a connection that sent
// GOAWAY, abort / timeouts / a destroyed body send RST_STREAM(CANCEL) and leave the connection and
// its other streams alone, a server RST_STREAM is ERR_HTTP2_STREAM_RESET with its code,
// ERR_HTTP2_GOAWAY when a retry is impossible, session.close() sends GOAWAY and lets in-flight
// streams finish.

import * as http2 from 'node:http2';
import { describe, expect, it } from 'vitest';
import { UvfetchError } from '../../lib/index.js';
import { frames, FrameType, H2Error, hpack, startH2RawServer } from '../helpers/h2-raw-server.js';
import { defaultRoutes, h2Kit, type NodeH2Handler, patternBytes, startNodeH2 } from '../helpers/h2-servers.js';
import { rejection, sleep, waitFor, within } from '../helpers/http-servers.js';

const kit = h2Kit();
const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR } = http2.constants;

/**
 * A handler that reads the body, waits `holdMs`, and only then — if the stream is still open —
 * commits the request (counts its x-req-id) and answers. A stream the server refused or that the
 * GOAWAY excluded is closed by then, so it is never counted.
 */
function committingHandler(committed: Map<string, number>, holdMs: number, onStream?: NodeH2Handler): NodeH2Handler {
  return (stream, headers, ctx) => {
    onStream?.(stream, headers, ctx);
    if (stream.closed || stream.destroyed) return;
    const id = String(headers['x-req-id']);
    stream.on('data', () => {});
    stream.on('end', () => {
      setTimeout(() => {
        if (stream.closed || stream.destroyed) return;
        committed.set(id, (committed.get(id) ?? 0) + 1);
        stream.respond({ ':status': 200 });
        stream.end(`${headers[':method']} ${id}`);
      }, holdMs);
    });
  };
}

describe('GOAWAY', () => {
  it('mid-load: 60 requests (half POST) all succeed, each committed exactly once, the rest retried on a new connection', async () => {
    const committed = new Map<string, number>();
    let seen = 0;
    const srv = kit.track(
      await startNodeH2({
        tls: kit.fx.server,
        handler: committingHandler(committed, 150, (_s, _h, ctx) => {
          if (++seen === 20) ctx.server.goawayAll();
        }),
      }),
    );
    const s = kit.session();
    const reqs = Array.from({ length: 60 }, (_, i) =>
      i % 2
        ? s.request(srv.url(`/post/${i}`), { method: 'POST', headers: { 'x-req-id': String(i) }, body: patternBytes(10_000, i) })
        : s.request(srv.url(`/get/${i}`), { headers: { 'x-req-id': String(i) } }),
    );
    const res = await within(Promise.all(reqs), 30_000, '60 requests across a GOAWAY');
    res.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe(`${i % 2 ? 'POST' : 'GET'} ${i}`);
    });
    expect(committed.size).toBe(60);
    expect([...committed.values()].every((n) => n === 1)).toBe(true);
    expect(srv.sessionCount).toBeGreaterThanOrEqual(2);
  });

  it('REFUSED_STREAM is retried whatever the method: 5 refused POSTs are committed once each', async () => {
    const committed = new Map<string, number>();
    let refused = 0;
    const base = committingHandler(committed, 0);
    const srv = kit.track(
      await startNodeH2({
        tls: kit.fx.server,
        handler: (stream, headers, ctx) => {
          if (headers[':method'] === 'POST' && refused < 5) {
            refused++;
            stream.close(NGHTTP2_REFUSED_STREAM);
            return;
          }
          base(stream, headers, ctx);
        },
      }),
    );
    const s = kit.session();
    const res = await within(
      Promise.all(Array.from({ length: 10 }, (_, i) => s.request(srv.url('/p'), { method: 'POST', headers: { 'x-req-id': String(i) }, body: `body ${i}` }))),
      20_000,
      'POSTs',
    );
    expect(res.every((r) => r.status === 200)).toBe(true);
    expect(refused).toBe(5);
    expect(committed.size).toBe(10);
    expect([...committed.values()].every((n) => n === 1)).toBe(true);
    expect(srv.streams).toHaveLength(15);
  });

  it('after a GOAWAY on an idle connection the next request opens a new one', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session();
    expect((await s.request(srv.url('/a'))).status).toBe(200);
    const got = new Promise<void>((r) => srv.sessions[0]!.once('close', () => r()));
    srv.goawayAll();
    // Let the GOAWAY arrive (the server closes its side once idle).
    srv.sessions[0]!.close();
    await within(got, 5000, 'server session close');
    const r = await s.request(srv.url('/b'));
    expect(r.status).toBe(200);
    expect(srv.sessionCount).toBe(2);
    expect(srv.streams.map((x) => [x.session, x.path])).toEqual([
      [1, '/a'],
      [2, '/b'],
    ]);
  });

  it('GOAWAY(INTERNAL_ERROR) covering an in-flight POST, then close: ERR_HTTP2_GOAWAY (no retry, the POST may have run)', async () => {
    const srv = kit.track(
      await startH2RawServer({ tls: kit.fx.server }, async (c) => {
        await c.handshake();
        const req = await c.readRequest();
        await c.readBody(req.streamId);
        await c.send(frames.goaway(req.streamId, H2Error.INTERNAL_ERROR, 'going'));
        await sleep(50);
        c.destroy();
      }),
    );
    const s = kit.session();
    const err = await rejection(s.request(srv.url('/post', 'localhost'), { method: 'POST', body: 'once' }));
    expect(err).toBeInstanceOf(UvfetchError);
    expect(err.code).toBe('ERR_HTTP2_GOAWAY');
    expect(err.h2Code).toBe(H2Error.INTERNAL_ERROR);
    expect(srv.connectionCount).toBe(1);
  });

  it('GOAWAY with last-stream-id 0 before answering: the request was not processed and succeeds on a new connection', async () => {
    const srv = kit.track(
      await startH2RawServer({ tls: kit.fx.server }, [
        async (c) => {
          await c.handshake();
          await c.readRequest();
          await c.send(frames.goaway(0, H2Error.NO_ERROR));
          await sleep(100);
          c.destroy();
        },
        async (c) => {
          await c.handshake();
          await c.serve((req, conn) => conn.respond(req.streamId, 200, 'second connection'));
        },
      ]),
    );
    const s = kit.session();
    const r = await within(s.request(srv.url('/x', 'localhost'), { method: 'POST', body: 'data' }), 10_000, 'request');
    expect(r.body.toString()).toBe('second connection');
    expect(srv.connectionCount).toBe(2);
  });
});

describe('RST_STREAM(CANCEL) on abort and timeouts; the connection stays', () => {
  it('timeout.headers → ERR_HEADERS_TIMEOUT', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session();
    expect((await s.request(srv.url('/warm'))).status).toBe(200);
    const other = s.request(srv.url('/delay/800'));
    const err = await rejection(s.request(srv.url('/hold'), { timeout: { headers: 300 } }));
    expect(err.code).toBe('ERR_HEADERS_TIMEOUT');
    await waitFor(() => srv.streams.find((x) => x.path === '/hold')?.closed === true, 5000, 'stream close');
    expect(srv.streams.find((x) => x.path === '/hold')!.rstCode).toBe(NGHTTP2_CANCEL);
    expect((await other).status).toBe(200);
    expect((await s.request(srv.url('/after'))).status).toBe(200);
    expect(srv.sessionCount).toBe(1);
  });

  it('AbortSignal → ERR_ABORTED; the same connection serves the rest', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session();
    expect((await s.request(srv.url('/warm'))).status).toBe(200);
    const other = s.request(srv.url('/delay/600'));
    const ac = new AbortController();
    const p = s.request(srv.url('/hold'), { signal: ac.signal });
    await waitFor(() => srv.streams.some((x) => x.path === '/hold'), 5000, 'the held stream at the server');
    ac.abort();
    const err = await rejection(p);
    expect(err.code).toBe('ERR_ABORTED');
    await waitFor(() => srv.streams.find((x) => x.path === '/hold')?.closed === true, 5000, 'stream close');
    expect(srv.streams.find((x) => x.path === '/hold')!.rstCode).toBe(NGHTTP2_CANCEL);
    expect((await other).status).toBe(200);
    expect(srv.streams.find((x) => x.path === '/delay/600')!.rstCode).toBe(0);
    expect((await s.request(srv.url('/after'))).status).toBe(200);
    expect(srv.sessionCount).toBe(1);
    expect(s.stats().connections.streams).toBe(0);
  });

  it('timeout.body on a stalled body → ERR_BODY_TIMEOUT, CANCEL sent', async () => {
    const handler: NodeH2Handler = (stream, headers, ctx) => {
      if (headers[':path'] !== '/stall') return defaultRoutes(stream, headers, ctx);
      stream.respond({ ':status': 200 });
      stream.write('first bytes');
    };
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server, handler }));
    const s = kit.session();
    const st = await s.stream(srv.url('/stall'), { timeout: { body: 300 } });
    const err = await rejection(st.buffer());
    expect(err.code).toBe('ERR_BODY_TIMEOUT');
    await waitFor(() => srv.streams[0]!.closed, 5000, 'stream close');
    expect(srv.streams[0]!.rstCode).toBe(NGHTTP2_CANCEL);
    expect((await s.request(srv.url('/after'))).status).toBe(200);
    expect(srv.sessionCount).toBe(1);
  });

  it('destroying a stream() body mid-way sends CANCEL; the connection stays', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session();
    const st = await s.stream(srv.url(`/bytes/${32 * 1024 * 1024}`));
    for await (const _ of st.body) break; // one chunk, then destroy (for-await's return does it)
    await waitFor(() => srv.streams[0]!.closed, 5000, 'stream close');
    expect(srv.streams[0]!.rstCode).toBe(NGHTTP2_CANCEL);
    expect((await s.request(srv.url('/after'))).status).toBe(200);
    expect(srv.sessionCount).toBe(1);
  });
});

describe('server resets and session close', () => {
  it('RST_STREAM(INTERNAL_ERROR) from the server → ERR_HTTP2_STREAM_RESET with h2Code 2; the connection stays', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session();
    const err = await rejection(s.request(srv.url(`/reset/${NGHTTP2_INTERNAL_ERROR}`)));
    expect(err).toBeInstanceOf(UvfetchError);
    expect(err.code).toBe('ERR_HTTP2_STREAM_RESET');
    expect(err.h2Code).toBe(NGHTTP2_INTERNAL_ERROR);
    expect((await s.request(srv.url('/after'))).status).toBe(200);
    expect(srv.sessionCount).toBe(1);
  });

  it('session.close() sends GOAWAY, lets the in-flight stream finish, then refuses new requests', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session();
    const inFlight = s.request(srv.url('/delay/500'));
    await waitFor(() => srv.streams.length === 1, 5000, 'the stream at the server');
    const goaway = new Promise<number>((r) => srv.sessions[0]!.once('goaway', (code: number) => r(code)));
    const closing = s.close();
    expect(await within(goaway, 5000, 'GOAWAY at the server')).toBe(0);
    const r = await within(inFlight, 5000, 'in-flight request');
    expect(r.status).toBe(200);
    await within(closing, 5000, 'session.close()');
    expect(srv.streams[0]!.rstCode).toBe(0);
    const err = await rejection(s.request(srv.url('/late')));
    expect(err.code).toBe('ERR_SESSION_CLOSED');
  });

  it('raw server: the client answers a GOAWAY-less close of an idle connection by dialling again', async () => {
    const srv = kit.track(
      await startH2RawServer({ tls: kit.fx.server }, async (c) => {
        await c.handshake();
        const req = await c.readRequest();
        await c.send(frames.headers(req.streamId, hpack.block([[':status', '200']]), { endStream: true }));
        await sleep(50);
        c.destroy();
      }),
    );
    const s = kit.session();
    expect((await s.request(srv.url('/', 'localhost'))).status).toBe(200);
    await waitFor(() => srv.conns[0]!.isClosed, 5000, 'close');
    await sleep(50);
    expect((await s.request(srv.url('/', 'localhost'))).status).toBe(200);
    expect(srv.connectionCount).toBe(2);
    expect(srv.conns[1]!.frames.some((f) => f.type === FrameType.HEADERS)).toBe(true);
  });
});

describe('keep-alive PING (h2.pingInterval)', () => {
  it('PINGs an idle connection; the server ACKs and the connection stays', async () => {
    const seen: number[] = [];
    const srv = kit.track(
      await startH2RawServer({ tls: kit.fx.server }, async (c) => {
        await c.handshake();
        const req = await c.readRequest();
        await c.send(frames.headers(req.streamId, hpack.block([[':status', '200']]), { endStream: true }));
        // ACK every PING the client sends.
        for (let i = c.cursor; !c.isClosed; ) {
          await sleep(20);
          for (; i < c.frames.length; i++) {
            const f = c.frames[i]!;
            if (f.type === FrameType.PING && (f.flags & 1) === 0) {
              seen.push(Date.now());
              await c.send(frames.ping(f.payload, true));
            }
          }
        }
      }),
    );
    const s = kit.session({ h2: { pingInterval: 200 } });
    expect((await s.request(srv.url('/', 'localhost'))).status).toBe(200);
    await waitFor(() => seen.length >= 3, 5000, 'three PINGs');
    expect(srv.conns[0]!.isClosed).toBe(false);
    expect(s.stats().connections.http2).toBe(1);
  });

  it('a server that does not answer PING: the connection fails with ERR_HTTP2_PROTOCOL, well before the headers timeout', async () => {
    const srv = kit.track(
      await startH2RawServer({ tls: kit.fx.server }, async (c) => {
        await c.handshake();
        await c.readRequest(); // never answered, PINGs never ACKed
        await c.closed;
      }),
    );
    const s = kit.session({ h2: { pingInterval: 200 }, timeout: { headers: 20_000 } });
    const t0 = Date.now();
    const e = await rejection(s.request(srv.url('/', 'localhost')));
    expect(e).toBeInstanceOf(UvfetchError);
    expect(e.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(e.reason).toMatch(/PING/);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(srv.conns[0]!.frames.some((f) => f.type === FrameType.PING)).toBe(true);
  });
});
