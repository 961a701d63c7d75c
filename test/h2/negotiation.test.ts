// How a connection comes to speak HTTP/2 or not: ALPN offers seen by the server (default
// ['h2', 'http/1.1']; http2:false and a profile's own alpn never offer h2), fallback to HTTP/1.1
// when the server picks it or picks nothing (raw server, node https, nginx without http2, node:http2
// allowHTTP1), h2c with prior knowledge (nghttpd --no-tls, node:http2 createServer, nginx h2c) and
// only with it, and h2 inside an HTTP CONNECT tunnel and through SOCKS5.

import * as https from 'node:https';
import type * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { UvfetchError } from '../../lib/index.js';
import { startH2RawServer } from '../helpers/h2-raw-server.js';
import { h2Kit, peerMissing, startNghttpd, startNginxH2, startNodeH2 } from '../helpers/h2-servers.js';
import { rejection, startHttpServer, within } from '../helpers/http-servers.js';
import { startHttpProxy, startSocksProxy } from '../helpers/proxies.js';

const kit = h2Kit();

/** A raw TLS server that accepts h2 only when offered; otherwise answers HTTP/1.1 "http1". */
async function alpnServer(alpn: string[] = ['h2']) {
  return kit.track(
    await startH2RawServer({ tls: kit.fx.server, alpn }, async (c) => {
      await c.handshake();
      await c.serve((req, conn) => conn.respond(req.streamId, 200, 'h2'));
    }),
  );
}

describe('ALPN offers', () => {
  it("default: offers ['h2', 'http/1.1'] and speaks h2 when the server picks it", async () => {
    const srv = await alpnServer();
    const s = kit.session();
    const r = await s.request(srv.url('/', 'localhost'));
    expect(r.body.toString()).toBe('h2');
    expect(r.info.httpVersion).toBe('2');
    expect(r.tls?.alpn).toBe('h2');
    expect(srv.conns[0]!.alpnOffered).toEqual(['h2', 'http/1.1']);
    expect(srv.conns[0]!.prefaceOk).toBe(true);
    expect(s.stats().connections.http2).toBe(1);
  });

  it('http2: false never offers h2 (the server sees the list) and speaks HTTP/1.1', async () => {
    const srv = await alpnServer();
    const s = kit.session({ http2: false });
    const r = await s.request(srv.url('/', 'localhost'));
    expect(r.body.toString()).toBe('http1');
    expect(r.info.httpVersion).toBe('1.1');
    expect(r.info.h2Fingerprint).toBeUndefined();
    const offered = srv.conns[0]!.alpnOffered;
    expect(offered === undefined || !offered.includes('h2')).toBe(true);
    expect(srv.http1Connections).toBe(1);
    expect(s.stats().connections.http2).toBe(0);
  });

  it("a TLS profile's own alpn wins: ['http/1.1'] means no h2, ['h2'] alone means h2", async () => {
    const srv = await alpnServer(['h2', 'http/1.1']);
    const h1 = kit.session({ tls: { ca: kit.fx.caPem, alpn: ['http/1.1'] } });
    const r1 = await h1.request(srv.url('/', 'localhost'));
    expect(r1.info.httpVersion).toBe('1.1');
    expect(srv.conns[0]!.alpnOffered).toEqual(['http/1.1']);
    const h2only = kit.session({ tls: { ca: kit.fx.caPem, alpn: ['h2'] } });
    const r2 = await h2only.request(srv.url('/', 'localhost'));
    expect(r2.info.httpVersion).toBe('2');
    expect(srv.conns[1]!.alpnOffered).toEqual(['h2']);
  });
});

