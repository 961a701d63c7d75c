// Lessons from other HTTP clients' security advisories, one test each (issue #9). Several are
// also covered where the feature lives (hostile-server, tls, proxy, redirects, decompression);
// this file gathers the cross-cutting ones so none is lost.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TlsProfile } from '../../lib/index.js';
import { startCapturingTlsServer } from '../helpers/client-hello.js';
import { Cleanup, sessionFactory, startHttpServer, thrown } from '../helpers/http-servers.js';
import { okResponse, rawServerKit, serveEach, sleep } from '../helpers/raw-server.js';
import { tlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const session = sessionFactory(cleanup);
const kit = rawServerKit();

let fx: TlsFixtures;
beforeAll(async () => {
  fx = await tlsFixtures();
}, 60_000);

describe('response-queue poisoning', () => {
  it('bytes arriving on an idle keep-alive socket never become the next response', async () => {
    const srv = await kit.server([
      async (c) => {
        await c.readRequest();
        c.write(okResponse('first'));
        await sleep(30);
        c.write(okResponse('INJECTED')); // unsolicited, while the socket is idle in the pool
      },
      (c) => serveEach(c, (_r, conn) => conn.write(okResponse('second'))),
    ]);
    const s = kit.session();
    expect((await s.request(srv.url('/1'))).body.toString()).toBe('first');
    await sleep(80);
    const r = await s.request(srv.url('/2'));
    expect(r.body.toString()).toBe('second');
    expect(srv.connectionCount).toBe(2);
  });
});

describe('the pool key includes every security-relevant setting', () => {
  it('verification on/off, client certificate or not: never the same socket', async () => {
    const srv = await startCapturingTlsServer({ key: fx.server.key, cert: fx.server.cert });
    cleanup.add(() => srv.close());
    const url = `https://localhost:${srv.port}/`;
    const s = session({ tls: { ca: fx.caPem } });
    await s.request(url);
    // A connection made without verification must not serve a verifying request, or the reverse.
    await s.request(url, { tls: new TlsProfile({ rejectUnauthorized: false }) });
    // A client-certificate connection carries an identity: it must not serve anonymous requests.
    await s.request(url, { tls: new TlsProfile({ ca: fx.caPem, cert: fx.client.cert, key: fx.client.key }) });
    await s.request(url);
    expect(srv.sessions.length).toBe(3);
    expect(s.stats({ perOrigin: true }).connections.perOrigin!.length).toBe(3);
  });
});

describe('caps on everything a server controls', () => {
  it('trailers, 1xx responses, chunk extensions, content-coding chains, decoded size', async () => {
    const manyTrailers = Array.from({ length: 300 }, (_, i) => `x-t${i}: v`).join('\r\n');
    const gz6 = [1, 2, 3, 4, 5, 6].reduce((b) => zlib.gzipSync(b), Buffer.from('x'));
    const big = zlib.gzipSync(Buffer.alloc(8 << 20));
    const responses: Record<string, Buffer> = {
      '/trailers': Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n${manyTrailers}\r\n\r\n`),
      '/interim': Buffer.from(`${'HTTP/1.1 103 Early Hints\r\n\r\n'.repeat(11)}${okResponse('late')}`),
      '/ext': Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(2000)}\r\na\r\n0\r\n\r\n`),
      '/codings': Buffer.concat([
        Buffer.from(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip,gzip,gzip,gzip,gzip,gzip\r\nContent-Length: ${gz6.length}\r\n\r\n`),
        gz6,
      ]),
      '/decoded': Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${big.length}\r\n\r\n`), big]),
    };
    const srv = await kit.server((c) => serveEach(c, (req, conn) => conn.write(responses[req.target]!)));
    const s = kit.session();
    expect((await kit.failure(s.request(srv.url('/trailers')))).code).toBe('ERR_HEADERS_TOO_LARGE');
    expect((await kit.failure(s.request(srv.url('/interim')))).code).toBe('ERR_BAD_RESPONSE');
    expect((await kit.failure(s.request(srv.url('/ext')))).code).toBe('ERR_BAD_RESPONSE');
    expect((await kit.failure(s.request(srv.url('/codings')))).code).toBe('ERR_DECOMPRESSION');
    expect((await kit.failure(s.request(srv.url('/decoded'), { maxBodySize: 1 << 20, maxDecompressionRatio: 0 }))).code).toBe('ERR_BODY_TOO_LARGE');
  });
});

