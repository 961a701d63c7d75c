// Raw sockets (connect()) when the process is out of file descriptors: EMFILE is backpressure, not
// failure. Each case runs test/scale/fixtures/raw-fd-pressure.mjs in a child process that lowers
// its own soft RLIMIT_NOFILE (limits.setFdLimit) to what it has open plus 20, holds raw sockets
// and /dev/null files until EMFILE, then starts one more raw connect and checks that it waits:
//   - a held raw socket is destroyed after ~200 ms → the connect completes at once, and echoes;
//   - a held file is closed instead (outside the engine) → the periodic retry finds it;
//   - nothing is freed → ERR_FD_EXHAUSTED once the connect timeout passes (README error table);
//   - the waiting connect is aborted → ERR_ABORTED.
// While it waits, session.stats().raw shows it ({ open, waiting }) and fd.exhaustedWaits grows.
// Afterwards one descriptor is freed and a fresh connect must succeed, and the child ends with as
// many descriptors open as before the test. The echo server runs here, in the parent.
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..', '..');
const fixture = path.join(here, 'fixtures', 'raw-fd-pressure.mjs');

interface ChildOut {
  mode: string;
  open0: number;
  limit: number;
  fillError: string;
  files: number;
  heldSockets: number;
  waitsBefore: number;
  waitsWhileWaiting: number;
  waitsAfter: number;
  rawWhileWaiting: { open: number; waiting: number };
  rawAfter: { open: number; waiting: number };
  pendingAt200: boolean;
  freedAt: number;
  result: { ok: boolean; at: number; code?: string; message?: string };
  remotePort?: number;
  echoOk?: boolean;
  recovery: { ok: boolean; code?: string; message?: string };
  openEnd: number | null;
  error?: string;
  watchdog?: boolean;
}

const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  for (const srv of servers.splice(0)) await new Promise((r) => srv.close(r));
});

/** An echo server on 127.0.0.1; counts connections. */
async function echoServer(): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const srv = net.createServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    sock.pipe(sock);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  servers.push(srv);
  return { port: (srv.address() as net.AddressInfo).port, connections: () => connections };
}

async function runChild(port: number, mode: string, connectTimeoutMs: number): Promise<ChildOut> {
  const child = spawn(process.execPath, [fixture, '127.0.0.1', String(port), mode, String(connectTimeoutMs)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const kill = setTimeout(() => child.kill('SIGKILL'), 45_000);
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  clearTimeout(kill);
  if (code !== 0) throw new Error(`child exited ${code}: ${out}\n${err}`);
  const r = JSON.parse(out.trim().split('\n').pop()!) as ChildOut;
  if (r.error !== undefined) throw new Error(`child failed: ${r.error}`);
  return r;
}

/** What every case shares: the limit really was reached, recovery works, nothing leaked. */
function expectPressureAndCleanEnd(r: ChildOut): void {
  expect(r.limit).toBe(r.open0 + 20);
  expect(r.fillError).toBe('EMFILE'); // every descriptor was taken before the connect under test
  expect(r.heldSockets).toBe(5);
  expect(r.pendingAt200).toBe(true); // EMFILE did not fail the connect: it waited
  // stats().raw: the 5 held sockets and the waiting connect are open; that one is waiting.
  expect(r.rawWhileWaiting).toEqual({ open: 6, waiting: 1 });
  expect(r.rawAfter.waiting).toBe(0);
  expect(r.recovery).toEqual({ ok: true });
  expect(r.openEnd).not.toBeNull();
  expect(r.openEnd!).toBeLessThanOrEqual(r.open0);
}

describe('raw connect() under EMFILE (child process, soft limit = open + 20)', () => {
  it('waits for a descriptor and completes as soon as a held raw socket closes; echo round trip', async () => {
    const srv = await echoServer();
    const r = await runChild(srv.port, 'free-socket', 10_000);
    expectPressureAndCleanEnd(r);
    expect(r.result).toMatchObject({ ok: true });
    expect(r.result.at).toBeGreaterThanOrEqual(r.freedAt); // completed only after the descriptor came back
    expect(r.result.at).toBeLessThan(5_000); // long before its 10 s connect timeout
    expect(r.echoOk).toBe(true);
    expect(r.remotePort).toBe(srv.port);
    expect(r.rawAfter.open).toBe(5); // one held socket closed, the waiting one connected
    // Raw waits are counted in stats().fd.exhaustedWaits.
    expect(r.waitsWhileWaiting).toBeGreaterThan(r.waitsBefore);
    // warm-up + 5 held + the waiting one + recovery
    expect(srv.connections()).toBe(8);
  }, 60_000);

  it('waits and completes when a descriptor is freed outside the engine (a file closed); echo round trip', async () => {
    const srv = await echoServer();
    const r = await runChild(srv.port, 'free-file', 10_000);
    expectPressureAndCleanEnd(r);
    expect(r.result).toMatchObject({ ok: true });
    expect(r.result.at).toBeGreaterThanOrEqual(r.freedAt);
    expect(r.result.at).toBeLessThan(5_000); // found by the periodic retry, not the timeout
    expect(r.echoOk).toBe(true);
    expect(r.rawAfter.open).toBe(6); // the 5 held ones and the one that waited
    expect(r.waitsWhileWaiting).toBeGreaterThan(r.waitsBefore);
    expect(srv.connections()).toBe(8);
  }, 60_000);

  it('with nothing freed, rejects with ERR_FD_EXHAUSTED after the connect timeout; a later connect works', async () => {
    const srv = await echoServer();
    const r = await runChild(srv.port, 'never', 600);
    expectPressureAndCleanEnd(r);
    expect(r.result.ok).toBe(false);
    expect(r.result.code).toBe('ERR_FD_EXHAUSTED');
    expect(r.result.message).toMatch(/no file descriptor became free .*open: (\d+|all), limit: \d+, .*raw connects waiting: 1\)/);
    expect(r.result.at).toBeGreaterThanOrEqual(450); // the connect timeout (600 ms), not earlier
    expect(r.waitsAfter - r.waitsBefore).toBe(1); // one waiting connect counts once, however often it retried
    expect(r.result.at).toBeLessThan(10_000);
    expect(r.waitsAfter).toBeGreaterThan(r.waitsBefore);
    expect(r.rawAfter.open).toBe(5); // the failed connect left no trace
    // warm-up + 5 held + recovery: the connect that failed never reached the server
    expect(srv.connections()).toBe(7);
  }, 60_000);

  it('a connect waiting for a descriptor is aborted by its signal: ERR_ABORTED, at once', async () => {
    const srv = await echoServer();
    const r = await runChild(srv.port, 'abort', 10_000);
    expectPressureAndCleanEnd(r);
    expect(r.result.ok).toBe(false);
    expect(r.result.code).toBe('ERR_ABORTED');
    expect(r.result.at).toBeGreaterThanOrEqual(r.freedAt);
    expect(r.result.at).toBeLessThan(5_000);
    expect(r.rawAfter.open).toBe(5);
    expect(srv.connections()).toBe(7);
  }, 60_000);
});
