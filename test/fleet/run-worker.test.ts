// runWorker (the API behind `uvfetch worker`) in-process against a real redis-server: input
// entries that are not usable requests, dead letters, hand-back at shutdown, a worker that lost
// its entry to another, and the lazy loading of the Redis client.

import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Session, runWorker, type WorkerSummary } from '../../lib/index.js';
import { root } from '../helpers/run-cli.js';
import {
  redisMissing,
  startRedis,
  startRecordingServer,
  xrangeAll,
  RespClient,
  waitFor,
  spawnCli,
  exitOf,
  ensureFleetBuilt,
  type RedisServer,
  type RecordingServer,
} from './helpers.js';

if (redisMissing !== undefined) console.log(`runWorker tests skipped: ${redisMissing}`);

beforeAll(ensureFleetBuilt);

async function setup(delayMs = 0): Promise<{ redis: RedisServer; http: RecordingServer; c: RespClient; session: Session; done: () => Promise<void> }> {
  const redis = await startRedis({ appendonly: false });
  const http = await startRecordingServer(delayMs);
  const c = await RespClient.connect(redis.port);
  const session = new Session({ dns: { overrides: { 'a.test': '127.0.0.1', 'b.test': '127.0.0.1' } } });
  return {
    redis,
    http,
    c,
    session,
    done: async () => {
      c.close();
      await session.close();
      await http.close();
      await redis.stop();
    },
  };
}

const base = (redis: RedisServer, session: Session) => ({
  redis: redis.url,
  stream: 'in',
  group: 'g',
  results: 'out',
  session,
  statsInterval: 200,
  blockMs: 100,
});

