// Connection pool behaviour, observed from the server side (distinct sockets, concurrency) and
// from session.stats(): keep-alive reuse, LIFO reuse, per-host and total limits with FIFO
// waiters, idle eviction, idle timeouts (client and server Keep-Alive), Connection: close,
// and stale keep-alive sockets (liveness check and the one retry of idempotent requests).

import { afterEach, describe, expect, it } from 'vitest';
import { Session, UvfetchError } from '../../lib/index.js';
import { Cleanup, rejection, sleep, startHttpServer, startNetServer, waitFor, within } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function session(opts?: ConstructorParameters<typeof Session>[0]): Session {
  const s = new Session(opts);
  cleanup.add(() => s.destroy());
  return s;
}

describe('keep-alive reuse', () => {
  it('sequential requests share one socket; stats count created and reused', async () => {
    const srv = await startHttpServer((_req, res) => res.end('ok'));
    const s = session();
    const infos = [];
    for (let i = 0; i < 10; i++) {
      const res = await s.request(srv.url(`/${i}`));
      expect(res.status).toBe(200);
      infos.push(res.info.reused);
    }
    expect(infos).toEqual([false, true, true, true, true, true, true, true, true, true]);
    expect(srv.connections).toBe(1);
    expect(new Set(srv.requests.map((r) => r.socketId))).toEqual(new Set([1]));
    const st = s.stats();
    expect(st.connections.created).toBe(1);
    expect(st.connections.reused).toBe(9);
    expect(st.connections.open).toBe(1);
    expect(st.connections.idle).toBe(1);
    expect(st.connections.active).toBe(0);
    expect(st.requests).toMatchObject({ started: 10, completed: 10, failed: 0, inFlight: 0, queued: 0, retried: 0 });
    expect(st.bytes.in).toBeGreaterThan(0);
    expect(st.bytes.out).toBeGreaterThan(0);
  });

  it('reuses idle sockets LIFO: the most recently released socket serves the next request', async () => {
    const delays: Record<string, number> = { '/a': 10, '/b': 80, '/c': 160 };
    const srv = await startHttpServer((req, res) => {
      setTimeout(() => res.end(req.url), delays[req.url!] ?? 0);
    });
    const s = session();
    await Promise.all([s.request(srv.url('/a')), s.request(srv.url('/b')), s.request(srv.url('/c'))]);
    expect(srv.connections).toBe(3);
    const socketOf = (path: string) => srv.requests.find((r) => r.url === path)!.socketId;
    const last = socketOf('/c'); // released last
    await s.request(srv.url('/next1'));
    await s.request(srv.url('/next2'));
    expect(socketOf('/next1')).toBe(last);
    expect(socketOf('/next2')).toBe(last);
    expect(srv.connections).toBe(3);
    expect(s.stats().connections).toMatchObject({ open: 3, idle: 3, created: 3, reused: 2 });
  });
});

