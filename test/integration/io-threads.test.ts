// Session({ ioThreads }) beyond the stall test (test/scale/io-threads-stall.test.ts) and the
// suites' second run on one I/O thread (UVFETCH_TEST_IO_THREADS=1): several threads at once,
// origins spread over them, the id spaces of their events (TLS info, DNS lookups), stream
// backpressure across the crossing, option validation, and threads joined on close.
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import https from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import { tlsFixtures } from '../helpers/tls-fixtures.js';
import { Cleanup, fdCount, startHttpServer, thrown, waitFor, within, sessionFactory, sleep } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
const session = sessionFactory(cleanup);
afterEach(() => cleanup.run());
const tasks = () => readdirSync('/proc/self/task').length;

describe('ioThreads', () => {
  it('rejects values outside 0..64 and non-integers with ERR_INVALID_OPTION', () => {
    for (const v of [-1, 65, 1.5, '2', Number.NaN]) {
      const e = thrown(() => session({ ioThreads: v as number }));
      expect(e.code).toBe('ERR_INVALID_OPTION');
      expect(e.message).toContain('ioThreads');
    }
  });

  it('three threads: eight origins spread over them, every response right, per-host limits hold, stats add up; close() joins the threads and returns their descriptors', async () => {
    const servers = await Promise.all(
      Array.from({ length: 8 }, (_, k) =>
        startHttpServer((req, res) => {
          setTimeout(() => res.end(`${k} ${req.url}`), 5);
        }),
      ),
    );
    const t0 = tasks();
    const fd0 = fdCount();
    const s = session({ ioThreads: 3, connectionsPerHost: 4 });
    expect(tasks()).toBe(t0 + 3);
    const jobs = [];
    for (let i = 0; i < 400; i++) {
      const k = i % 8;
      jobs.push(s.request(servers[k]!.url(`/r${i}`)).then((r) => [k, i, r.status, r.body.toString()] as const));
    }
    for (const [k, i, status, body] of await Promise.all(jobs)) {
      expect(status).toBe(200);
      expect(body).toBe(`${k} /r${i}`);
    }
    for (const srv of servers) expect(srv.maxInFlight).toBeLessThanOrEqual(4);
    const st = s.stats({ perOrigin: true });
    expect(st.requests).toMatchObject({ completed: 400, failed: 0, inFlight: 0 });
    expect(st.connections.perOrigin!.length).toBe(8);
    expect(st.connections.created).toBeLessThanOrEqual(32);
    await s.close();
    expect(tasks()).toBe(t0);
    expect(s.stats().requests.completed).toBe(400); // the threads' final counts
    await waitFor(() => fdCount() <= fd0, 2000, 'descriptors back');
  });

  it('a JS dns.lookup answers lookups from two threads (each lookup id routed back to its thread)', async () => {
    const srv = await startHttpServer((req, res) => res.end(`host ${req.headers.host}`));
    const asked: string[] = [];
    const s = session({
      ioThreads: 2,
      dns: {
        lookup: async (host: string) => {
          asked.push(host);
          return [{ address: '127.0.0.1', family: 4 }];
        },
      },
    });
    const names = Array.from({ length: 12 }, (_, i) => `n${i}.example.test`);
    const rs = await Promise.all(names.map((n) => s.request(`http://${n}:${srv.port}/`)));
    expect(rs.map((r) => r.body.toString())).toEqual(names.map((n) => `host ${n}:${srv.port}`));
    expect(asked.sort()).toEqual([...names].sort());
    const again = await s.dns.lookup(names[3]!);
    expect(again).toEqual([{ address: '127.0.0.1', family: 4 }]);
  });

  it('stream(): a slow reader keeps the bytes waiting on the thread bounded (the thread pauses until JS takes them)', async () => {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const total = 64 * 1024 * 1024;
    let written = 0;
    const srv = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-length': total });
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const s = session({ ioThreads: 2 });
    const res = await s.stream(srv.url('/big'));
    let read = 0;
    res.body.on('data', (c: Buffer) => {
      read += c.length;
    });
    res.body.pause();
    await sleep(300);
    // Nothing read: the server is held back by the socket buffers and the paused stream, not by
    // memory growing on the I/O thread (64 MiB would have been written by now otherwise).
    expect(res.body.readableLength).toBeLessThanOrEqual(64 * 1024 + 256 * 1024);
    expect(written).toBeLessThan(32 * 1024 * 1024);
    res.body.resume();
    await within(new Promise((r) => res.body.on('end', r)), 20_000, 'the whole body');
    expect(read).toBe(total);
  });

  it("https on two threads: each response carries its own connection's TLS info (thread id spaces do not collide) and sessions resume", async () => {
    const fx = await tlsFixtures();
    const servers = await Promise.all(
      [0, 1, 2, 3].map(async (k) => {
        const srv = https.createServer({ cert: fx.server.cert, key: fx.server.key }, (_req, res) => res.end(`tls ${k}`));
        await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
        cleanup.add(() => new Promise((r) => srv.close(r)));
        srv.on('connection', (c) => cleanup.add(() => c.destroy()));
        return { k, port: (srv.address() as { port: number }).port };
      }),
    );
    const s = session({ ioThreads: 2, tls: { ca: fx.caPem }, http2: false, keepAliveTimeout: 0 });
    for (let round = 0; round < 2; round++) {
      const rs = await Promise.all(servers.map(({ port }) => s.request(`https://localhost:${port}/`)));
      rs.forEach((r, k) => {
        expect(r.body.toString()).toBe(`tls ${k}`);
        expect(r.tls?.servername).toBe('localhost');
        expect(r.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
      });
    }
    expect(s.stats().tls.handshakes).toBe(4); // the second round reused the kept-alive sockets
  });

  it('streamed request body: several chunks cross to the thread at once (not one loop turn each), byte-exact, bounded while the server stops reading', async () => {
    const MiB = 1024 * 1024;
    let got = 0;
    let resumeServer: () => void = () => {};
    const srv = await startHttpServer((req, res) => {
      const hash = createHash('sha256');
      req.pause();
      resumeServer = () => {
        req.on('data', (d: Buffer) => {
          got += d.length;
          hash.update(d);
        });
        req.on('end', () => res.end(hash.digest('hex')));
        req.resume();
      };
    });
    const s = session({ ioThreads: 1 });
    // Loop turns of the JS thread, counted by a setImmediate chain: chunks produced per turn.
    let turn = 0;
    let ticking = true;
    const tick = () => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const perTurn = new Map<number, number>();
    const total = 24 * MiB;
    const want = createHash('sha256');
    let produced = 0;
    async function* gen() {
      for (let i = 0; produced < total; i++) {
        const chunk = Buffer.alloc(4096, i & 0xff);
        produced += chunk.length;
        want.update(chunk);
        perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1);
        yield chunk;
      }
    }
    const p = s.request(srv.url('/up'), { method: 'POST', body: gen() });
    p.catch(() => {});
    await waitFor(() => srv.requests.length === 1, 5_000, 'request head');
    await sleep(400);
    // The server reads nothing: kernel buffers, the engine's 64 KiB and the 64 KiB crossing hold the rest.
    expect(produced).toBeLessThan(16 * MiB);
    resumeServer();
    const res = await within(p, 30_000, 'upload');
    ticking = false;
    expect(res.body.toString()).toBe(want.digest('hex'));
    expect(got).toBe(total);
    // Up to 64 KiB cross without waiting: 16 chunks of 4 KiB in one turn (one each before).
    expect(Math.max(...perTurn.values())).toBeGreaterThanOrEqual(8);
  });
});
