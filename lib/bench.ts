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
//     segment is a fresh child process (this module, forked) that loads only its own client:
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

import { VERSION } from './version.js';
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startLoopbackServer, type LoopbackServerStats } from './loopback-server.js';
import { benchCertificate, startTlsLoopbackServer, type TlsServerKind } from './tls-loopback.js';

// ---------------------------------------------------------------------------------------------
// Public types.

export const CLIENTS = ['uvfetch', 'undici-pool', 'undici-agent', 'node-http', 'fetch', 'uvfetch-fetch', 'undici-fetch'] as const;
export type ClientName = (typeof CLIENTS)[number];
/** Clients run when --clients is not given. */
export const DEFAULT_CLIENTS: readonly ClientName[] = ['uvfetch', 'undici-pool', 'undici-agent', 'node-http', 'fetch'];
/** The `fetch` scenario's clients: the three fetch() implementations, and uvfetch's request() for its cost. */
export const FETCH_CLIENTS: readonly ClientName[] = ['uvfetch-fetch', 'fetch', 'undici-fetch', 'uvfetch'];
export const BASELINE: ClientName = 'undici-pool';

export interface Scenario {
  name: string;
  description: string;
  /** Response body size of the embedded server. */
  bodySize: number;
  /** false: the server answers `Connection: close`, and clients are set up not to reuse. */
  keepAlive: boolean;
  chunked: boolean;
  concurrency: number;
  /** HTTPS (TLS 1.3 against the HTTPS loopback server). */
  tls: boolean;
}

export const SCENARIOS: readonly Scenario[] = [
  { name: 'small-c50', description: '13 B body, keep-alive, concurrency 50', bodySize: 13, keepAlive: true, chunked: false, concurrency: 50, tls: false },
  { name: 'small-c500', description: '13 B body, keep-alive, concurrency 500', bodySize: 13, keepAlive: true, chunked: false, concurrency: 500, tls: false },
  { name: '16k-c50', description: '16 KiB body, keep-alive, concurrency 50', bodySize: 16384, keepAlive: true, chunked: false, concurrency: 50, tls: false },
  { name: 'close-c50', description: '13 B body, new connection per request, concurrency 50', bodySize: 13, keepAlive: false, chunked: false, concurrency: 50, tls: false },
  { name: 'chunked-c50', description: '13 B chunked body, keep-alive, concurrency 50', bodySize: 13, keepAlive: true, chunked: true, concurrency: 50, tls: false },
  { name: 'https-c50', description: 'HTTPS, 13 B body, keep-alive, concurrency 50', bodySize: 13, keepAlive: true, chunked: false, concurrency: 50, tls: true },
  { name: 'https-close-c50', description: 'HTTPS, 13 B body, new TLS connection (full handshake) per request, concurrency 50', bodySize: 13, keepAlive: false, chunked: false, concurrency: 50, tls: true },
  // fetch() implementations (uvfetch's, Node's global, undici 7's) and uvfetch's request(); not in 'all'.
  { name: 'fetch', description: 'fetch() implementations, 13 B body, keep-alive, concurrency 50', bodySize: 13, keepAlive: true, chunked: false, concurrency: 50, tls: false },
];

/** Which HTTPS server to use: nginx when installed (auto), or one of them explicitly. */
export type HttpsServerChoice = 'auto' | 'nginx' | 'node';
/**
 * How HTTPS clients trust the test CA. 'env' (default): NODE_EXTRA_CA_CERTS in the client's
 * process, so every client uses its default trust store, as against a public server. 'ca': an
 * explicit `ca` option (node:tls then builds a SecureContext, CA store included, per connection).
 */
export type HttpsTrust = 'env' | 'ca';

export interface BenchConfig {
  scenarios: Scenario[];
  clients: ClientName[];
  /** Overrides every scenario's concurrency. */
  concurrency?: number;
  durationS: number;
  warmupS: number;
  rounds: number;
  /** Benchmark this URL instead of the embedded server. */
  url?: string;
  serverWorkers?: number;
  /** HTTPS scenarios' server. Default 'auto'. */
  httpsServer?: HttpsServerChoice;
  /** HTTPS scenarios: how clients trust the test CA. Default 'env'. */
  httpsTrust?: HttpsTrust;
  withWrk: boolean;
  /** CPU lists to pin to (client side is inherited: the caller must already run there). */
  pin: { client: string; server: string } | null;
  /** Shown in the report when not pinned. */
  pinNote: string;
  /** Progress on stderr. Default true. */
  progress?: boolean;
}

export interface ClientSummary {
  client: string;
  label: string;
  /** rounds: req/s of each round, null for a round whose client process failed. */
  rps: { median: number; min: number; max: number; rounds: Array<number | null> };
  /** Medians over rounds of each round's percentile; null when nothing succeeded. */
  latencyMs: { p50: number; p99: number } | null;
  /** Peak RSS of the client's process (max over rounds); null for wrk. */
  rssMiB: number | null;
  /** Event-loop delay p99 during the measured windows (median over rounds); null for wrk. */
  eventLoopP99Ms: number | null;
  /** CPU of the client's process during the measured windows (% of one core, median); null for wrk. */
  clientCpuPercent: number | null;
  /** CPU of the server processes during the measured windows (% of one core, median); null with --url. */
  serverCpuPercent: number | null;
  serverCpuPercentMax: number | null;
  /** The server used >= 90% of its cores in some round: that round measured the server. */
  serverBound: boolean;
  requests: number;
  errors: number;
  errorCodes: Record<string, number>;
  /**
   * HTTPS scenarios: what the server counted during the measured windows (all rounds): requests,
   * TLS handshakes (new connections) and resumed handshakes. null for plain HTTP and --url.
   */
  serverTls: { requests: number; handshakes: number; resumed: number } | null;
  /** Median req/s / undici Pool's median req/s; null without undici-pool. */
  ratioToUndiciPool: number | null;
  /** Median req/s / wrk's median req/s; null without wrk. */
  ratioToWrk: number | null;
}