describe('limits and waiters', () => {
  it('never exceeds connectionsPerHost; the extra requests queue', async () => {
    const srv = await startHttpServer((_req, res) => {
      setTimeout(() => res.end('x'), 5 + Math.floor(Math.random() * 20));
    });
    const s = session({ connectionsPerHost: 4 });
    const ps = Array.from({ length: 60 }, (_, i) => s.request(srv.url(`/${i}`)));
    await sleep(1);
    const mid = s.stats();
    expect(mid.requests.queued + mid.requests.inFlight).toBe(60);
    expect(mid.requests.queued).toBeGreaterThanOrEqual(56);
    const all = await within(Promise.all(ps), 20_000, '60 requests');
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(srv.maxOpen).toBe(4);
    expect(srv.maxInFlight).toBe(4);
    expect(srv.connections).toBe(4);
    expect(s.stats().connections.created).toBe(4);
    expect(s.stats().connections.reused).toBe(56);
  });

  it('with connectionsPerHost 1 the server sees requests in submit order (FIFO waiters)', async () => {
    const srv = await startHttpServer((_req, res) => {
      setTimeout(() => res.end(), 2);
    });
    const s = session({ connectionsPerHost: 1 });
    const ps = Array.from({ length: 25 }, (_, i) => s.request(srv.url(`/${i}`)));
    await within(Promise.all(ps), 20_000, '25 requests');
    expect(srv.requests.map((r) => r.url)).toEqual(Array.from({ length: 25 }, (_, i) => `/${i}`));
    expect(srv.connections).toBe(1);
    expect(srv.maxInFlight).toBe(1);
  });

  it('the total connections limit holds across two hosts', async () => {
    const handler = (_req: unknown, res: { end(s: string): void }) => {
      setTimeout(() => res.end('x'), 20);
    };
    const a = await startHttpServer(handler as never);
    const b = await startHttpServer(handler as never);
    const s = session({ connections: 3, connectionsPerHost: 3 });
    let maxClientOpen = 0;
    let maxServerInFlight = 0;
    const sampler = setInterval(() => {
      maxClientOpen = Math.max(maxClientOpen, s.stats().connections.open);
      maxServerInFlight = Math.max(maxServerInFlight, a.inFlight + b.inFlight);
    }, 1);
    try {
      const ps: Promise<unknown>[] = [];
      for (let i = 0; i < 20; i++) {
        ps.push(s.request(a.url(`/a${i}`)), s.request(b.url(`/b${i}`)));
      }
      await within(Promise.all(ps), 20_000, '40 requests');
    } finally {
      clearInterval(sampler);
    }
    expect(a.requests).toHaveLength(20);
    expect(b.requests).toHaveLength(20);
    expect(maxClientOpen).toBeLessThanOrEqual(3);
    expect(maxServerInFlight).toBeLessThanOrEqual(3);
    expect(a.maxInFlight + b.maxInFlight).toBeGreaterThanOrEqual(3);
    expect(s.stats().connections.open).toBeLessThanOrEqual(3);
  });

  it("an idle socket of another host is closed to make room under the total limit", async () => {
    const a = await startHttpServer((_req, res) => res.end('a'));
    const b = await startHttpServer((_req, res) => res.end('b'));
    const s = session({ connections: 1 });
    expect(await (await s.request(a.url('/'))).text()).toBe('a');
    expect(s.stats().connections).toMatchObject({ open: 1, idle: 1 });
    expect(await within(s.request(b.url('/')), 5000, 'request to b').then((r) => r.text())).toBe('b');
    // A's idle socket was evicted: the server sees it closed.
    await within(a.socketClosed(1), 5000, "server A seeing its socket closed");
    expect(s.stats().connections).toMatchObject({ open: 1, idle: 1, created: 2 });
    // And back again: B's idle socket makes room for A.
    expect(await within(s.request(a.url('/')), 5000, 'request to a').then((r) => r.text())).toBe('a');
    await within(b.socketClosed(1), 5000, 'server B seeing its socket closed');
    expect(a.connections).toBe(2);
    expect(s.stats().connections.created).toBe(3);
  });

  it('with the total limit reached by busy sockets of another host, a request waits instead of failing', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const a = await startHttpServer(async (_req, res) => {
      await gate;
      res.end('a');
    });
    const b = await startHttpServer((_req, res) => res.end('b'));
    const s = session({ connections: 1 });
    const pa = s.request(a.url('/'));
    await waitFor(() => a.requests.length === 1, 5000, 'a to receive its request');
    let bDone = false;
    const pb = s.request(b.url('/')).then((r) => {
      bDone = true;
      return r;
    });
    await sleep(100);
    expect(bDone).toBe(false);
    expect(b.connections).toBe(0);
    expect(s.stats().requests.queued).toBe(1);
    release();
    expect(await (await within(pa, 5000, 'a')).text()).toBe('a');
    expect(await (await within(pb, 5000, 'b')).text()).toBe('b');
    expect(b.connections).toBe(1);
  });
});

