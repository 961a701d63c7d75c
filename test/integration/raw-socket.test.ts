// Raw sockets (connect() / RawSocket) against local node:net and node:tls servers: bytes both
// ways over TCP and TLS, half-close in both directions, backpressure in both directions measured
// by buffered bytes, typed error codes, sharing a session's DNS cache, closing with the session,
// and no descriptor left behind.

import type * as net from 'node:net';
import * as tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, RawSocket, Session, UvfetchError } from '../../lib/index.js';
import {
  Cleanup,
  closedPort,
  fdCount,
  rejection,
  sleep,
  startHttpServer,
  startNetServer,
  thrown,
  waitFor,
  within,
  sessionFactory,
} from '../helpers/http-servers.js';
import { tlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let fx: TlsFixtures;
beforeAll(async () => {
  fx = await tlsFixtures();
});

const session = sessionFactory(cleanup);

async function open(opts: Parameters<typeof connect>[0]): Promise<RawSocket> {
  const s = await within(connect(opts), 10_000, 'connect');
  cleanup.add(() => {
    if (!s.destroyed) s.destroy();
  });
  return s;
}

/** Resolves once the socket has emitted 'close' (or already had). */
function closed(s: RawSocket): Promise<void> {
  return new Promise((r) => (s.closed ? r() : s.once('close', () => r())));
}

/** An echo server that keeps writing after the client's FIN (allowHalfOpen), and ends after it. */
async function echoServer() {
  const srv = await startNetServer((sock) => {
    sock.on('error', () => {});
    sock.pipe(sock);
  });
  return srv; // allowHalfOpen false: the server ends after the client's FIN (pipe ends it too)
}

async function readAll(s: RawSocket): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A node:tls echo server with the fixtures' server certificate. */
async function tlsEchoServer(opts: tls.TlsOptions = {}): Promise<{ port: number; server: tls.Server; sockets: tls.TLSSocket[] }> {
  const sockets: tls.TLSSocket[] = [];
  const server = tls.createServer({ key: fx.server.key, cert: fx.server.cert, allowHalfOpen: true, ...opts }, (sock) => {
    sockets.push(sock);
    sock.on('error', () => {});
    sock.on('data', (d) => sock.write(d));
    sock.on('end', () => {
      sock.write('bye');
      sock.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.add(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, server, sockets };
}

describe('TCP', () => {
  it('connects, writes, reads and ends; addresses, ports and byte counts', async () => {
    const srv = await echoServer();
    const s = await open({ host: '127.0.0.1', port: srv.port });
    expect(s).toBeInstanceOf(RawSocket);
    expect(s.remoteAddress).toBe('127.0.0.1');
    expect(s.remotePort).toBe(srv.port);
    expect(s.localAddress).toBe('127.0.0.1');
    await waitFor(() => srv.sockets.length === 1);
    expect(s.localPort).toBe(srv.sockets[0]!.remotePort);
    expect(s.tls).toBeUndefined();
    expect(s.write('hello ')).toBe(true);
    s.write(Buffer.from('world'));
    s.end();
    const got = await within(readAll(s), 5_000, 'echo');
    expect(got.toString()).toBe('hello world');
    expect(s.bytesWritten).toBe(11);
    expect(s.bytesRead).toBe(11);
    await within(closed(s), 5_000, 'close');
  });

  it('works with on("data") and many round trips on one socket', async () => {
    const srv = await echoServer();
    const s = await open({ host: 'localhost', port: srv.port });
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
    });
    for (let i = 0; i < 100; i++) {
      const before = got.length;
      s.write(`m${i};`);
      await waitFor(() => got.length > before);
    }
    expect(got.split(';').length).toBe(101);
  });

  it('half-close: after our end() the peer still sends, and we read it', async () => {
    let serverSawEnd = false;
    const srv = await startNetServer((sock) => {
      sock.on('error', () => {});
      let req = '';
      sock.on('data', (d) => {
        req += d;
      });
      sock.on('end', () => {
        serverSawEnd = true;
        // The client can no longer write, but still reads.
        setTimeout(() => sock.end(`got ${req}`), 50);
      });
    });
    (srv.server as unknown as { allowHalfOpen: boolean }).allowHalfOpen = true;
    const s = await open({ host: '127.0.0.1', port: srv.port });
    s.end('question');
    const answer = await within(readAll(s), 5_000, 'answer');
    expect(serverSawEnd).toBe(true);
    expect(answer.toString()).toBe('got question');
    await within(closed(s), 5_000, 'close');
  });

  it("'finish' waits until every written byte and the FIN are in the kernel", async () => {
    let received = 0;
    let serverSock!: net.Socket;
    let serverEnd!: () => void;
    const ended = new Promise<void>((r) => (serverEnd = r));
    const srv = await startNetServer((sock) => {
      serverSock = sock;
      sock.on('error', () => {});
      sock.pause(); // reads nothing until told: the client's bytes pile up in both kernels
      sock.on('data', (d) => {
        received += d.length;
      });
      sock.on('end', () => serverEnd());
    });
    (srv.server as unknown as { allowHalfOpen: boolean }).allowHalfOpen = true;
    const s = await open({ host: '127.0.0.1', port: srv.port });
    const total = 16 * 1024 * 1024;
    const chunk = Buffer.alloc(256 * 1024, 0x5a);
    let finished = false;
    s.on('finish', () => (finished = true));
    for (let n = 0; n < total; n += chunk.length) s.write(chunk);
    s.end();
    await sleep(300);
    // 16 MiB cannot fit in loopback socket buffers: the bytes are still queued in this process.
    expect(finished).toBe(false);
    serverSock.resume();
    await within(new Promise((r) => s.once('finish', r)), 10_000, "'finish'");
    await within(ended, 10_000, "the server's 'end'");
    expect(received).toBe(total);
    expect(s.bytesWritten).toBe(total);
  });

  it("half-close: after the peer's FIN we still write, and the peer reads it", async () => {
    let received = '';
    let serverEnded!: () => void;
    const done = new Promise<void>((r) => (serverEnded = r));
    const srv = await startNetServer((sock) => {
      sock.on('error', () => {});
      sock.end('server done'); // FIN right away, keep reading
      sock.on('data', (d) => {
        received += d;
      });
      sock.on('end', () => serverEnded());
    });
    (srv.server as unknown as { allowHalfOpen: boolean }).allowHalfOpen = true;
    const s = await open({ host: '127.0.0.1', port: srv.port });
    // (for await would destroy the socket at the end: read with events to keep writing after)
    let fromServer = '';
    s.on('data', (d) => {
      fromServer += d;
    });
    await within(new Promise((r) => s.once('end', r)), 5_000, 'server bytes');
    expect(fromServer).toBe('server done');
    expect(s.peerEnded).toBe(true);
    expect(s.writable).toBe(true);
    s.write('still ');
    s.end('writing');
    await within(done, 5_000, 'server end');
    expect(received).toBe('still writing');
    await within(closed(s), 5_000, 'close');
  });

  it('read backpressure: a reader that does not read stops the native read (bounded buffering)', async () => {
    const total = 32 * 1024 * 1024;
    let serverSock!: net.Socket;
    let written = 0;
    const srv = await startNetServer((sock) => {
      serverSock = sock;
      sock.on('error', () => {});
      const chunk = Buffer.alloc(256 * 1024, 7);
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!sock.write(chunk)) return;
        }
        sock.end();
      };
      sock.on('drain', pump);
      pump();
    });
    const s = await open({ host: '127.0.0.1', port: srv.port, highWaterMark: 64 * 1024 });
    // Nobody reads: the socket's buffer fills to its high-water mark, then reading stops.
    await sleep(500);
    const buffered = s.readableLength;
    expect(buffered).toBeGreaterThan(0);
    // At most the high-water mark plus what one loop turn may deliver (256 KiB) plus a 64 KiB read.
    expect(buffered).toBeLessThanOrEqual(64 * 1024 + 256 * 1024 + 64 * 1024);
    await sleep(300);
    expect(s.readableLength).toBe(buffered); // not growing: the native side is paused
    // The rest waits in the kernel and the server's own buffer, not in our process.
    expect(written).toBeLessThan(total);
    expect(serverSock.writableLength).toBeGreaterThan(0);
    // Reading resumes the native side: every byte arrives.
    let n = 0;
    for await (const c of s) n += (c as Buffer).length;
    expect(n).toBe(total);
    expect(s.bytesRead).toBe(total);
  });

  it('write backpressure: write() returns false above the high-water mark, then drain; bytes stay bounded', async () => {
    let serverSock!: net.Socket;
    let received = 0;
    const srv = await startNetServer((sock) => {
      serverSock = sock;
      sock.on('error', () => {});
      sock.pause(); // a slow reader
      sock.on('data', (d) => {
        received += d.length;
      });
    });
    const s = await open({ host: '127.0.0.1', port: srv.port, highWaterMark: 64 * 1024 });
    await waitFor(() => serverSock !== undefined);
    const chunk = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    let ok = true;
    for (let i = 0; i < 1000 && ok; i++) {
      ok = s.write(chunk);
      sent += chunk.length;
      if (ok) await new Promise((r) => setImmediate(r));
    }
    expect(ok).toBe(false); // the kernel buffers filled, then the native queue, then ours
    // Our own buffering stays near the high-water mark: what the user wrote past it is one chunk.
    expect(s.writableLength).toBeLessThanOrEqual(64 * 1024 + chunk.length);
    expect(s.writableNeedDrain).toBe(true);
    const drained = new Promise<void>((r) => s.once('drain', () => r()));
    serverSock.resume();
    await within(drained, 10_000, 'drain');
    s.end();
    await waitFor(() => received === sent, 10_000, 'all bytes at the server');
    expect(received).toBe(sent);
  });

  it('a reset from the peer is ERR_CONNECTION_RESET on the socket', async () => {
    const srv = await startNetServer((sock) => {
      sock.on('error', () => {});
      sock.once('data', () => sock.resetAndDestroy());
    });
    const s = await open({ host: '127.0.0.1', port: srv.port });
    const err = new Promise<UvfetchError>((r) => s.once('error', (e) => r(e as UvfetchError)));
    s.resume();
    s.write('x');
    const e = await within(err, 5_000, 'error');
    expect(e).toBeInstanceOf(UvfetchError);
    expect(e.code).toBe('ERR_CONNECTION_RESET');
    expect(e.syscode).toBe('ECONNRESET');
    await within(closed(s), 5_000, 'close');
  });

  it('destroy() closes the socket natively (the server sees it) and resetAndDestroy() sends RST', async () => {
    const ends: string[] = [];
    const srv = await startNetServer((sock) => {
      sock.on('error', (e: NodeJS.ErrnoException) => ends.push(e.code ?? 'error'));
      sock.on('end', () => ends.push('end'));
      sock.resume();
    });
    const a = await open({ host: '127.0.0.1', port: srv.port });
    a.destroy();
    await within(closed(a), 5_000, 'close');
    await waitFor(() => ends.length === 1);
    expect(ends[0]).toBe('end');
    const b = await open({ host: '127.0.0.1', port: srv.port });
    b.resetAndDestroy();
    await within(closed(b), 5_000, 'close');
    await waitFor(() => ends.length === 2);
    expect(ends[1]).toBe('ECONNRESET');
  });
});

