// The fleet on a real redis-server: `uvfetch worker` processes (and runWorker in-process) against a
// loopback HTTP server that records every request per host. Host names are mapped to 127.0.0.1
// through the Session's DNS overrides (--session-options).

import { describe, it, expect, beforeAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  redisMissing,
  startRedis,
  startRecordingServer,
  sessionOptionsFile,
  spawnCli,
  exitOf,
  waitFor,
  tempDir,
  xrangeAll,
  RespClient,
  sleep,
  type RedisServer,
  type RecordingServer,
  type CliProcess,
  ensureFleetBuilt,
} from './helpers.js';

if (redisMissing !== undefined) console.log(`fleet tests skipped: ${redisMissing}`);

interface Fixture {
  redis: RedisServer;
  http: RecordingServer;
  c: RespClient;
  tmp: { dir: string; remove: () => void };
}

async function fixture(opts: { appendonly?: boolean; delayMs?: number } = {}): Promise<Fixture> {
  const redis = await startRedis({ appendonly: opts.appendonly ?? false });
  const http = await startRecordingServer(opts.delayMs ?? 0);
  const c = await RespClient.connect(redis.port);
  return { redis, http, c, tmp: tempDir('fleet') };
}

async function teardown(f: Fixture | undefined, workers: CliProcess[] = []): Promise<void> {
  for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
  if (f === undefined) return;
  f.c.close();
  await f.http.close();
  await f.redis.stop();
  f.tmp.remove();
}

