// The HTTP/2 test peers themselves, checked with clients that are not uvfetch (node:http2, node:https,
// curl when present), so that a failing uvfetch h2 test points at the client, not at the
// infrastructure: every helper of test/helpers/h2-servers.ts and h2-raw-server.ts starts, serves,
// and reports what it saw; the two independent fingerprint parsers (nghttpd -v, raw bytes) agree.

import { execFile } from 'node:child_process';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { akamaiFingerprint, FrameType, frames, H2Error, hpack, parseSettings, startH2RawServer } from '../helpers/h2-raw-server.js';
import {
  binPath,
  nghttpdErrorCode,
  nghttpdFingerprint,
  patternBytes,
  peerMissing,
  sha256,
  startH2o,
  startNghttpd,
  startNginxH2,
  startNodeH2,
} from '../helpers/h2-servers.js';
import { Cleanup, within } from '../helpers/http-servers.js';
import { tlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let fx: TlsFixtures;
beforeAll(async () => {
  fx = await tlsFixtures();
}, 60_000);

function track<T extends { close(): Promise<void> }>(s: T): T {
  cleanup.add(() => s.close());
  return s;
}

/** A node:http2 client session to `origin` trusting the test CA, closed after the test. */
function h2client(origin: string, settings?: http2.Settings): http2.ClientHttp2Session {
  const c = http2.connect(origin, { ca: fx.caPem, servername: 'localhost', settings });
  c.on('error', () => {});
  cleanup.add(() => c.destroy());
  return c;
}

function h2req(
  c: http2.ClientHttp2Session,
  path: string,
  o: { method?: string; body?: Buffer; headers?: http2.OutgoingHttpHeaders } = {},
): Promise<{ status: number; body: Buffer; headers: http2.IncomingHttpHeaders; trailers?: http2.IncomingHttpHeaders }> {
  return within(
    new Promise((resolve, reject) => {
      const req = c.request({ ':path': path, ':method': o.method ?? 'GET', ...o.headers }, { endStream: o.body === undefined });
      let status = 0;
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      req.on('response', (h) => {
        status = Number(h[':status']);
        headers = h;
      });
      req.on('trailers', (t) => (trailers = t));
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => resolve({ status, body: Buffer.concat(chunks), headers, trailers }));
      req.on('error', reject);
      if (o.body !== undefined) req.end(o.body);
    }),
    20_000,
    `node:http2 ${path}`,
  );
}

function httpsGet(url: string): Promise<{ status: number; body: string; alpn: string | false | null; httpVersion: string }> {
  return within(
    new Promise((resolve, reject) => {
      const r = https.get(url, { ca: fx.caPem, servername: 'localhost', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () =>
          resolve({ status: res.statusCode!, body, alpn: (res.socket as import('node:tls').TLSSocket).alpnProtocol, httpVersion: res.httpVersion }),
        );
      });
      r.on('error', reject);
    }),
    10_000,
    `https ${url}`,
  );
}

const BIG = patternBytes(3 * 1024 * 1024, 7);

