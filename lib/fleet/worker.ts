// runWorker: one member of a fleet of fetchers sharing a Redis stream through a consumer group.
//
// Per entry: XREADGROUP (only as many as there is free capacity) → per-host limits in Redis
// (ACQUIRE) → session.request() → COMMIT (result entry + XACK, atomically, only while this
// consumer still owns the entry). Idle entries of dead workers are taken over with XAUTOCLAIM;
// an entry delivered more than maxDeliveries times goes to the dead-letter stream instead.
// The Redis client (ioredis) is loaded when a worker starts, never at import.

import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Session } from '../session/session.js';
import { UvfetchError } from '../core/errors.js';
import type { RequestOptions, SessionOptions } from '../session/types.js';
import { parseJsonRequest, parseLine, originOf, errorRecord, responseRecord, type FetchRecord, type ParsedLine } from './records.js';
import { connectRedis, replyErrorText, type RedisClient } from './redis.js';
import { ACQUIRE, CLAIM, COMMIT, RELEASE, TOUCH } from './scripts.js';

export interface WorkerOptions {
  /** `redis://host:6379` (a client is made, and closed at the end), or an ioredis client of
   * yours (left open; a duplicate of it serves the blocking reads). */
  redis: string | RedisClient;
  /** The input stream (entries with a `url` field, or a `request` field holding a JSON request). */
  stream: string;
  /** The consumer group (created at the start of the stream if missing). */
  group: string;
  /** This worker's consumer name. Default `<hostname>-<pid>-<random>`. */
  consumer?: string;
  /** The results stream. */
  results: string;
  /** The dead-letter stream. Default `<stream>:dead`. */
  deadLetter?: string;
  /** The Session to fetch with (left open). Default: a new one with `sessionOptions`, closed at the end. */
  session?: Session;
  /** Options of the Session made when `session` is not given. */
  sessionOptions?: SessionOptions;
  /** Options applied to every request (an entry's JSON request overrides them). Default `{ timeout: { total: 30000 } }`. */
  requestOptions?: RequestOptions;
  /** Entries held at once (read, waiting for a per-host slot, or in flight). Default 64. */
  concurrency?: number;
  /** Requests in flight to one origin, across the whole fleet (a lease set in Redis). */
  perHost?: number;
  /** Requests per second to one origin, across the whole fleet (a token bucket in Redis, burst = one second's worth). */
  rpsPerHost?: number;
  /** Prefix of the per-host limit keys (shared by every fleet using the same prefix). Default `uvfetch:limits:`. */
  limitsPrefix?: string;
  /** A per-host concurrency lease not renewed for this long is taken back (a dead worker's). Default 15 000 ms. */
  slotLease?: number;
  /** Entries pending (unacknowledged) this long are claimed from their consumer. Default 30 000 ms. */
  claimIdle?: number;
  /** Deliveries after which an entry goes to the dead-letter stream. Default 5. */
  maxDeliveries?: number;
  /** Approximate MAXLEN of the results and dead-letter streams (0 = unbounded). Default 1 000 000. */
  resultsMaxLen?: number;
  /** Bodies: inline up to `inlineMax` bytes (default 65 536), or files in `bodiesDir`. */
  inlineMax?: number;
  bodiesDir?: string;
  /** Stats hash refresh period. Default 2000 ms. */
  statsInterval?: number;
  /** Longest XREADGROUP BLOCK. Default 1000 ms. */
  blockMs?: number;
  /** Stops the worker gracefully (stop reading; in-flight entries get `shutdownGrace` to finish, then are handed back). */
  signal?: AbortSignal;
  /** Default 10 000 ms. */
  shutdownGrace?: number;
  /** Stop by itself once nothing is left: no new entry, nothing in flight, and the group's pending list empty. */
  untilEmpty?: boolean;
  /** Notes for a log (reconnects, claims, dead letters, shutdown). */
  onLog?: (message: string) => void;
}

export interface WorkerSummary {
  consumer: string;
  /** Entries taken (read or claimed). */
  received: number;
  /** Of those, taken over from another consumer (XAUTOCLAIM). */
  claimed: number;
  /** Result entries written with an HTTP response / with an error. */
  ok: number;
  errors: number;
  /** Sent to the dead-letter stream. */
  deadLettered: number;
  /** Fetched, but another consumer owned the entry by then: nothing written. */
  superseded: number;
  /** Handed back unfinished at shutdown. */
  released: number;
  durationMs: number;
}

