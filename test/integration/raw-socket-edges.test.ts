// Raw sockets at their edges: a TCP connect that hangs (connect timeout, AbortSignal, a
// SocketPool acquire aborted mid-connect), a TLS handshake the server never answers (the tls
// timeout, kept apart from the connect timeout), and half-close ordering (every byte written
// before end() reaches the peer, in order, before its 'end', over TCP and TLS, and the peer can
// still answer). The timeout and abort cases also check that no descriptor is left behind.
// ('finish' waiting behind a paused reader is in raw-socket.test.ts.)
//
// The hanging port: a python3 listener with backlog 0 that never accepts, its accept queue
// filled first, so the kernel drops further SYNs and connects to it stay pending.

import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type RawSocket, type Session, SocketPool, UvfetchError } from '../../lib/index.js';
import {
  Cleanup,
  fdCount,
  hangingPort as sharedHangingPort,
  rejection,
  sleep,
  startNetServer,
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

function track(s: RawSocket): RawSocket {
  cleanup.add(() => {
    if (!s.destroyed) s.destroy();
  });
  return s;
}

/** Resolves once the socket has emitted 'close' (or already had). */
function closed(s: RawSocket): Promise<void> {
  return new Promise((r) => (s.closed ? r() : s.once('close', () => r())));
}

function expectCode(err: unknown, code: string): asserts err is UvfetchError {
  expect(err).toBeInstanceOf(UvfetchError);
  expect((err as UvfetchError).code).toBe(code);
}

/** A loopback port whose connects hang (see the header). */
async function hangingPort(): Promise<number> {
  const port = await sharedHangingPort(cleanup);
  expect(port).toBeGreaterThan(0);
  // Prove the port hangs rather than refuses: a plain node:net connect stays pending.
  const probe = net.connect(port, '127.0.0.1');
  let probeOutcome = 'pending';
  probe.on('connect', () => (probeOutcome = 'connected'));
  probe.on('error', (e: NodeJS.ErrnoException) => (probeOutcome = e.code ?? 'error'));
  await sleep(200);
  probe.destroy();
  expect(probeOutcome).toBe('pending');
  return port;
}

/** A session whose lazily made handles exist already (one connect made and closed), so fd counts compare. */
async function warmSession(opts?: ConstructorParameters<typeof Session>[0]): Promise<Session> {
  const s = session(opts);
  const echo = await startNetServer((sock) => {
    sock.on('error', () => {});
    sock.pipe(sock);
  });
  const w = await within(connect({ host: '127.0.0.1', port: echo.port, session: s }), 10_000, 'warm-up connect');
  w.destroy();
  await within(closed(w), 5_000, 'warm-up close');
  await echo.close();
  await sleep(50);
  return s;
}

/** Waits (bounded) until this process has at most `n` descriptors open; returns the count. */
async function fdsBackTo(n: number): Promise<number> {
  await waitFor(() => fdCount() <= n, 5_000, `open descriptors back to ${n} (now ${fdCount()})`).catch(() => {});
  return fdCount();
}

describe('connect timeout (a TCP connect that hangs)', () => {
  it('rejects with ERR_CONNECT_TIMEOUT within a bounded time and leaves no descriptor', async () => {
    const port = await hangingPort();
    const s = await warmSession();
    const before = fdCount();
    const t0 = Date.now();
    const err = await rejection(connect({ host: '127.0.0.1', port, timeout: 300, session: s }), 15_000);
    const elapsed = Date.now() - t0;
    expectCode(err, 'ERR_CONNECT_TIMEOUT');
    expect(err.message).toMatch(/connect/i);
    expect(elapsed).toBeGreaterThanOrEqual(200); // a timeout, not an immediate failure
    expect(elapsed).toBeLessThan(10_000);
    expect(await fdsBackTo(before)).toBeLessThanOrEqual(before);
  });

  it("{ connect } alone sets the connect timeout; the session's timeout.connect is the default", async () => {
    const port = await hangingPort();
    const s = await warmSession({ timeout: { connect: 300 } });
    // The second session is made (and warmed) before counting: with ioThreads its thread's loop
    // holds descriptors of its own until the session closes.
    const s2 = await warmSession();
    const before = fdCount();
    // Only the tls part given: the connect timeout stays the session's (300 ms).
    const a = await rejection(connect({ host: '127.0.0.1', port, session: s, timeout: { tls: 60_000 } }), 15_000);
    expectCode(a, 'ERR_CONNECT_TIMEOUT');
    const b = await rejection(connect({ host: '127.0.0.1', port, session: s2, timeout: { connect: 300 } }), 15_000);
    expectCode(b, 'ERR_CONNECT_TIMEOUT');
    // Several at once: each gets its own deadline, none lingers.
    const many = await Promise.all(Array.from({ length: 5 }, () => rejection(connect({ host: '127.0.0.1', port, session: s }), 15_000)));
    for (const e of many) expectCode(e, 'ERR_CONNECT_TIMEOUT');
    expect(await fdsBackTo(before)).toBeLessThanOrEqual(before);
  });
});

describe('AbortSignal on a hanging connect', () => {
  it('aborting the TCP connect rejects with ERR_ABORTED (cause: the reason) and leaves no descriptor', async () => {
    const port = await hangingPort();
    const s = await warmSession();
    const before = fdCount();
    const ac = new AbortController();
    const t0 = Date.now();
    const p = connect({ host: '127.0.0.1', port, session: s, timeout: 20_000, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop')), 100);
    const err = await rejection(p, 15_000);
    expectCode(err, 'ERR_ABORTED');
    expect((err.cause as Error).message).toBe('stop');
    expect(Date.now() - t0).toBeLessThan(5_000); // the abort, not the 20 s connect timeout
    expect(await fdsBackTo(before)).toBeLessThanOrEqual(before);
  });

  it('an already-aborted signal rejects at once without opening anything', async () => {
    const port = await hangingPort();
    const s = await warmSession();
    const before = fdCount();
    const err = await rejection(connect({ host: '127.0.0.1', port, session: s, signal: AbortSignal.abort() }), 5_000);
    expectCode(err, 'ERR_ABORTED');
    expect(fdCount()).toBeLessThanOrEqual(before);
  });

  it('SocketPool.acquire aborted while its socket is connecting: ERR_ABORTED, nothing left open, close() resolves', async () => {
    const port = await hangingPort();
    // The pool connects through the module-wide session: make it (and its handles) first.
    const echo = await startNetServer((sock) => sock.on('error', () => {}));
    const w = await within(connect({ host: '127.0.0.1', port: echo.port }), 10_000, 'warm-up connect');
    w.destroy();
    await within(closed(w), 5_000, 'warm-up close');
    await sleep(50);
    const before = fdCount();
    const pool = new SocketPool({ connect: { host: '127.0.0.1', port, timeout: 4_000 } });
    cleanup.add(() => pool.close({ force: true }));
    const ac = new AbortController();
    const p = pool.acquire(undefined, { signal: ac.signal });
    // Observe the outcome without awaiting it yet.
    let outcome: { at: number; code?: string; value?: unknown } | undefined;
    const t0 = Date.now();
    p.then(
      (v) => (outcome = { at: Date.now() - t0, value: v }),
      (e: UvfetchError) => (outcome = { at: Date.now() - t0, code: e.code }),
    );
    await sleep(50);
    expect(pool.stats()).toMatchObject({ open: 1, waiting: 0, created: 1 }); // connecting
    ac.abort();
    // The abort must settle the acquire promptly (well before the 4 s connect timeout).
    await waitFor(() => outcome !== undefined, 2_500, 'acquire to settle after the abort').catch(() => {});
    const early = outcome;
    // Whatever happened, let the connect run out so the pool can be closed and judged.
    await waitFor(() => outcome !== undefined, 10_000, 'acquire to settle at all').catch(() => {});
    expect({ settledAfterAbort: early !== undefined, code: (early ?? outcome)?.code }).toEqual({ settledAfterAbort: true, code: 'ERR_ABORTED' });
    await waitFor(() => pool.stats().open === 0, 2_000, 'the aborted connect to leave the pool').catch(() => {});
    expect(pool.stats()).toMatchObject({ open: 0, idle: 0, waiting: 0 });
    await within(pool.close(), 5_000, 'pool close');
    expect(await fdsBackTo(before)).toBeLessThanOrEqual(before);
  });

  it('SocketPool: a queued acquire (limit reached) aborted → ERR_ABORTED; the connecting one is unaffected', async () => {
    const port = await hangingPort();
    const pool = new SocketPool({ connect: { host: '127.0.0.1', port, timeout: 600 }, maxPerKey: 1 });
    cleanup.add(() => pool.close({ force: true }));
    const first = rejection(pool.acquire(), 15_000);
    const ac = new AbortController();
    const queued = rejection(pool.acquire(undefined, { signal: ac.signal }), 15_000);
    await sleep(50);
    expect(pool.stats()).toMatchObject({ open: 1, waiting: 1 });
    ac.abort();
    expectCode(await queued, 'ERR_ABORTED');
    expect(pool.stats()).toMatchObject({ open: 1, waiting: 0 });
    expectCode(await first, 'ERR_CONNECT_TIMEOUT');
    expect(pool.stats()).toMatchObject({ open: 0, idle: 0, waiting: 0, created: 1 });
    await within(pool.close(), 5_000, 'pool close');
  });
});

describe('TLS handshake timeout (a server that accepts and never answers)', () => {
  /** A node:net server that reads (and records) what arrives, and never writes. */
  async function silentServer() {
    const got: Buffer[] = [];
    const srv = await startNetServer((sock) => {
      sock.on('error', () => {});
      sock.on('data', (d) => got.push(d));
    });
    return { srv, received: () => Buffer.concat(got) };
  }

  it('{ tls: 300 } with a long connect timeout → ERR_TLS_HANDSHAKE_TIMEOUT; the ClientHello was sent; the socket closes', async () => {
    const { srv, received } = await silentServer();
    const s = await warmSession();
    const before = fdCount();
    const t0 = Date.now();
    const err = await rejection(
      connect({ host: '127.0.0.1', port: srv.port, session: s, tls: { rejectUnauthorized: false }, timeout: { connect: 30_000, tls: 300 } }),
      15_000,
    );
    const elapsed = Date.now() - t0;
    expectCode(err, 'ERR_TLS_HANDSHAKE_TIMEOUT');
    expect(elapsed).toBeGreaterThanOrEqual(200);
    expect(elapsed).toBeLessThan(10_000);
    // The TCP connect succeeded and a ClientHello (a handshake record, 0x16 0x03) went out.
    expect(srv.connections).toBe(1);
    const hello = received();
    expect(hello.length).toBeGreaterThan(5);
    expect(hello[0]).toBe(0x16);
    expect(hello[1]).toBe(0x03);
    // Our side closed: the server sees its socket close, and our descriptor is gone.
    await waitFor(() => srv.closed === 1, 5_000, 'server to see the close');
    expect(await fdsBackTo(before)).toBeLessThanOrEqual(before);
  });

  it('the connect timeout does not bound the handshake: { connect: 300, tls: 1500 } ends in ERR_TLS_HANDSHAKE_TIMEOUT', async () => {
    const { srv } = await silentServer();
    const t0 = Date.now();
    const err = await rejection(
      connect({ host: '127.0.0.1', port: srv.port, tls: { ca: fx.caPem }, servername: 'localhost', timeout: { connect: 300, tls: 1_500 } }),
      15_000,
    );
    expectCode(err, 'ERR_TLS_HANDSHAKE_TIMEOUT'); // not ERR_CONNECT_TIMEOUT at ~300 ms
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_000);
  });

  it("a number sets both timeouts, and the session's timeout.tls is the default", async () => {
    const { srv } = await silentServer();
    const a = await rejection(connect({ host: '127.0.0.1', port: srv.port, tls: { ca: fx.caPem }, servername: 'localhost', timeout: 300 }), 15_000);
    expectCode(a, 'ERR_TLS_HANDSHAKE_TIMEOUT');
    const s = session({ timeout: { tls: 300 }, tls: { ca: fx.caPem } });
    const b = await rejection(connect({ host: '127.0.0.1', port: srv.port, servername: 'localhost', tls: true, session: s }), 15_000);
    expectCode(b, 'ERR_TLS_HANDSHAKE_TIMEOUT');
    await waitFor(() => srv.closed === 2, 5_000, 'server to see both closes');
  });
});

describe('half-close: every byte written before end() reaches the peer before its end', () => {
  const MiB = 1024 * 1024;

  function pattern(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) % 253;
    return b;
  }

  /**
   * A server (node:net or node:tls, allowHalfOpen) that counts bytes and hashes them until the
   * client's FIN, then answers "<count>" and ends. `pauseMs` holds reading at first (a slow peer).
   */
  async function countingServer(kind: 'tcp' | 'tls', pauseMs = 0) {
    const result: { count: number; endSeen: boolean; data: Buffer[] } = { count: 0, endSeen: false, data: [] };
    const onSock = (sock: net.Socket) => {
      sock.on('error', () => {});
      if (pauseMs > 0) {
        sock.pause();
        setTimeout(() => sock.resume(), pauseMs);
      }
      sock.on('data', (d: Buffer) => {
        result.count += d.length;
        result.data.push(d);
      });
      sock.on('end', () => {
        result.endSeen = true;
        sock.end(String(result.count));
      });
    };
    let port: number;
    if (kind === 'tcp') {
      const srv = await startNetServer(onSock);
      (srv.server as unknown as { allowHalfOpen: boolean }).allowHalfOpen = true;
      port = srv.port;
    } else {
      const sockets: tls.TLSSocket[] = [];
      const server = tls.createServer({ key: fx.server.key, cert: fx.server.cert, allowHalfOpen: true }, (sock) => {
        sockets.push(sock);
        onSock(sock);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      cleanup.add(
        () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      );
      port = (server.address() as net.AddressInfo).port;
    }
    return { port, result };
  }

  async function run(kind: 'tcp' | 'tls', size: number, pauseMs: number, chunk: number) {
    const payload = pattern(size);
    const { port, result } = await countingServer(kind, pauseMs);
    const sock = track(
      await within(connect({ host: '127.0.0.1', port, ...(kind === 'tls' ? { tls: { ca: fx.caPem }, servername: 'localhost' } : {}) }), 10_000, 'connect'),
    );
    let answer = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (answer += d));
    const ended = new Promise<void>((r) => sock.once('end', () => r()));
    const finished = new Promise<void>((r) => sock.once('finish', () => r()));
    // Many writes without waiting for 'drain': everything past the high-water mark is buffered.
    for (let off = 0; off < size; off += chunk) sock.write(payload.subarray(off, Math.min(size, off + chunk)));
    sock.end();
    await within(finished, 20_000, "'finish'");
    expect(sock.writableFinished).toBe(true);
    expect(sock.bytesWritten).toBe(size);
    await within(ended, 20_000, "the server's answer and FIN");
    // The server got every byte, in order, before its 'end'; it reported the count after.
    expect(result.endSeen).toBe(true);
    expect(result.count).toBe(size);
    expect(Buffer.concat(result.data).equals(payload)).toBe(true);
    expect(answer).toBe(String(size));
    expect(sock.peerEnded).toBe(true);
    await within(closed(sock), 5_000, 'close');
  }

  it('TCP: 1 MiB then end() → finish; the server counts exactly 1 MiB before its end', async () => {
    await run('tcp', MiB, 0, 64 * 1024);
  });

  it('TCP, slow peer: 8 MiB queued when end() is called; the FIN waits for the queue', async () => {
    await run('tcp', 8 * MiB, 300, 256 * 1024);
  });

  it('TLS: 1 MiB then end() (close_notify after the data) → the server counts exactly 1 MiB', async () => {
    await run('tls', MiB, 0, 16 * 1024 + 5);
  });

  it('TLS, slow peer: 4 MiB in odd-sized writes, then end()', async () => {
    await run('tls', 4 * MiB, 300, 100_003);
  });
});