/** Writes the URL file: `perHost` URLs for each of `hosts` host names; returns the file and the names. */
function urlFile(f: Fixture, hosts: number, perHost: number, name = 'urls.txt'): { file: string; hostNames: string[]; count: number } {
  const hostNames = Array.from({ length: hosts }, (_, i) => `h${i}.fleet.test`);
  const lines: string[] = [];
  for (let k = 0; k < perHost; k++) for (let h = 0; h < hosts; h++) lines.push(`http://${hostNames[h]}:${f.http.port}/u/${h}/${k}`);
  const file = path.join(f.tmp.dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return { file, hostNames, count: lines.length };
}

async function enqueue(f: Fixture, file: string, stream: string): Promise<void> {
  const p = spawnCli(['enqueue', file, '--redis', f.redis.url, '--stream', stream, '--group', 'fetchers']);
  expect(await exitOf(p, 60_000, 'enqueue'), p.stderr()).toBe(0);
}

function worker(f: Fixture, sessionFile: string, extra: string[] = []): CliProcess {
  return spawnCli([
    'worker',
    '--redis',
    f.redis.url,
    '--stream',
    'in',
    '--group',
    'fetchers',
    '--results',
    'out',
    '--session-options',
    sessionFile,
    '--stats-interval',
    '500',
    ...extra,
  ]);
}

async function xlen(c: RespClient, key: string): Promise<number> {
  return Number(await c.call('XLEN', key));
}

async function pendingCount(c: RespClient): Promise<number> {
  const r = (await c.call('XPENDING', 'in', 'fetchers')) as [number, ...unknown[]];
  return Number(r[0]);
}

/** Every input entry has exactly one result entry, and its data is a complete record. */
async function checkResults(f: Fixture, expected: number): Promise<Array<Record<string, unknown>>> {
  const inputs = await xrangeAll(f.c, 'in');
  expect(inputs).toHaveLength(expected);
  const results = await xrangeAll(f.c, 'out');
  const byId = new Map<string, Record<string, unknown>>();
  for (const [, fields] of results) {
    expect(byId.has(fields.id!), `two result entries for input ${fields.id}`).toBe(false);
    const rec = JSON.parse(fields.data!) as Record<string, unknown>;
    expect(rec.id).toBe(fields.id);
    byId.set(fields.id!, rec);
  }
  for (const [id, fields] of inputs) {
    const rec = byId.get(id);
    expect(rec, `no result for input ${id} (${fields.url})`).toBeDefined();
    expect(rec!.url).toBe(fields.url);
  }
  expect(byId.size).toBe(expected);
  expect(await pendingCount(f.c)).toBe(0);
  return [...byId.values()];
}

beforeAll(() => {
  if (redisMissing === undefined) ensureFleetBuilt();
});

describe.skipIf(redisMissing !== undefined)('fleet workers on Redis Streams', () => {
  it('3 workers, 20,000 URLs over 200 hosts, one SIGKILLed mid-run: every URL gets exactly one result, nothing pending', { timeout: 240_000 }, async () => {
    let f: Fixture | undefined;
    const workers: CliProcess[] = [];
    try {
      f = await fixture();
      const { file, hostNames, count } = urlFile(f, 200, 100);
      expect(count).toBe(20_000);
      const sess = sessionOptionsFile(f.tmp.dir, hostNames);
      await enqueue(f, file, 'in');
      const common = ['--concurrency', '64', '--per-host', '8', '--claim-idle', '4000', '--slot-lease', '4000', '--until-empty'];
      for (let i = 0; i < 3; i++) workers.push(worker(f, sess, [...common, '--consumer', `w${i}`]));
      const fx = f;
      await waitFor('4,000 results', async () => (await xlen(fx.c, 'out')) >= 4000, 120_000);
      workers[0]!.proc.kill('SIGKILL');
      await workers[0]!.exited;
      const held = (await f.c.call('XPENDING', 'in', 'fetchers', '-', '+', 1000, 'w0')) as unknown[];
      for (const w of workers.slice(1)) expect(await exitOf(w, 180_000, 'worker'), w.stderr().slice(-2000)).toBe(0);
      const recs = await checkResults(f, 20_000);
      expect(recs.every((r) => r.status === 200 && r.error === null)).toBe(true);
      // Fetched at least once each; more than once only for the entries the killed worker held.
      for (const [, n] of f.http.hits) expect(n).toBeGreaterThanOrEqual(1);
      expect(f.http.hits.size).toBe(20_000);
      const extra = f.http.total - 20_000;
      expect(extra).toBeLessThanOrEqual(held.length);
      // The killed worker's entries were claimed by the others.
      const claimedBy = (w: CliProcess): number => Number(/\((\d+) claimed\)/.exec(w.stderr())?.[1] ?? 0);
      expect(claimedBy(workers[1]!) + claimedBy(workers[2]!)).toBeGreaterThanOrEqual(held.length);
      for (const h of f.http.hosts.values()) expect(h.maxActive).toBeLessThanOrEqual(8);
      expect(await xlen(f.c, 'in:dead')).toBe(0);
      // fleet-stats sees the totals.
      const st = spawnCli(['fleet-stats', '--redis', f.redis.url, '--stream', 'in', '--group', 'fetchers', '--results', 'out', '--json']);
      expect(await exitOf(st, 30_000, 'fleet-stats'), st.stderr()).toBe(0);
      const stats = JSON.parse(st.stdout()) as { totals: Record<string, number>; pending: number; results: number; streamLength: number };
      expect(stats.pending).toBe(0);
      expect(stats.results).toBe(20_000);
      expect(stats.streamLength).toBe(20_000);
      // The survivors flushed their counts when they stopped; the killed one up to its last refresh.
      const okOf = (w: CliProcess): number => Number(/, (\d+) ok,/.exec(w.stderr())?.[1] ?? NaN);
      expect(stats.totals.ok).toBeGreaterThanOrEqual(okOf(workers[1]!) + okOf(workers[2]!));
      expect(stats.totals.ok).toBeLessThanOrEqual(20_000);
      console.log(`fleet SIGKILL test: ${held.length} entries held by the killed worker, ${extra} fetched twice, totals ${JSON.stringify(stats.totals)}`);
    } finally {
      await teardown(f, workers);
    }
  });

  it('per-host rate holds across 3 workers (token bucket in Redis, burst = one second)', { timeout: 120_000 }, async () => {
    let f: Fixture | undefined;
    const workers: CliProcess[] = [];
    try {
      f = await fixture();
      const rps = 20;
      const perHostUrls = 100;
      const { file, hostNames } = urlFile(f, 4, perHostUrls);
      const sess = sessionOptionsFile(f.tmp.dir, hostNames);
      await enqueue(f, file, 'in');
      for (let i = 0; i < 3; i++) workers.push(worker(f, sess, ['--concurrency', '32', '--rps-per-host', String(rps), '--until-empty', '--consumer', `r${i}`]));
      for (const w of workers) expect(await exitOf(w, 90_000, 'worker'), w.stderr().slice(-2000)).toBe(0);
      await checkResults(f, 4 * perHostUrls);
      // Each worker fetched a share: the rate is a fleet-wide one.
      for (const w of workers) expect(Number(/, (\d+) ok,/.exec(w.stderr())?.[1])).toBeGreaterThan(0);
      for (const name of hostNames) {
        const a = f.http.hosts
          .get(name)!
          .arrivals.slice()
          .sort((x, y) => x - y);
        expect(a).toHaveLength(perHostUrls);
        // After the initial burst (one second's worth), arrivals come at the bucket's rate.
        const steady = (a.length - rps) / ((a[a.length - 1]! - a[0]!) / 1000);
        expect(steady, `${name}: ${steady.toFixed(2)} req/s`).toBeGreaterThan(rps * 0.9);
        expect(steady, `${name}: ${steady.toFixed(2)} req/s`).toBeLessThan(rps * 1.1);
        // Never more than the token bucket allows in any window: burst + rps × length (+1 for edges).
        for (let i = 0; i < a.length; i++) {
          for (let j = i + 1; j < a.length; j++) {
            const allowed = rps + (rps * (a[j]! - a[i]!)) / 1000 + 1;
            expect(j - i + 1, `${name}: ${j - i + 1} requests in ${(a[j]! - a[i]!).toFixed(0)} ms`).toBeLessThanOrEqual(allowed);
          }
        }
        console.log(`fleet rate test: ${name}: ${steady.toFixed(2)} req/s after the burst (limit ${rps})`);
      }
    } finally {
      await teardown(f, workers);
    }
  });

  it('per-host concurrency is a fleet-wide cap (leases in Redis)', { timeout: 120_000 }, async () => {
    let f: Fixture | undefined;
    const workers: CliProcess[] = [];
    try {
      f = await fixture({ delayMs: 40 });
      const { file, hostNames } = urlFile(f, 4, 60);
      const sess = sessionOptionsFile(f.tmp.dir, hostNames);
      await enqueue(f, file, 'in');
      for (let i = 0; i < 3; i++) workers.push(worker(f, sess, ['--concurrency', '32', '--per-host', '3', '--until-empty', '--consumer', `c${i}`]));
      for (const w of workers) expect(await exitOf(w, 90_000, 'worker'), w.stderr().slice(-2000)).toBe(0);
      await checkResults(f, 240);
      for (const name of hostNames) {
        const h = f.http.hosts.get(name)!;
        expect(h.maxActive, name).toBeLessThanOrEqual(3);
        expect(h.maxActive, name).toBeGreaterThanOrEqual(2); // and the cap is used
      }
      // Every lease was given back.
      for (const name of hostNames) expect(Number(await f.c.call('ZCARD', `uvfetch:limits:conc:http://${name}:${f.http.port}`))).toBe(0);
    } finally {
      await teardown(f, workers);
    }
  });

  it('Redis killed and restarted mid-run (AOF, fsync always): workers reconnect and finish; nothing acknowledged is lost', { timeout: 180_000 }, async () => {
    let f: Fixture | undefined;
    const workers: CliProcess[] = [];
    try {
      f = await fixture({ appendonly: true, delayMs: 2 });
      const { file, hostNames } = urlFile(f, 20, 250);
      const sess = sessionOptionsFile(f.tmp.dir, hostNames);
      await enqueue(f, file, 'in');
      for (let i = 0; i < 2; i++) workers.push(worker(f, sess, ['--concurrency', '32', '--claim-idle', '3000', '--until-empty', '--consumer', `k${i}`]));
      const fx = f;
      await waitFor('1,000 results', async () => (await xlen(fx.c, 'out')) >= 1000, 60_000);
      const before = new Set((await xrangeAll(f.c, 'out')).map(([, r]) => r.id!));
      f.c.close();
      await f.redis.kill();
      const sentBefore = f.http.total;
      await sleep(1000);
      await f.redis.start();
      f.c = await RespClient.connect(f.redis.port);
      // Every result seen before the crash survived it (and so did its acknowledgement: see checkResults).
      const after = new Set((await xrangeAll(f.c, 'out')).map(([, r]) => r.id!));
      for (const id of before) expect(after.has(id), `result of ${id} lost`).toBe(true);
      for (const w of workers) expect(await exitOf(w, 120_000, 'worker'), w.stderr().slice(-2000)).toBe(0);
      await checkResults(f, 5000);
      for (const w of workers) expect(w.stderr()).toMatch(/Redis connection lost/);
      console.log(
        `fleet Redis restart test: ${before.size} results seen before the crash, ${after.size} after the restart; ${f.http.total - 5000} URLs fetched twice (${sentBefore} requests before the crash)`,
      );
    } finally {
      await teardown(f, workers);
    }
  });

  it('enqueue → worker → results round trip: JSON request lines, malformed lines as error results, results de-duplicated on id', {
    timeout: 60_000,
  }, async () => {
    let f: Fixture | undefined;
    const workers: CliProcess[] = [];
    try {
      f = await fixture();
      const u = `http://r.fleet.test:${f.http.port}`;
      const file = path.join(f.tmp.dir, 'mixed.txt');
      writeFileSync(file, `${[`${u}/a`, '', '# comment', JSON.stringify({ url: `${u}/p`, method: 'PUT', body: 'x' }), 'no url here', '{"url":'].join('\n')}\n`);
      await enqueue(f, file, 'in');
      const inputs = await xrangeAll(f.c, 'in');
      expect(inputs.map(([, e]) => e)).toEqual([
        { url: `${u}/a`, line: '1' },
        { request: JSON.stringify({ url: `${u}/p`, method: 'PUT', body: 'x' }), line: '4' },
        { url: 'no url here', line: '5' },
        { request: '{"url":', line: '6' },
      ]);
      const w = worker(f, sessionOptionsFile(f.tmp.dir, ['r.fleet.test']), ['--until-empty', '--json']);
      workers.push(w);
      expect(await exitOf(w, 30_000, 'worker'), w.stderr()).toBe(0);
      expect(JSON.parse(w.stdout())).toMatchObject({ received: 4, ok: 2, errors: 2 });
      // A second result entry for the same input id (what a lossy Redis failover could cause).
      const dupe = (await xrangeAll(f.c, 'out'))[0]![1];
      await f.c.call('XADD', 'out', '*', 'id', dupe.id!, 'data', dupe.data!);
      const r = spawnCli(['results', '--redis', f.redis.url, '--results', 'out']);
      expect(await exitOf(r, 20_000, 'results'), r.stderr()).toBe(0);
      const recs = r
        .stdout()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: string; url: string; status: number | null; method: string; error: { code: string } | null });
      expect(recs).toHaveLength(4);
      expect(r.stderr()).toMatch(/4 printed, 1 duplicate/);
      const byUrl = new Map(recs.map((x) => [x.url, x]));
      expect(byUrl.get(`${u}/a`)).toMatchObject({ status: 200, error: null });
      expect(byUrl.get(`${u}/p`)).toMatchObject({ status: 200, method: 'PUT', error: null });
      expect(byUrl.get('no url here')!.error!.code).toBe('ERR_INVALID_URL');
      expect(byUrl.get('{"url":')!.error!.code).toBe('ERR_INVALID_URL');
      expect(new Set(recs.map((x) => x.id))).toEqual(new Set(inputs.map(([id]) => id)));
      const all = spawnCli(['results', '--redis', f.redis.url, '--results', 'out', '--no-dedupe']);
      expect(await exitOf(all, 20_000, 'results'), all.stderr()).toBe(0);
      expect(all.stdout().trim().split('\n')).toHaveLength(5);
      const st = spawnCli(['fleet-stats', '--redis', f.redis.url, '--stream', 'in', '--group', 'fetchers', '--results', 'out']);
      expect(await exitOf(st, 20_000, 'fleet-stats'), st.stderr()).toBe(0);
      expect(st.stdout()).toMatch(/queue +4 entries, 0 pending, 0 not yet delivered, 5 results, 0 dead letters/);
      expect(st.stdout()).toMatch(/totals +4 received \(0 claimed\), 2 ok, 2 error results/);
      expect(st.stdout()).toMatch(/stopped \(\d+s ago\)/);
    } finally {
      await teardown(f, workers);
    }
  });
});
