// Proxies, natively: absolute-form requests and CONNECT tunnels through an HTTP proxy (Basic
// auth), SOCKS5 with and without username/password, for http and https targets; typed refusals
// (ERR_PROXY with the proxy's status); the pool key includes the proxy; 'env' with NO_PROXY;
// per-request proxies; hostile proxies. Every server and proxy runs on 127.0.0.1 in this process.

import type * as net from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCapturingTlsServer } from '../helpers/client-hello.js';
import { Cleanup, rejection, sessionFactory, startHttpServer, startNetServer, thrown } from '../helpers/http-servers.js';
import { startHttpProxy, startSocksProxy, type TestProxy } from '../helpers/proxies.js';
import { tlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const session = sessionFactory(cleanup);

let fx: TlsFixtures;
beforeAll(async () => {
  fx = await tlsFixtures();
}, 60_000);

async function httpProxy(opts?: Parameters<typeof startHttpProxy>[0]): Promise<TestProxy> {
  const p = await startHttpProxy(opts);
  cleanup.add(() => p.close());
  return p;
}
async function socksProxy(opts?: Parameters<typeof startSocksProxy>[0]): Promise<TestProxy> {
  const p = await startSocksProxy(opts);
  cleanup.add(() => p.close());
  return p;
}
async function origin() {
  return startHttpServer((req, res) => res.end(`origin saw ${req.method} ${req.url} auth=${req.headers['proxy-authorization'] ?? '-'}`));
}
async function tlsOrigin() {
  const s = await startCapturingTlsServer({ key: fx.server.key, cert: fx.server.cert, handler: (req, res) => res.end(`tls origin ${req.url}`) });
  cleanup.add(() => s.close());
  return s;
}

describe('HTTP proxy', () => {
  it('plain http goes out in absolute form with Proxy-Authorization for the proxy only', async () => {
    const srv = await origin();
    const px = await httpProxy({ auth: 'alice:s3cret' });
    const s = session({ proxy: px.url('alice:s3cret') });
    const r1 = await s.request(srv.url('/a?x=1'));
    const r2 = await s.request(srv.url('/b'));
    expect(r1.body.toString()).toBe('origin saw GET /a?x=1 auth=-');
    expect(r2.status).toBe(200);
    expect(px.requests).toEqual([`GET ${srv.url('/a?x=1')}`, `GET ${srv.url('/b')}`]);
    expect(px.auth[0]).toBe(`Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
    expect(px.connections).toBe(1); // kept alive to the proxy
    expect(srv.connections).toBe(1);
  });

  it('https is tunnelled with CONNECT; TLS (SNI, verification) is with the origin; the tunnel is reused', async () => {
    const srv = await tlsOrigin();
    const px = await httpProxy({ auth: 'bob:pw' });
    const s = session({ proxy: px.url('bob:pw'), tls: { ca: fx.caPem } });
    const r1 = await s.request(`https://localhost:${srv.port}/one`);
    const r2 = await s.request(`https://localhost:${srv.port}/two`);
    expect(r1.body.toString()).toBe('tls origin /one');
    expect(r2.info.reused).toBe(true);
    expect(r1.tls!.authorized).toBe(true);
    expect(r1.tls!.servername).toBe('localhost');
    expect(px.requests).toEqual([`CONNECT localhost:${srv.port}`]);
    expect(px.auth[0]).toBe(`Basic ${Buffer.from('bob:pw').toString('base64')}`);
    expect(srv.sessions.length).toBe(1);
  });

  it('a refused tunnel is ERR_PROXY with the proxy status (407 without or with wrong credentials, 403…)', async () => {
    const srv = await tlsOrigin();
    const px = await httpProxy({ auth: 'bob:pw' });
    const e1 = await rejection(session({ proxy: px.url(), tls: { ca: fx.caPem } }).request(`https://localhost:${srv.port}/`));
    expect(e1.code).toBe('ERR_PROXY');
    expect(e1.proxyStatus).toBe(407);
    const e2 = await rejection(session({ proxy: px.url('bob:wrong'), tls: { ca: fx.caPem } }).request(`https://localhost:${srv.port}/`));
    expect(e2.proxyStatus).toBe(407);
    const forbid = await httpProxy({ refuse: 403 });
    const e3 = await rejection(session({ proxy: forbid.url(), tls: { ca: fx.caPem } }).request(`https://localhost:${srv.port}/`));
    expect(e3.code).toBe('ERR_PROXY');
    expect(e3.proxyStatus).toBe(403);
    expect(e3.message).toMatch(/403/);
  });
});

describe('SOCKS5 proxy', () => {
  it('tunnels http and https, sending the target name to the proxy (no auth)', async () => {
    const srv = await origin();
    const tlsSrv = await tlsOrigin();
    const px = await socksProxy();
    const s = session({ proxy: px.url(), tls: { ca: fx.caPem } });
    const r1 = await s.request(`http://localhost:${srv.port}/plain`);
    expect(r1.body.toString()).toBe('origin saw GET /plain auth=-');
    const r2 = await s.request(`https://localhost:${tlsSrv.port}/secure`);
    expect(r2.body.toString()).toBe('tls origin /secure');
    expect(px.socksTargets).toEqual([`localhost:${srv.port}`, `localhost:${tlsSrv.port}`]);
    expect(px.socksMethods[0]).toEqual([0]);
    const ip = await s.request(`http://127.0.0.1:${srv.port}/ip`);
    expect(ip.status).toBe(200);
    expect(px.socksTargets[2]).toBe(`127.0.0.1:${srv.port}`);
  });

  it('username/password (RFC 1929); a wrong one or a missing one is ERR_PROXY', async () => {
    const srv = await origin();
    const px = await socksProxy({ auth: 'carol:pa55' });
    const ok = await session({ proxy: px.url('carol:pa55') }).request(srv.url('/'));
    expect(ok.status).toBe(200);
    expect(px.socksMethods[0]).toEqual([0, 2]);
    const bad = await rejection(session({ proxy: px.url('carol:nope') }).request(srv.url('/')));
    expect(bad.code).toBe('ERR_PROXY');
    expect(bad.message).toMatch(/authentication failed/);
    const none = await rejection(session({ proxy: px.url() }).request(srv.url('/')));
    expect(none.code).toBe('ERR_PROXY');
    expect(none.message).toMatch(/requires authentication/);
  });

  it('a target the proxy cannot reach is ERR_PROXY with the SOCKS reply code', async () => {
    const closed = await startNetServer(() => {});
    const port = closed.port;
    await closed.close();
    const px = await socksProxy();
    const e = await rejection(session({ proxy: px.url() }).request(`http://127.0.0.1:${port}/`));
    expect(e.code).toBe('ERR_PROXY');
    expect(e.proxyStatus).toBe(5);
    expect(e.message).toMatch(/connection refused/);
  });
});

describe('pooling, env, per request, validation', () => {
  it('the pool key includes the proxy and its credentials; null goes direct', async () => {
    const srv = await origin();
    const px = await httpProxy();
    const s = session({ proxy: px.url('u1:p') });
    await s.request(srv.url('/1'));
    await s.request(srv.url('/2'), { proxy: px.url('u2:p') });
    await s.request(srv.url('/3'), { proxy: null });
    await s.request(srv.url('/4'));
    expect(px.connections).toBe(2); // two credentials → two proxy sockets
    expect(px.requests.length).toBe(3);
    expect(s.stats().connections.created).toBe(3); // u1, u2, direct
  });

  it("'env' reads HTTP_PROXY / HTTPS_PROXY / NO_PROXY at construction", async () => {
    const srv = await origin();
    const px = await httpProxy();
    const saved = { ...process.env };
    try {
      process.env.HTTP_PROXY = px.url();
      process.env.NO_PROXY = 'example.invalid, 127.0.0.2';
      delete process.env.http_proxy;
      delete process.env.no_proxy;
      const s = session({ proxy: 'env' });
      await s.request(srv.url('/via'));
      expect(px.requests).toEqual([`GET ${srv.url('/via')}`]);
      process.env.NO_PROXY = '127.0.0.1';
      const s2 = session({ proxy: 'env' });
      await s2.request(srv.url('/direct'));
      expect(px.requests.length).toBe(1);
    } finally {
      for (const k of ['HTTP_PROXY', 'NO_PROXY']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  it('rejects bad proxy options with ERR_INVALID_OPTION', () => {
    for (const bad of ['ftp://127.0.0.1:1', 'not a url', 'http://127.0.0.1:8080/path', 42]) {
      const e = thrown(() => session({ proxy: bad as never }));
      expect(e.code, String(bad)).toBe('ERR_INVALID_OPTION');
    }
  });
});

describe('hostile proxies', () => {
  it('garbage, a hang-up, or bytes after the CONNECT answer: ERR_PROXY, no crash', async () => {
    const replies: Array<(sock: net.Socket) => void> = [
      (sock) => sock.end('garbage\r\n\r\n'),
      (sock) => sock.end(),
      (sock) => sock.write('HTTP/1.1 200 OK\r\n\r\nEXTRA'),
      (sock) => sock.end(Buffer.from([5, 0, 0, 9])),
    ];
    for (const reply of replies) {
      const srv = await startNetServer((sock) => sock.once('data', () => reply(sock)));
      const e = await rejection(session({ proxy: `http://127.0.0.1:${srv.port}`, tls: { ca: fx.caPem } }).request('https://localhost:1/'));
      expect(e.code).toBe('ERR_PROXY');
    }
    const socks = await startNetServer((sock) => sock.once('data', () => sock.end(Buffer.from([4, 0]))));
    const e = await rejection(session({ proxy: `socks5://127.0.0.1:${socks.port}` }).request('http://localhost:1/'));
    expect(e.code).toBe('ERR_PROXY');
  });

  it('a proxy that never answers: ERR_CONNECT_TIMEOUT naming the tunnel', async () => {
    const srv = await startNetServer(() => {});
    const e = await rejection(session({ proxy: `socks5://127.0.0.1:${srv.port}`, timeout: { connect: 200 } }).request('http://localhost:1/'));
    expect(e.code).toBe('ERR_CONNECT_TIMEOUT');
    expect(e.message).toMatch(/tunnel/);
  });
});