describe('nghttpd', () => {
  it.skipIf(peerMissing('nghttpd'))('TLS: serves files and echoes uploads; the -v log gives connections, request headers and RST codes', async () => {
    const srv = track(await startNghttpd({ tls: fx.server, files: { 'big.bin': BIG } }));
    const c = h2client(`https://localhost:${srv.port}`);
    const big = await h2req(c, '/big.bin');
    expect(big.status).toBe(200);
    expect(sha256(big.body)).toBe(sha256(BIG));
    const up = patternBytes(1024 * 1024, 3);
    const echo = await h2req(c, '/anything', { method: 'POST', body: up });
    expect(sha256(echo.body)).toBe(sha256(up));
    // A cancelled stream shows up as RST_STREAM CANCEL received.
    await new Promise<void>((resolve) => {
      const r = c.request({ ':path': '/big.bin' });
      r.on('error', () => {});
      r.once('response', () => {
        r.close(http2.constants.NGHTTP2_CANCEL);
        resolve();
      });
    });
    const log = await srv.log((l) => l.frames.some((f) => f.dir === 'recv' && f.type === 'RST_STREAM' && nghttpdErrorCode(f) !== undefined));
    expect(log.conns).toHaveLength(1);
    const id = log.conns[0]!;
    const rst = log.frames.find((f) => f.dir === 'recv' && f.type === 'RST_STREAM')!;
    expect(nghttpdErrorCode(rst)).toBe(H2Error.CANCEL);
    const firstHeaders = log.frames.find((f) => f.dir === 'recv' && f.type === 'HEADERS')!;
    const names = log.headers.get(`${id}/${firstHeaders.streamId}`)!.map(([n]) => n);
    expect(names.slice(0, 4).sort()).toEqual([':authority', ':method', ':path', ':scheme']);
    expect(log.alpnOffers[0]).toContain('h2');
  });

  it.skipIf(peerMissing('nghttpd'))('h2c (--no-tls) with prior knowledge', async () => {
    const srv = track(await startNghttpd({ files: { 'a.txt': 'plain h2c\n' } }));
    const c = http2.connect(`http://127.0.0.1:${srv.port}`);
    c.on('error', () => {});
    cleanup.add(() => c.destroy());
    const r = await h2req(c, '/a.txt');
    expect(r.body.toString()).toBe('plain h2c\n');
  });

  it.skipIf(peerMissing('nghttpd'))('its fingerprint of a client equals the raw server one for the same client settings', async () => {
    const settings: http2.Settings = { headerTableSize: 65536, enablePush: false, initialWindowSize: 6291456, maxHeaderListSize: 262144 };
    const ng = track(await startNghttpd({ tls: fx.server }));
    await h2req(h2client(`https://localhost:${ng.port}`, settings), '/');
    const log = await ng.log((l) => l.frames.some((f) => f.dir === 'recv' && f.type === 'HEADERS'));
    expect(log.conns).toHaveLength(1);
    const fromNghttpd = nghttpdFingerprint(log, log.conns[0]!);

    const raw = track(
      await startH2RawServer({ tls: fx.server }, async (c) => {
        await c.handshake();
        const req = await c.readRequest();
        await c.respond(req.streamId, 200, 'raw');
      }),
    );
    const res = await h2req(h2client(`https://localhost:${raw.port}`, settings), '/');
    expect(res.body.toString()).toBe('raw');
    const fromRaw = akamaiFingerprint(raw.conns[0]!.frames);
    expect(fromRaw).toBe(fromNghttpd);
    // node:http2 sends what was asked, in its own order: every value is there.
    expect(fromRaw).toMatch(/^[^|]*1:65536/);
    expect(fromRaw).toContain('4:6291456');
    // node:http2 keeps the pseudo-headers in the order the request object gives them.
    expect(fromRaw.split('|')[3]).toBe('p,m,a,s');
  });

  it.skipIf(peerMissing('nghttpd') || peerMissing('nghttp'))('nghttp (the C client) against it, for comparison', async () => {
    const srv = track(await startNghttpd({ tls: fx.server }));
    const out = await new Promise<string>((resolve, reject) =>
      execFile(binPath('nghttp')!, ['-n', '-s', `https://127.0.0.1:${srv.port}/`], { timeout: 10_000 }, (e, stdout) => (e ? reject(e) : resolve(stdout))),
    );
    expect(out).toMatch(/200/);
  });
});

describe('h2o', () => {
  it.skipIf(peerMissing('h2o'))('one TLS port speaks h2 and http/1.1; /echo sends the body back; the access log names connection and protocol', async () => {
    const srv = track(await startH2o({ tls: fx.server, files: { 'big.bin': BIG } }));
    const c = h2client(`https://localhost:${srv.port}`);
    const big = await h2req(c, '/big.bin');
    expect(sha256(big.body)).toBe(sha256(BIG));
    const up = patternBytes(512 * 1024, 5);
    const echo = await h2req(c, '/echo', { method: 'POST', body: up });
    expect(sha256(echo.body)).toBe(sha256(up));
    const h1 = await httpsGet(`https://127.0.0.1:${srv.port}/index.html`);
    expect(h1.httpVersion).toBe('1.1');
    expect(h1.body).toBe('hello from h2o\n');
    const log = await srv.requests(3);
    expect(log.map((r) => r.protocol)).toEqual(['HTTP/2', 'HTTP/2', 'HTTP/1.1']);
    expect(log[0]!.conn).toBe(log[1]!.conn);
    expect(log[2]!.conn).not.toBe(log[0]!.conn);
  });
});

describe('nginx', () => {
  it.skipIf(peerMissing('nginx'))('http2 over TLS, h2c in clear text, and HTTP/1.1 only', async () => {
    const tlsSrv = track(await startNginxH2({ tls: fx.server, files: { 'big.bin': BIG } }));
    const c = h2client(`https://localhost:${tlsSrv.port}`);
    const big = await h2req(c, '/big.bin');
    expect(sha256(big.body)).toBe(sha256(BIG));
    expect((await h2req(c, '/ok')).body.toString()).toBe('ok\n');
    const log = await tlsSrv.requests(2);
    expect(log.map((r) => r.protocol)).toEqual(['HTTP/2.0', 'HTTP/2.0']);
    expect(new Set(log.map((r) => r.conn)).size).toBe(1);

    const h2c = track(await startNginxH2({}));
    const cc = http2.connect(`http://127.0.0.1:${h2c.port}`);
    cc.on('error', () => {});
    cleanup.add(() => cc.destroy());
    expect((await h2req(cc, '/ok')).status).toBe(200);

    const h1 = track(await startNginxH2({ tls: fx.server, http2: false }));
    const r = await httpsGet(`https://127.0.0.1:${h1.port}/ok`);
    expect(r.httpVersion).toBe('1.1');
    expect(r.alpn === false || r.alpn === 'http/1.1').toBe(true);
  });
});

