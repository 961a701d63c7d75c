// What the client sends first on an HTTP/2 connection, read from the bytes by the raw server and
// from nghttpd's -v frame log (two independent parsers), compared with the client's own
// `res.info.h2Fingerprint`: the exact preface, SETTINGS in the configured order and values
// (push refused), the connection WINDOW_UPDATE, PRIORITY frames, HEADERS priority, pseudo-header
// order; regular headers in the request's order, lower-cased, without connection-specific ones
// (node:http2 rawHeaders); browser profiles' Akamai strings.

import { describe, expect, it } from 'vitest';
import type { Session } from '../../lib/index.js';
import { akamaiFingerprint, FrameFlag, FrameType, type H2RawServer, PREFACE, parseSettings, Setting, startH2RawServer } from '../helpers/h2-raw-server.js';
import { h2Kit, nghttpdFingerprint, peerMissing, startNghttpd, startNodeH2 } from '../helpers/h2-servers.js';
import { within } from '../helpers/http-servers.js';

const kit = h2Kit();

/** A raw TLS h2 server answering 200 "ok" to everything (its frames say what the client sent). */
async function rawServer(): Promise<H2RawServer> {
  return kit.track(
    await startH2RawServer({ tls: kit.fx.server }, async (c) => {
      await c.handshake();
      await c.serve();
    }),
  );
}

async function get(s: Session, url: string) {
  const r = await within(s.request(url), 10_000, `GET ${url}`);
  expect(r.status).toBe(200);
  expect(r.info.httpVersion).toBe('2');
  return r;
}

/** Pseudo-header names of a node:http2 stream's rawHeaders, in wire order. */
const pseudo = (raw: string[]) => raw.filter((_, i) => i % 2 === 0).filter((n) => n.startsWith(':'));

describe('the preface', () => {
  it('exact bytes: the 24-byte preface, then SETTINGS (with ENABLE_PUSH 0), only SETTINGS / WINDOW_UPDATE / PRIORITY before the first HEADERS', async () => {
    const srv = await rawServer();
    const r = await get(kit.session(), srv.url('/', 'localhost'));
    const c = srv.conns[0]!;
    expect(c.received.subarray(0, 24).equals(PREFACE)).toBe(true);
    expect(c.prefaceOk).toBe(true);
    const first = c.frames[0]!;
    expect(first.type).toBe(FrameType.SETTINGS);
    expect(first.flags & FrameFlag.ACK).toBe(0);
    expect(first.streamId).toBe(0);
    expect(first.payload.length % 6).toBe(0);
    expect(parseSettings(first.payload)).toContainEqual([Setting.ENABLE_PUSH, 0]);
    const hi = c.frames.findIndex((f) => f.type === FrameType.HEADERS);
    expect(hi).toBeGreaterThan(0);
    const before = c.frames.slice(0, hi).filter((f) => !(f.type === FrameType.SETTINGS && f.flags & FrameFlag.ACK));
    expect(before.every((f) => [FrameType.SETTINGS, FrameType.WINDOW_UPDATE, FrameType.PRIORITY].includes(f.type as 4 | 8 | 2))).toBe(true);
    expect(before.filter((f) => f.type === FrameType.SETTINGS)).toHaveLength(1);
    // The self-report is what the bytes say.
    expect(r.info.h2Fingerprint).toBe(akamaiFingerprint(c.frames));
    // A WINDOW_UPDATE on stream 0, when sent, comes right after SETTINGS.
    const wu = c.frames.findIndex((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0);
    if (wu >= 0 && wu < hi) expect(wu).toBe(1);
  });

  it.skipIf(peerMissing('nghttpd'))("nghttpd's frame log agrees with res.info.h2Fingerprint (default options)", async () => {
    const srv = kit.track(await startNghttpd({ tls: kit.fx.server }));
    const s = kit.session();
    const r = await get(s, srv.url('/index.html'));
    const log = await srv.log((l) => l.frames.some((f) => f.dir === 'recv' && f.type === 'HEADERS'));
    expect(log.conns).toHaveLength(1);
    expect(r.info.h2Fingerprint).toBe(nghttpdFingerprint(log, log.conns[0]!));
    // Same connection, same fingerprint on the next response.
    expect((await get(s, srv.url('/index.html'))).info.h2Fingerprint).toBe(r.info.h2Fingerprint);
  });

  it('HTTP/1 responses have no h2Fingerprint', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server, allowHTTP1: true }));
    const r = await kit.session({ http2: false }).request(srv.url('/'));
    expect(r.info.httpVersion).toBe('1.1');
    expect(r.info.h2Fingerprint).toBeUndefined();
  });
});