interface Job {
  id: string;
  ac: AbortController;
  lease: { key: string; member: string } | undefined;
  /** Shutdown handed it back: write nothing. */
  released: boolean;
  /** Another consumer owns it now: write nothing. */
  lost: boolean;
}

interface GateWaiter {
  resolve: (lease: { key: string; member: string } | undefined) => void;
  reject: (e: unknown) => void;
  member: string;
  signal: AbortSignal;
  onAbort: () => void;
}

/** Resolves with `p`, or with undefined after `ms` (Redis away at shutdown must not hang it). */
function bounded<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), ms)))]).finally(() => clearTimeout(t));
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

function posInt(v: unknown, name: string, def: number, min = 1): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 2 ** 31 - 1) {
    throw new UvfetchError('ERR_INVALID_OPTION', `runWorker: ${name} must be an integer ≥ ${min}`, { reason: name });
  }
  return v;
}

function nonEmpty(v: unknown, name: string): string {
  if (typeof v !== 'string' || v === '') throw new UvfetchError('ERR_INVALID_OPTION', `runWorker: ${name} must be a non-empty string`, { reason: name });
  return v;
}

/** Flat [k, v, k, v] → object. */
function fieldsOf(flat: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(flat)) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

/** What an input entry asks for: `url` (a URL line) or `request` (a JSON request). */
function parseEntry(f: Record<string, string>): ParsedLine & { shown: string } {
  if (typeof f.request === 'string') {
    const p = parseJsonRequest(f.request);
    return { ...p, shown: p.kind === 'skip' ? f.request : p.url };
  }
  if (typeof f.url === 'string') {
    const p = parseLine(f.url);
    if (p.kind === 'skip')
      return { kind: 'error', url: f.url, error: new UvfetchError('ERR_INVALID_URL', 'empty url field', { reason: 'empty' }), shown: f.url };
    return { ...p, shown: p.url };
  }
  return {
    kind: 'error',
    url: '',
    error: new UvfetchError('ERR_INVALID_URL', 'the entry has neither a url nor a request field', { reason: 'no url' }),
    shown: '',
  };
}

/**
 * Runs one fleet worker until `signal` aborts (or, with `untilEmpty`, until the work is done);
 * resolves with its counts. See the README ("A fleet of workers on Redis Streams") for the
 * delivery guarantee: every entry is fetched at least once; the results stream gets one
 * result entry per input entry (de-duplicate on `id` when reading, see there why).
 */