describe('fallback to HTTP/1.1', () => {
  it('the server picks http/1.1 by ALPN', async () => {
    const srv = await alpnServer(['http/1.1']);
    const s = kit.session();
    const r = await s.request(srv.url('/', 'localhost'));
    expect(r.body.toString()).toBe('http1');
    expect(r.info.httpVersion).toBe('1.1');
    expect(r.tls?.alpn).toBe('http/1.1');
    expect(srv.conns[0]!.alpnOffered).toEqual(['h2', 'http/1.1']);
    // Keep-alive as usual on HTTP/1.1.
    expect((await s.request(srv.url('/', 'localhost'))).info.reused).toBe(true);
    expect(srv.connectionCount).toBe(1);
  });

  it('a node:https server that negotiates no ALPN at all', async () => {
    const server = https.createServer({ key: kit.fx.server.key, cert: kit.fx.server.cert }, (req, res) => res.end(`https ${req.httpVersion}`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    kit.cleanup.add(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
    const s = kit.session();
    const r = await s.request(`https://localhost:${(server.address() as net.AddressInfo).port}/`);
    expect(r.body.toString()).toBe('https 1.1');
    expect(r.info.httpVersion).toBe('1.1');
    expect(r.info.h2Fingerprint).toBeUndefined();
  });

  it.skipIf(peerMissing('nginx'))('nginx without http2 on the port', async () => {
    const srv = kit.track(await startNginxH2({ tls: kit.fx.server, http2: false }));
    const s = kit.session();
    const rs = await Promise.all(Array.from({ length: 5 }, () => s.request(srv.url('/ok'))));
    expect(rs.every((r) => r.info.httpVersion === '1.1' && r.body.toString() === 'ok\n')).toBe(true);
    const log = await srv.requests(5);
    expect(new Set(log.map((x) => x.protocol))).toEqual(new Set(['HTTP/1.1']));
  });

  it('node:http2 with allowHTTP1: h2 by default, HTTP/1.1 with http2: false', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server, allowHTTP1: true }));
    const r2 = await kit.session().request(srv.url('/a'));
    expect(r2.info.httpVersion).toBe('2');
    expect(r2.body.toString()).toBe('ok GET /a');
    const r1 = await kit.session({ http2: false }).request(srv.url('/b'));
    expect(r1.info.httpVersion).toBe('1.1');
    expect(r1.body.toString()).toBe('h1 /b');
    expect(srv.http1Requests.map((x) => x.path)).toEqual(['/b']);
    expect(srv.streams.map((x) => x.path)).toEqual(['/a']);
  });
});

describe('the first connection of an origin that may speak h2', () => {
  // A burst to a fresh https origin waits for its first connection (it may carry them all as h2).
  // When that connection fails before any protocol is known, the waiters that counted on it must
  // each get their own attempt side by side (as with HTTP/1.1), not one failed handshake after
  // another: 10 requests to a server that accepts TCP and never answers the TLS hello would take
  // 10 × the TLS timeout one by one.
  it('fails over to one attempt per waiter, in parallel, when it fails before ALPN', async () => {
    const sockets = new Set<net.Socket>();
    const { createServer } = await import('node:net');
    const mute = createServer((sock) => {
      sockets.add(sock);
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    kit.track({
      close: () =>
        new Promise<void>((r) => {
          for (const x of sockets) x.destroy();
          mute.close(() => r());
        }),
    });
    let accepted = 0;
    mute.on('connection', () => accepted++);
    const port = (mute.address() as net.AddressInfo).port;
    const tlsMs = 500;
    const s = kit.session({ timeout: { tls: tlsMs }, retry: false });
    const t0 = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => s.request(`https://127.0.0.1:${port}/`)));
    const elapsed = performance.now() - t0;
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(UvfetchError);
      expect((r as PromiseRejectedResult).reason.code).toBe('ERR_TLS_HANDSHAKE_TIMEOUT');
    }
    // One timeout for the first connection, one for the rest side by side (one after another:
    // 5 s); a loaded machine gets a wide margin.
    expect(elapsed).toBeLessThan(6 * tlsMs);
    expect(accepted).toBe(10);
    expect(s.stats().connections.open).toBe(0);
  });
});