describe.skipIf(redisMissing !== undefined)('runWorker', () => {
  it('turns entries that are not usable requests into error results with codes, and sends JSON requests as given', async () => {
    const t = await setup();
    try {
      const u = `http://a.test:${t.http.port}`;
      const add = (...kv: string[]) => t.c.call('XADD', 'in', '*', ...kv);
      await add('url', 'not a url');
      await add('url', 'ftp://a.test/x');
      await add('request', '{bad json');
      await add('request', JSON.stringify({ url: `${u}/post`, method: 'POST', body: 'hi', headers: { 'x-k': 'v' } }));
      await add('request', JSON.stringify({ url: `${u}/x`, signal: 1 }));
      await add('nothing', 'here');
      await add('url', `${u}/ok`);
      const s = await runWorker({ ...base(t.redis, t.session), untilEmpty: true });
      expect(s).toMatchObject({ received: 7, ok: 2, errors: 5, deadLettered: 0, superseded: 0 });
      const recs = (await xrangeAll(t.c, 'out')).map(
        ([, f]) => JSON.parse(f.data!) as { url: string; status: number | null; method: string; error: { code: string } | null; body?: string },
      );
      const byUrl = new Map(recs.map((r) => [r.url, r]));
      expect(byUrl.get('not a url')!.error!.code).toBe('ERR_INVALID_URL');
      expect(byUrl.get('ftp://a.test/x')!.error!.code).toBe('ERR_UNSUPPORTED_PROTOCOL');
      expect(byUrl.get('{bad json')!.error!.code).toBe('ERR_INVALID_URL');
      expect(byUrl.get(`${u}/x`)!.error!.code).toBe('ERR_INVALID_OPTION');
      expect(byUrl.get('')!.error!.code).toBe('ERR_INVALID_URL');
      expect(byUrl.get(`${u}/post`)).toMatchObject({ status: 200, method: 'POST', error: null, body: 'ok /post' });
      expect(byUrl.get(`${u}/ok`)).toMatchObject({ status: 200, error: null, body: 'ok /ok' });
      expect(t.http.total).toBe(2);
      expect(Number((await t.c.call('XPENDING', 'in', 'g'))![0 as never])).toBe(0);
    } finally {
      await t.done();
    }
  });

  it('sends an entry delivered more than maxDeliveries times to the dead-letter stream with its last error, not to the fetcher', async () => {
    const t = await setup();
    try {
      await t.c.call('XGROUP', 'CREATE', 'in', 'g', '0', 'MKSTREAM');
      const id = (await t.c.call('XADD', 'in', '*', 'url', `http://a.test:${t.http.port}/poison`, 'line', '7')) as string;
      // A consumer that takes it and dies, three times over (each XCLAIM counts a delivery).
      await t.c.call('XREADGROUP', 'GROUP', 'g', 'ghost', 'COUNT', 10, 'STREAMS', 'in', '>');
      for (let i = 0; i < 3; i++) await t.c.call('XCLAIM', 'in', 'g', 'ghost', 0, id);
      await new Promise((r) => setTimeout(r, 60));
      const s = await runWorker({ ...base(t.redis, t.session), claimIdle: 50, maxDeliveries: 4, untilEmpty: true });
      expect(s).toMatchObject({ claimed: 1, deadLettered: 1, ok: 0, errors: 0 });
      expect(t.http.total).toBe(0);
      expect(await xrangeAll(t.c, 'out')).toHaveLength(0);
      const dead = await xrangeAll(t.c, 'in:dead');
      expect(dead).toHaveLength(1);
      const d = dead[0]![1];
      expect(d.id).toBe(id);
      expect(Number(d.deliveries)).toBe(5);
      expect(d.error).toMatch(/not acknowledged within 50 ms/);
      expect(JSON.parse(d.fields!)).toEqual({ url: `http://a.test:${t.http.port}/poison`, line: '7' });
      expect(Number((await t.c.call('XPENDING', 'in', 'g'))![0 as never])).toBe(0);
      expect(await t.c.call('HLEN', 'in:g:lasterror')).toBe(0);
    } finally {
      await t.done();
    }
  });

  it('at shutdown hands unfinished entries back at once (another worker takes them without waiting for claimIdle)', { timeout: 30_000 }, async () => {
    const t = await setup(60_000); // the server holds every request: they cannot finish
    try {
      await t.c.call('XGROUP', 'CREATE', 'in', 'g', '0', 'MKSTREAM');
      for (let i = 0; i < 5; i++) await t.c.call('XADD', 'in', '*', 'url', `http://b.test:${t.http.port}/slow/${i}`);
      const ac = new AbortController();
      const started = performance.now();
      const a = runWorker({ ...base(t.redis, t.session), consumer: 'A', signal: ac.signal, shutdownGrace: 300 });
      await waitFor('5 requests at the server', () => t.http.total === 5, 10_000, 20);
      ac.abort();
      const sa: WorkerSummary = await a;
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(sa).toMatchObject({ received: 5, released: 5, ok: 0, errors: 0 });
      expect(await xrangeAll(t.c, 'out')).toHaveLength(0); // aborted fetches wrote nothing
      const notes = (await t.c.call('HVALS', 'in:g:lasterror')) as string[];
      expect(notes).toHaveLength(5);
      for (const n of notes) expect(n).toMatch(/released unfinished at shutdown by A/);
      // B, with the default claimIdle of 30 s, takes them over at once (the server still holds
      // them: B's short timeout turns them into ERR_TIMEOUT results).
      const tb = performance.now();
      const sb = await runWorker({
        ...base(t.redis, t.session),
        consumer: 'B',
        untilEmpty: true,
        shutdownGrace: 0,
        requestOptions: { timeout: { total: 200 } },
      });
      expect(sb).toMatchObject({ claimed: 5, received: 5, errors: 5 });
      expect(performance.now() - tb).toBeLessThan(10_000);
      const recs = (await xrangeAll(t.c, 'out')).map(([, f]) => JSON.parse(f.data!) as { worker: string; error: { code: string } });
      expect(recs).toHaveLength(5);
      for (const r of recs) expect(r).toMatchObject({ worker: 'B', error: { code: 'ERR_TIMEOUT' } });
      expect(await t.c.call('HLEN', 'in:g:lasterror')).toBe(0);
    } finally {
      await t.done();
    }
  });

  it('a worker whose entry was taken over by another writes no result for it', { timeout: 30_000 }, async () => {
    const t = await setup(60_000);
    try {
      await t.c.call('XGROUP', 'CREATE', 'in', 'g', '0', 'MKSTREAM');
      const id = (await t.c.call('XADD', 'in', '*', 'url', `http://a.test:${t.http.port}/held`)) as string;
      const ac = new AbortController();
      const a = runWorker({ ...base(t.redis, t.session), consumer: 'A', signal: ac.signal, claimIdle: 600 });
      await waitFor('the request at the server', () => t.http.total === 1, 10_000, 20);
      await t.c.call('XCLAIM', 'in', 'g', 'thief', 0, id, 'JUSTID');
      // The thief stays alive (its entry never idles long enough for A to claim it back); A
      // notices at its next refresh (every claimIdle / 3) and drops the fetch.
      const alive = setInterval(() => void t.c.call('XCLAIM', 'in', 'g', 'thief', 0, id, 'JUSTID'), 50);
      await new Promise((r) => setTimeout(r, 1500));
      ac.abort();
      const s0 = await a;
      clearInterval(alive);
      await new Promise((r) => setTimeout(r, 100));
      expect(s0).toMatchObject({ received: 1, superseded: 1, ok: 0, errors: 0, released: 0 });
      expect(await xrangeAll(t.c, 'out')).toHaveLength(0);
      const p = (await t.c.call('XPENDING', 'in', 'g', '-', '+', 10)) as Array<[string, string]>;
      expect(p.map((e) => e[1])).toEqual(['thief']);
    } finally {
      await t.done();
    }
  });

  it('`uvfetch worker` stops on SIGTERM with exit 0, its stats say so, and it leaves the group', { timeout: 30_000 }, async () => {
    const redis = await startRedis({ appendonly: false });
    try {
      const w = spawnCli(['worker', '--redis', redis.url, '--stream', 'in', '--group', 'g', '--results', 'out', '--consumer', 'T']);
      const c = await RespClient.connect(redis.port);
      try {
        await waitFor('the worker running', async () => (await c.call('HGET', 'in:g:worker:T', 'state')) === 'running', 15_000, 50);
        await c.call('XADD', 'in', '*', 'url', 'nope'); // it takes this one (an error result): a consumer of the group
        await waitFor('a result', async () => Number(await c.call('XLEN', 'out')) === 1, 15_000, 50);
        expect(((await c.call('XINFO', 'CONSUMERS', 'in', 'g')) as unknown[]).length).toBe(1);
        w.proc.kill('SIGTERM');
        expect(await exitOf(w, 10_000, 'worker'), w.stderr()).toBe(0);
        expect(w.stderr()).toMatch(/worker T: stopped/);
        expect(await c.call('XINFO', 'CONSUMERS', 'in', 'g')).toEqual([]);
        const h = (await c.call('HGETALL', 'in:g:worker:T')) as string[];
        expect(h[h.indexOf('state') + 1]).toBe('stopped');
      } finally {
        c.close();
      }
    } finally {
      await redis.stop();
    }
  });
});

describe('the Redis client is optional', () => {
  it('importing uvfetch loads no Redis client; starting a worker does', () => {
    const dist = path.join(root, 'dist', 'index.js');
    const script = `
      import { createRequire } from 'node:module';
      const req = createRequire(import.meta.url);
      const m = await import(${JSON.stringify(dist)});
      const loaded = () => Object.keys(req.cache).some((k) => k.includes('/node_modules/ioredis/'));
      const before = loaded();
      const ac = new AbortController(); ac.abort();
      // A worker against a closed port, stopped at once: it loads the client, then ends.
      await m.runWorker({ redis: 'redis://127.0.0.1:1', stream: 's', group: 'g', results: 'r', signal: ac.signal, shutdownGrace: 0 }).catch(() => {});
      console.log(JSON.stringify({ before, after: loaded(), type: typeof m.runWorker }));
      process.exit(0);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ before: false, after: true, type: 'function' });
  });
});
