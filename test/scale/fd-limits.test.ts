// File-descriptor control: the limits API, EMFILE treated as backpressure (not failure) under a
// low RLIMIT_NOFILE, connections: 'auto', and ERR_FD_EXHAUSTED once a request's connect timeout
// passes with no descriptor free. Low limits run in child processes started under `prlimit`
// (Node raises its own soft limit to the hard one at start-up, so both are lowered).
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session, UvfetchError, limits } from '../../lib/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..', '..');
const fixture = path.join(here, 'fixtures', 'fd-pressure.mjs');
const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

interface ChildResult {
  ok: number;
  errors: Record<string, number>;
  messages: string[];
  maxOpenFds: number;
  limit: number;
  stats: ReturnType<Session['stats']>;
}

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function server(delayMs: number): Promise<string> {
  const srv = http.createServer({ keepAliveTimeout: 30_000 }, (_req, res) => {
    setTimeout(() => res.end('ok'), delayMs);
  });
  srv.maxConnections = 20_000;
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', 8192, r));
  servers.push(srv);
  return `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
}

async function runLimited(nofile: number, args: string[]): Promise<ChildResult> {
  const child = spawn('prlimit', [`--nofile=${nofile}:${nofile}`, process.execPath, fixture, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`child exited ${code}: ${err}`);
  return JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
}

describe('limits API', () => {
  it('reads the limit and counts open descriptors', () => {
    const l = limits.getFdLimit();
    expect(l.soft).toBeGreaterThan(0);
    expect(l.hard).toBeGreaterThanOrEqual(l.soft);
    const n = limits.openFds();
    expect(n).toBeGreaterThanOrEqual(3);
  });

  it('raiseFdLimit never lowers; setFdLimit can, and raising back works', () => {
    const start = limits.getFdLimit();
    try {
      expect(limits.raiseFdLimit(16)).toBe(start.soft); // below the current soft limit: no change
      expect(limits.setFdLimit(512)).toBe(512);
      expect(limits.getFdLimit()).toEqual({ soft: 512, hard: start.hard });
      expect(limits.raiseFdLimit()).toBe(Number.isFinite(start.hard) ? start.hard : 1_048_576);
    } finally {
      limits.setFdLimit(start.soft);
    }
    expect(limits.getFdLimit().soft).toBe(start.soft);
  });

  it('invalid targets are ERR_INVALID_OPTION; a refused change is ERR_FD_LIMIT', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 40]) {
      expect(() => limits.raiseFdLimit(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    }
    // Above the kernel's nr_open no process may go, privileged or not.
    const before = limits.getFdLimit();
    let err: unknown;
    try {
      limits.raiseFdLimit(2 ** 31 - 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UvfetchError);
    expect((err as UvfetchError).code).toBe('ERR_FD_LIMIT');
    expect(limits.getFdLimit()).toEqual(before);
  });

  it("fdReserve is only accepted with connections: 'auto'", () => {
    expect(() => new Session({ fdReserve: 10 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => new Session({ connections: 'auto', fdReserve: -1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
  });

  it('stats().fd reports the limit, open descriptors and waits', async () => {
    const s = new Session();
    const fd = s.stats().fd;
    expect(fd.limit).toBe(limits.getFdLimit().soft);
    expect(fd.open).toBeGreaterThan(0);
    expect(fd.exhaustedWaits).toBe(0);
    await s.close();
  });
});

describe.runIf(hasPrlimit)('under a low descriptor limit (prlimit 256)', () => {
  it('5,000 concurrent requests with unbounded connections: zero failures, EMFILE waited out', async () => {
    const url = await server(20);
    const r = await runLimited(256, [url, '5000', '1000000', '10000']);
    expect(r.limit).toBe(256);
    expect(r.errors).toEqual({});
    expect(r.ok).toBe(5000);
    expect(r.stats.requests.failed).toBe(0);
    expect(r.stats.fd.exhaustedWaits).toBeGreaterThan(0); // it really ran out, and waited
    expect(r.stats.connections.created).toBeLessThan(256);
  }, 60_000);

  it("connections: 'auto' stays under the limit and never runs out", async () => {
    const url = await server(20);
    const r = await runLimited(256, [url, '5000', 'auto', '10000']);
    expect(r.errors).toEqual({});
    expect(r.ok).toBe(5000);
    expect(r.stats.fd.exhaustedWaits).toBe(0);
    expect(r.stats.connections.created).toBeLessThanOrEqual(256 - 64);
    expect(r.maxOpenFds).toBeLessThanOrEqual(256);
  }, 60_000);

  it('with every descriptor held elsewhere, requests fail with ERR_FD_EXHAUSTED after their connect timeout', async () => {
    const url = await server(0);
    const started = Date.now();
    const r = await runLimited(256, [url, '20', '1000000', '300', 'hog']);
    expect(r.ok).toBe(0);
    expect(r.errors).toEqual({ ERR_FD_EXHAUSTED: 20 });
    expect(r.messages[0]).toMatch(/limit: 256/);
    expect(r.stats.fd.exhaustedWaits).toBe(20);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 60_000);
});