describe('h2c with prior knowledge', () => {
  it.skipIf(peerMissing('nghttpd'))("nghttpd --no-tls with http2: 'prior-knowledge'", async () => {
    const srv = kit.track(await startNghttpd({ files: { 'a.txt': 'h2c file\n' } }));
    const s = kit.session({ http2: 'prior-knowledge' });
    const rs = await Promise.all(Array.from({ length: 20 }, () => s.request(srv.url('/a.txt'))));
    expect(rs.every((r) => r.body.toString() === 'h2c file\n' && r.info.httpVersion === '2')).toBe(true);
    const log = await srv.log((l) => l.frames.filter((f) => f.dir === 'recv' && f.type === 'HEADERS').length >= 20);
    expect(log.conns).toHaveLength(1);
  });

  it("node:http2 createServer (h2c) with http2: 'prior-knowledge': requests and an upload", async () => {
    const srv = kit.track(await startNodeH2({}));
    const s = kit.session({ http2: 'prior-knowledge' });
    const r = await s.request(srv.url('/x'));
    expect(r.body.toString()).toBe('ok GET /x');
    expect(r.info.httpVersion).toBe('2');
    const up = await s.request(srv.url('/echo'), { method: 'POST', body: 'h2c body' });
    expect(up.body.toString()).toBe('h2c body');
    expect(srv.sessionCount).toBe(1);
  });

  it.skipIf(peerMissing('nginx'))("nginx h2c with http2: 'prior-knowledge'", async () => {
    const srv = kit.track(await startNginxH2({}));
    const s = kit.session({ http2: 'prior-knowledge' });
    const rs = await Promise.all(Array.from({ length: 10 }, () => s.request(srv.url('/ok'))));
    expect(rs.every((r) => r.info.httpVersion === '2')).toBe(true);
    const log = await srv.requests(10);
    expect(new Set(log.map((x) => x.protocol))).toEqual(new Set(['HTTP/2.0']));
    expect(new Set(log.map((x) => x.conn)).size).toBe(1);
  });

  it('the raw h2c server sees exactly the preface first', async () => {
    const srv = kit.track(
      await startH2RawServer({}, async (c) => {
        await c.handshake();
        await c.serve();
      }),
    );
    const r = await kit.session({ http2: 'prior-knowledge' }).request(srv.url('/'));
    expect(r.body.toString()).toBe('ok');
    expect(srv.conns[0]!.prefaceOk).toBe(true);
  });

  it('without prior knowledge an http: origin gets HTTP/1.1 (no preface sent)', async () => {
    const h1 = await startHttpServer((req, res) => res.end(`h1 ${req.httpVersion}`));
    kit.cleanup.add(() => h1.close());
    for (const http2 of [true, false] as const) {
      const r = await kit.session({ http2 }).request(h1.url('/'));
      expect(r.body.toString()).toBe('h1 1.1');
      expect(r.info.httpVersion).toBe('1.1');
    }
  });

  it('prior knowledge against an HTTP/1.1-only server: a typed error, no hang', async () => {
    const h1 = await startHttpServer((_req, res) => res.end('h1'));
    kit.cleanup.add(() => h1.close());
    const err = await rejection(kit.session({ http2: 'prior-knowledge', timeout: { headers: 3000 } }).request(h1.url('/')), 10_000);
    expect(err).toBeInstanceOf(UvfetchError);
    expect(['ERR_HTTP2_PROTOCOL', 'ERR_BAD_RESPONSE', 'ERR_CONNECTION_RESET', 'ERR_SOCKET_CLOSED']).toContain(err.code);
  });
});

describe('h2 through proxies', () => {
  it('inside an HTTP CONNECT tunnel: 20 requests, one CONNECT, one h2 session', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const px = await startHttpProxy();
    kit.cleanup.add(() => px.close());
    const s = kit.session({ proxy: px.url() });
    const url = `https://127.0.0.1:${srv.port}`;
    const rs = await within(Promise.all(Array.from({ length: 20 }, (_, i) => s.request(`${url}/p/${i}`))), 15_000, 'requests through the tunnel');
    rs.forEach((r, i) => {
      expect(r.info.httpVersion).toBe('2');
      expect(r.body.toString()).toBe(`ok GET /p/${i}`);
    });
    expect(px.requests).toEqual([`CONNECT 127.0.0.1:${srv.port}`]);
    expect(srv.sessionCount).toBe(1);
  });

  it('through SOCKS5', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const px = await startSocksProxy();
    kit.cleanup.add(() => px.close());
    const s = kit.session({ proxy: px.url() });
    const rs = await within(Promise.all(Array.from({ length: 10 }, () => s.request(`https://127.0.0.1:${srv.port}/s`))), 15_000, 'requests through SOCKS');
    expect(rs.every((r) => r.info.httpVersion === '2')).toBe(true);
    expect(px.connections).toBe(1);
    expect(srv.sessionCount).toBe(1);
  });
});
