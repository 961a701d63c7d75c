// CLI commands of the Redis fleet: `worker`, `enqueue`, `results`, `fleet-stats`.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { SESSION_ARG_SPECS, SESSION_ARGS_USAGE, sessionSetup, intArg, FleetUsageError } from './options.js';
import { parseLine } from 'uvfetch/fleet';
import { connectRedis, type RedisClient } from 'uvfetch/fleet';
import { runWorker } from 'uvfetch/fleet';

const REDIS_SPECS = {
  redis: { type: 'string' },
  stream: { type: 'string' },
} as const;

function need(v: string | undefined, name: string): string {
  if (v === undefined || v === '') throw new FleetUsageError(`--${name} is required`);
  return v;
}

async function writeOut(s: string): Promise<void> {
  if (!process.stdout.write(s)) await new Promise<void>((r) => process.stdout.once('drain', r));
}

// ---------------------------------------------------------------------------------------------

export const WORKER_USAGE = `usage: uvfetch worker --redis URL --stream S --group G --results R [options]

One fetcher of a fleet sharing the stream S through the consumer group G (created at the start
of S if missing). Reads entries (a 'url' field, or a 'request' field holding a JSON request) only
while it has free capacity, fetches them, writes one result entry per input entry to R
(fields: id = the input entry id, data = the JSON record, as 'uvfetch fetch' writes it) and
acknowledges the input entry in the same atomic step. SIGTERM / Ctrl-C: stop reading, let
in-flight entries finish (--grace), hand back the rest; a second signal exits at once.

options:
  --redis URL             redis://[user:pass@]host:port[/db] (or rediss://)
  --stream S              input stream (e.g. uvfetch:urls)
  --group G               consumer group (e.g. fetchers)
  --results R             results stream (e.g. uvfetch:results)
  --consumer NAME         this worker's name in the group (default <hostname>-<pid>-<random>)
  --dead-letter S         dead-letter stream (default <stream>:dead)
  --claim-idle MS         claim entries pending this long from other (dead) workers (default 30000)
  --max-deliveries N      after N deliveries an entry goes to the dead-letter stream (default 5)
  --results-maxlen N      approximate MAXLEN of the results and dead-letter streams (default
                          1000000; 0 = unbounded)
  --slot-lease MS         a per-host slot not renewed for this long is freed (default 15000)
  --limits-prefix P       key prefix of the fleet-wide per-host limits (default uvfetch:limits:)
  --stats-interval MS     refresh of this worker's stats hash (default 2000)
  --grace MS              at shutdown, time given to in-flight entries (default 10000)
  --until-empty           exit once nothing is left (no new entry, nothing pending in the group)
  --json                  print the final counts as one JSON object on stdout
  -q, --quiet             no log lines on stderr
${SESSION_ARGS_USAGE}
  (--per-host and --rps-per-host are enforced across the whole fleet, in Redis.)

exit status: 0 stopped cleanly, 1 fatal error, 2 usage error.`;

