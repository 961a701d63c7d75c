// `uvfetch bench`: uvfetch against the pure-JS clients (and optionally wrk), on one machine, with
// one command.
//
//   uvfetch bench [--scenario small-c50|small-c500|16k-c50|close-c50|chunked-c50|https-c50|https-close-c50|all]
//                 [--clients uvfetch,undici-pool,undici-agent,node-http,fetch] [--concurrency N]
//                 [--duration S] [--warmup S] [--rounds N] [--url URL] [--server-workers N]
//                 [--https-server auto|nginx|node] [--with-wrk] [--no-pin] [--json]
//
// How a run works:
//   - Pinning: on Linux with >= 2 usable cores and `taskset`, the command re-executes itself
//     under `taskset -c <first core>`; everything client-side (this orchestrator, the client
//     processes, wrk) inherits that core, and the loopback server processes are pinned to the
//     last core(s). So client and server never share a core, and every client gets one core.
//   - Server: per scenario, the embedded loopback server (loopback-server.ts, raw libuv handles,
//     precomputed responses, its own processes) configured for that scenario; or --url. HTTPS
//     scenarios (tls-loopback.ts): nginx when installed, else the loopback server speaking
//     node:tls; a fresh CA + server certificate from the openssl CLI, trusted by every client.
//     TLS session resumption is off in every client, and the server counts resumed handshakes.
//   - Clients run one at a time, interleaved (A B C D E A B C D E ...) for --rounds rounds. Each
//     segment is a fresh child process (bench/child.ts, forked) that loads only its own client:
//     warm-up, then a measured window of closed-loop requests by `concurrency` workers. So RSS,
//     event-loop delay and GC state belong to that client alone. Every body is read fully and
//     its size checked (embedded server), status must be 200.
//   - The server's CPU time is sampled (over IPC) right before and after each measured window:
//     its CPU share shows whether the server, not the client, was the limit.
//   - Reported per client: req/s median (min–max) over rounds, p50/p99 latency and event-loop
//     delay p99 (medians over rounds), peak RSS of its process, client and server CPU, errors,
//     ratio of median req/s to undici Pool (and to wrk with --with-wrk).
//
// bench/load.mjs (`npm run bench`) is a thin wrapper around benchMain().

// ---------------------------------------------------------------------------------------------
// Command line.

import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import {
  type BenchConfig,
  BenchUsageError,
  CLIENTS,
  type ClientName,
  DEFAULT_CLIENTS,
  FETCH_CLIENTS,
  PIN_ENV,
  SCENARIOS,
  type Scenario,
  allowedCpus,
  hasTaskset,
} from './bench/config.js';
import { formatReport, runBench } from './bench/run.js';

export {
  BASELINE,
  type BenchConfig,
  type BenchReport,
  CLIENTS,
  DEFAULT_CLIENTS,
  FETCH_CLIENTS,
  type ClientName,
  type ClientSummary,
  type HttpsServerChoice,
  type HttpsTrust,
  SCENARIOS,
  type Scenario,
  type ScenarioReport,
} from './bench/config.js';
export { formatReport, runBench } from './bench/run.js';
export { parseWrk } from './bench/segments.js';

export const BENCH_USAGE = `usage: uvfetch bench [options]

Compares uvfetch with undici 7 (Pool.request, and request() with an Agent), node:http (keep-alive
Agent) and the global fetch against an embedded loopback server running in its own process(es).
Clients run interleaved (A B C D E A B C D E ...) for several rounds, each run in a fresh process:
warm-up, then a measured window of closed-loop requests; every body is read fully. On Linux with
>= 2 cores and taskset, clients run on the first core and the server on the last one(s).

options:
  --scenario NAME     small-c50 (default) | small-c500 | 16k-c50 | close-c50 | chunked-c50 |
                      https-c50 | https-close-c50 | all (comma-separated list allowed) |
                      fetch (uvfetch fetch(), global fetch, undici fetch(), uvfetch request())
  --clients LIST      subset of ${CLIENTS.join(',')} (default: ${DEFAULT_CLIENTS.join(',')};
                      with --scenario fetch: ${FETCH_CLIENTS.join(',')});
                      'wrk' in the list = --with-wrk
  --concurrency N     override the scenario's concurrency
  --duration S        measured seconds per client per round (default 3)
  --warmup S          warm-up seconds before each measured window (default 1)
  --rounds N          rounds (default 3)
  --url URL           benchmark this http:// server instead (GET, must answer 200; loopback only
                      is recommended); scenarios then only set concurrency and connection reuse
  --server-workers N  embedded server processes (default: 1 on <= 3 cores, else cores/2, max 4)
  --https-server S    HTTPS scenarios' server: auto (default: nginx if installed, else node:tls
                      workers) | nginx | node. Needs the openssl command for the certificate
  --https-trust T     how HTTPS clients trust the test CA: env (default: NODE_EXTRA_CA_CERTS, each
                      client's default trust store) | ca (an explicit ca option in every client)
  --with-wrk          add wrk (if installed) against the same server as the "C ceiling" row
  --no-pin            do not pin client and server to cores
  --json              print one JSON document on stdout (progress stays on stderr)
  -h, --help          this help

Columns: req/s median (min–max over rounds); p50/p99 latency and ELD p99 (event-loop delay during
the measured window) are medians over rounds; RSS is the peak of the client's process; vs
undici-pool is the ratio of median req/s; server CPU near 100% per server process means the
server was the limit. HTTPS scenarios: every client trusts a fresh test CA and runs without TLS
session resumption; the server's counts of handshakes and resumed handshakes are printed. exit status: 0 no request failed, 1 some failed, 2 usage error.`;