describe('TLS', () => {
  it('handshakes natively, exposes the session (protocol, cipher, alpn, ja3, ja4), echoes, half-closes', async () => {
    const srv = await tlsEchoServer({ ALPNProtocols: ['x-echo'] });
    const s = await open({ host: '127.0.0.1', port: srv.port, servername: 'localhost', tls: { ca: fx.caPem, alpn: ['x-echo'] } });
    expect(s.tls).toBeDefined();
    expect(s.tls!.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(s.tls!.cipher).not.toBe('');
    expect(s.tls!.alpn).toBe('x-echo');
    expect(s.tls!.servername).toBe('localhost');
    expect(s.tls!.authorized).toBe(true);
    expect(s.tls!.ja3).toMatch(/^771,/);
    expect(s.tls!.ja4).toMatch(/^t1[23]d/);
    s.write('ping');
    s.end(); // close_notify, then FIN; the server answers 'bye' after its 'end'
    const got = await within(readAll(s), 5_000, 'echo');
    expect(got.toString()).toBe('pingbye');
    expect(s.bytesRead).toBe(7);
    await within(closed(s), 5_000, 'close');
  });

  it("tls: true uses the session's profile; an untrusted certificate is ERR_TLS_CERT_UNTRUSTED", async () => {
    const srv = await tlsEchoServer({ key: fx.selfSigned.key, cert: fx.selfSigned.cert });
    const e = await rejection(connect({ host: 'localhost', port: srv.port, tls: true, session: session() }));
    expect(e).toBeInstanceOf(UvfetchError);
    expect(e.code).toBe('ERR_TLS_CERT_UNTRUSTED');
    const s = await open({ host: 'localhost', port: srv.port, tls: true, session: session({ tls: { ca: fx.selfSigned.cert } }) });
    expect(s.tls!.authorized).toBe(true);
  });

  it('a server that never answers the ClientHello is ERR_TLS_HANDSHAKE_TIMEOUT', async () => {
    const srv = await startNetServer((sock) => sock.on('error', () => {}));
    const t0 = Date.now();
    const e = await rejection(connect({ host: '127.0.0.1', port: srv.port, tls: { ca: fx.caPem }, timeout: { tls: 200 } }));
    expect(e.code).toBe('ERR_TLS_HANDSHAKE_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(3_000);
  });

  it('moves bulk data both ways', async () => {
    const srv = await tlsEchoServer();
    const s = await open({ host: '127.0.0.1', port: srv.port, servername: 'localhost', tls: { ca: fx.caPem } });
    const payload = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    let biggest = 0;
    s.on('data', (c: Buffer) => (biggest = Math.max(biggest, c.length)));
    const reading = readAll(s);
    s.end(payload);
    const got = await within(reading, 20_000, 'echo');
    expect(got.length).toBe(payload.length + 3);
    expect(got.subarray(0, payload.length).equals(payload)).toBe(true);
    // Records decrypted from one socket read are delivered together, not one 16 KiB record at a time.
    expect(biggest).toBeGreaterThan(16 * 1024);
  });
});

describe('errors and options', () => {
  it('typed connect errors: refused, DNS, abort; invalid options throw', async () => {
    const port = await closedPort();
    const refused = await rejection(connect({ host: '127.0.0.1', port }));
    expect(refused).toBeInstanceOf(UvfetchError);
    expect(refused.code).toBe('ERR_CONNECTION_REFUSED');
    expect(refused.syscode).toBe('ECONNREFUSED');

    const s = session({ dns: { lookup: async () => [] } });
    const nx = await rejection(connect({ host: 'nothing.test', port: 80, session: s }));
    expect(nx.code).toBe('ERR_DNS_NOT_FOUND');

    const silent = await startNetServer((sock) => sock.on('error', () => {}));
    const ac = new AbortController();
    const p = connect({ host: '127.0.0.1', port: silent.port, tls: { ca: fx.caPem }, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const aborted = await rejection(p);
    expect(aborted.code).toBe('ERR_ABORTED');

    expect(thrown(() => connect({ host: '127.0.0.1', port: 0 })).code).toBe('ERR_INVALID_OPTION');
    expect(thrown(() => connect({ host: '', port: 80 })).code).toBe('ERR_INVALID_OPTION');
    expect(thrown(() => connect({ host: 'a', port: 80, bogus: 1 } as never)).code).toBe('ERR_INVALID_OPTION');
    expect(thrown(() => connect({ host: 'a', port: 80, localAddress: 'nope' })).code).toBe('ERR_INVALID_OPTION');
  });

  it("shares the session's DNS cache: one lookup for many sockets to a name", async () => {
    const srv = await echoServer();
    let lookups = 0;
    const s = session({
      dns: {
        lookup: async () => {
          lookups++;
          return [{ address: '127.0.0.1', family: 4 }];
        },
      },
    });
    const socks = await Promise.all([1, 2, 3, 4, 5].map(() => open({ host: 'echo.test', port: srv.port, session: s })));
    expect(socks.every((x) => x.remoteAddress === '127.0.0.1')).toBe(true);
    expect(lookups).toBe(1);
    expect(s.stats().dns.lookups).toBe(1);
  });

  it('session.close() waits for requests, then ends raw sockets with ERR_SESSION_CLOSED; new connects reject', async () => {
    const srv = await echoServer();
    const s = new Session();
    const sock = await connect({ host: '127.0.0.1', port: srv.port, session: s });
    const err = new Promise<UvfetchError>((r) => sock.once('error', (e) => r(e as UvfetchError)));
    await within(s.close(), 5_000, 'session close');
    expect((await err).code).toBe('ERR_SESSION_CLOSED');
    expect(sock.destroyed).toBe(true);
    const late = await rejection(connect({ host: '127.0.0.1', port: srv.port, session: s }));
    expect(late.code).toBe('ERR_SESSION_CLOSED');
  });

  it('leaves no descriptor behind (opened, refused, destroyed mid-stream, TLS)', async () => {
    const srv = await echoServer();
    const tsrv = await tlsEchoServer();
    const refusedPort = await closedPort();
    const s = session();
    // Warm up lazily created handles (engine timers, the TLS context).
    await (await connect({ host: '127.0.0.1', port: srv.port, session: s })).destroy();
    await sleep(50);
    const before = fdCount();
    for (let i = 0; i < 20; i++) {
      const a = await connect({ host: '127.0.0.1', port: srv.port, session: s });
      a.write('x');
      a.destroy();
      await closed(a);
      await rejection(connect({ host: '127.0.0.1', port: refusedPort, session: s }));
      const b = await connect({ host: '127.0.0.1', port: tsrv.port, servername: 'localhost', tls: { ca: fx.caPem }, session: s });
      b.end('y');
      await readAll(b);
      await closed(b);
    }
    await sleep(100);
    expect(fdCount()).toBeLessThanOrEqual(before + 1);
  });
});

describe("the session's socket budget (connections)", () => {
  it('raw sockets count against connections: a connect over the limit waits, and goes on when one closes', async () => {
    const srv = await echoServer();
    const s = session({ connections: 2 });
    const a = await open({ host: '127.0.0.1', port: srv.port, session: s });
    const b = await open({ host: '127.0.0.1', port: srv.port, session: s });
    let third: RawSocket | undefined;
    const p = connect({ host: '127.0.0.1', port: srv.port, session: s }).then((x) => (third = x));
    await waitFor(() => s.stats().raw.waiting === 1, 5_000, 'the third connect waiting');
    await sleep(100);
    expect(third).toBeUndefined();
    expect(s.stats().raw).toEqual({ open: 3, waiting: 1 });
    expect(srv.connections).toBe(2); // the server never saw a third connection
    a.destroy();
    const c = await within(p, 5_000, 'third connect');
    cleanup.add(() => c.destroy());
    expect(s.stats().raw.waiting).toBe(0);
    c.write('ping');
    const echoed = await new Promise<Buffer>((r) => c.once('data', r));
    expect(echoed.toString()).toBe('ping');
    b.destroy();
    c.destroy();
    await closed(c);
    await waitFor(() => s.stats().raw.open === 0, 5_000, 'raw sockets closed');
  });

  it('waiting connects are served in order, and a wait longer than the connect timeout is ERR_CONNECT_TIMEOUT', async () => {
    const srv = await echoServer();
    const s = session({ connections: 1 });
    const a = await open({ host: '127.0.0.1', port: srv.port, session: s });
    const order: number[] = [];
    const first = connect({ host: '127.0.0.1', port: srv.port, session: s }).then((x) => (order.push(1), x));
    const second = connect({ host: '127.0.0.1', port: srv.port, session: s }).then((x) => (order.push(2), x));
    const late = await rejection(connect({ host: '127.0.0.1', port: srv.port, session: s, timeout: 200 }));
    expect(late).toBeInstanceOf(UvfetchError);
    expect(late.code).toBe('ERR_CONNECT_TIMEOUT');
    expect(late.message).toMatch(/connections limit/);
    a.destroy();
    const x = await within(first, 5_000, 'first waiter');
    expect(order).toEqual([1]);
    x.destroy();
    const y = await within(second, 5_000, 'second waiter');
    expect(order).toEqual([1, 2]);
    y.destroy();
    await closed(y);
  });

  it('an idle keep-alive HTTP connection is closed to make room for a raw socket', async () => {
    const http = await startHttpServer((_req, res) => res.end('ok'));
    const srv = await echoServer();
    const s = session({ connections: 1 });
    const r = await s.request(`http://127.0.0.1:${http.port}/`);
    await r.text();
    await waitFor(() => s.stats().connections.idle === 1, 5_000, 'an idle HTTP connection');
    const raw = await open({ host: '127.0.0.1', port: srv.port, session: s });
    expect(s.stats().connections.open).toBe(0);
    expect(s.stats().raw).toEqual({ open: 1, waiting: 0 });
    raw.destroy();
    await closed(raw);
  });

  it('an HTTP request waits while raw sockets hold the whole budget, and runs when one closes', async () => {
    const http = await startHttpServer((_req, res) => res.end('ok'));
    const srv = await echoServer();
    const s = session({ connections: 1 });
    const raw = await open({ host: '127.0.0.1', port: srv.port, session: s });
    let done = false;
    const req = s.request(`http://127.0.0.1:${http.port}/`).then(async (r) => {
      done = true;
      return r.text();
    });
    await sleep(150);
    expect(done).toBe(false);
    expect(s.stats().requests.queued).toBe(1);
    raw.destroy();
    expect(await within(req, 5_000, 'request')).toBe('ok');
  });
});

describe('the module-wide session', () => {
  it("connect() without a session is not held to the HTTP default of 256 sockets (its budget is connections: 'auto')", async () => {
    const srv = await echoServer();
    const socks = await Promise.all(Array.from({ length: 300 }, () => open({ host: '127.0.0.1', port: srv.port, timeout: 5_000 })));
    expect(socks.every((s) => s.remotePort === srv.port)).toBe(true);
    await Promise.all(socks.map((s) => (s.destroy(), closed(s))));
  });
});
