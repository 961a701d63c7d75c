// Hostile HTTP/2 servers, written byte by byte with the raw server (hand-encoded HPACK, frames no
// library would send). Each case asserts the typed error (code and, where the RFC fixes it, the h2
// error code), that the same session still works afterwards against a healthy node:http2 server, and
// that it closes cleanly; the floods and the HPACK bomb also keep memory bounded. Nothing hangs:
// every request has a deadline.

import { describe, expect, it } from 'vitest';
import { type RequestOptions, type SessionOptions, UvfetchError } from '../../lib/index.js';
import { FrameType, flood, frames, H2Error, type H2RawServer, type H2Script, hpack, Setting, sleep, startH2RawServer } from '../helpers/h2-raw-server.js';
import { h2Kit, startNodeH2 } from '../helpers/h2-servers.js';
import { fdCount, rejection, within } from '../helpers/http-servers.js';

const kit = h2Kit();
const MiB = 1024 * 1024;

interface Outcome {
  err: UvfetchError;
  srv: H2RawServer;
  ms: number;
}

/**
 * Runs one request against a raw server running `script` and returns its error; then checks the
 * session against a healthy server and closes it (both bounded).
 */
async function hostile(
  script: H2Script | H2Script[],
  o: { session?: SessionOptions; request?: RequestOptions; deadlineMs?: number; warmup?: number } = {},
): Promise<Outcome> {
  const srv = kit.track(await startH2RawServer({ tls: kit.fx.server }, script));
  const healthy = kit.track(await startNodeH2({ tls: kit.fx.server }));
  const s = kit.session(o.session);
  for (let i = 0; i < (o.warmup ?? 0); i++) expect((await within(s.request(srv.url('/', 'localhost')), 10_000, 'warm-up request')).status).toBe(200);
  const t0 = Date.now();
  const err = await rejection(s.request(srv.url('/', 'localhost'), o.request), o.deadlineMs ?? 15_000);
  const ms = Date.now() - t0;
  expect(err).toBeInstanceOf(UvfetchError);
  const ok = await within(s.request(healthy.url('/after')), 10_000, 'a request to a healthy server afterwards');
  expect(ok.status).toBe(200);
  expect(ok.info.httpVersion).toBe('2');
  await within(s.close(), 10_000, 'session.close() after a hostile server');
  expect(srv.errors).toEqual([]);
  return { err, srv, ms };
}

/** The usual start of a script: SETTINGS exchange, then the first request. */
async function start(c: Parameters<H2Script>[0]) {
  await c.handshake();
  return c.readRequest();
}

const status200 = hpack.literal(':status', '200');