describe('idle timeouts', () => {
  it('keepAliveTimeout closes idle sockets (server sees the close, stats open → 0)', async () => {
    const srv = await startHttpServer((_req, res) => res.end('ok'));
    const s = session({ keepAliveTimeout: 300 });
    await s.request(srv.url('/'));
    await s.request(srv.url('/'));
    expect(s.stats().connections).toMatchObject({ open: 1, idle: 1 });
    await sleep(100);
    expect(srv.isSocketClosed(1)).toBe(false);
    const t0 = Date.now();
    await within(srv.socketClosed(1), 5000, 'server seeing the idle socket closed');
    expect(Date.now() - t0).toBeLessThan(3000);
    await waitFor(() => s.stats().connections.open === 0, 2000, 'stats open to reach 0');
    expect(s.stats().connections.idle).toBe(0);
    // The next request opens a new socket.
    const res = await s.request(srv.url('/'));
    expect(res.info.reused).toBe(false);
    expect(srv.connections).toBe(2);
    expect(s.stats().connections.created).toBe(2);
  });

  it('keepAliveTimeout 0 keeps idle sockets until the session closes', async () => {
    const srv = await startHttpServer((_req, res) => res.end('ok'));
    const s = session({ keepAliveTimeout: 0 });
    await s.request(srv.url('/'));
    await sleep(400);
    expect(srv.isSocketClosed(1)).toBe(false);
    expect((await s.request(srv.url('/'))).info.reused).toBe(true);
    await within(s.close(), 5000, 'close');
    await within(srv.socketClosed(1), 5000, 'socket closed by close()');
  });

  it('server Keep-Alive: timeout=1 (under the 1 s margin) → the socket is not kept', async () => {
    const srv = await startHttpServer((_req, res) => {
      res.setHeader('Keep-Alive', 'timeout=1');
      res.end('ok');
    });
    const s = session({ keepAliveTimeout: 60_000 });
    await s.request(srv.url('/'));
    await within(srv.socketClosed(1), 2000, 'client closing the socket right away');
    const res = await s.request(srv.url('/'));
    expect(res.info.reused).toBe(false);
    expect(srv.connections).toBe(2);
    expect(s.stats().connections.reused).toBe(0);
  });

  it('server Keep-Alive: timeout=2 → idle socket closed after about 1 s', async () => {
    const srv = await startHttpServer((_req, res) => {
      res.setHeader('Keep-Alive', 'timeout=2, max=100');
      res.end('ok');
    });
    const s = session({ keepAliveTimeout: 60_000 });
    await s.request(srv.url('/'));
    const t0 = Date.now();
    await sleep(300);
    expect(srv.isSocketClosed(1)).toBe(false);
    expect((await s.request(srv.url('/'))).info.reused).toBe(true);
    await within(srv.socketClosed(1), 5000, 'client closing the idle socket');
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(4000);
    await waitFor(() => s.stats().connections.open === 0, 2000, 'stats open 0');
  });

  it('node:http default keepAliveTimeout (5 s → Keep-Alive: timeout=5) is honoured as 4 s', async () => {
    const srv = await startHttpServer((_req, res) => res.end('ok'), { keepAliveTimeout: 5000 });
    const s = session({ keepAliveTimeout: 60_000 });
    const res = await s.request(srv.url('/'));
    expect(res.headers.get('keep-alive')).toBe('timeout=5');
    const t0 = Date.now();
    await within(srv.socketClosed(1), 8000, 'idle socket closing');
    const elapsed = Date.now() - t0;
    // The client closes at ~4 s; the server itself would only close at 5 s.
    expect(elapsed).toBeGreaterThanOrEqual(3500);
    expect(elapsed).toBeLessThan(4900);
    expect(s.stats().connections.open).toBe(0);
  }, 15_000);
});