describe('header bytes are validated whatever path built them', () => {
  it('options, defaults, proxies and redirects: CR, LF and NUL never reach the wire', async () => {
    const seen: string[] = [];
    const srv = await startHttpServer((req, res) => {
      seen.push(req.url!);
      if (req.url === '/go') return res.writeHead(302, { location: '/landed?x=%0d%0aInjected:%20yes' }).end();
      res.end(JSON.stringify(req.headers));
    });
    const s = session();
    // Request options.
    expect(thrown(() => s.request(srv.url('/'), { headers: { 'x-a': 'v\r\nInjected: yes' } })).code).toBe('ERR_INVALID_HEADER');
    expect(thrown(() => s.request(srv.url('/'), { headers: { 'x-a\n': 'v' } })).code).toBe('ERR_INVALID_HEADER');
    expect(thrown(() => s.request(srv.url('/'), { headers: { 'x-a': 'v\0' } })).code).toBe('ERR_INVALID_HEADER');
    // Session defaults.
    expect(thrown(() => session({ userAgent: 'ua\r\nInjected: yes' })).code).toBe('ERR_INVALID_OPTION');
    // Proxy credentials (they become a Proxy-Authorization header or a CONNECT request).
    expect(thrown(() => session({ proxy: 'http://a%0d%0aInjected:%20yes:p@127.0.0.1:1' })).code).toBe('ERR_INVALID_OPTION');
    // A redirect target with encoded CRLF stays encoded in the request line; headers re-sent on
    // the next hop are validated again.
    const r = await s.request(srv.url('/go'), { headers: { 'x-keep': 'ok' } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString())['x-keep']).toBe('ok');
    expect(JSON.parse(r.body.toString()).injected).toBeUndefined();
    expect(seen.at(-1)).toBe('/landed?x=%0d%0aInjected:%20yes');
  });
});

describe('randomness that matters comes from a CSPRNG', () => {
  it('no Math.random() anywhere in the library', () => {
    const lib = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'lib');
    const offenders = fs
      .readdirSync(lib)
      .filter((f) => f.endsWith('.ts'))
      .filter((f) => /Math\.random\s*\(/.test(fs.readFileSync(path.join(lib, f), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('retry jitter is spread (drawn per retry), so a fleet does not retry in lockstep', async () => {
    const times: number[] = [];
    let t0 = 0;
    const srv = await startHttpServer((_req, res) => {
      times.push(Date.now() - t0);
      res.writeHead(503).end();
    });
    const delays = new Set<number>();
    for (let i = 0; i < 6; i++) {
      times.length = 0;
      t0 = Date.now();
      await session()
        .request(srv.url('/'), { retry: { attempts: 2, backoff: { base: 60, max: 60, jitter: 1 } } })
        .catch((x) => x);
      if (times.length === 2) delays.add(Math.round((times[1]! - times[0]!) / 5));
    }
    expect(delays.size).toBeGreaterThan(1);
  });
});

describe('a poisoned connection is never reused', () => {
  it('after a decoding failure, the next request gets a new socket', async () => {
    const bad = Buffer.from('not gzip at all');
    const srv = await kit.server((c) =>
      serveEach(c, (req, conn) =>
        conn.write(
          req.target === '/bad'
            ? Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${bad.length}\r\n\r\n`), bad])
            : Buffer.from(okResponse('fine')),
        ),
      ),
    );
    const s = kit.session();
    expect((await kit.failure(s.request(srv.url('/bad')))).code).toBe('ERR_DECOMPRESSION');
    const r = await s.request(srv.url('/ok'));
    expect(r.body.toString()).toBe('fine');
    expect(r.info.reused).toBe(false);
    expect(srv.connectionCount).toBe(2);
  });
});