describe('h2 options on the wire', () => {
  const custom = {
    settings: [
      ['MAX_HEADER_LIST_SIZE', 100000],
      [1, 8192],
      ['SETTINGS_ENABLE_PUSH', 0],
      ['initial_window_size', 1048576],
      ['MAX_CONCURRENT_STREAMS', 1000],
    ] as Array<[string | number, number]>,
    connectionWindowIncrement: 12345678,
    priorityFrames: [
      { streamId: 3, dependsOn: 0, weight: 201 },
      { streamId: 5, dependsOn: 0, weight: 101 },
      { streamId: 7, dependsOn: 0, weight: 1, exclusive: true },
    ],
    headersPriority: { dependsOn: 0, weight: 42, exclusive: false },
    pseudoHeaderOrder: ['method', 'path', 'authority', 'scheme'] as Array<'method' | 'authority' | 'scheme' | 'path'>,
  };
  const expected = '6:100000;1:8192;2:0;4:1048576;3:1000|12345678|3:0:0:201,5:0:0:101,7:1:0:1|m,p,a,s';

  it('raw server: SETTINGS order and values, WINDOW_UPDATE, PRIORITY frames, HEADERS priority, pseudo order — byte for byte', async () => {
    const srv = await rawServer();
    const s = kit.session({ h2: custom });
    const r1 = await get(s, srv.url('/one?a=1&b=2', 'localhost'));
    const r2 = await get(s, srv.url('/two', 'localhost'));
    const c = srv.conns[0]!;
    expect(srv.connectionCount).toBe(1);
    expect(parseSettings(c.frames[0]!.payload)).toEqual([
      [6, 100000],
      [1, 8192],
      [2, 0],
      [4, 1048576],
      [3, 1000],
    ]);
    expect(c.frames[1]!.type).toBe(FrameType.WINDOW_UPDATE);
    expect(c.frames[1]!.streamId).toBe(0);
    expect(c.frames[1]!.payload.readUInt32BE(0)).toBe(12345678);
    const prios = c.frames.filter((f) => f.type === FrameType.PRIORITY);
    expect(prios.map((f) => [f.streamId, f.payload.toString('hex')])).toEqual([
      [3, '00000000c8'],
      [5, '0000000064'],
      [7, '8000000000'],
    ]);
    const heads = c.frames.filter((f) => f.type === FrameType.HEADERS);
    expect(heads).toHaveLength(2);
    for (const h of heads) {
      expect(h.flags & FrameFlag.PRIORITY).toBe(FrameFlag.PRIORITY);
    }
    expect(akamaiFingerprint(c.frames)).toBe(expected);
    expect(r1.info.h2Fingerprint).toBe(expected);
    expect(r2.info.h2Fingerprint).toBe(expected);
  });

  it('raw server: the decoded HEADERS carry the priority and the pseudo-headers in the configured order', async () => {
    const seen: Array<{ names: Array<string | undefined>; priority?: { dependsOn: number; weight: number; exclusive: boolean } }> = [];
    const srv = kit.track(
      await startH2RawServer({ tls: kit.fx.server }, async (c) => {
        await c.handshake();
        await c.serve((req, conn) => {
          seen.push({ names: req.fields.map((f) => f.name), priority: req.priority });
          return conn.respond(req.streamId);
        });
      }),
    );
    const s = kit.session({ h2: custom });
    await get(s, srv.url('/a', 'localhost'));
    await get(s, srv.url('/b', 'localhost'));
    expect(seen).toHaveLength(2);
    for (const x of seen) {
      expect(x.priority).toEqual({ dependsOn: 0, weight: 42, exclusive: false });
      expect(x.names.filter((n) => n?.startsWith(':'))).toEqual([':method', ':path', ':authority', ':scheme']);
      // Pseudo-headers first, all of them before any regular header.
      expect(x.names.slice(0, 4)).toEqual([':method', ':path', ':authority', ':scheme']);
    }
  });

  it.skipIf(peerMissing('nghttpd'))('nghttpd parses the same custom fingerprint', async () => {
    const srv = kit.track(await startNghttpd({ tls: kit.fx.server }));
    const r = await get(kit.session({ h2: custom }), srv.url('/index.html'));
    const log = await srv.log((l) => l.frames.some((f) => f.dir === 'recv' && f.type === 'HEADERS'));
    expect(nghttpdFingerprint(log, log.conns[0]!)).toBe(expected);
    expect(r.info.h2Fingerprint).toBe(expected);
  });

  it('connectionWindowIncrement 0 sends no WINDOW_UPDATE before the first request; headersPriority null sends no PRIORITY flag', async () => {
    const srv = await rawServer();
    const r = await get(kit.session({ h2: { connectionWindowIncrement: 0, headersPriority: null, priorityFrames: [] } }), srv.url('/', 'localhost'));
    const c = srv.conns[0]!;
    const hi = c.frames.findIndex((f) => f.type === FrameType.HEADERS);
    expect(c.frames.slice(0, hi).some((f) => f.type === FrameType.WINDOW_UPDATE)).toBe(false);
    expect(c.frames.slice(0, hi).some((f) => f.type === FrameType.PRIORITY)).toBe(false);
    expect(c.frames[hi]!.flags & FrameFlag.PRIORITY).toBe(0);
    expect(r.info.h2Fingerprint).toBe(akamaiFingerprint(c.frames));
    // Akamai format: '00' for no WINDOW_UPDATE, '0' for no PRIORITY frames.
    expect(r.info.h2Fingerprint!.split('|')[1]).toBe('00');
    expect(r.info.h2Fingerprint!.split('|')[2]).toBe('0');
  });

  it("pseudoHeaderOrder with ':'-names, seen by node:http2 in wire order; :authority, :scheme, :path values", async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session({ h2: { pseudoHeaderOrder: [':scheme', ':path', ':method', ':authority'] as never } });
    const r = await get(s, srv.url('/q?x=1&y=%20'));
    const st = srv.streams[0]!;
    expect(pseudo(st.rawHeaders)).toEqual([':scheme', ':path', ':method', ':authority']);
    expect(st.headers[':authority']).toBe(`localhost:${srv.port}`);
    expect(st.headers[':scheme']).toBe('https');
    expect(st.headers[':path']).toBe('/q?x=1&y=%20');
    expect(r.info.h2Fingerprint!.split('|')[3]).toBe('s,p,m,a');
  });

  it('regular headers keep the request order, lower-cased; connection-specific headers are not sent', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session();
    const r = await s.request(srv.url('/h'), {
      headers: [
        ['X-Zeta', '1'],
        ['Accept', 'text/plain'],
        ['Connection', 'keep-alive'],
        ['Keep-Alive', 'timeout=5'],
        ['X-Alpha', '2'],
        ['Proxy-Connection', 'keep-alive'],
      ],
    });
    expect(r.status).toBe(200);
    expect(r.info.httpVersion).toBe('2');
    const names = srv.streams[0]!.rawHeaders.filter((_, i) => i % 2 === 0);
    expect(names.every((n) => n === n.toLowerCase())).toBe(true);
    const idx = ['x-zeta', 'accept', 'x-alpha'].map((n) => names.indexOf(n));
    expect(idx.every((i) => i >= 0)).toBe(true);
    expect([...idx].sort((a, b) => a - b)).toEqual(idx);
    for (const n of ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding']) expect(names).not.toContain(n);
    // Pseudo-headers come first.
    expect(names.slice(0, 4).every((n) => n.startsWith(':'))).toBe(true);
  });
});

describe('browser profiles', () => {
  for (const [name, akamai, prio] of [
    ['chrome', '1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p', { dependsOn: 0, weight: 256, exclusive: true }],
    ['firefox', '1:65536;2:0;4:131072;5:16384|12517377|0|m,p,a,s', { dependsOn: 0, weight: 42, exclusive: false }],
  ] as const) {
    it(`impersonate '${name}': the raw server reads ${akamai} and the HEADERS priority from the bytes`, async () => {
      const prios: unknown[] = [];
      const srv = kit.track(
        await startH2RawServer({ tls: kit.fx.server }, async (c) => {
          await c.handshake();
          await c.serve((req, conn) => {
            prios.push(req.priority);
            return conn.respond(req.streamId);
          });
        }),
      );
      const s = kit.session({ impersonate: name, tls: { ca: kit.fx.caPem } });
      const r = await get(s, srv.url('/', 'localhost'));
      expect(akamaiFingerprint(srv.conns[0]!.frames)).toBe(akamai);
      expect(r.info.h2Fingerprint).toBe(akamai);
      expect(prios).toEqual([prio]);
    });
  }
});