describe('Connection: close', () => {
  it('server Connection: close → a new socket per request', async () => {
    const srv = await startHttpServer((_req, res) => {
      res.setHeader('Connection', 'close');
      res.end('bye');
    });
    const s = session();
    for (let i = 0; i < 5; i++) {
      const res = await s.request(srv.url('/'));
      expect(await res.text()).toBe('bye');
      expect(res.info.reused).toBe(false);
    }
    expect(srv.connections).toBe(5);
    expect(new Set(srv.requests.map((r) => r.socketId)).size).toBe(5);
    expect(s.stats().connections).toMatchObject({ created: 5, reused: 0 });
    await waitFor(() => s.stats().connections.open === 0, 2000, 'all sockets closed');
    expect(s.stats().requests.retried).toBe(0);
  });

  it('request Connection: close → the socket is not reused', async () => {
    const srv = await startHttpServer((_req, res) => res.end('ok'));
    const s = session();
    await s.request(srv.url('/'), { headers: { connection: 'close' } });
    await s.request(srv.url('/'), { headers: { Connection: 'keep-alive, Close' } });
    await s.request(srv.url('/'));
    expect(srv.connections).toBe(3);
    expect(s.stats().connections.reused).toBe(0);
  });

  it('HTTP/1.0 response without keep-alive → not reused', async () => {
    const srv = await startNetServer((sock) => {
      sock.once('data', () => sock.write('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    });
    const s = session();
    await s.request(srv.url('/'));
    await s.request(srv.url('/'));
    expect(srv.connections).toBe(2);
    expect(s.stats().connections.reused).toBe(0);
  });
});

describe('stale keep-alive sockets', () => {
  it('a server that drops idle sockets 50 ms after each response: later GETs all succeed', async () => {
    const srv = await startHttpServer((req, res) => {
      res.on('finish', () => setTimeout(() => req.socket.destroy(), 50));
      res.end('fresh');
    });
    const s = session();
    const waits = [100, 80, 120, 45, 50, 55, 48, 52, 60, 40, 51, 49, 100, 53, 47];
    for (const w of waits) {
      const res = await within(s.request(srv.url('/')), 5000, 'GET');
      expect(await res.text()).toBe('fresh');
      await sleep(w);
    }
    expect(srv.requests).toHaveLength(waits.length);
    expect(s.stats().requests.failed).toBe(0);
    expect(s.stats().requests.completed).toBe(waits.length);
  });

  it('a reused socket closed by the server without an answer: GET is retried once on a new socket', async () => {
    // Raw server: answers the first request of each socket with keep-alive; any later request on
    // the same socket is read and the socket is closed without a response.
    const seen: Array<{ socket: number; line: string }> = [];
    const srv = await startNetServer((sock, id) => {
      let n = 0;
      let buf = '';
      sock.setEncoding('latin1');
      sock.on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\r\n\r\n')) !== -1) {
          const head = buf.slice(0, i);
          const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
          buf = buf.slice(i + 4 + (cl ? Number(cl[1]) : 0));
          seen.push({ socket: id, line: head.slice(0, head.indexOf('\r\n')) });
          if (++n === 1) {
            sock.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst');
          } else {
            sock.destroy();
            return;
          }
        }
      });
    });
    const s = session();
    const r1 = await s.request(srv.url('/one'));
    expect(await r1.text()).toBe('first');
    expect(r1.info.attempts).toBe(1);

    const r2 = await within(s.request(srv.url('/two')), 5000, 'retried GET');
    expect(r2.status).toBe(200);
    expect(await r2.text()).toBe('first');
    expect(r2.info.attempts).toBe(2);
    expect(r2.info.reused).toBe(false);
    expect(s.stats().requests.retried).toBe(1);
    expect(seen).toEqual([
      { socket: 1, line: 'GET /one HTTP/1.1' },
      { socket: 1, line: 'GET /two HTTP/1.1' },
      { socket: 2, line: 'GET /two HTTP/1.1' },
    ]);

    // POST is not idempotent: the same failure is reported, not retried.
    const err = await rejection(s.request(srv.url('/post'), { method: 'POST', body: 'data' }));
    expect(err).toBeInstanceOf(UvfetchError);
    expect(['ERR_SOCKET_CLOSED', 'ERR_CONNECTION_RESET']).toContain(err.code);
    expect(err.method).toBe('POST');
    expect(s.stats().requests.retried).toBe(1);
    expect(seen.filter((x) => x.line.startsWith('POST'))).toEqual([{ socket: 2, line: 'POST /post HTTP/1.1' }]);
    expect(srv.connections).toBe(2);
  });

  it('other idempotent methods are retried; a streamed-body PUT is not', async () => {
    const seen: string[] = [];
    const srv = await startNetServer((sock) => {
      let n = 0;
      let buf = '';
      sock.setEncoding('latin1');
      sock.on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\r\n\r\n')) !== -1) {
          const head = buf.slice(0, i);
          const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
          const len = cl ? Number(cl[1]) : 0;
          if (/\r\ntransfer-encoding: chunked/i.test(head)) {
            const end = buf.indexOf('0\r\n\r\n', i + 4);
            if (end === -1) return;
            buf = buf.slice(end + 5);
          } else {
            if (buf.length < i + 4 + len) return;
            buf = buf.slice(i + 4 + len);
          }
          seen.push(head.slice(0, head.indexOf('\r\n')));
          if (++n === 1) {
            sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
          } else {
            sock.destroy();
            return;
          }
        }
      });
    });
    const s = session();
    // Each call first primes a fresh socket (the previous one was destroyed or retried).
    for (const method of ['PUT', 'DELETE', 'HEAD', 'OPTIONS']) {
      await s.request(srv.url('/prime'));
      const res = await within(s.request(srv.url(`/${method}`), { method, body: method === 'PUT' ? 'x' : undefined }), 5000, method);
      expect(res.status).toBe(200);
      expect(res.info.attempts).toBe(2);
    }
    expect(s.stats().requests.retried).toBe(4);
    await s.request(srv.url('/prime'));
    async function* gen() {
      yield 'streamed';
    }
    const err = await rejection(s.request(srv.url('/stream-put'), { method: 'PUT', body: gen() }));
    expect(['ERR_SOCKET_CLOSED', 'ERR_CONNECTION_RESET']).toContain(err.code);
    expect(s.stats().requests.retried).toBe(4);
    expect(seen.filter((l) => l.includes('/stream-put'))).toHaveLength(1);
  });

  it('the retry happens once only: a second failure is reported', async () => {
    let answered = false;
    const srv = await startNetServer((sock) => {
      sock.on('data', () => {
        if (!answered) {
          answered = true;
          sock.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
        } else {
          sock.destroy();
        }
      });
    });
    const s = session();
    await s.request(srv.url('/'));
    const err = await rejection(s.request(srv.url('/again')));
    expect(['ERR_SOCKET_CLOSED', 'ERR_CONNECTION_RESET']).toContain(err.code);
    expect(srv.connections).toBe(2);
    expect(s.stats().requests.retried).toBe(1);
    expect(s.stats().requests.failed).toBe(1);
  });

  it('a fresh socket closed before any response byte is not retried', async () => {
    const srv = await startNetServer((sock) => {
      sock.on('data', () => sock.destroy());
    });
    const s = session();
    const err = await rejection(s.request(srv.url('/')));
    expect(['ERR_SOCKET_CLOSED', 'ERR_CONNECTION_RESET']).toContain(err.code);
    expect(srv.connections).toBe(1);
    expect(s.stats().requests.retried).toBe(0);
  });

  it('an idle socket that receives unsolicited bytes is discarded, not read as the next response', async () => {
    const srv = await startNetServer((sock, id) => {
      sock.on('data', () => {
        sock.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\ns${id}`);
        if (id === 1) setTimeout(() => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON'), 30);
      });
    });
    const s = session();
    expect(await (await s.request(srv.url('/'))).text()).toBe('s1');
    await sleep(150);
    const res = await s.request(srv.url('/'));
    expect(await res.text()).toBe('s2');
    expect(srv.connections).toBe(2);
  });
});
