// File-descriptor accounting: after many requests of every kind (keep-alive, Connection: close,
// refused, bad responses, timeouts, aborts, abandoned streams, destroy with requests in flight),
// `await session.close()` plus closing the server brings /proc/self/fd back to its baseline.
// Runs in this (forked) vitest process: the server's sockets count too, and are closed as well.

import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import * as net from 'node:net';
import { Session, UvfetchError, type SessionOptions } from '../../lib/index.js';
import { okResponse, serveEach, sleep, startRawServer, waitFor, type RawServer } from '../helpers/raw-server.js';

const fdCount = () => readdirSync('/proc/self/fd').length;

/** Keep-alive server with a few behaviours chosen by path. */
async function behaviourServer(): Promise<RawServer> {
  return startRawServer((c) =>
    serveEach(c, async (req, conn) => {
      const t = req.target;
      if (t.startsWith('/close')) {
        await conn.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok');
        conn.destroy();
      } else if (t.startsWith('/bad')) {
        await conn.write('HTTP/1.1 200 OK\r\nContent-Length: 2\nX: y\r\n\r\nok');
      } else if (t.startsWith('/never')) {
        await conn.closed;
      } else if (t.startsWith('/big')) {
        await conn.write(`HTTP/1.1 200 OK\r\nContent-Length: ${4 * 1024 * 1024}\r\n\r\n`);
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        for (let i = 0; i < 64 && !conn.isClosed && !conn.clientEnded; i++) await conn.write(chunk);
      } else if (t.startsWith('/stall')) {
        await conn.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
        await conn.closed;
      } else if (t.startsWith('/reset')) {
        conn.reset();
      } else {
        await conn.write(okResponse('ok'));
      }
    }),
  );
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

let baseline = 0;
const sessions: Session[] = [];
const servers: RawServer[] = [];

async function settle(): Promise<void> {
  await Promise.all(sessions.splice(0).map((s) => s.destroy()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
}

afterEach(settle);

beforeAll(async () => {
  // Warm up everything that opens fds lazily (the addon, libuv's loop internals, the server side),
  // then take the baseline.
  const srv = await behaviourServer();
  const s = new Session({ timeout: { headers: 100 } });
  await s.request(srv.url('/'));
  await s.request(srv.url('/close')).catch(() => {});
  await s.request(srv.url('/bad')).catch(() => {});
  await s.request(`http://127.0.0.1:${await closedPort()}/`).catch(() => {});
  await s.close();
  await srv.close();
  await sleep(50);
  baseline = fdCount();
});

function session(opts: SessionOptions = {}): Session {
  const s = new Session({ timeout: { connect: 5000, headers: 5000, body: 5000 }, ...opts });
  sessions.push(s);
  return s;
}

async function server(): Promise<RawServer> {
  const srv = await behaviourServer();
  servers.push(srv);
  return srv;
}

/** Closes the session gracefully and the server, then waits for the fd count to get back. */
async function expectBackToBaseline(s: Session, srv: RawServer): Promise<void> {
  await s.close();
  expect(s.stats().connections.open).toBe(0);
  // The client closed every connection it had (the server saw each one end).
  expect(await waitFor(() => srv.conns.every((c) => c.clientEnded), 3000)).toBe(true);
  await srv.close();
  servers.splice(servers.indexOf(srv), 1);
  expect(await waitFor(() => fdCount() <= baseline, 3000)).toBe(true);
  expect(fdCount()).toBe(baseline);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (e: unknown) => (e instanceof UvfetchError ? e.code : `non-uvfetch error: ${String(e)}`),
  );
}

describe('fd accounting', () => {
  it('keep-alive: 200 requests, 10 at a time', async () => {
    const srv = await server();
    const s = session();
    for (let round = 0; round < 20; round++) {
      const res = await Promise.all(Array.from({ length: 10 }, () => s.request(srv.url('/'))));
      for (const r of res) expect(r.status).toBe(200);
    }
    // Sockets really are open at this point: the check below is not vacuous.
    expect(fdCount()).toBeGreaterThan(baseline);
    expect(s.stats().connections.idle).toBeGreaterThan(0);
    await expectBackToBaseline(s, srv);
  });

  it('Connection: close: 100 requests', async () => {
    const srv = await server();
    const s = session();
    for (let round = 0; round < 10; round++) {
      const res = await Promise.all(Array.from({ length: 10 }, () => s.request(srv.url('/close'))));
      for (const r of res) expect(r.status).toBe(200);
    }
    expect(srv.connectionCount).toBe(100);
    await expectBackToBaseline(s, srv);
  });

  it('connection refused: 100 requests', async () => {
    const port = await closedPort();
    const srv = await server(); // unused, keeps expectBackToBaseline uniform
    const s = session();
    const codes = await Promise.all(Array.from({ length: 100 }, () => codeOf(s.request(`http://127.0.0.1:${port}/`))));
    expect(new Set(codes)).toEqual(new Set(['ERR_CONNECTION_REFUSED']));
    await expectBackToBaseline(s, srv);
  });

  it('bad responses and resets: 100 requests', async () => {
    const srv = await server();
    const s = session();
    const codes = await Promise.all(Array.from({ length: 100 }, (_, i) => codeOf(s.request(srv.url(i % 2 === 0 ? '/bad' : '/reset')))));
    expect(new Set(codes)).toEqual(new Set(['ERR_BAD_RESPONSE', 'ERR_CONNECTION_RESET']));
    await expectBackToBaseline(s, srv);
  });

  it('headers timeouts: 30 requests the server never answers', async () => {
    const srv = await server();
    const s = session({ timeout: { headers: 100 } });
    const codes = await Promise.all(Array.from({ length: 30 }, () => codeOf(s.request(srv.url('/never')))));
    expect(new Set(codes)).toEqual(new Set(['ERR_HEADERS_TIMEOUT']));
    await expectBackToBaseline(s, srv);
  });

  it('body timeouts and maxBodySize overruns', async () => {
    const srv = await server();
    const s = session({ maxBodySize: 256 * 1024, timeout: { body: 100 } });
    const codes = await Promise.all(Array.from({ length: 20 }, (_, i) => codeOf(s.request(srv.url(i % 2 === 0 ? '/big' : '/stall')))));
    expect(new Set(codes)).toEqual(new Set(['ERR_BODY_TOO_LARGE', 'ERR_BODY_TIMEOUT']));
    await expectBackToBaseline(s, srv);
  });

  it('aborts: while queued, while connecting/sent, and already-aborted signals', async () => {
    const srv = await server();
    const s = session({ connectionsPerHost: 4 });
    const pending: Promise<string>[] = [];
    const controllers: AbortController[] = [];
    for (let i = 0; i < 40; i++) {
      const ac = new AbortController();
      controllers.push(ac);
      pending.push(codeOf(s.request(srv.url('/never'), { signal: ac.signal })));
    }
    // Some are on the wire (4 connections), the rest queued.
    expect(await waitFor(() => srv.conns.flatMap((c) => c.requests).length === 4)).toBe(true);
    for (const ac of controllers) ac.abort();
    pending.push(codeOf(s.request(srv.url('/'), { signal: AbortSignal.abort() })));
    const codes = await Promise.all(pending);
    expect(new Set(codes)).toEqual(new Set(['ERR_ABORTED']));
    expect(s.stats().requests.inFlight).toBe(0);
    // The session still works afterwards.
    expect((await s.request(srv.url('/'))).status).toBe(200);
    await expectBackToBaseline(s, srv);
  });

  it('streams abandoned half way (body destroyed) and streams read to the end', async () => {
    const srv = await server();
    const s = session();
    for (let i = 0; i < 10; i++) {
      const res = await s.stream(srv.url('/big'));
      let n = 0;
      for await (const chunk of res.body) {
        n += (chunk as Buffer).length;
        if (n > 128 * 1024) break; // leaves the loop: the body stream is destroyed
      }
      expect(n).toBeGreaterThan(128 * 1024);
    }
    for (let i = 0; i < 10; i++) {
      const res = await s.stream(srv.url('/'));
      expect((await res.buffer()).toString()).toBe('ok');
    }
    await expectBackToBaseline(s, srv);
  });

  it('destroy() with requests in flight and idle sockets open', async () => {
    const srv = await server();
    const s = session();
    await Promise.all(Array.from({ length: 5 }, () => s.request(srv.url('/'))));
    const inflight = Array.from({ length: 10 }, () => codeOf(s.request(srv.url('/never'))));
    expect(await waitFor(() => srv.conns.flatMap((c) => c.requests).filter((r) => r.target === '/never').length === 10)).toBe(true);
    await s.destroy();
    expect(new Set(await Promise.all(inflight))).toEqual(new Set(['ERR_SESSION_CLOSED']));
    sessions.splice(sessions.indexOf(s), 1);
    expect(await waitFor(() => srv.conns.every((c) => c.clientEnded), 3000)).toBe(true);
    await srv.close();
    servers.splice(servers.indexOf(srv), 1);
    expect(await waitFor(() => fdCount() <= baseline, 3000)).toBe(true);
    expect(fdCount()).toBe(baseline);
  });

  it('everything mixed in one session, 3 rounds, then a graceful close', async () => {
    const srv = await server();
    const port = await closedPort();
    const s = session({ timeout: { headers: 150 }, connectionsPerHost: 16 });
    for (let round = 0; round < 3; round++) {
      const ac = new AbortController();
      const all = [
        ...Array.from({ length: 10 }, () => codeOf(s.request(srv.url('/')))),
        ...Array.from({ length: 5 }, () => codeOf(s.request(srv.url('/close')))),
        ...Array.from({ length: 5 }, () => codeOf(s.request(srv.url('/bad')))),
        ...Array.from({ length: 5 }, () => codeOf(s.request(srv.url('/never')))),
        ...Array.from({ length: 5 }, () => codeOf(s.request(srv.url('/never'), { signal: ac.signal, timeout: { headers: 5000 } }))),
        ...Array.from({ length: 5 }, () => codeOf(s.request(`http://127.0.0.1:${port}/`))),
      ];
      setTimeout(() => ac.abort(), 50);
      const codes = await Promise.all(all);
      expect(codes.filter((c) => c === 'ok').length).toBe(15);
      expect(codes.filter((c) => c === 'ERR_BAD_RESPONSE').length).toBe(5);
      expect(codes.filter((c) => c === 'ERR_HEADERS_TIMEOUT').length).toBe(5);
      expect(codes.filter((c) => c === 'ERR_ABORTED').length).toBe(5);
      expect(codes.filter((c) => c === 'ERR_CONNECTION_REFUSED').length).toBe(5);
    }
    await expectBackToBaseline(s, srv);
  });
});
