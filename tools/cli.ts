#!/usr/bin/env node
// uvfetch command line.
//
//   uvfetch [run] [--requests N] [--concurrency N] [--connections N] [--body-size N]
//                 [--url URL] [--server-workers N] [--json]
//   uvfetch bench [--scenario NAME|all] [--clients LIST] [--duration S] [--rounds N] [--with-wrk] [--json]
//   uvfetch help [command]
//   uvfetch --version
//
// `uvfetch` with no command (or `uvfetch run`) is an operator's console demo: it starts the
// embedded loopback server (a separate process, see loopback-server.ts), fetches N distinct URLs
// (/item/<i>) through one Session with C bounded async workers, prints a live status line every
// 500 ms and a summary at the end. Exit status: 0 all requests succeeded, 1 some failed (or the
// server saw a different number of requests), 2 usage error, 130 interrupted.
//
// `uvfetch bench` (tools/bench.ts) compares uvfetch with undici, node:http, fetch (and wrk) against
// the same loopback server and prints a table of req/s, latency, RSS and ratios to undici Pool.
//
// Subcommands live in the `commands` table below: add an entry (name, summary, usage, run) to
// add one; `run` receives the arguments after the command name.

import { Session, UvfetchError, VERSION } from 'uvfetch';
import { benchCommand } from './bench.js';
import { fleetCommands } from './fleet/commands.js';
import { fingerprintCommand } from './fingerprint.js';
import { startLoopbackServer, type LoopbackServer, type LoopbackServerStats } from './loopback-server.js';
import { createHistogram, monitorEventLoopDelay, type RecordableHistogram, type IntervalHistogram } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------------
// Command table and dispatch.

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Receives the arguments after the command name; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** Thrown for bad command lines: printed with the command's usage, exit code 2. */
export class UsageError extends Error {}

const commands = new Map<string, Command>();

export function registerCommand(cmd: Command): void {
  commands.set(cmd.name, cmd);
}

const DEFAULT_COMMAND = 'run';

function generalUsage(): string {
  const lines = [
    'usage: uvfetch [command] [options]',
    '',
    'commands:',
    ...[...commands.values()].map((c) => `  ${c.name.padEnd(10)} ${c.summary}${c.name === DEFAULT_COMMAND ? ' (default)' : ''}`),
    `  ${'help'.padEnd(10)} show help for a command`,
    '',
    'uvfetch help <command> for the options of a command.',
  ];
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === '--version' || first === '-v') {
    process.stdout.write(`uvfetch ${VERSION}\n`);
    return 0;
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    const target = first === 'help' ? argv[1] : undefined;
    const cmd = target === undefined ? undefined : commands.get(target);
    if (target !== undefined && cmd === undefined) {
      process.stderr.write(`uvfetch: unknown command '${target}'\n\n${generalUsage()}\n`);
      return 2;
    }
    process.stdout.write(`${cmd ? cmd.usage : generalUsage()}\n`);
    return 0;
  }
  let name = DEFAULT_COMMAND;
  let rest = argv;
  if (first !== undefined && !first.startsWith('-')) {
    name = first;
    rest = argv.slice(1);
  }
  const cmd = commands.get(name);
  if (cmd === undefined) {
    process.stderr.write(`uvfetch: unknown command '${name}'\n\n${generalUsage()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${cmd.usage}\n`);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`uvfetch ${cmd.name}: ${(e as Error).message}\n\n${cmd.usage}\n`);
      return 2;
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