export async function runWorker(options: WorkerOptions): Promise<WorkerSummary> {
  if (options === null || typeof options !== 'object')
    throw new UvfetchError('ERR_INVALID_OPTION', 'runWorker: expected an options object', { reason: 'options' });
  const stream = nonEmpty(options.stream, 'stream');
  const group = nonEmpty(options.group, 'group');
  const results = nonEmpty(options.results, 'results');
  const dead = options.deadLetter === undefined ? `${stream}:dead` : nonEmpty(options.deadLetter, 'deadLetter');
  const consumer = options.consumer === undefined ? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}` : nonEmpty(options.consumer, 'consumer');
  const concurrency = posInt(options.concurrency, 'concurrency', 64);
  const perHost = options.perHost === undefined ? 0 : posInt(options.perHost, 'perHost', 1);
  const rps = options.rpsPerHost;
  if (rps !== undefined && (typeof rps !== 'number' || !Number.isFinite(rps) || rps <= 0 || rps > 1e9)) {
    throw new UvfetchError('ERR_INVALID_OPTION', 'runWorker: rpsPerHost must be a positive number', { reason: 'rpsPerHost' });
  }
  const burst = rps === undefined ? 0 : Math.max(1, Math.ceil(rps));
  const limited = perHost > 0 || rps !== undefined;
  const limitsPrefix = options.limitsPrefix ?? 'uvfetch:limits:';
  const lease = posInt(options.slotLease, 'slotLease', 15_000, 100);
  const claimIdle = posInt(options.claimIdle, 'claimIdle', 30_000, 10);
  const maxDeliveries = posInt(options.maxDeliveries, 'maxDeliveries', 5);
  const maxLen = posInt(options.resultsMaxLen, 'resultsMaxLen', 1_000_000, 0);
  const statsInterval = posInt(options.statsInterval, 'statsInterval', 2000, 50);
  // untilEmpty: a drained stream is noticed within 100 ms.
  const blockMs = Math.min(posInt(options.blockMs, 'blockMs', 1000, 1), options.untilEmpty === true ? 100 : Infinity);
  const grace = posInt(options.shutdownGrace, 'shutdownGrace', 10_000, 0);
  const bodies = { inlineMax: posInt(options.inlineMax, 'inlineMax', 65_536, 0), bodiesDir: options.bodiesDir };
  const baseOpts: RequestOptions = { timeout: { total: 30_000 }, ...(options.requestOptions ?? {}), timings: true };
  const log = options.onLog ?? (() => {});
  const lastErrorKey = `${stream}:${group}:lasterror`;
  const statsKey = `${stream}:${group}:worker:${consumer}`;
  const workersKey = `${stream}:${group}:workers`;
  const totalsKey = `${stream}:${group}:totals`;
  const touchEvery = Math.max(50, Math.floor(Math.min(claimIdle, lease) / 3));
  const claimEvery = Math.max(50, Math.min(Math.floor(claimIdle / 2), 5000));

  const ownClient = typeof options.redis === 'string';
  const cmd = typeof options.redis === 'string' ? await connectRedis(options.redis, `uvfetch-${consumer}`) : options.redis;
  const blk = cmd.duplicate();
  blk.on('error', () => {});
  const session = options.session ?? new Session({ connections: concurrency, ...(options.sessionOptions ?? {}) });
  const ownSession = options.session === undefined;

  const t0 = performance.now();
  const counts = { received: 0, claimed: 0, ok: 0, errors: 0, deadLettered: 0, superseded: 0, released: 0 };
  const flushed = { ...counts };
  const jobs = new Map<string, Job>();
  let stopping = false;
  let freeWaiter: (() => void) | undefined;
  const wakeFree = (): void => {
    const w = freeWaiter;
    freeWaiter = undefined;
    w?.();
  };
  const stopAc = new AbortController();
  const onStop = (): void => {
    if (stopping) return;
    stopping = true;
    log(`worker ${consumer}: stopping`);
    stopAc.abort();
    wakeFree();
    blk.disconnect(); // ends a blocking XREADGROUP now
  };
  if (options.signal?.aborted) onStop();
  options.signal?.addEventListener('abort', onStop, { once: true });

  let redisDown = false;
  cmd.on('close', () => {
    if (!redisDown && !stopping) log(`worker ${consumer}: Redis connection lost, reconnecting`);
    redisDown = true;
  });
  cmd.on('ready', () => {
    if (redisDown) log(`worker ${consumer}: Redis connection back`);
    redisDown = false;
  });

  async function ensureGroup(): Promise<void> {
    try {
      await cmd.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM');
    } catch (e) {
      if (!replyErrorText(e).startsWith('BUSYGROUP')) throw e;
    }
  }

  // ----- per-host limits: one local queue per origin, only its head asks Redis ---------------
  const gates = new Map<string, GateWaiter[]>();
  function acquire(origin: string, member: string, signal: AbortSignal): Promise<{ key: string; member: string } | undefined> {
    return new Promise((resolve, reject) => {
      let q = gates.get(origin);
      const start = q === undefined;
      if (q === undefined) {
        q = [];
        gates.set(origin, q);
      }
      const queue = q;
      const w: GateWaiter = {
        resolve,
        reject,
        member,
        signal,
        onAbort: () => {
          const i = queue.indexOf(w);
          if (i > 0) {
            // The head is being served by runGate, which notices the abort itself.
            queue.splice(i, 1);
            reject(new UvfetchError('ERR_ABORTED', 'aborted while waiting for a per-host slot'));
          }
        },
      };
      signal.addEventListener('abort', w.onAbort, { once: true });
      queue.push(w);
      if (start) void runGate(origin, queue);
    });
  }
  async function runGate(origin: string, queue: GateWaiter[]): Promise<void> {
    const bucketKey = `${limitsPrefix}rate:${origin}`;
    const concKey = `${limitsPrefix}conc:${origin}`;
    while (queue.length > 0) {
      const w = queue[0]!;
      if (w.signal.aborted) {
        queue.shift();
        w.signal.removeEventListener('abort', w.onAbort);
        w.reject(new UvfetchError('ERR_ABORTED', 'aborted while waiting for a per-host slot'));
        continue;
      }
      let r: number;
      try {
        r = Number(await ACQUIRE.run(cmd, [bucketKey, concKey], [rps ?? 0, burst, perHost, w.member, lease]));
      } catch (e) {
        log(`worker ${consumer}: per-host limit script failed (${replyErrorText(e)}); retrying`);
        await sleep(200, w.signal);
        continue;
      }
      if (r === 0) {
        queue.shift();
        w.signal.removeEventListener('abort', w.onAbort);
        w.resolve(perHost > 0 ? { key: concKey, member: w.member } : undefined);
        continue;
      }
      await sleep(r > 0 ? r : 5 + Math.floor(Math.random() * 15), w.signal);
    }
    gates.delete(origin);
  }

  // ----- one entry -------------------------------------------------------------------------
  async function commit(job: Job, out: string, fields: string[]): Promise<boolean> {
    const l = job.lease;
    job.lease = undefined;
    const r = await COMMIT.run(cmd, [stream, out, l?.key ?? lastErrorKey, lastErrorKey], [group, consumer, job.id, maxLen, l?.member ?? '', ...fields]);
    return Number(r) === 1;
  }

  async function handle(id: string, f: Record<string, string>, deliveries: number): Promise<void> {
    const job: Job = { id, ac: new AbortController(), lease: undefined, released: false, lost: false };
    jobs.set(id, job);
    try {
      if (deliveries > maxDeliveries) {
        let last: unknown = null;
        try {
          last = await cmd.call('HGET', lastErrorKey, id);
        } catch {
          /* the note is optional */
        }
        const error = typeof last === 'string' && last !== '' ? last : `delivered ${deliveries} times without a result`;
        const written = await commit(job, dead, [
          'id',
          id,
          'deliveries',
          String(deliveries),
          'error',
          error,
          'consumer',
          consumer,
          'fields',
          JSON.stringify(f),
        ]);
        if (written) {
          counts.deadLettered++;
          log(`worker ${consumer}: entry ${id} dead-lettered after ${deliveries} deliveries: ${error}`);
        } else counts.superseded++;
        return;
      }
      const p = parseEntry(f);
      const extra: Partial<FetchRecord> = { id, worker: consumer };
      let rec: FetchRecord;
      if (p.kind !== 'request') {
        rec = errorRecord(p.shown, 'GET', p.kind === 'error' ? p.error : new UvfetchError('ERR_INVALID_URL', 'empty'), extra);
      } else {
        const opts: RequestOptions = { ...baseOpts, ...(p.options ?? {}), signal: job.ac.signal };
        const method = (opts.method ?? 'GET').toUpperCase();
        try {
          if (limited) {
            const origin = originOf(p.url)!;
            job.lease = await acquire(origin, `${consumer}:${id}`, job.ac.signal);
          }
          const res = await session.request(p.url, opts);
          rec = await responseRecord(p.url, method, res, bodies, id, extra);
        } catch (e) {
          rec = errorRecord(p.url, method, e, extra);
        }
      }
      if (job.lost) {
        counts.superseded++; // owned by another consumer now: it writes the result
        return;
      }
      if (job.released) return; // handed back at shutdown: write nothing
      const written = await commit(job, results, ['id', id, 'data', JSON.stringify(rec)]);
      if (!written) counts.superseded++;
      else if (rec.error === null) counts.ok++;
      else counts.errors++;
    } catch (e) {
      // A Redis failure while committing (e.g. the client closed at shutdown): the entry stays
      // pending and is claimed again later.
      if (!stopping) log(`worker ${consumer}: entry ${id} not completed: ${replyErrorText(e)}`);
      try {
        if (!stopping) await cmd.call('HSET', lastErrorKey, id, `worker ${consumer}: ${replyErrorText(e)}`);
      } catch {
        /* best effort */
      }
    } finally {
      if (job.lease !== undefined) {
        cmd.call('ZREM', job.lease.key, job.lease.member).catch(() => {});
      }
      jobs.delete(id);
      wakeFree();
    }
  }

  function start(id: string, fields: Record<string, string>, deliveries: number): void {
    if (jobs.has(id)) return; // already ours and in flight (a redelivery of our own entry)
    counts.received++;
    void handle(id, fields, deliveries);
  }

  // ----- periodic: keep own entries and leases fresh; stats --------------------------------
  async function touch(): Promise<void> {
    if (jobs.size === 0) return;
    const ids = [...jobs.keys()];
    const keys = [stream];
    const members: string[] = [];
    for (const j of jobs.values()) {
      if (j.lease !== undefined) {
        keys.push(j.lease.key);
        members.push(j.lease.member);
      }
    }
    const lost = (await TOUCH.run(cmd, keys, [group, consumer, lease, ids.length, ...ids, ...members])) as string[];
    for (const id of lost) {
      const j = jobs.get(id);
      if (j !== undefined && !j.lost) {
        j.lost = true;
        j.ac.abort();
      }
    }
  }

  async function publishStats(state: string): Promise<void> {
    const now = Date.now();
    const elapsed = (performance.now() - t0) / 1000;
    const done = counts.ok + counts.errors + counts.deadLettered;
    await cmd.call(
      'HSET',
      statsKey,
      'consumer',
      consumer,
      'host',
      hostname(),
      'pid',
      process.pid,
      'state',
      state,
      'updated',
      now,
      'inFlight',
      jobs.size,
      'concurrency',
      concurrency,
      'received',
      counts.received,
      'claimed',
      counts.claimed,
      'ok',
      counts.ok,
      'errors',
      counts.errors,
      'deadLettered',
      counts.deadLettered,
      'superseded',
      counts.superseded,
      'released',
      counts.released,
      'perSecond',
      (elapsed > 0 ? done / elapsed : 0).toFixed(1),
      'connections',
      session.stats().connections.open,
    );
    await cmd.call('PEXPIRE', statsKey, Math.max(60_000, statsInterval * 5));
    await cmd.call('SADD', workersKey, consumer);
    for (const k of Object.keys(counts) as Array<keyof typeof counts>) {
      const d = counts[k] - flushed[k];
      if (d !== 0) {
        await cmd.call('HINCRBY', totalsKey, k, d);
        flushed[k] += d;
      }
    }
  }

  let ticking = false;
  const tick = setInterval(() => {
    if (ticking || redisDown) return;
    ticking = true;
    touch()
      .catch((e: unknown) => log(`worker ${consumer}: touch failed: ${replyErrorText(e)}`))
      .finally(() => (ticking = false));
  }, touchEvery);
  let statting = false;
  const statsTimer = setInterval(() => {
    if (statting || redisDown) return;
    statting = true;
    publishStats(stopping ? 'stopping' : 'running')
      .catch(() => {})
      .finally(() => (statting = false));
  }, statsInterval);

  // ----- the loop ----------------------------------------------------------------------------
  let cursor = '0-0';
  let lastClaim = -Infinity;
  const lowWater = Math.max(1, Math.ceil(concurrency / 16));
  const stopped = new Promise<void>((r) => {
    if (stopAc.signal.aborted) r();
    else stopAc.signal.addEventListener('abort', () => r(), { once: true });
  });
  try {
    // Both wait while Redis is unreachable; a stop request ends the wait.
    await Promise.race([ensureGroup(), stopped]);
    if (!stopping) await Promise.race([publishStats('running'), stopped]);
    log(`worker ${consumer}: reading ${stream} as ${group}, concurrency ${concurrency}`);
    while (!stopping) {
      let free = concurrency - jobs.size;
      if (free < lowWater && jobs.size > 0) {
        // Wait for room; gather a few completions before asking Redis again.
        await new Promise<void>((r) => {
          freeWaiter = r;
        });
        if (concurrency - jobs.size < lowWater) await sleep(2, stopAc.signal);
        continue;
      }
      free = concurrency - jobs.size;
      try {
        const now = performance.now();
        if (now - lastClaim >= claimEvery) {
          lastClaim = now;
          const r = (await CLAIM.run(cmd, [stream, lastErrorKey], [group, consumer, claimIdle, cursor, free])) as [string, Array<[string, unknown, number]>];
          cursor = String(r[0]);
          const got = r[1];
          for (const [id, flat, n] of got) {
            if (jobs.has(id)) continue;
            counts.claimed++;
            start(id, fieldsOf(flat), Number(n));
          }
          if (got.length > 0) {
            log(`worker ${consumer}: claimed ${got.length} idle entr${got.length === 1 ? 'y' : 'ies'}`);
            if (cursor !== '0-0') lastClaim = -Infinity; // more may be waiting
            continue;
          }
        }
        if (stopping) break;
        const reply = (await blk.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', free, 'BLOCK', blockMs, 'STREAMS', stream, '>')) as Array<
          [string, Array<[string, unknown]>]
        > | null;
        const entries = reply?.[0]?.[1] ?? [];
        for (const [id, flat] of entries) start(id, fieldsOf(flat), 1);
        if (entries.length === 0 && options.untilEmpty === true && jobs.size === 0) {
          const pending = (await cmd.call('XPENDING', stream, group)) as [number, ...unknown[]];
          if (Number(pending[0]) === 0) {
            log(`worker ${consumer}: nothing left to do`);
            break;
          }
          lastClaim = Math.min(lastClaim, performance.now() - claimEvery + 100);
          await sleep(Math.min(250, claimEvery), stopAc.signal);
        }
      } catch (e) {
        if (stopping) break;
        const msg = replyErrorText(e);
        if (msg.startsWith('NOGROUP')) {
          log(`worker ${consumer}: the group is gone (Redis lost its data?): creating it again`);
          await ensureGroup().catch(() => {});
        } else {
          log(`worker ${consumer}: ${msg}; retrying`);
        }
        await sleep(200, stopAc.signal);
      }
    }
  } finally {
    // Graceful end: no more reading; in-flight entries get `grace` ms, then are handed back.
    stopping = true;
    stopAc.abort();
    blk.disconnect();
    const deadline = performance.now() + grace;
    while (jobs.size > 0 && performance.now() < deadline) {
      await Promise.race([new Promise<void>((r) => (freeWaiter = r)), sleep(Math.max(1, deadline - performance.now()))]);
    }
    if (jobs.size > 0) {
      const ids = [...jobs.keys()];
      for (const j of jobs.values()) {
        j.released = true;
        j.ac.abort();
      }
      try {
        const n = await bounded(RELEASE.run(cmd, [stream, lastErrorKey], [group, consumer, `released unfinished at shutdown by ${consumer}`, ...ids]), 5000);
        if (n === undefined) {
          log(`worker ${consumer}: could not hand back ${ids.length} entries (Redis did not answer); they are claimed after ${claimIdle} ms`);
        } else {
          counts.released += Number(n);
        }
      } catch (e) {
        log(`worker ${consumer}: could not hand back ${ids.length} entries (${replyErrorText(e)}); they are claimed after ${claimIdle} ms`);
      }
      const until = performance.now() + 2000;
      while (jobs.size > 0 && performance.now() < until) await sleep(10);
    }
    clearInterval(tick);
    clearInterval(statsTimer);
    options.signal?.removeEventListener('abort', onStop);
    if (cmd.status === 'ready') {
      await bounded(
        (async () => {
          await publishStats('stopped');
          // A consumer with nothing pending leaves the group (DELCONSUMER would drop pending entries).
          const mine = (await cmd.call('XPENDING', stream, group, '-', '+', 1, consumer)) as unknown[];
          if (mine.length === 0) await cmd.call('XGROUP', 'DELCONSUMER', stream, group, consumer);
        })().catch(() => {}),
        3000,
      );
    } // else Redis is away: the stats hash expires by itself
    if (ownClient) {
      if (
        cmd.status !== 'ready' ||
        (await bounded(
          cmd.quit().catch(() => undefined),
          1000,
        )) === undefined
      )
        cmd.disconnect();
    }
    if (ownSession) await session.close();
    log(`worker ${consumer}: stopped`);
  }
  return { consumer, ...counts, durationMs: performance.now() - t0 };
}