function num(name: string, v: string | undefined, def: number, min: number, max: number, integer: boolean): number {
  if (v === undefined) return def;
  const n = Number(v.replace(/_/g, ''));
  if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new BenchUsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got '${v}'`);
  }
  return n;
}

interface ParsedArgs {
  cfg: Omit<BenchConfig, 'pin' | 'pinNote'>;
  json: boolean;
  noPin: boolean;
}

export function parseBenchArgs(argv: string[]): ParsedArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      scenario: { type: 'string' },
      clients: { type: 'string' },
      concurrency: { type: 'string', short: 'c' },
      duration: { type: 'string', short: 'd' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      url: { type: 'string' },
      'server-workers': { type: 'string' },
      'https-server': { type: 'string' },
      'https-trust': { type: 'string' },
      'with-wrk': { type: 'boolean', default: false },
      'no-pin': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length > 0) throw new BenchUsageError(`unexpected argument '${positionals[0]}'`);
  let scenarios: Scenario[];
  const sc = values.scenario ?? 'small-c50';
  if (sc === 'all') scenarios = SCENARIOS.filter((x) => x.name !== 'fetch');
  else {
    scenarios = sc.split(',').map((n) => {
      const s = SCENARIOS.find((x) => x.name === n.trim());
      if (s === undefined) throw new BenchUsageError(`unknown scenario '${n}' (known: ${SCENARIOS.map((x) => x.name).join(', ')}, all)`);
      return s;
    });
  }
  let withWrk = values['with-wrk'] ?? false;
  let clients: ClientName[] = scenarios.length === 1 && scenarios[0]!.name === 'fetch' ? [...FETCH_CLIENTS] : [...DEFAULT_CLIENTS];
  if (values.clients !== undefined) {
    const list = values.clients
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (list.includes('wrk')) withWrk = true;
    clients = [];
    for (const c of list) {
      if (c === 'wrk') continue;
      if (!(CLIENTS as readonly string[]).includes(c)) throw new BenchUsageError(`unknown client '${c}' (known: ${CLIENTS.join(', ')}, wrk)`);
      if (!clients.includes(c as ClientName)) clients.push(c as ClientName);
    }
    if (clients.length === 0 && !withWrk) throw new BenchUsageError('--clients is empty');
  }
  const url = values.url;
  if (url !== undefined) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new BenchUsageError(`--url is not a valid URL: '${url}'`);
    }
    if (u.protocol !== 'http:') throw new BenchUsageError('--url must be an http:// URL');
    if (values['server-workers'] !== undefined) throw new BenchUsageError('--server-workers applies to the embedded server only, not with --url');
    if (scenarios.some((s) => s.tls)) {
      if (values.scenario === 'all') scenarios = scenarios.filter((s) => !s.tls);
      else throw new BenchUsageError('HTTPS scenarios use their own server: not with --url');
    }
  }
  const hs = values['https-server'] ?? 'auto';
  if (hs !== 'auto' && hs !== 'nginx' && hs !== 'node') throw new BenchUsageError(`--https-server must be auto, nginx or node, got '${hs}'`);
  const ht = values['https-trust'] ?? 'env';
  if (ht !== 'env' && ht !== 'ca') throw new BenchUsageError(`--https-trust must be env or ca, got '${ht}'`);
  return {
    cfg: {
      scenarios,
      clients,
      concurrency: values.concurrency === undefined ? undefined : num('concurrency', values.concurrency, 50, 1, 10_000, true),
      durationS: num('duration', values.duration, 3, 0.1, 3600, false),
      warmupS: num('warmup', values.warmup, 1, 0, 600, false),
      rounds: num('rounds', values.rounds, 3, 1, 100, true),
      url,
      serverWorkers: values['server-workers'] === undefined ? undefined : num('server-workers', values['server-workers'], 1, 1, 64, true),
      httpsServer: hs,
      httpsTrust: ht,
      withWrk,
    },
    json: values.json ?? false,
    noPin: values['no-pin'] ?? false,
  };
}

interface PinPlan {
  client: string;
  server: string;
}

/** Decides pinning; 'reexec' means: run this command again under `taskset -c plan.client`. */
function planPinning(noPin: boolean, serverWorkers: number | undefined): { action: 'reexec' | 'pinned' | 'none'; plan: PinPlan | null; note: string } {
  const env = process.env[PIN_ENV];
  if (env !== undefined && env !== '') {
    try {
      const plan = JSON.parse(env) as PinPlan;
      if (typeof plan.client === 'string' && typeof plan.server === 'string') return { action: 'pinned', plan, note: 'taskset' };
    } catch {
      /* fall through: not ours */
    }
  }
  if (noPin) return { action: 'none', plan: null, note: '--no-pin' };
  if (process.platform !== 'linux') return { action: 'none', plan: null, note: `taskset pinning is Linux-only (${process.platform})` };
  if (!hasTaskset()) return { action: 'none', plan: null, note: 'taskset not found' };
  const cpus = allowedCpus();
  if (cpus.length < 2) return { action: 'none', plan: null, note: `only ${cpus.length} usable core` };
  const workers = serverWorkers ?? (cpus.length <= 3 ? 1 : Math.min(4, Math.floor(cpus.length / 2)));
  const n = Math.max(1, Math.min(workers, cpus.length - 1));
  return { action: 'reexec', plan: { client: String(cpus[0]), server: cpus.slice(cpus.length - n).join(',') }, note: 'taskset' };
}

/** Runs this same command line again under `taskset -c <client core>`; resolves to its exit code. */
function reexecPinned(plan: PinPlan): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('taskset', ['-c', plan.client, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, [PIN_ENV]: JSON.stringify(plan) },
    });
    // Ctrl-C reaches the child too (same process group); wait for it instead of dying first.
    const onSig = (): void => {};
    const onTerm = (): void => {
      child.kill('SIGTERM');
    };
    process.on('SIGINT', onSig);
    process.on('SIGTERM', onTerm);
    const done = (code: number | null): void => {
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onTerm);
      resolve(code);
    };
    child.on('error', () => done(null)); // could not start: caller runs unpinned
    child.on('exit', (code, sig) => done(code ?? (sig === 'SIGINT' ? 130 : 1)));
  });
}

/** `uvfetch bench` / `node bench/load.mjs`: parse, pin (re-exec), run, print; resolves to the exit code. */
export async function benchMain(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${BENCH_USAGE}\n`);
    return 0;
  }
  let parsed: ParsedArgs;
  try {
    parsed = parseBenchArgs(argv);
  } catch (e) {
    if (e instanceof BenchUsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`uvfetch bench: ${(e as Error).message}\n\n${BENCH_USAGE}\n`);
      return 2;
    }
    throw e;
  }
  const pin = planPinning(parsed.noPin, parsed.cfg.serverWorkers);
  let pinNote = pin.note;
  if (pin.action === 'reexec' && pin.plan !== null) {
    const code = await reexecPinned(pin.plan);
    if (code !== null) return code;
    pinNote = 'could not re-run under taskset';
  }
  const report = await runBench({
    ...parsed.cfg,
    pin: pin.action === 'pinned' ? pin.plan : null,
    pinNote: pin.action === 'pinned' ? 'taskset' : pinNote,
  });
  if (parsed.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(`${formatReport(report)}\n`);
  return report.ok ? 0 : 1;
}

export const benchCommand = {
  name: 'bench',
  summary: 'compare uvfetch with undici, node:http and fetch (and wrk) on loopback',
  usage: BENCH_USAGE,
  run: benchMain,
};