function parseIntOption(name: string, value: string | undefined, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return def;
  if (!/^\d+$/.test(value.replace(/_/g, ''))) throw new UsageError(`--${name} must be an integer, got '${value}'`);
  const n = Number(value.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be between ${min} and ${max}, got ${value}`);
  }
  return n;
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const nsToMs = (ns: number): number => ns / 1e6;
const round = (x: number, digits = 3): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};
function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms < 1) return `${ms.toFixed(3)} ms`;
  if (ms < 100) return `${ms.toFixed(2)} ms`;
  return `${ms.toFixed(0)} ms`;
}
const mib = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

function errorCode(e: unknown): string {
  if (e instanceof UvfetchError) return e.code;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.length > 0) return code;
  if (e instanceof Error) return e.name;
  return 'UNKNOWN';
}

// ---------------------------------------------------------------------------------------------
// `run`: the console demo / load driver.

const RUN_USAGE = `usage: uvfetch [run] [options]

Starts an embedded loopback HTTP server in a separate process (unless --url is given), fetches
N distinct URLs (/item/<i>) through one uvfetch Session with C concurrent workers, shows a live
status line every 500 ms and a summary at the end.

options:
  --requests N        number of requests (default 100000)
  --concurrency N     concurrent requests in flight (default 256)
  --connections N     max connections of the session, <= concurrency (default = concurrency)
  --body-size N       response body size of the embedded server, bytes (default 13)
  --server-workers N  embedded server processes (default: 1 on <= 3 cores, else cores/2, max 4)
  --url URL           fetch URL instead of the embedded server; a '{i}' in it is replaced by
                      the request index (e.g. http://127.0.0.1:8080/item/{i})
  --json              print the final summary as one JSON object on stdout
  -h, --help          this help

exit status: 0 all requests succeeded, 1 some failed (or the embedded server counted a
different number of requests), 2 usage error, 130 interrupted (Ctrl-C; a second one kills).`;

interface RunOptions {
  requests: number;
  concurrency: number;
  connections: number;
  bodySize: number;
  serverWorkers: number | undefined;
  url: string | undefined;
  json: boolean;
}

function parseRunArgs(argv: string[]): RunOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      requests: { type: 'string', short: 'n' },
      concurrency: { type: 'string', short: 'c' },
      connections: { type: 'string' },
      'body-size': { type: 'string' },
      'server-workers': { type: 'string' },
      url: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const requests = parseIntOption('requests', values.requests, 100_000, 1);
  const concurrency = parseIntOption('concurrency', values.concurrency, 256, 1, 65_536);
  const connections = parseIntOption('connections', values.connections, concurrency, 1, 65_536);
  if (connections > concurrency) throw new UsageError('--connections must be <= --concurrency');
  const bodySize = parseIntOption('body-size', values['body-size'], 13, 0, 1 << 30);
  const serverWorkers = values['server-workers'] === undefined ? undefined : parseIntOption('server-workers', values['server-workers'], 1, 1, 256);
  const url = values.url;
  if (url !== undefined) {
    try {
      new URL(url.replaceAll('{i}', '0'));
    } catch {
      throw new UsageError(`--url is not a valid URL: '${url}'`);
    }
    if (values['body-size'] !== undefined || serverWorkers !== undefined) {
      throw new UsageError('--body-size and --server-workers apply to the embedded server only, not with --url');
    }
  }
  return { requests, concurrency, connections, bodySize, serverWorkers, url, json: values.json ?? false };
}

/** The run summary (`uvfetch run --json` prints exactly this object). */
export interface Summary {
  command: 'run';
  ok: boolean;
  interrupted: boolean;
  target: string;
  embeddedServer: null | { url: string; workers: number; transport: string; pinnedTo: string | null; bodySize: number };
  requests: number;
  concurrency: number;
  maxConnections: number;
  started: number;
  completed: number;
  failed: number;
  durationMs: number;
  reqPerSec: number;
  /** Latency of successful requests; null when none succeeded. */
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number } | null;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  bytesReceived: number;
  connections: { created: number; reused: number };
  server: null | { requests: number; expected: number; matches: boolean; connections: number; cpuPercent: number };
  client: { cpuPercent: number; rssPeakBytes: number; eventLoopDelayMs: { p99: number; max: number } };
}

async function runCommand(argv: string[]): Promise<number> {
  const opts = parseRunArgs(argv);
  const N = opts.requests;
  const C = opts.concurrency;

  // Where the live line goes: stdout when it is a terminal (and stdout is not reserved for
  // JSON), else stderr. Redraw in place when that stream is a terminal.
  const liveStream = process.stdout.isTTY && !opts.json ? process.stdout : process.stderr;
  const liveTTY = liveStream.isTTY === true;
  const note = (s: string): void => {
    liveStream.write(`${s}\n`);
  };

  let server: LoopbackServer | null = null;
  let serverBefore: LoopbackServerStats | null = null;
  let urlFor: (i: number) => string;
  let target: string;
  if (opts.url === undefined) {
    server = await startLoopbackServer({ bodySize: opts.bodySize, workers: opts.serverWorkers });
    const base = server.url;
    urlFor = (i) => `${base}/item/${i}`;
    target = `${base}/item/<i>`;
    note(
      `uvfetch: embedded loopback server ${server.url} — ${server.workers} worker process(es), ` +
        `${server.transport} transport, ` +
        (server.pinnedTo !== null ? `pinned to CPU ${server.pinnedTo}` : 'not pinned') +
        `, ${opts.bodySize} B bodies`,
    );
    serverBefore = await server.stats();
  } else {
    const u = opts.url;
    urlFor = u.includes('{i}') ? (i) => u.replaceAll('{i}', String(i)) : () => u;
    target = u;
  }
  note(`uvfetch: ${fmtInt(N)} requests, concurrency ${C}, up to ${opts.connections} connections → ${target}`);

  const session = new Session({ connections: opts.connections, connectionsPerHost: opts.connections });

  // Measurements.
  const latency: RecordableHistogram = createHistogram({ lowest: 1, highest: 3_600_000_000_000, figures: 3 });
  const eldAll: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  const eldTick: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  eldAll.enable();
  eldTick.enable();
  const statuses = new Map<number, number>();
  const errors = new Map<string, number>();
  const expectBody = server !== null ? opts.bodySize : -1; // integrity check, embedded server only
  let next = 0;
  let done = 0;
  let failed = 0;
  let bytes = 0;
  let stopping = false;
  let interrupted = false;

  const countError = (code: string): void => {
    errors.set(code, (errors.get(code) ?? 0) + 1);
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      if (stopping) return;
      const i = next++;
      if (i >= N) return;
      const t0 = process.hrtime.bigint();
      try {
        const res = await session.request(urlFor(i));
        const dt = process.hrtime.bigint() - t0;
        latency.record(dt > 0n ? dt : 1n);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        bytes += res.body.length;
        if (expectBody >= 0 && res.body.length !== expectBody) {
          failed++;
          countError('BODY_SIZE_MISMATCH');
        }
      } catch (e) {
        failed++;
        countError(errorCode(e));
      }
      done++;
    }
  };

  // Live line.
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let lastT = t0;
  let lastDone = 0;
  let rssPeak = process.memoryUsage.rss();
  const elapsedS = (now: bigint): number => Number(now - t0) / 1e9;
  const liveLine = (): string => {
    const now = process.hrtime.bigint();
    const dtS = Number(now - lastT) / 1e9;
    const last = dtS > 0 ? (done - lastDone) / dtS : 0;
    const el = elapsedS(now);
    const avg = el > 0 ? done / el : 0;
    lastT = now;
    lastDone = done;
    const rss = process.memoryUsage.rss();
    if (rss > rssPeak) rssPeak = rss;
    const eld = eldTick.count > 0 ? nsToMs(eldTick.percentile(99)) : 0;
    eldTick.reset();
    const s = session.stats();
    const pct = ((100 * done) / N).toFixed(1);
    return (
      `${el.toFixed(1).padStart(6)}s  ${fmtInt(done).padStart(String(fmtInt(N)).length)}/${fmtInt(N)} ${pct.padStart(5)}%` +
      `  ${fmtInt(last).padStart(7)} req/s (avg ${fmtInt(avg)})` +
      `  inflight ${s.requests.inFlight} queued ${s.requests.queued}` +
      `  conns open ${s.connections.open} idle ${s.connections.idle} created ${fmtInt(s.connections.created)} reused ${fmtInt(s.connections.reused)}` +
      `  errors ${fmtInt(failed)}  rss ${mib(rss)}  eld p99 ${fmtMs(eld)}`
    );
  };
  const printLive = (): void => {
    let line = liveLine();
    if (liveTTY) {
      // A wrapped line cannot be redrawn in place: cut it to the terminal width.
      const cols = (liveStream as NodeJS.WriteStream).columns;
      if (cols !== undefined && cols > 10 && line.length >= cols) line = line.slice(0, cols - 1);
      liveStream.write(`\r\x1b[2K${line}`);
    } else liveStream.write(`${line}\n`);
  };
  const ticker = setInterval(printLive, 500);

  // Ctrl-C: stop handing out requests, let in-flight ones finish, print the summary.
  let sigints = 0;
  const onSigint = (): void => {
    sigints++;
    if (sigints > 1) process.exit(130);
    interrupted = true;
    stopping = true;
    if (liveTTY) liveStream.write('\n');
    note('uvfetch: interrupted — waiting for in-flight requests (Ctrl-C again to quit now)');
  };
  process.on('SIGINT', onSigint);

  let summary: Summary;
  try {
    await Promise.all(Array.from({ length: Math.min(C, N) }, worker));
    const tEnd = process.hrtime.bigint();
    clearInterval(ticker);
    printLive();
    if (liveTTY) liveStream.write('\n');
    const cpu = process.cpuUsage(cpu0);
    const durationS = Number(tEnd - t0) / 1e9;
    const sessionStats = session.stats();

    let serverSummary: Summary['server'] = null;
    if (server !== null && serverBefore !== null) {
      const after = await server.stats();
      const expected = Math.min(next, N); // = N unless interrupted
      const served = after.requests - serverBefore.requests;
      const serverCpuUs = after.cpu.user + after.cpu.system - (serverBefore.cpu.user + serverBefore.cpu.system);
      serverSummary = {
        requests: served,
        expected,
        matches: served === expected,
        connections: after.connections - serverBefore.connections,
        cpuPercent: round((100 * serverCpuUs) / 1e6 / durationS, 1),
      };
    }
    const rssMax = Math.max(rssPeak, process.resourceUsage().maxRSS * 1024);
    const statusObj: Record<string, number> = {};
    for (const [k, v] of [...statuses.entries()].sort((a, b) => a[0] - b[0])) statusObj[String(k)] = v;
    const errorObj: Record<string, number> = {};
    for (const [k, v] of [...errors.entries()].sort((a, b) => b[1] - a[1])) errorObj[k] = v;
    const hasLatency = latency.count > 0;
    summary = {
      command: 'run',
      ok: false,
      interrupted,
      target,
      embeddedServer:
        server === null ? null : { url: server.url, workers: server.workers, transport: server.transport, pinnedTo: server.pinnedTo, bodySize: opts.bodySize },
      requests: N,
      concurrency: C,
      maxConnections: opts.connections,
      started: Math.min(next, N),
      completed: done - failed,
      failed,
      durationMs: round(durationS * 1000, 3),
      reqPerSec: round(durationS > 0 ? done / durationS : 0, 1),
      latencyMs: hasLatency
        ? {
            p50: round(nsToMs(latency.percentile(50))),
            p90: round(nsToMs(latency.percentile(90))),
            p99: round(nsToMs(latency.percentile(99))),
            max: round(nsToMs(latency.max)),
            mean: round(nsToMs(latency.mean)),
          }
        : null,
      statuses: statusObj,
      errors: errorObj,
      bytesReceived: bytes,
      connections: { created: sessionStats.connections.created, reused: sessionStats.connections.reused },
      server: serverSummary,
      client: {
        cpuPercent: round((100 * (cpu.user + cpu.system)) / 1e6 / durationS, 1),
        rssPeakBytes: rssMax,
        eventLoopDelayMs: {
          p99: eldAll.count > 0 ? round(nsToMs(eldAll.percentile(99))) : 0,
          max: eldAll.count > 0 ? round(nsToMs(eldAll.max)) : 0,
        },
      },
    };
    summary.ok = failed === 0 && !interrupted && (serverSummary === null || serverSummary.matches);
  } finally {
    clearInterval(ticker);
    eldAll.disable();
    eldTick.disable();
    process.off('SIGINT', onSigint);
    await session.close();
    if (server !== null) await server.close();
  }

  if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else process.stdout.write(`${formatSummary(summary)}\n`);
  if (interrupted) return 130;
  return summary.ok ? 0 : 1;
}

function formatSummary(s: Summary): string {
  const rows: Array<[string, string]> = [];
  rows.push(['target', s.target]);
  rows.push([
    'requests',
    `${fmtInt(s.completed)} ok, ${fmtInt(s.failed)} failed of ${fmtInt(s.requests)}` +
      (s.interrupted ? ` (interrupted after ${fmtInt(s.started)} started)` : '') +
      ` — concurrency ${s.concurrency}, ≤ ${s.maxConnections} connections`,
  ]);
  rows.push(['total time', `${(s.durationMs / 1000).toFixed(3)} s`]);
  rows.push(['throughput', `${fmtInt(s.reqPerSec)} req/s`]);
  const l = s.latencyMs;
  rows.push(['latency', l === null ? '-' : `p50 ${fmtMs(l.p50)}  p90 ${fmtMs(l.p90)}  p99 ${fmtMs(l.p99)}  max ${fmtMs(l.max)}`]);
  const st = Object.entries(s.statuses);
  rows.push(['statuses', st.length === 0 ? 'none' : st.map(([k, v]) => `${k}: ${fmtInt(v)}`).join(', ')]);
  const er = Object.entries(s.errors);
  rows.push(['errors', er.length === 0 ? 'none' : er.map(([k, v]) => `${k}: ${fmtInt(v)}`).join(', ')]);
  rows.push(['connections', `created ${fmtInt(s.connections.created)}, reused ${fmtInt(s.connections.reused)}`]);
  if (s.server !== null) {
    rows.push([
      'server',
      `${fmtInt(s.server.requests)} requests ` +
        (s.server.matches ? '(= requests sent)' : `(MISMATCH: expected ${fmtInt(s.server.expected)})`) +
        `, ${fmtInt(s.server.connections)} connections accepted, CPU ${s.server.cpuPercent.toFixed(0)}%`,
    ]);
  }
  rows.push([
    'client',
    `CPU ${s.client.cpuPercent.toFixed(0)}%, RSS peak ${mib(s.client.rssPeakBytes)}, ` +
      `event-loop delay p99 ${fmtMs(s.client.eventLoopDelayMs.p99)} (max ${fmtMs(s.client.eventLoopDelayMs.max)})`,
  ]);
  rows.push(['received', `${fmtInt(s.bytesReceived)} body bytes`]);
  const w = Math.max(...rows.map((r) => r[0].length));
  const head = `── uvfetch summary ${s.ok ? 'OK' : s.interrupted ? 'INTERRUPTED' : 'FAILED'} ──`;
  return [head, ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join('\n');
}

registerCommand({ name: 'run', summary: 'fetch N URLs against the embedded loopback server', usage: RUN_USAGE, run: runCommand });
registerCommand(benchCommand);
for (const c of fleetCommands(UsageError)) registerCommand(c);
registerCommand(fingerprintCommand(UsageError));

// ---------------------------------------------------------------------------------------------
// Entry point (only when executed, not when imported).

function isMain(): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`uvfetch: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