export interface ScenarioReport extends Scenario {
  server: null | {
    /** 'loopback' (plain HTTP), 'nginx' or 'node-https' (HTTPS). */
    kind: 'loopback' | TlsServerKind;
    /** e.g. 'uvfetch loopback', 'nginx 1.22.1', 'node:tls v20.20.2'. */
    label: string;
    url: string;
    workers: number;
    transport: string;
    pinnedTo: string | null;
  };
  clients: ClientSummary[];
}

export interface BenchReport {
  tool: 'uvfetch bench';
  uvfetchVersion: string;
  date: string;
  machine: { cpuModel: string; cores: number; node: string; platform: string; arch: string };
  pinning: { pinned: boolean; client: string | null; server: string | null; note: string };
  settings: {
    durationS: number;
    warmupS: number;
    rounds: number;
    concurrency: number | null;
    clients: string[];
    url: string | null;
    withWrk: boolean;
    /** HTTPS scenarios: requested server ('auto' | 'nginx' | 'node') and how clients trust the CA. */
    httpsServer: HttpsServerChoice;
    httpsTrust: HttpsTrust;
    /** HTTPS scenarios: TLS session resumption in the clients (always off). */
    tlsResumption: 'off';
  };
  versions: { uvfetch: string; undici: string | null; nodeFetchUndici: string | null; wrk: string | null };
  baseline: string;
  notes: string[];
  scenarios: ScenarioReport[];
  /** No request failed. */
  ok: boolean;
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

const CHILD_FLAG = '--uvfetch-bench-child';
const ELD_RESOLUTION_MS = 10;
const PIN_ENV = 'UVFETCH_BENCH_PIN';

class BenchUsageError extends Error {}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number, digits = 3): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};
const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(0)} ms`;
}

function errorCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.length > 0) return code;
  if (e instanceof Error) return e.name;
  return 'UNKNOWN';
}


/** Path of the compiled JS of this module (children must run JS, even when tests load the .ts). */
function childScriptPath(): string {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.js')) return self;
  const compiled = path.resolve(path.dirname(self), '..', 'dist', 'bench.js');
  if (!existsSync(compiled)) throw new Error(`bench: ${compiled} not found; run \`npx tsc -p tsconfig.json\` first`);
  return compiled;
}

/** undici, from the current project first, else next to uvfetch (a devDependency). */
function findUndici(): { entry: string; version: string } | null {
  const bases = [path.join(process.cwd(), 'noop.js'), fileURLToPath(import.meta.url)];
  for (const base of bases) {
    try {
      const req = createRequire(base);
      const entry = req.resolve('undici');
      const version = (req('undici/package.json') as { version?: string }).version ?? 'unknown';
      return { entry, version };
    } catch {
      /* next */
    }
  }
  return null;
}