export async function workerCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: {
      ...SESSION_ARG_SPECS,
      ...REDIS_SPECS,
      group: { type: 'string' },
      results: { type: 'string' },
      consumer: { type: 'string' },
      'dead-letter': { type: 'string' },
      'claim-idle': { type: 'string' },
      'max-deliveries': { type: 'string' },
      'results-maxlen': { type: 'string' },
      'slot-lease': { type: 'string' },
      'limits-prefix': { type: 'string' },
      'stats-interval': { type: 'string' },
      grace: { type: 'string' },
      'until-empty': { type: 'boolean' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
    },
  });
  void positionals;
  const setup = sessionSetup(values, false);
  const ac = new AbortController();
  let signals = 0;
  const onSignal = (): void => {
    signals++;
    if (signals > 1) process.exit(130);
    ac.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const quiet = values.quiet === true;
  try {
    const summary = await runWorker({
      redis: need(values.redis, 'redis'),
      stream: need(values.stream, 'stream'),
      group: need(values.group, 'group'),
      results: need(values.results, 'results'),
      ...(values.consumer !== undefined ? { consumer: values.consumer } : {}),
      ...(values['dead-letter'] !== undefined ? { deadLetter: values['dead-letter'] } : {}),
      sessionOptions: setup.sessionOptions,
      requestOptions: setup.timeout > 0 ? { timeout: { total: setup.timeout } } : { timeout: { total: 0 } },
      concurrency: setup.concurrency,
      ...(setup.perHost !== undefined ? { perHost: setup.perHost } : {}),
      ...(setup.rpsPerHost !== undefined ? { rpsPerHost: setup.rpsPerHost } : {}),
      ...(values['limits-prefix'] !== undefined ? { limitsPrefix: values['limits-prefix'] } : {}),
      claimIdle: intArg('claim-idle', values['claim-idle'], 30_000, 10, 2 ** 31 - 1),
      maxDeliveries: intArg('max-deliveries', values['max-deliveries'], 5, 1, 1_000_000),
      resultsMaxLen: intArg('results-maxlen', values['results-maxlen'], 1_000_000, 0),
      slotLease: intArg('slot-lease', values['slot-lease'], 15_000, 100, 2 ** 31 - 1),
      statsInterval: intArg('stats-interval', values['stats-interval'], 2000, 50, 2 ** 31 - 1),
      shutdownGrace: intArg('grace', values.grace, 10_000, 0, 2 ** 31 - 1),
      inlineMax: setup.bodies.inlineMax,
      ...(setup.bodies.bodiesDir !== undefined ? { bodiesDir: setup.bodies.bodiesDir } : {}),
      untilEmpty: values['until-empty'] === true,
      signal: ac.signal,
      onLog: quiet ? undefined : (m) => process.stderr.write(`uvfetch ${m}\n`),
    });
    if (values.json === true) await writeOut(`${JSON.stringify(summary)}\n`);
    else if (!quiet) {
      process.stderr.write(
        `uvfetch worker ${summary.consumer}: ${summary.received} received (${summary.claimed} claimed), ${summary.ok} ok, ` +
          `${summary.errors} error results, ${summary.deadLettered} dead-lettered, ${summary.superseded} superseded, ` +
          `${summary.released} handed back, ${(summary.durationMs / 1000).toFixed(1)} s\n`,
      );
    }
    return 0;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

// ---------------------------------------------------------------------------------------------

export const ENQUEUE_USAGE = `usage: uvfetch enqueue <urls.txt | -> --redis URL --stream S [--group G]

Appends one stream entry per input line (blank lines and '#' comments skipped): a URL line as
field 'url', a JSON request line as field 'request', and its line number as field 'line'.
Malformed lines are enqueued as they are: the worker turns them into error results.
With --group, that consumer group is created first (at the start of the stream) if missing.
Prints the count and the first and last entry ids on stderr.`;

export async function enqueueCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { ...REDIS_SPECS, group: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new FleetUsageError('expected exactly one input: a file of URLs, or - for stdin');
  const url = need(values.redis, 'redis');
  const stream = need(values.stream, 'stream');
  const input = positionals[0]!;
  const client = await connectRedis(url, 'uvfetch-enqueue');
  try {
    if (values.group !== undefined) {
      await client.call('XGROUP', 'CREATE', stream, values.group, '0', 'MKSTREAM').catch((e: Error) => {
        if (!e.message.startsWith('BUSYGROUP')) throw e;
      });
    }
    const rl = createInterface({ input: input === '-' ? process.stdin : createReadStream(input), crlfDelay: Infinity });
    let lineNo = 0;
    let n = 0;
    let first: string | undefined;
    let last: string | undefined;
    let batch: Array<Promise<unknown>> = [];
    const flush = async (): Promise<void> => {
      const ids = await Promise.all(batch);
      batch = [];
      if (ids.length > 0) {
        first ??= String(ids[0]);
        last = String(ids[ids.length - 1]);
      }
    };
    for await (const raw of rl) {
      lineNo++;
      if (parseLine(raw).kind === 'skip') continue;
      const line = raw.trim();
      const field = line.startsWith('{') ? 'request' : 'url';
      // Commands issued together go out as one pipeline (ioredis auto-pipelining), in order.
      batch.push(client.call('XADD', stream, '*', field, line, 'line', lineNo));
      n++;
      if (batch.length >= 1000) await flush();
    }
    await flush();
    process.stderr.write(`uvfetch enqueue: ${n} entries added to ${stream}${n > 0 ? ` (${first} … ${last})` : ''}\n`);
    return 0;
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
}

// ---------------------------------------------------------------------------------------------

export const RESULTS_USAGE = `usage: uvfetch results --redis URL --results R [options] > out.jsonl

Prints one JSON line per result entry of R (the 'data' field: the record as 'uvfetch fetch'
writes it, with 'id' = the input entry id and 'worker'). Entries without a 'data' field (e.g. a
dead-letter stream) are printed as a JSON object of their fields plus 'entryId'.

options:
  --from ID        start after this entry id (default: the beginning)
  --follow         keep waiting for new entries (until Ctrl-C / SIGTERM)
  --no-dedupe      print every entry, also a second result for the same input id (see the
                   README: results are effectively once only when de-duplicated on 'id')
  --count N        entries per read (default 1000)`;

export async function resultsCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: {
      redis: { type: 'string' },
      results: { type: 'string' },
      from: { type: 'string' },
      follow: { type: 'boolean' },
      'no-dedupe': { type: 'boolean' },
      count: { type: 'string' },
    },
  });
  const url = need(values.redis, 'redis');
  const results = need(values.results, 'results');
  const count = intArg('count', values.count, 1000, 1, 1_000_000);
  const dedupe = values['no-dedupe'] !== true;
  const seen = new Set<string>();
  let stop = false;
  const client: RedisClient = await connectRedis(url, 'uvfetch-results');
  const onSignal = (): void => {
    stop = true;
    client.disconnect();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let cursor = values.from ?? '0-0';
  let printed = 0;
  let dupes = 0;
  try {
    while (!stop) {
      const args: Array<string | number> = ['COUNT', count];
      if (values.follow === true) args.push('BLOCK', 1000);
      let reply: Array<[string, Array<[string, string[]]>]> | null;
      try {
        reply = (await client.call('XREAD', ...args, 'STREAMS', results, cursor)) as typeof reply;
      } catch (e) {
        if (stop) break;
        throw e;
      }
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length === 0) {
        if (values.follow === true) continue;
        break;
      }
      let out = '';
      for (const [entryId, flat] of entries) {
        cursor = entryId;
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
        if (dedupe && f.id !== undefined) {
          if (seen.has(f.id)) {
            dupes++;
            continue;
          }
          seen.add(f.id);
        }
        out += `${f.data !== undefined ? f.data : JSON.stringify({ entryId, ...f })}\n`;
        printed++;
      }
      await writeOut(out);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.quit().catch(() => client.disconnect());
  }
  process.stderr.write(`uvfetch results: ${printed} printed${dupes > 0 ? `, ${dupes} duplicate(s) of an input id skipped` : ''}\n`);
  return 0;
}

// ---------------------------------------------------------------------------------------------

export const FLEET_STATS_USAGE = `usage: uvfetch fleet-stats --redis URL --stream S --group G [--results R] [--dead-letter S] [--json]

Prints the fleet's totals (kept in Redis by the workers, dead ones included), each worker's
live stats (its stats hash, refreshed every few seconds; a worker silent for long expires),
and the queues: entries in the stream, pending in the group, not yet delivered (lag), results
and dead letters.`;

export interface FleetStats {
  stream: string;
  group: string;
  streamLength: number;
  pending: number | null;
  lag: number | null;
  results: number | null;
  deadLetters: number | null;
  totals: Record<string, number>;
  workers: Array<Record<string, string>>;
}

export async function fleetStatsCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: { ...REDIS_SPECS, group: { type: 'string' }, results: { type: 'string' }, 'dead-letter': { type: 'string' }, json: { type: 'boolean' } },
  });
  const stream = need(values.stream, 'stream');
  const group = need(values.group, 'group');
  const client = await connectRedis(need(values.redis, 'redis'), 'uvfetch-fleet-stats');
  let s: FleetStats;
  try {
    const xlen = async (k: string | undefined): Promise<number | null> => (k === undefined ? null : Number(await client.call('XLEN', k)));
    let pending: number | null = null;
    let lag: number | null = null;
    try {
      const groups = (await client.call('XINFO', 'GROUPS', stream)) as unknown[][];
      for (const g of groups) {
        const m: Record<string, unknown> = {};
        for (let i = 0; i + 1 < g.length; i += 2) m[String(g[i])] = g[i + 1];
        if (m.name === group) {
          pending = Number(m.pending);
          lag = m.lag === null || m.lag === undefined ? null : Number(m.lag);
        }
      }
    } catch {
      /* no such stream */
    }
    const flatToObj = (flat: unknown): Record<string, string> => {
      const o: Record<string, string> = {};
      if (Array.isArray(flat)) for (let i = 0; i + 1 < flat.length; i += 2) o[String(flat[i])] = String(flat[i + 1]);
      return o;
    };
    const totalsRaw = flatToObj(await client.call('HGETALL', `${stream}:${group}:totals`));
    const totals: Record<string, number> = {};
    for (const [k, v] of Object.entries(totalsRaw)) totals[k] = Number(v);
    const names = ((await client.call('SMEMBERS', `${stream}:${group}:workers`)) as string[]).sort();
    const workers: Array<Record<string, string>> = [];
    for (const n of names) {
      const h = flatToObj(await client.call('HGETALL', `${stream}:${group}:worker:${n}`));
      if (Object.keys(h).length === 0) {
        await client.call('SREM', `${stream}:${group}:workers`, n); // expired: gone for long
        continue;
      }
      workers.push(h);
    }
    s = {
      stream,
      group,
      streamLength: (await xlen(stream)) ?? 0,
      pending,
      lag,
      results: await xlen(values.results),
      deadLetters: await xlen(values['dead-letter'] ?? `${stream}:dead`),
      totals,
      workers,
    };
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
  if (values.json === true) {
    await writeOut(`${JSON.stringify(s)}\n`);
    return 0;
  }
  const t = s.totals;
  const lines = [
    `fleet ${s.stream} / ${s.group}: ${s.workers.filter((w) => w.state === 'running').length} worker(s) running`,
    `  queue     ${s.streamLength} entries, ${s.pending ?? '-'} pending, ${s.lag ?? '-'} not yet delivered` +
      (s.results !== null ? `, ${s.results} results` : '') +
      `, ${s.deadLetters ?? 0} dead letters`,
    `  totals    ${t.received ?? 0} received (${t.claimed ?? 0} claimed), ${t.ok ?? 0} ok, ${t.errors ?? 0} error results, ` +
      `${t.deadLettered ?? 0} dead-lettered, ${t.superseded ?? 0} superseded, ${t.released ?? 0} handed back`,
  ];
  const now = Date.now();
  for (const w of s.workers) {
    const age = ((now - Number(w.updated)) / 1000).toFixed(0);
    lines.push(
      `  ${w.consumer}  ${w.state} (${age}s ago)  in flight ${w.inFlight}/${w.concurrency}  ${w.perSecond}/s  ok ${w.ok}  errors ${w.errors}  ` +
        `claimed ${w.claimed}  dead ${w.deadLettered}  conns ${w.connections}`,
    );
  }
  await writeOut(`${lines.join('\n')}\n`);
  return 0;
}
