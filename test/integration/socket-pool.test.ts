// SocketPool: reuse (LIFO, checked alive), per-key and total limits with FIFO waiters, eviction of
// the oldest idle socket for another key, key separation, idle timeout, peers closing idle
// sockets, connect failures freeing their slot, graceful close — observed from the server side.

import { afterEach, describe, expect, it } from 'vitest';
import { SocketPool, type RawSocket } from '../../lib/index.js';
import { Cleanup, closedPort, rejection, sleep, startNetServer, thrown, waitFor, within } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function pool(opts: ConstructorParameters<typeof SocketPool>[0]): SocketPool {
  const p = new SocketPool(opts);
  cleanup.add(() => p.close());
  return p;
}

/** A server that counts connections and open sockets, and echoes. */
async function server() {
  const srv = await startNetServer((sock) => {
    sock.on('error', () => {});
    sock.pipe(sock);
  });
  const open = () => srv.sockets.filter((s) => !s.destroyed && !s.readableEnded).length;
  return { srv, port: srv.port, open };
}

async function roundTrip(s: RawSocket, msg: string): Promise<string> {
  return new Promise((resolve) => {
    s.once('data', (d) => resolve(String(d)));
    s.write(msg);
  });
}

describe('SocketPool', () => {
  it('reuses a released socket (LIFO) and counts created / reused', async () => {
    const { port, srv } = await server();
    const p = pool({ connect: { host: '127.0.0.1', port } });
    const a = await p.acquire();
    const b = await p.acquire();
    expect(a).not.toBe(b);
    expect(await roundTrip(a, 'a')).toBe('a');
    p.release(a);
    p.release(b);
    expect(p.stats()).toEqual({ open: 2, idle: 2, waiting: 0, created: 2, reused: 0 });
    const c = await p.acquire();
    expect(c).toBe(b); // the most recently released
    expect(await roundTrip(c, 'c')).toBe('c');
    expect(p.stats()).toMatchObject({ open: 2, idle: 1, created: 2, reused: 1 });
    expect(srv.sockets.length).toBe(2);
    p.release(c);
  });

  it('maxPerKey: further acquires wait in FIFO order and get released sockets', async () => {
    const { port, srv } = await server();
    const p = pool({ connect: { host: '127.0.0.1', port }, maxPerKey: 2 });
    const a = await p.acquire();
    const b = await p.acquire();
    const order: string[] = [];
    const w1 = p.acquire().then((s) => (order.push('w1'), s));
    const w2 = p.acquire().then((s) => (order.push('w2'), s));
    await sleep(30);
    expect(p.stats()).toMatchObject({ open: 2, waiting: 2 });
    p.release(b);
    const s1 = await within(w1, 2_000, 'first waiter');
    expect(s1).toBe(b);
    p.destroy(a); // a freed slot: the next waiter gets a new connection
    const s2 = await within(w2, 2_000, 'second waiter');
    expect(s2).not.toBe(a);
    expect(order).toEqual(['w1', 'w2']);
    expect(srv.sockets.length).toBe(3);
    expect(p.stats()).toMatchObject({ open: 2, waiting: 0, created: 3, reused: 1 });
    p.release(s1);
    p.release(s2);
  });

  it('keys are separate: labels and host:port keys get their own sockets; max evicts the oldest idle of another key', async () => {
    const one = await server();
    const two = await server();
    const p = pool({ max: 2, maxPerKey: 2 });
    const a = await p.acquire(`127.0.0.1:${one.port}`);
    const b = await p.acquire({ host: '127.0.0.1', port: two.port });
    expect(a.remotePort).toBe(one.port);
    expect(b.remotePort).toBe(two.port);
    expect(a.poolKey).not.toBe(b.poolKey);
    p.release(a);
    // Total limit reached; key one has an idle socket: it is closed to make room for key two.
    const c = await within(p.acquire({ host: '127.0.0.1', port: two.port }), 2_000, 'acquire');
    expect(c).not.toBe(a);
    expect(c.remotePort).toBe(two.port);
    await waitFor(() => a.destroyed);
    expect(p.stats()).toMatchObject({ open: 2, idle: 0, created: 3 });

    // Labels: same place, separate sockets.
    const q = pool({ connect: { host: '127.0.0.1', port: one.port } });
    const x = await q.acquire('tenant-a');
    q.release(x);
    const y = await q.acquire('tenant-b');
    expect(y).not.toBe(x);
    q.release(y);
    expect(await q.acquire('tenant-a')).toBe(x);
    q.release(x);
    p.release(b);
    p.release(c);
  });

  it('closes idle sockets after idleTimeout', async () => {
    const { port, open } = await server();
    const p = pool({ connect: { host: '127.0.0.1', port }, idleTimeout: 100 });
    const s = await p.acquire();
    p.release(s);
    expect(p.stats().idle).toBe(1);
    await waitFor(() => p.stats().open === 0, 2_000, 'idle expiry');
    expect(s.destroyed).toBe(true);
    await waitFor(() => open() === 0, 2_000, 'server side closed');
    const t = await p.acquire();
    expect(t).not.toBe(s);
    expect(p.stats()).toMatchObject({ created: 2, reused: 0 });
    p.release(t);
  });

  it('a socket the peer closed while idle is dropped, never handed out', async () => {
    const srv = await startNetServer((sock) => {
      sock.on('error', () => {});
      sock.resume();
    });
    const p = pool({ connect: { host: '127.0.0.1', port: srv.port } });
    const s = await p.acquire();
    p.release(s);
    await waitFor(() => srv.sockets.length === 1);
    srv.sockets[0]!.end();
    await waitFor(() => p.stats().idle === 0, 2_000, 'idle socket dropped');
    const t = await p.acquire();
    expect(t).not.toBe(s);
    expect(p.stats()).toMatchObject({ open: 1, created: 2, reused: 0 });
    p.release(t);
  });

  it('ended or destroyed sockets are not pooled on release', async () => {
    const { port } = await server();
    const p = pool({ connect: { host: '127.0.0.1', port } });
    const s = await p.acquire();
    s.end();
    p.release(s);
    expect(p.stats()).toMatchObject({ open: 0, idle: 0 });
    const t = await p.acquire();
    t.destroy();
    await waitFor(() => p.stats().open === 0);
  });

  it('connect errors reject acquire and free the slot for the next waiter', async () => {
    const refused = await closedPort();
    const p = pool({ connect: { host: '127.0.0.1', port: refused }, maxPerKey: 1 });
    const [e1, e2] = await Promise.all([rejection(p.acquire()), rejection(p.acquire())]);
    expect(e1.code).toBe('ERR_CONNECTION_REFUSED');
    expect(e2.code).toBe('ERR_CONNECTION_REFUSED');
    expect(p.stats()).toMatchObject({ open: 0, waiting: 0, created: 2 });
  });

  it('close(): waiters reject with ERR_POOL_CLOSED, idle sockets close, in-use ones when released', async () => {
    const { port, open } = await server();
    const p = new SocketPool({ connect: { host: '127.0.0.1', port }, maxPerKey: 1 });
    const s = await p.acquire();
    const waiting = p.acquire();
    let closed = false;
    const closing = p.close().then(() => (closed = true));
    expect((await rejection(waiting)).code).toBe('ERR_POOL_CLOSED');
    await sleep(30);
    expect(closed).toBe(false);
    p.release(s);
    await within(closing, 2_000, 'pool close');
    expect(s.destroyed).toBe(true);
    await waitFor(() => open() === 0);
    expect((await rejection(p.acquire())).code).toBe('ERR_POOL_CLOSED');
  });

  it('close({ force: true }) destroys sockets still in use', async () => {
    const { port } = await server();
    const p = new SocketPool({ connect: { host: '127.0.0.1', port } });
    const s = await p.acquire();
    await within(p.close({ force: true }), 2_000, 'forced close');
    expect(s.destroyed).toBe(true);
    expect(p.stats().open).toBe(0);
  });

  it('validates its options and keys', () => {
    expect(thrown(() => new SocketPool({ max: 0 })).code).toBe('ERR_INVALID_OPTION');
    expect(thrown(() => new SocketPool({ bogus: 1 } as never)).code).toBe('ERR_INVALID_OPTION');
    const p = new SocketPool({});
    expect(thrown(() => p.acquire('no-port')).code).toBe('ERR_INVALID_OPTION');
  });
});