function findWrk(): { version: string } | null {
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if (r.error !== undefined) return null;
  const m = /wrk\s+(\S+)/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`);
  return { version: m ? m[1]! : 'unknown' };
}

function hasTaskset(): boolean {
  if (process.platform !== 'linux') return false;
  const r = spawnSync('taskset', ['-V'], { stdio: 'ignore' });
  return r.status === 0;
}

/** CPUs this process may run on (Linux affinity via taskset), else 0..cores-1. */
function allowedCpus(): number[] {
  const out: number[] = [];
  const r = spawnSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' });
  const m = r.status === 0 ? /:\s*([\d,\-]+)\s*$/.exec(r.stdout.trim()) : null;
  if (m) {
    for (const part of m[1]!.split(',')) {
      const [a, b] = part.split('-').map(Number);
      if (b === undefined) out.push(a!);
      else for (let i = a!; i <= b; i++) out.push(i);
    }
  }
  return out.length > 0 ? out : Array.from({ length: os.availableParallelism() }, (_, i) => i);
}

// ---------------------------------------------------------------------------------------------
// Child side: one client, one segment (warm-up + measured window).

interface SegmentSpec {
  client: ClientName;
  url: string;
  concurrency: number;
  /** Do not reuse connections. */
  close: boolean;
  warmupS: number;
  durationS: number;
  /** Expected body size, -1 = do not check. */
  expectBytes: number;
  undiciEntry: string | null;
  /**
   * HTTPS: the CA to trust, either through each client's default trust store (the child runs
   * with NODE_EXTRA_CA_CERTS; 'env') or an explicit `ca` option ('option'). Every client runs
   * without TLS session resumption.
   */
  tls: { caPem: string; trust: HttpsTrust } | null;
}

interface SegmentResult {
  requests: number;
  errors: number;
  errorCodes: Record<string, number>;
  elapsedS: number;
  rps: number;
  latencyMs: { p50: number; p99: number; max: number } | null;
  eventLoopP99Ms: number;
  rssBytes: number;
  clientCpuPercent: number;
}

type ToChild = { t: 'start'; spec: SegmentSpec } | { t: 'go' };
type FromChild = { t: 'warm' } | { t: 'result'; result: SegmentResult } | { t: 'error'; message: string };

interface BenchClient {
  /** One GET; resolves to the number of body bytes read; rejects on failure or status != 200. */
  request(): Promise<number>;
  close(): Promise<void>;
}

function statusError(status: number): Error {
  return Object.assign(new Error(`status ${status}`), { code: `HTTP_${status}` });
}

async function makeClient(spec: SegmentSpec): Promise<BenchClient> {
  const { url, concurrency: C, close } = spec;
  const u = new URL(url);
  const https_ = spec.tls !== null;
  const ca = spec.tls !== null && spec.tls.trust === 'ca' ? spec.tls.caPem : undefined;
  switch (spec.client) {
    case 'uvfetch': {
      const { Session } = await import('./index.js');
      // sessionCacheSize 0: no resumption, like the other clients (see makeClient's callers).
      const session = new Session({
        connections: C,
        connectionsPerHost: C,
        ...(https_ ? { tls: { ...(ca !== undefined ? { ca } : {}), sessionCacheSize: 0 } } : {}),
      });
      const opts = close ? { headers: { connection: 'close' } } : undefined;
      return {
        async request() {
          const res = await session.request(url, opts);
          if (res.status !== 200) throw statusError(res.status);
          return res.body.length; // request() buffers the whole body
        },
        close: () => session.close(),
      };
    }
    case 'undici-pool':
    case 'undici-agent': {
      if (spec.undiciEntry === null) throw new Error('undici is not installed');
      const mod = (await import(pathToFileURL(spec.undiciEntry).href)) as { default?: unknown };
      const undici = (mod.default ?? mod) as typeof import('undici');
      const reqPath = u.pathname + u.search;
      // maxCachedSessions 0: undici's connector otherwise resumes TLS sessions (cache of 100).
      const connect = https_ ? { connect: { ...(ca !== undefined ? { ca } : {}), maxCachedSessions: 0 } } : {};
      if (spec.client === 'undici-pool') {
        const pool = new undici.Pool(u.origin, { connections: C, pipelining: 1, ...connect });
        return {
          async request() {
            const { statusCode, body } = await pool.request({ path: reqPath, method: 'GET', reset: close });
            const ab = await body.arrayBuffer();
            if (statusCode !== 200) throw statusError(statusCode);
            return ab.byteLength;
          },
          close: () => pool.close(),
        };
      }
      const agent = new undici.Agent({ connections: C, pipelining: 1, ...connect });
      return {
        async request() {
          const { statusCode, body } = await undici.request(url, { dispatcher: agent, reset: close });
          const ab = await body.arrayBuffer();
          if (statusCode !== 200) throw statusError(statusCode);
          return ab.byteLength;
        },
        close: () => agent.close(),
      };
    }
    case 'node-http': {
      // keepAlive: false makes node:http send `Connection: close` and never reuse. HTTPS:
      // node:https with maxCachedSessions 0 (its default of 100 resumes sessions).
      const agent = https_
        ? new https.Agent({ keepAlive: !close, maxSockets: C, maxCachedSessions: 0, ...(ca !== undefined ? { ca } : {}) })
        : new http.Agent({ keepAlive: !close, maxSockets: C });
      const get = https_ ? https.get : http.get;
      return {
        request() {
          return new Promise<number>((resolve, reject) => {
            const req = get(url, { agent }, (res) => {
              const chunks: Buffer[] = [];
              let n = 0;
              res.on('data', (c: Buffer) => {
                chunks.push(c);
                n += c.length;
              });
              res.on('end', () => {
                if (res.statusCode !== 200) reject(statusError(res.statusCode ?? 0));
                else resolve(Buffer.concat(chunks, n).length);
              });
              res.on('error', reject);
            });
            req.on('error', reject);
          });
        },
        async close() {
          agent.destroy();
        },
      };
    }
    case 'uvfetch-fetch': {
      // uvfetch's fetch() on a Session sized like the uvfetch client's; a global Response per request.
      const { Session } = await import('./index.js');
      const session = new Session({
        connections: C,
        connectionsPerHost: C,
        ...(https_ ? { tls: { ...(ca !== undefined ? { ca } : {}), sessionCacheSize: 0 } } : {}),
      });
      const init = close ? { headers: { connection: 'close' } } : undefined;
      return {
        async request() {
          const res = await session.fetch(url, init);
          const ab = await res.arrayBuffer();
          if (res.status !== 200) throw statusError(res.status);
          return ab.byteLength;
        },
        close: () => session.close(),
      };
    }
    case 'undici-fetch': {
      // undici 7's fetch() with its default global dispatcher (HTTPS: an Agent trusting `ca`, no resumption).
      if (spec.undiciEntry === null) throw new Error('undici is not installed');
      const mod = (await import(pathToFileURL(spec.undiciEntry).href)) as { default?: unknown };
      const undici = (mod.default ?? mod) as typeof import('undici');
      const init: Record<string, unknown> = close ? { headers: { connection: 'close' } } : {};
      if (https_) init.dispatcher = new undici.Agent({ connect: { ...(ca !== undefined ? { ca } : {}), maxCachedSessions: 0 } });
      return {
        async request() {
          const res = await undici.fetch(url, init);
          const ab = await res.arrayBuffer();
          if (res.status !== 200) throw statusError(res.status);
          return ab.byteLength;
        },
        async close() {},
      };
    }
    case 'fetch': {
      // Node's global fetch (its bundled undici, global dispatcher with default settings).
      // `connection: close` is passed through to undici, which then does not reuse the socket.
      let init: RequestInit | undefined = close ? { headers: { connection: 'close' } } : undefined;
      if (https_) init = { ...init, ...(await bundledUndiciDispatcher(ca)) } as RequestInit;
      return {
        async request() {
          const res = await fetch(url, init);
          const ab = await res.arrayBuffer();
          if (res.status !== 200) throw statusError(res.status);
          return ab.byteLength;
        },
        async close() {},
      };
    }
  }
}

/**
 * HTTPS for the global fetch: it takes neither a CA nor TLS options, only a dispatcher of its
 * own (Node's bundled) undici. The bundled Agent class is reachable through the global
 * dispatcher, which fetch installs on first use (a data: URL does that without any I/O). The
 * dispatcher made from it keeps no TLS sessions, like the other clients (and trusts `ca`).
 */
async function bundledUndiciDispatcher(ca: string | undefined): Promise<{ dispatcher: unknown }> {
  await (await fetch('data:,')).arrayBuffer();
  const global = (globalThis as Record<symbol, unknown>)[Symbol.for('undici.globalDispatcher.1')] as
    | { constructor: new (opts: unknown) => unknown }
    | undefined;
  if (global === undefined || typeof global.constructor !== 'function') {
    throw Object.assign(new Error("cannot find the global fetch's dispatcher class"), { code: 'FETCH_NO_DISPATCHER' });
  }
  return { dispatcher: new global.constructor({ connect: { ...(ca !== undefined ? { ca } : {}), maxCachedSessions: 0 } }) };
}

async function runPhase(
  client: BenchClient,
  spec: SegmentSpec,
  seconds: number,
  hist: ReturnType<typeof createHistogram> | null,
): Promise<{ done: number; errors: number; errorCodes: Record<string, number>; elapsedS: number }> {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  let done = 0;
  let errors = 0;
  const errorCodes: Record<string, number> = {};
  const worker = async (): Promise<void> => {
    while (process.hrtime.bigint() < deadline) {
      const t0 = process.hrtime.bigint();
      try {
        const n = await client.request();
        if (spec.expectBytes >= 0 && n !== spec.expectBytes) {
          throw Object.assign(new Error(`body of ${n} bytes`), { code: `BODY_${n}_BYTES` });
        }
        if (hist !== null) {
          const dt = process.hrtime.bigint() - t0;
          hist.record(dt > 0n ? dt : 1n);
        }
        done++;
      } catch (e) {
        errors++;
        const code = errorCode(e);
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        await new Promise((r) => setTimeout(r, 1)); // do not spin on a dead target
      }
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  return { done, errors, errorCodes, elapsedS: Number(process.hrtime.bigint() - t0) / 1e9 };
}

function runChild(): void {
  const send = (m: FromChild): Promise<void> =>
    new Promise((resolve) => {
      if (!process.connected) return resolve();
      process.send!(m, undefined, undefined, () => resolve());
    });
  process.on('disconnect', () => process.exit(0));
  let client: BenchClient | null = null;
  let spec: SegmentSpec | null = null;

  process.on('message', (msg: ToChild) => {
    void (async () => {
      try {
        if (msg.t === 'start') {
          spec = msg.spec;
          client = await makeClient(spec);
          if (spec.warmupS > 0) await runPhase(client, spec, spec.warmupS, null);
          await send({ t: 'warm' });
        } else if (msg.t === 'go' && client !== null && spec !== null) {
          const hist = createHistogram();
          const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
          const cpu0 = process.cpuUsage();
          eld.enable();
          const r = await runPhase(client, spec, spec.durationS, hist);
          eld.disable();
          const cpu = process.cpuUsage(cpu0);
          const result: SegmentResult = {
            requests: r.done,
            errors: r.errors,
            errorCodes: r.errorCodes,
            elapsedS: r.elapsedS,
            rps: r.done / r.elapsedS,
            latencyMs:
              hist.count > 0
                ? { p50: hist.percentile(50) / 1e6, p99: hist.percentile(99) / 1e6, max: hist.max / 1e6 }
                : null,
            // The histogram holds timer intervals (resolution included): report the lateness.
            eventLoopP99Ms: eld.count > 0 ? Math.max(0, eld.percentile(99) / 1e6 - ELD_RESOLUTION_MS) : 0,
            rssBytes: Math.max(process.memoryUsage.rss(), process.resourceUsage().maxRSS * 1024),
            clientCpuPercent: (100 * (cpu.user + cpu.system)) / 1e6 / r.elapsedS,
          };
          await send({ t: 'result', result });
          await Promise.race([client.close(), new Promise((r) => setTimeout(r, 2000))]);
          process.exit(0);
        }
      } catch (e) {
        await send({ t: 'error', message: e instanceof Error ? e.message : String(e) });
        process.exit(1);
      }
    })();
  });
}

// ---------------------------------------------------------------------------------------------
// Parent side: segments.

interface Segment extends SegmentResult {
  serverCpuPercent: number | null;
  /** HTTPS: server-side counts over the measured window. */
  serverTls: { requests: number; handshakes: number; resumed: number } | null;
}

/** The server of a scenario: the plain loopback server or one of the HTTPS servers. */
interface BenchServer {
  kind: 'loopback' | TlsServerKind;
  label: string;
  url: string;
  workers: number;
  transport: string;
  pinnedTo: string | null;
  stats(): Promise<LoopbackServerStats>;
  close(): Promise<void>;
}

interface SegmentTarget {
  url: string;
  server: BenchServer | null;
  scenario: Scenario;
  concurrency: number;
  /** HTTPS: the CA the clients trust. */
  tls: { caPem: string; caFile: string; trust: HttpsTrust } | null;
}

function serverTlsDelta(s0: LoopbackServerStats | null, s1: LoopbackServerStats | null): Segment['serverTls'] {
  if (s0 === null || s1 === null || s1.tlsHandshakes === undefined || s0.tlsHandshakes === undefined) return null;
  return {
    requests: s1.requests - s0.requests,
    handshakes: s1.tlsHandshakes - s0.tlsHandshakes,
    resumed: (s1.tlsResumed ?? 0) - (s0.tlsResumed ?? 0),
  };
}

function serverCpuUs(s: LoopbackServerStats): number {
  return s.cpu.user + s.cpu.system;
}

function waitMessage(child: ChildProcess, want: FromChild['t'], timeoutMs: number): Promise<FromChild> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`bench client process timed out waiting for '${want}'`));
    }, timeoutMs);
    const onMsg = (m: FromChild): void => {
      if (m.t === want) {
        cleanup();
        resolve(m);
      } else if (m.t === 'error') {
        cleanup();
        reject(new Error(m.message));
      }
    };
    const onExit = (code: number | null, sig: string | null): void => {
      cleanup();
      reject(new Error(`bench client process exited early (code ${code}, signal ${sig})`));
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

async function runClientSegment(
  client: ClientName,
  t: SegmentTarget,
  cfg: BenchConfig,
  undiciEntry: string | null,
  onPhase: (phase: string) => void,
): Promise<Segment> {
  const spec: SegmentSpec = {
    client,
    url: t.url,
    concurrency: t.concurrency,
    close: !t.scenario.keepAlive,
    warmupS: cfg.warmupS,
    durationS: cfg.durationS,
    expectBytes: t.server !== null ? t.scenario.bodySize : -1,
    undiciEntry,
    tls: t.tls !== null ? { caPem: t.tls.caPem, trust: t.tls.trust } : null,
  };
  const child = fork(childScriptPath(), [CHILD_FLAG], {
    execArgv: [],
    ...(t.tls !== null && t.tls.trust === 'env' ? { env: { ...process.env, NODE_EXTRA_CA_CERTS: t.tls.caFile } } : {}),
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'json',
  });
  child.on('error', () => {});
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  try {
    onPhase(`warm-up /${cfg.warmupS}s`);
    const warm = waitMessage(child, 'warm', (cfg.warmupS + 60) * 1000);
    child.send({ t: 'start', spec } satisfies ToChild);
    await warm;
    const s0 = t.server !== null ? await t.server.stats() : null;
    onPhase(`measuring /${cfg.durationS}s`);
    const res = waitMessage(child, 'result', (cfg.durationS + 60) * 1000);
    child.send({ t: 'go' } satisfies ToChild);
    const { result } = (await res) as { t: 'result'; result: SegmentResult };
    const s1 = t.server !== null ? await t.server.stats() : null;
    const serverCpuPercent =
      s0 !== null && s1 !== null ? (100 * (serverCpuUs(s1) - serverCpuUs(s0))) / 1e6 / result.elapsedS : null;
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    return { ...result, serverCpuPercent, serverTls: serverTlsDelta(s0, s1) };
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    throw e;
  }
}

/** wrk output → numbers. */
export function parseWrk(out: string): {
  rps: number;
  requests: number;
  elapsedS: number;
  p50Ms: number | null;
  p99Ms: number | null;
  errors: number;
  errorCodes: Record<string, number>;
} | null {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(out);
  if (!rps || !total) return null;
  const unit = (v: string, u: string): number =>
    Number(v) * (u === 'us' ? 1e-3 : u === 'ms' ? 1 : u === 's' ? 1e3 : u === 'm' ? 60e3 : u === 'h' ? 3600e3 : NaN);
  const pct = (p: string): number | null => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(out);
    return m ? unit(m[1]!, m[2]!) : null;
  };
  const errorCodes: Record<string, number> = {};
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (sock) {
    (['connect', 'read', 'write', 'timeout'] as const).forEach((k, i) => {
      const n = Number(sock[i + 1]);
      if (n > 0) errorCodes[`wrk_${k}`] = n;
    });
  }
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx && Number(non2xx[1]) > 0) errorCodes['non_2xx_3xx'] = Number(non2xx[1]);
  const errors = Object.values(errorCodes).reduce((a, b) => a + b, 0);
  return {
    rps: Number(rps[1]),
    requests: Number(total[1]),
    elapsedS: unit(total[2]!, total[3]!) / 1e3,
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    errors,
    errorCodes,
  };
}

async function runWrkSegment(t: SegmentTarget, cfg: BenchConfig, onPhase: (phase: string) => void): Promise<Segment> {
  // wrk takes whole seconds; one thread, like the single-threaded JS clients.
  const secs = Math.max(1, Math.round(cfg.durationS));
  const args = ['-t1', `-c${t.concurrency}`, `-d${secs}s`, '--latency', '--timeout', '10s'];
  if (!t.scenario.keepAlive) args.push('-H', 'Connection: close');
  args.push(t.url);
  const s0 = t.server !== null ? await t.server.stats() : null;
  onPhase(`measuring /${secs}s`);
  const started = process.hrtime.bigint();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (text += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), (secs + 60) * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  const s1 = t.server !== null ? await t.server.stats() : null;
  const w = parseWrk(out);
  if (w === null) throw new Error(`could not parse wrk output:\n${out}`);
  const elapsedS = w.elapsedS > 0 ? w.elapsedS : wallS;
  return {
    requests: w.requests,
    errors: w.errors,
    errorCodes: w.errorCodes,
    elapsedS,
    rps: w.rps,
    latencyMs: w.p50Ms !== null && w.p99Ms !== null ? { p50: w.p50Ms, p99: w.p99Ms, max: NaN } : null,
    eventLoopP99Ms: NaN,
    rssBytes: NaN,
    clientCpuPercent: NaN,
    serverCpuPercent: s0 !== null && s1 !== null ? (100 * (serverCpuUs(s1) - serverCpuUs(s0))) / 1e6 / elapsedS : null,
    serverTls: serverTlsDelta(s0, s1),
  };
}

// ---------------------------------------------------------------------------------------------
// Progress on stderr: a redrawn line on a terminal, else one dot per finished segment.

class Progress {
  readonly #tty: boolean;
  readonly #enabled: boolean;
  #timer: NodeJS.Timeout | undefined;
  #state = '';
  #phase = '';
  #phaseStart = 0;
  #last = '';
  #dotsOpen = false;

  constructor(enabled: boolean) {
    this.#enabled = enabled;
    this.#tty = process.stderr.isTTY === true;
  }

  scenarioStart(name: string): void {
    if (!this.#enabled) return;
    if (!this.#tty) {
      process.stderr.write(`uvfetch bench: ${name} `);
      this.#dotsOpen = true;
    }
  }

  segmentStart(state: string): void {
    this.#state = state;
    this.phase('starting');
    if (this.#enabled && this.#tty && this.#timer === undefined) {
      this.#timer = setInterval(() => this.#draw(), 250);
      this.#timer.unref();
    }
  }

  phase(p: string): void {
    this.#phase = p;
    this.#phaseStart = Date.now();
    this.#draw();
  }

  segmentDone(summary: string): void {
    this.#last = summary;
    if (!this.#enabled) return;
    if (this.#tty) this.#draw();
    else process.stderr.write('.');
  }

  scenarioDone(): void {
    if (!this.#enabled) return;
    if (!this.#tty && this.#dotsOpen) {
      process.stderr.write(' done\n');
      this.#dotsOpen = false;
    }
  }

  note(s: string): void {
    if (!this.#enabled) return;
    if (this.#tty) process.stderr.write('\r\x1b[2K');
    else if (this.#dotsOpen) process.stderr.write('\n');
    process.stderr.write(s + '\n');
    if (!this.#tty && this.#dotsOpen) process.stderr.write('  ');
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (!this.#enabled) return;
    if (this.#tty) process.stderr.write('\r\x1b[2K');
    else if (this.#dotsOpen) process.stderr.write('\n');
    this.#dotsOpen = false;
  }

  #draw(): void {
    if (!this.#enabled || !this.#tty) return;
    const el = ((Date.now() - this.#phaseStart) / 1000).toFixed(1);
    // A phase is e.g. 'measuring /3s': the elapsed time goes before the slash.
    const ph = this.#phase.includes(' /') ? this.#phase.replace(' /', ` ${el}/`) : `${this.#phase} ${el}s`;
    let line = `uvfetch bench: ${this.#state}  ${ph}` + (this.#last ? `  | last: ${this.#last}` : '');
    const cols = process.stderr.columns;
    if (cols !== undefined && cols > 10 && line.length >= cols) line = line.slice(0, cols - 1);
    process.stderr.write(`\r\x1b[2K${line}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The run.

const LABELS: Record<string, string> = {
  uvfetch: 'uvfetch',
  'undici-pool': 'undici-pool',
  'undici-agent': 'undici-agent',
  'node-http': 'node-http',
  fetch: 'fetch',
  'uvfetch-fetch': 'uvfetch fetch()',
  'undici-fetch': 'undici fetch()',
  wrk: 'wrk (C ceiling)',
};

/** A segment whose client process failed: no numbers, one error. */
function failedSegment(message: string): Segment {
  const code = /exited early|timed out/.test(message) ? 'CLIENT_PROCESS_FAILED' : 'CLIENT_ERROR';
  return {
    requests: 0,
    errors: 1,
    errorCodes: { [code]: 1 },
    elapsedS: 0,
    rps: NaN,
    latencyMs: null,
    eventLoopP99Ms: NaN,
    rssBytes: NaN,
    clientCpuPercent: NaN,
    serverCpuPercent: null,
    serverTls: null,
  };
}

function summarize(name: string, segs: Segment[], serverWorkers: number | null): Omit<ClientSummary, 'ratioToUndiciPool' | 'ratioToWrk'> {
  const rpsAll = segs.map((s) => s.rps).filter((x) => Number.isFinite(x));
  const rps = rpsAll.length > 0 ? rpsAll : [0];
  const lat = segs.filter((s) => s.latencyMs !== null).map((s) => s.latencyMs!);
  const errorCodes: Record<string, number> = {};
  for (const s of segs) for (const [k, v] of Object.entries(s.errorCodes)) errorCodes[k] = (errorCodes[k] ?? 0) + v;
  const finite = (xs: number[]): number[] => xs.filter((x) => Number.isFinite(x));
  const rss = finite(segs.map((s) => s.rssBytes));
  const eld = finite(segs.map((s) => s.eventLoopP99Ms));
  const ccpu = finite(segs.map((s) => s.clientCpuPercent));
  const scpu = segs.map((s) => s.serverCpuPercent).filter((x): x is number => x !== null && Number.isFinite(x));
  const scpuMax = scpu.length > 0 ? Math.max(...scpu) : null;
  const tlsSegs = segs.map((s) => s.serverTls).filter((x): x is NonNullable<Segment['serverTls']> => x !== null);
  const serverTls =
    tlsSegs.length === 0
      ? null
      : tlsSegs.reduce((a, x) => ({ requests: a.requests + x.requests, handshakes: a.handshakes + x.handshakes, resumed: a.resumed + x.resumed }), {
          requests: 0,
          handshakes: 0,
          resumed: 0,
        });
  return {
    client: name,
    label: LABELS[name] ?? name,
    rps: { median: round(median(rps), 1), min: round(Math.min(...rps), 1), max: round(Math.max(...rps), 1), rounds: segs.map((x) => (Number.isFinite(x.rps) ? round(x.rps, 1) : null)) },
    latencyMs: lat.length > 0 ? { p50: round(median(lat.map((l) => l.p50))), p99: round(median(lat.map((l) => l.p99))) } : null,
    rssMiB: rss.length > 0 ? round(Math.max(...rss) / (1024 * 1024), 1) : null,
    eventLoopP99Ms: eld.length > 0 ? round(median(eld)) : null,
    clientCpuPercent: ccpu.length > 0 ? round(median(ccpu), 1) : null,
    serverCpuPercent: scpu.length > 0 ? round(median(scpu), 1) : null,
    serverCpuPercentMax: scpuMax === null ? null : round(scpuMax, 1),
    serverBound: scpuMax !== null && serverWorkers !== null && scpuMax >= 90 * serverWorkers,
    requests: segs.reduce((a, s) => a + s.requests, 0),
    errors: segs.reduce((a, s) => a + s.errors, 0),
    errorCodes,
    serverTls,
  };
}

export async function runBench(cfg: BenchConfig): Promise<BenchReport> {
  const notes: string[] = [];
  const progress = new Progress(cfg.progress !== false);
  const version = VERSION;

  // Which clients can run here.
  let clients = [...cfg.clients];
  const undici = clients.some((c) => c.startsWith('undici-')) ? findUndici() : null;
  if (undici === null && clients.some((c) => c.startsWith('undici-'))) {
    const skipped = clients.filter((c) => c.startsWith('undici-'));
    clients = clients.filter((c) => !c.startsWith('undici-'));
    notes.push(`undici is not installed here: skipped ${skipped.join(', ')} (npm install --no-save undici@7 to compare)`);
  } else if (undici !== null && !undici.version.startsWith('7.')) {
    notes.push(`undici ${undici.version} found (this benchmark is meant for undici 7)`);
  }
  if (typeof fetch !== 'function' && clients.includes('fetch')) {
    clients = clients.filter((c) => c !== 'fetch');
    notes.push('no global fetch in this Node: skipped fetch');
  }
  let wrk: { version: string } | null = null;
  if (cfg.withWrk) {
    wrk = findWrk();
    if (wrk === null) notes.push('--with-wrk: wrk not found on PATH (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk), continuing without it');
  }
  if (!clients.includes(BASELINE)) notes.push(`${BASELINE} is not part of this run: no ratios to it`);
  if (cfg.url !== undefined) notes.push('--url: scenarios only set concurrency and connection reuse; the server decides bodies; no server CPU');
  if (cfg.url === undefined && cfg.scenarios.some((s) => s.tls)) {
    notes.push(
      'HTTPS: TLS session resumption is off in every client (uvfetch tls.sessionCacheSize 0; undici connect.maxCachedSessions 0; ' +
        "node:https Agent maxCachedSessions 0; fetch: a dispatcher of Node's bundled undici with maxCachedSessions 0, " +
        'the global fetch takes no TLS options); the server accepts session tickets and counts resumed handshakes. ' +
        ((cfg.httpsTrust ?? 'env') === 'env'
          ? 'Clients trust the test CA through their default trust store (NODE_EXTRA_CA_CERTS), no ca option. '
          : 'Clients trust the test CA through an explicit ca option (--https-trust ca). ') +
        'node-http is node:https in HTTPS scenarios.',
    );
  }
  for (const n of notes) progress.note(`uvfetch bench: ${n}`);
  const names: string[] = [...clients, ...(wrk !== null ? ['wrk'] : [])];

  const report: BenchReport = {
    tool: 'uvfetch bench',
    uvfetchVersion: version,
    date: new Date().toISOString(),
    machine: {
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      cores: os.cpus().length,
      node: process.version,
      platform: process.platform,
      arch: process.arch,
    },
    pinning: { pinned: cfg.pin !== null, client: cfg.pin?.client ?? null, server: null, note: cfg.pinNote },
    settings: {
      durationS: cfg.durationS,
      warmupS: cfg.warmupS,
      rounds: cfg.rounds,
      concurrency: cfg.concurrency ?? null,
      clients: names,
      url: cfg.url ?? null,
      withWrk: cfg.withWrk,
      httpsServer: cfg.httpsServer ?? 'auto',
      httpsTrust: cfg.httpsTrust ?? 'env',
      tlsResumption: 'off',
    },
    versions: {
      uvfetch: version,
      undici: undici?.version ?? null,
      nodeFetchUndici: process.versions.undici ?? null,
      wrk: wrk?.version ?? null,
    },
    baseline: BASELINE,
    notes,
    scenarios: [],
    ok: true,
  };

  const totalSegments = cfg.scenarios.length * cfg.rounds * names.length;
  let segIndex = 0;
  try {
    for (const scenario of cfg.scenarios) {
      const concurrency = cfg.concurrency ?? scenario.concurrency;
      let server: BenchServer | null = null;
      let url = cfg.url;
      let tlsTarget: SegmentTarget['tls'] = null;
      const pinning = cfg.pin !== null ? { pinTo: cfg.pin.server } : { pin: cfg.pinNote !== '--no-pin' };
      if (url === undefined && scenario.tls) {
        try {
          const cert = benchCertificate();
          tlsTarget = { caPem: cert.caPem, caFile: cert.caFile, trust: cfg.httpsTrust ?? 'env' };
          const choice = cfg.httpsServer ?? 'auto';
          server = await startTlsLoopbackServer({
            bodySize: scenario.bodySize,
            keepAlive: scenario.keepAlive,
            cert,
            workers: cfg.serverWorkers,
            prefer: choice === 'node' ? 'node-https' : choice,
            ...pinning,
          });
        } catch (e) {
          // No openssl (or no nginx with --https-server nginx): skip this scenario, say why.
          const msg = `${scenario.name} skipped: ${e instanceof Error ? e.message : String(e)}`;
          notes.push(msg);
          progress.note(`uvfetch bench: ${msg}`);
          report.ok = false;
          continue;
        }
      } else if (url === undefined) {
        const plain = await startLoopbackServer({
          bodySize: scenario.bodySize,
          chunked: scenario.chunked,
          keepAlive: scenario.keepAlive,
          workers: cfg.serverWorkers,
          ...pinning,
        });
        server = { ...plain, kind: 'loopback', label: 'uvfetch loopback', stats: () => plain.stats(), close: () => plain.close() };
      }
      if (server !== null) {
        url = `${server.url}/bench`;
        report.pinning.server = server.pinnedTo;
      }
      const target: SegmentTarget = { url: url!, server, scenario, concurrency, tls: tlsTarget };
      const segs = new Map<string, Segment[]>(names.map((n) => [n, []]));
      progress.scenarioStart(scenario.name);
      try {
        for (let r = 1; r <= cfg.rounds; r++) {
          for (const name of names) {
            segIndex++;
            progress.segmentStart(`[${segIndex}/${totalSegments}] ${scenario.name} round ${r}/${cfg.rounds} ${name}`);
            const onPhase = (p: string): void => progress.phase(p);
            let seg: Segment;
            try {
              seg =
                name === 'wrk'
                  ? await runWrkSegment(target, cfg, onPhase)
                  : await runClientSegment(name as ClientName, target, cfg, undici?.entry ?? null, onPhase);
            } catch (e) {
              // A client process that crashed or hung: count it as a failed run, keep going.
              const message = e instanceof Error ? e.message : String(e);
              progress.note(`uvfetch bench: ${scenario.name} round ${r} ${name}: ${message}`);
              seg = failedSegment(message);
            }
            segs.get(name)!.push(seg);
            progress.segmentDone(`${name} ${fmtInt(seg.rps)} req/s${seg.errors > 0 ? ` (${seg.errors} errors)` : ''}`);
          }
        }
      } finally {
        progress.scenarioDone();
        if (server !== null) await server.close();
      }
      const workers = server?.workers ?? null;
      const summaries = names.map((n) => summarize(n, segs.get(n)!, workers));
      const base = summaries.find((s) => s.client === BASELINE);
      const wrkS = summaries.find((s) => s.client === 'wrk');
      const full: ClientSummary[] = summaries.map((s) => ({
        ...s,
        ratioToUndiciPool: base !== undefined && base.rps.median > 0 ? round(s.rps.median / base.rps.median) : null,
        ratioToWrk: wrkS !== undefined && wrkS.rps.median > 0 ? round(s.rps.median / wrkS.rps.median) : null,
      }));
      if (full.some((s) => s.errors > 0)) report.ok = false;
      report.scenarios.push({
        ...scenario,
        description:
          server === null
            ? `--url target, ${scenario.keepAlive ? 'keep-alive' : 'new connection per request'}, concurrency ${concurrency}`
            : scenario.description.replace(/concurrency \d+/, `concurrency ${concurrency}`),
        concurrency,
        server:
          server === null
            ? null
            : { kind: server.kind, label: server.label, url: server.url, workers: server.workers, transport: server.transport, pinnedTo: server.pinnedTo },
        clients: full,
      });
    }
  } finally {
    progress.stop();
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Human output.

function table(header: string[], rows: string[][], leftCols = 1): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < leftCols ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

export function formatReport(r: BenchReport): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`uvfetch bench — uvfetch ${r.uvfetchVersion}, ${r.date.slice(0, 16).replace('T', ' ')} UTC`);
  out.push(`machine: ${m.cpuModel}, ${m.cores} cores, Node ${m.node}, ${m.platform}/${m.arch}`);
  out.push(
    r.pinning.pinned
      ? `pinning: client processes on CPU ${r.pinning.client}, ` +
          (r.settings.url !== null ? 'server external (not pinned)' : `server on CPU ${r.pinning.server ?? '-'}`) +
          ' (taskset)'
      : `pinning: none (${r.pinning.note})`,
  );
  const v = r.versions;
  out.push(
    `clients: ${r.settings.clients
      .map((c) =>
        c === 'uvfetch'
          ? `uvfetch ${v.uvfetch}`
          : c === 'undici-pool'
            ? `undici ${v.undici} Pool.request`
            : c === 'undici-agent'
              ? 'undici request()+Agent'
              : c === 'node-http'
                ? `node:http${r.scenarios.some((s) => s.tls) ? '/node:https' : ''} keep-alive Agent`
                : c === 'fetch'
                  ? `global fetch (undici ${v.nodeFetchUndici ?? '?'})`
                  : c === 'uvfetch-fetch'
                    ? `uvfetch ${v.uvfetch} fetch()`
                    : c === 'undici-fetch'
                      ? `undici ${v.undici} fetch()`
                      : `wrk ${v.wrk} -t1`,
      )
      .join(', ')}`,
  );
  out.push(
    `method: ${r.settings.rounds} round(s), clients interleaved, each a fresh process: ${r.settings.warmupS} s warm-up + ` +
      `${r.settings.durationS} s measured; every body read fully; ${r.settings.url !== null ? `target ${r.settings.url}` : 'embedded loopback server (own process)'}`,
  );
  for (const n of r.notes) out.push(`note: ${n}`);

  for (const s of r.scenarios) {
    out.push('');
    const srv =
      s.server === null
        ? ''
        : `  [server: ${s.server.kind === 'loopback' ? '' : `${s.server.label}, `}${s.server.workers} process(es), ${s.server.transport}` +
          (s.server.pinnedTo !== null ? `, CPU ${s.server.pinnedTo}` : '') +
          ']';
    out.push(`${s.name}: ${s.description}${srv}`);
    const header = ['client', 'req/s median (min–max)', 'p50', 'p99', 'RSS', 'ELD p99', 'errors', `vs ${r.baseline}`, 'client CPU', 'server CPU'];
    const rows = s.clients.map((c) => [
      c.label,
      `${fmtInt(c.rps.median)} (${fmtInt(c.rps.min)}–${fmtInt(c.rps.max)})`,
      fmtMs(c.latencyMs?.p50),
      fmtMs(c.latencyMs?.p99),
      c.rssMiB === null ? '-' : `${c.rssMiB.toFixed(0)} MiB`,
      fmtMs(c.eventLoopP99Ms),
      String(c.errors),
      c.ratioToUndiciPool === null ? '-' : `${c.ratioToUndiciPool.toFixed(2)}x`,
      c.clientCpuPercent === null ? '-' : `${c.clientCpuPercent.toFixed(0)}%`,
      c.serverCpuPercent === null ? '-' : `${c.serverCpuPercent.toFixed(0)}%${c.serverBound ? '*' : ''}`,
    ]);
    out.push(...table(header, rows));
    const uf = s.clients.find((c) => c.client === 'uvfetch-fetch');
    const gf = s.clients.find((c) => c.client === 'fetch');
    if (uf !== undefined && gf !== undefined && gf.rps.median > 0) {
      // Also per client CPU: on a shared machine a client may not get its whole core.
      const cpuUs = (c: ClientSummary) => (c.clientCpuPercent !== null && c.rps.median > 0 ? (c.clientCpuPercent / 100) * (1e6 / c.rps.median) : NaN);
      const req = s.clients.find((c) => c.client === 'uvfetch');
      let line = `uvfetch fetch() / global fetch: ${(uf.rps.median / gf.rps.median).toFixed(2)}x req/s`;
      const perCpu = cpuUs(gf) / cpuUs(uf);
      if (Number.isFinite(perCpu)) line += `, ${perCpu.toFixed(2)}x per client CPU second`;
      if (req !== undefined && req.rps.median > 0 && uf.rps.median > 0) {
        line += `; fetch() costs ${(1e6 / uf.rps.median - 1e6 / req.rps.median).toFixed(1)} µs/request over request()`;
        const cpu = cpuUs(uf) - cpuUs(req);
        if (Number.isFinite(cpu)) line += ` (${cpu.toFixed(1)} µs of client CPU: ${cpuUs(uf).toFixed(1)} vs ${cpuUs(req).toFixed(1)})`;
      }
      out.push(line);
    }
    const uv = s.clients.find((c) => c.client === 'uvfetch');
    if (uv !== undefined && uv.ratioToWrk !== null) {
      out.push(`uvfetch reaches ${uv.ratioToWrk.toFixed(2)} of wrk's req/s (the C ceiling against this server).`);
    }
    const bound = s.clients.filter((c) => c.serverBound);
    if (bound.length > 0 && s.server !== null) {
      out.push(
        `* server used ~100% of its ${s.server.workers} core(s) in some round for ${bound.map((c) => c.client).join(', ')}: ` +
          'those numbers are bounded by the server, not the client.',
      );
    }
    const tlsRows = s.clients.filter((c) => c.serverTls !== null);
    if (tlsRows.length > 0) {
      out.push(
        'server-side, measured windows: ' +
          tlsRows
            .map((c) => `${c.client} ${fmtInt(c.serverTls!.handshakes)} TLS handshakes (${fmtInt(c.serverTls!.resumed)} resumed) for ${fmtInt(c.serverTls!.requests)} requests`)
            .join('; '),
      );
    }
    const errs = s.clients.filter((c) => c.errors > 0);
    for (const c of errs) {
      out.push(`errors ${c.client}: ${Object.entries(c.errorCodes).map(([k, n]) => `${k} ${n}`).join(', ')}`);
    }
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Command line.

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
    const list = values.clients.split(',').map((s) => s.trim()).filter(Boolean);
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
    process.stdout.write(BENCH_USAGE + '\n');
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
  if (parsed.json) process.stdout.write(JSON.stringify(report) + '\n');
  else process.stdout.write(formatReport(report) + '\n');
  return report.ok ? 0 : 1;
}

export const benchCommand = {
  name: 'bench',
  summary: 'compare uvfetch with undici, node:http and fetch (and wrk) on loopback',
  usage: BENCH_USAGE,
  run: benchMain,
};

// ---------------------------------------------------------------------------------------------
// Entry point of the forked client processes.

if (process.argv.includes(CHILD_FLAG) && typeof process.send === 'function') {
  runChild();
}