describe('header blocks', () => {
  it('HPACK bomb: one 4 KB entry indexed 12,000 times (48 MB decoded) → ERR_HEADERS_TOO_LARGE, memory bounded, connection still usable', async () => {
    const rss0 = process.memoryUsage().rss;
    const { err, srv } = await hostile(async (c) => {
      const req = await start(c);
      const block = Buffer.concat([status200, hpack.literalIndexed('x-bomb', 'a'.repeat(4000)), Buffer.alloc(12_000, hpack.indexed(62)[0]!)]);
      await c.send(frames.headers(req.streamId, block, { endStream: true }));
      // A stream error only: the connection serves the next request.
      await c.serve();
    });
    expect(err.code).toBe('ERR_HEADERS_TOO_LARGE');
    expect(process.memoryUsage().rss - rss0).toBeLessThan(200 * MiB);
    expect(srv.connectionCount).toBe(1);
  });

  it('HPACK bomb spread over CONTINUATION frames → ERR_HEADERS_TOO_LARGE', async () => {
    const { err } = await hostile(async (c) => {
      const req = await start(c);
      const idx = Buffer.alloc(16_000, hpack.indexed(62)[0]!);
      const parts = [
        frames.headers(req.streamId, Buffer.concat([status200, hpack.literalIndexed('x-bomb', 'b'.repeat(4000))]), { endHeaders: false, endStream: true }),
      ];
      for (let i = 0; i < 10; i++) parts.push(frames.continuation(req.streamId, idx, i === 9));
      await c.send(...parts);
      await c.serve();
    });
    expect(err.code).toBe('ERR_HEADERS_TOO_LARGE');
  });

  it('a plain header block over maxHeaderSize (8 KiB) → ERR_HEADERS_TOO_LARGE', async () => {
    const { err } = await hostile(
      async (c) => {
        const req = await start(c);
        const fields: Array<[string, string]> = [[':status', '200']];
        for (let i = 0; i < 10; i++) fields.push([`x-big-${i}`, 'v'.repeat(1000)]);
        await c.send(frames.headers(req.streamId, hpack.block(fields), { endStream: true }));
        await c.serve();
      },
      { request: { maxHeaderSize: 8192 } },
    );
    expect(err.code).toBe('ERR_HEADERS_TOO_LARGE');
  });

  it('CONTINUATION flood (small headers, never END_HEADERS) → ERR_HTTP2_PROTOCOL ENHANCE_YOUR_CALM or ERR_HEADERS_TOO_LARGE, quickly', async () => {
    let written = 0;
    const { err, ms } = await hostile(async (c) => {
      const req = await start(c);
      await c.send(frames.headers(req.streamId, status200, { endHeaders: false }));
      for (let i = 0; i < 100_000 && c.writable && !c.isClosed; i += 500) {
        const batch: Buffer[] = [];
        for (let j = i; j < i + 500; j++) batch.push(frames.continuation(req.streamId, hpack.literal(`x-h${j}`, 'v'), false));
        await c.send(...batch);
        written = i + 500;
      }
    });
    if (err.code === 'ERR_HTTP2_PROTOCOL') expect(err.h2Code).toBe(H2Error.ENHANCE_YOUR_CALM);
    else expect(err.code).toBe('ERR_HEADERS_TOO_LARGE');
    expect(ms).toBeLessThan(10_000);
    expect(written).toBeLessThan(100_000);
  });

  it('empty CONTINUATION flood → ERR_HTTP2_PROTOCOL ENHANCE_YOUR_CALM', async () => {
    const { err } = await hostile(async (c) => {
      const req = await start(c);
      await c.send(frames.headers(req.streamId, status200, { endHeaders: false }));
      await flood(c, frames.continuation(req.streamId, Buffer.alloc(0), false), 200_000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.ENHANCE_YOUR_CALM);
  });
});

describe('floods', () => {
  const cases: Array<[string, (streamId: number) => Buffer, number]> = [
    ['SETTINGS', () => frames.settings([]), 5_000],
    ['PING', () => frames.ping(Buffer.from('floodpng')), 5_000],
    ['RST_STREAM on a closed stream', () => frames.rstStream(1, H2Error.CANCEL), 20_000],
    ['WINDOW_UPDATE (+1 on stream 0)', () => frames.windowUpdate(0, 1), 100_000],
    ['PRIORITY', () => frames.priority(101, { dependsOn: 0, weight: 16 }), 20_000],
    ['empty DATA', (id) => frames.data(id, Buffer.alloc(0)), 20_000],
  ];
  for (const [name, frame, count] of cases) {
    it(`${name} flood → ERR_HTTP2_PROTOCOL ENHANCE_YOUR_CALM, memory bounded`, async () => {
      const rss0 = process.memoryUsage().rss;
      const rst = name.startsWith('RST_STREAM');
      const { err } = await hostile(
        async (c) => {
          let req = await start(c);
          if (rst) {
            // The warm-up request (stream 1) is answered, so the RSTs name a closed stream while the
            // client waits on the next one.
            await c.respond(req.streamId);
            req = await c.readRequest();
          }
          if (name === 'empty DATA') await c.send(frames.headers(req.streamId, status200));
          await flood(c, frame(req.streamId), count);
        },
        { warmup: rst ? 1 : 0 },
      );
      expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
      expect(err.h2Code).toBe(H2Error.ENHANCE_YOUR_CALM);
      expect(process.memoryUsage().rss - rss0).toBeLessThan(200 * MiB);
    });
  }
});

describe('flow control and frame sizes', () => {
  it('WINDOW_UPDATE past 2^31-1 on the connection → ERR_HTTP2_PROTOCOL FLOW_CONTROL_ERROR', async () => {
    const { err } = await hostile(async (c) => {
      await start(c);
      await c.send(frames.windowUpdate(0, 0x7fffffff));
      await sleep(2000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.FLOW_CONTROL_ERROR);
  });

  it('WINDOW_UPDATE past 2^31-1 on the stream → a typed FLOW_CONTROL_ERROR for that stream', async () => {
    const { err } = await hostile(async (c) => {
      const req = await start(c);
      await c.send(frames.windowUpdate(req.streamId, 0x7fffffff));
      await sleep(2000);
    });
    expect(['ERR_HTTP2_PROTOCOL', 'ERR_HTTP2_STREAM_RESET']).toContain(err.code);
    expect(err.h2Code).toBe(H2Error.FLOW_CONTROL_ERROR);
  });

  it('SETTINGS INITIAL_WINDOW_SIZE 2^31 → ERR_HTTP2_PROTOCOL FLOW_CONTROL_ERROR', async () => {
    const { err } = await hostile(async (c) => {
      await c.send(frames.settings([[Setting.INITIAL_WINDOW_SIZE, 0x80000000]]));
      await c.preface();
      await sleep(2000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.FLOW_CONTROL_ERROR);
  });

  it('WINDOW_UPDATE with increment 0 on the connection → ERR_HTTP2_PROTOCOL PROTOCOL_ERROR', async () => {
    const { err } = await hostile(async (c) => {
      await start(c);
      await c.send(frames.windowUpdate(0, 0));
      await sleep(2000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.PROTOCOL_ERROR);
  });

  it('a DATA frame larger than the client SETTINGS_MAX_FRAME_SIZE (16384) → ERR_HTTP2_PROTOCOL FRAME_SIZE_ERROR', async () => {
    const { err } = await hostile(async (c) => {
      const req = await start(c);
      await c.send(frames.headers(req.streamId, status200), frames.data(req.streamId, Buffer.alloc(20_000, 0x61), true));
      await sleep(2000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.FRAME_SIZE_ERROR);
  });

  it('a frame header announcing 16 MiB → FRAME_SIZE_ERROR at once (the client does not wait for the payload)', async () => {
    const { err, ms } = await hostile(async (c) => {
      const req = await start(c);
      await c.send(frames.headers(req.streamId, status200), frames.raw(FrameType.DATA, 0, req.streamId, Buffer.alloc(100), 0xffffff));
      await sleep(5000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.FRAME_SIZE_ERROR);
    expect(ms).toBeLessThan(4000);
  });

  it('DATA beyond content-length → a typed stream error (PROTOCOL_ERROR); the connection serves the next request', async () => {
    const srv = kit.track(
      await startH2RawServer({ tls: kit.fx.server }, async (c) => {
        const req = await start(c);
        await c.send(
          frames.headers(
            req.streamId,
            hpack.block([
              [':status', '200'],
              ['content-length', '5'],
            ]),
          ),
          frames.data(req.streamId, 'helloworld', true),
        );
        await c.serve((r, conn) => conn.respond(r.streamId, 200, 'fine'));
      }),
    );
    const s = kit.session();
    const err = await rejection(s.request(srv.url('/', 'localhost')), 10_000);
    expect(err).toBeInstanceOf(UvfetchError);
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.PROTOCOL_ERROR);
    const next = await within(s.request(srv.url('/', 'localhost')), 10_000, 'next request');
    expect(next.body.toString()).toBe('fine');
    expect(srv.connectionCount).toBe(1);
    // The client reset the bad stream.
    expect(srv.conns[0]!.frames.some((f) => f.type === FrameType.RST_STREAM && f.streamId === 1)).toBe(true);
  });

  it('DATA shorter than content-length then END_STREAM → a typed error', async () => {
    const { err } = await hostile(async (c) => {
      const req = await start(c);
      await c.send(
        frames.headers(
          req.streamId,
          hpack.block([
            [':status', '200'],
            ['content-length', '100'],
          ]),
        ),
        frames.data(req.streamId, 'short', true),
      );
      await c.serve();
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.PROTOCOL_ERROR);
  });
});

describe('SETTINGS', () => {
  it('a server that never ACKs our SETTINGS (and never answers): ERR_HTTP2_PROTOCOL SETTINGS_TIMEOUT within h2.settingsTimeout', async () => {
    const { err, ms, srv } = await hostile(
      async (c) => {
        await c.handshake({ ack: false });
        await c.readRequest();
        await sleep(8000);
      },
      { session: { h2: { settingsTimeout: 1000 } } },
    );
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(ms).toBeLessThan(6000);
    // On the wire: GOAWAY(SETTINGS_TIMEOUT); the error names the same code.
    const goaway = await srv.conns[0]!.waitFrame((f) => f.type === FrameType.GOAWAY, 3000, "the client's GOAWAY");
    expect(goaway.payload.readUInt32BE(4)).toBe(H2Error.SETTINGS_TIMEOUT);
    expect(err.h2Code).toBe(H2Error.SETTINGS_TIMEOUT);
  });

  it('a server that sends nothing at all after TLS: a typed timeout, no hang', async () => {
    const { err, ms } = await hostile(
      async (c) => {
        await c.preface();
        await sleep(8000);
      },
      { session: { h2: { settingsTimeout: 1000 } }, request: { timeout: { headers: 1500 } } },
    );
    expect(['ERR_HTTP2_PROTOCOL', 'ERR_HEADERS_TIMEOUT']).toContain(err.code);
    expect(ms).toBeLessThan(6000);
  });

  it('SETTINGS with 100 entries → ERR_HTTP2_PROTOCOL', async () => {
    const { err } = await hostile(async (c) => {
      await c.send(frames.settings(Array.from({ length: 100 }, (_, i) => [0x100 + i, i] as const)));
      await c.preface();
      await sleep(2000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(typeof err.h2Code).toBe('number');
  });

  it('SETTINGS MAX_FRAME_SIZE below 16384 → ERR_HTTP2_PROTOCOL PROTOCOL_ERROR', async () => {
    const { err } = await hostile(async (c) => {
      await c.send(frames.settings([[Setting.MAX_FRAME_SIZE, 1000]]));
      await c.preface();
      await sleep(2000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.PROTOCOL_ERROR);
  });

  it('ENABLE_PUSH 2 from the server → ERR_HTTP2_PROTOCOL PROTOCOL_ERROR', async () => {
    const { err } = await hostile(async (c) => {
      await c.send(frames.settings([[Setting.ENABLE_PUSH, 2]]));
      await c.preface();
      await sleep(2000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.PROTOCOL_ERROR);
  });
});

describe('stream state and pseudo-headers', () => {
  it('DATA on an idle stream → ERR_HTTP2_PROTOCOL PROTOCOL_ERROR', async () => {
    const { err } = await hostile(async (c) => {
      await start(c);
      await c.send(frames.data(99, 'nobody asked'));
      await sleep(2000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.PROTOCOL_ERROR);
  });

  it('RST_STREAM on an idle stream → ERR_HTTP2_PROTOCOL PROTOCOL_ERROR', async () => {
    const { err } = await hostile(async (c) => {
      await start(c);
      await c.send(frames.rstStream(77, H2Error.CANCEL));
      await sleep(2000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.PROTOCOL_ERROR);
  });

  it('PUSH_PROMISE although push is disabled → ERR_HTTP2_PROTOCOL PROTOCOL_ERROR', async () => {
    const { err } = await hostile(async (c) => {
      const req = await start(c);
      await c.send(
        frames.pushPromise(
          req.streamId,
          2,
          hpack.block([
            [':method', 'GET'],
            [':path', '/pushed'],
            [':scheme', 'https'],
            [':authority', 'localhost'],
          ]),
        ),
      );
      await sleep(2000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
    expect(err.h2Code).toBe(H2Error.PROTOCOL_ERROR);
  });

  it('HTTP/1.1 bytes on a connection that chose h2 → ERR_HTTP2_PROTOCOL', async () => {
    const { err } = await hostile(async (c) => {
      await c.preface();
      await c.send(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
      await sleep(2000);
    });
    expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
  });

  // Bad responses on one connection, one per request: each is a stream error; the connection lives on.
  const bad: Array<[string, Array<[string, string]>]> = [
    ['no :status', [['content-type', 'text/plain']]],
    [
      ':path in a response',
      [
        [':status', '200'],
        [':path', '/'],
      ],
    ],
    [
      ':status after a regular header',
      [
        ['x-first', '1'],
        [':status', '200'],
      ],
    ],
    [
      'two :status',
      [
        [':status', '200'],
        [':status', '204'],
      ],
    ],
    ['a non-numeric :status', [[':status', '2x0']]],
    ['a :status out of range (051)', [[':status', '051']]],
    [
      'an upper-case header name',
      [
        [':status', '200'],
        ['X-Upper', 'v'],
      ],
    ],
    [
      'a connection-specific header',
      [
        [':status', '200'],
        ['connection', 'close'],
      ],
    ],
    [
      'an unknown pseudo-header',
      [
        [':status', '200'],
        [':weird', 'x'],
      ],
    ],
  ];
  it(`bad response pseudo-headers (${bad.length} kinds) → each a typed error, all on one surviving connection`, async () => {
    let i = 0;
    const srv = kit.track(
      await startH2RawServer({ tls: kit.fx.server }, async (c) => {
        await c.handshake();
        await c.serve((req, conn) => {
          const which = bad[i++];
          if (which === undefined) return conn.respond(req.streamId, 200, 'good');
          return conn.send(frames.headers(req.streamId, hpack.block(which[1]), { endStream: true }));
        });
      }),
    );
    const s = kit.session();
    // RFC 9113 §8.1.1: a malformed response is a stream error of type PROTOCOL_ERROR — in the error
    // and in the RST_STREAM the client sends for it.
    const got: Array<[string, string, number | undefined, number | undefined]> = [];
    for (const [name] of bad) {
      const err = await rejection(s.request(srv.url('/', 'localhost')), 10_000);
      expect(err, name).toBeInstanceOf(UvfetchError);
      const streamId = srv.conns[0]!.frames.filter((f) => f.type === FrameType.HEADERS).at(-1)!.streamId;
      const rst = await srv.conns[0]!.waitFrame((f) => f.type === FrameType.RST_STREAM && f.streamId === streamId, 3000, `RST_STREAM for ${name}`);
      got.push([name, err.code, err.h2Code, rst.payload.readUInt32BE(0)]);
    }
    expect(got).toEqual(bad.map(([name]) => [name, 'ERR_HTTP2_PROTOCOL', H2Error.PROTOCOL_ERROR, H2Error.PROTOCOL_ERROR]));
    const good = await within(s.request(srv.url('/', 'localhost')), 10_000, 'a good response after the bad ones');
    expect(good.body.toString()).toBe('good');
    expect(srv.connectionCount).toBe(1);
    await within(s.close(), 10_000, 'close');
  });
});

describe('no leaks', () => {
  it('ten hostile connections in a row leave no descriptor behind', async () => {
    const healthy = kit.track(await startNodeH2({ tls: kit.fx.server }));
    // Warm up once (lazy loads, the fixtures) before counting.
    const w = kit.session();
    await w.request(healthy.url('/warm'));
    await w.destroy();
    const fd0 = fdCount();
    for (let round = 0; round < 10; round++) {
      const srv = await startH2RawServer({ tls: kit.fx.server }, async (c) => {
        await start(c);
        await flood(c, frames.ping(), 1000);
      });
      const s = kit.session();
      const err = await rejection(s.request(srv.url('/', 'localhost')), 10_000);
      expect(err.code).toBe('ERR_HTTP2_PROTOCOL');
      await within(s.destroy(), 10_000, 'destroy');
      await srv.close();
    }
    await sleep(100);
    expect(fdCount()).toBeLessThanOrEqual(fd0 + 2);
  });
});