describe('node:http2', () => {
  it('counts sessions and streams, sees RST codes, trailers, GOAWAY with the last stream seen', async () => {
    const srv = track(await startNodeH2({ tls: fx.server }));
    const c = h2client(srv.url());
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => h2req(c, `/delay/20?i=${i}`)));
    expect(rs.every((r) => r.body.toString() === 'ok')).toBe(true);
    expect(srv.sessionCount).toBe(1);
    expect(srv.maxConcurrentPerSession).toBeGreaterThan(1);
    const tr = await h2req(c, '/trailers');
    expect(tr.trailers?.['x-checksum']).toBe('abc');
    // Client cancels a held stream: the server sees CANCEL.
    const held = c.request({ ':path': '/hold' });
    held.on('error', () => {});
    await srv.until(() => srv.streams.some((s) => s.path === '/hold'));
    held.close(http2.constants.NGHTTP2_CANCEL);
    await srv.until(() => srv.streams.find((s) => s.path === '/hold')!.closed);
    expect(srv.streams.find((s) => s.path === '/hold')!.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    // GOAWAY carries the highest stream id seen.
    const goaway = new Promise<number>((r) => c.once('goaway', (_code, last) => r(last)));
    srv.goawayAll();
    expect(await within(goaway, 5000, 'goaway')).toBe(Math.max(...srv.streams.map((s) => s.id)));
  });

  it('allowHTTP1 answers HTTP/1.1 too; h2c without TLS', async () => {
    const srv = track(await startNodeH2({ tls: fx.server, allowHTTP1: true }));
    const h1 = await httpsGet(srv.url('/x'));
    expect(h1.body).toBe('h1 /x');
    expect(srv.http1Requests).toEqual([{ method: 'GET', path: '/x', httpVersion: '1.1' }]);
    const h2 = await h2req(h2client(srv.url()), '/y');
    expect(h2.body.toString()).toBe('ok GET /y');

    const plain = track(await startNodeH2({}));
    const cc = http2.connect(plain.url());
    cc.on('error', () => {});
    cleanup.add(() => cc.destroy());
    const up = patternBytes(300_000, 9);
    const r = await h2req(cc, '/sha256', { method: 'POST', body: up });
    expect(JSON.parse(r.body.toString())).toEqual({ bytes: up.length, sha256: sha256(up) });
  });
});

describe('raw h2 server', () => {
  it('records the preface and frames, serves by hand-made HPACK, falls back to HTTP/1.1 by ALPN', async () => {
    const srv = track(
      await startH2RawServer({ tls: fx.server }, async (c) => {
        await c.handshake({ settings: [[3, 7]] });
        await c.serve((req, conn) =>
          conn.send(
            frames.headers(
              req.streamId,
              hpack.block([
                [':status', '201'],
                ['x-hand-made', 'yes'],
              ]),
            ),
            frames.data(req.streamId, 'body'),
            frames.data(req.streamId, '!', true),
          ),
        );
      }),
    );
    const c = h2client(srv.url('/', 'localhost'), { initialWindowSize: 100_000 });
    const r = await h2req(c, '/a', { headers: { 'x-one': '1' } });
    expect(r.status).toBe(201);
    expect(r.headers['x-hand-made']).toBe('yes');
    expect(r.body.toString()).toBe('body!');
    const r2 = await h2req(c, '/b');
    expect(r2.status).toBe(201);
    const conn = srv.conns[0]!;
    expect(conn.prefaceOk).toBe(true);
    expect(conn.alpn).toBe('h2');
    expect(conn.alpnOffered).toEqual(['h2']);
    expect(conn.servername).toBe('localhost');
    expect(conn.frames[0]!.type).toBe(FrameType.SETTINGS);
    expect(parseSettings(conn.frames[0]!.payload)).toContainEqual([4, 100_000]);
    const reqs = conn.frames.filter((f) => f.type === FrameType.HEADERS);
    expect(reqs.map((f) => f.streamId)).toEqual([1, 3]);
    expect(srv.errors).toEqual([]);

    const h1 = track(await startH2RawServer({ tls: fx.server }, () => undefined));
    const res = await httpsGet(h1.url('/', 'localhost'));
    expect(res.body).toBe('http1');
    // node:https offers no ALPN at all: the server saw "GET", not the preface, and fell back.
    expect(h1.conns[0]!.alpnOffered).toBeUndefined();
    expect(h1.http1Connections).toBe(1);
  });

  it('h2c: a plain TCP server reads the prior-knowledge preface', async () => {
    const srv = track(
      await startH2RawServer({}, async (c) => {
        await c.handshake();
        await c.serve();
      }),
    );
    const c = http2.connect(srv.url());
    c.on('error', () => {});
    cleanup.add(() => c.destroy());
    expect((await h2req(c, '/')).body.toString()).toBe('ok');
    expect(srv.conns[0]!.prefaceOk).toBe(true);
  });
});
