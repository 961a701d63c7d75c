// `uvfetch bench`: scenarios, configuration and report types, and small helpers shared by the
// orchestrator (../bench.ts) and the client processes (child.ts).

// ---------------------------------------------------------------------------------------------
// Public types.

import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { TlsServerKind } from '../tls-loopback.js';

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
  {
    name: 'close-c50',
    description: '13 B body, new connection per request, concurrency 50',
    bodySize: 13,
    keepAlive: false,
    chunked: false,
    concurrency: 50,
    tls: false,
  },
  {
    name: 'chunked-c50',
    description: '13 B chunked body, keep-alive, concurrency 50',
    bodySize: 13,
    keepAlive: true,
    chunked: true,
    concurrency: 50,
    tls: false,
  },
  { name: 'https-c50', description: 'HTTPS, 13 B body, keep-alive, concurrency 50', bodySize: 13, keepAlive: true, chunked: false, concurrency: 50, tls: true },
  {
    name: 'https-close-c50',
    description: 'HTTPS, 13 B body, new TLS connection (full handshake) per request, concurrency 50',
    bodySize: 13,
    keepAlive: false,
    chunked: false,
    concurrency: 50,
    tls: true,
  },
  // fetch() implementations (uvfetch's, Node's global, undici 7's) and uvfetch's request(); not in 'all'.
  {
    name: 'fetch',
    description: 'fetch() implementations, 13 B body, keep-alive, concurrency 50',
    bodySize: 13,
    keepAlive: true,
    chunked: false,
    concurrency: 50,
    tls: false,
  },
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

export const CHILD_FLAG = '--uvfetch-bench-child';
export const ELD_RESOLUTION_MS = 10;
export const PIN_ENV = 'UVFETCH_BENCH_PIN';

export class BenchUsageError extends Error {}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
export const round = (x: number, digits = 3): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};
export const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(0)} ms`;
}

export function errorCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.length > 0) return code;
  if (e instanceof Error) return e.name;
  return 'UNKNOWN';
}

/** Path of the compiled client-process module, child.js (children must run JS, even when tests load the .ts). */
export function childScriptPath(): string {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.js')) return path.join(path.dirname(self), 'child.js');
  // Loaded from tools/bench/config.ts (e.g. by vitest): the compiled child in dist/tools/bench/.
  const compiled = path.resolve(path.dirname(self), '..', '..', 'dist', 'tools', 'bench', 'child.js');
  if (!existsSync(compiled)) throw new Error(`bench: ${compiled} not found; run \`npm run build:ts\` first`);
  return compiled;
}

/** undici, from the current project first, else next to uvfetch (a devDependency). */
export function findUndici(): { entry: string; version: string } | null {
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

export function findWrk(): { version: string } | null {
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if (r.error !== undefined) return null;
  const m = /wrk\s+(\S+)/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`);
  return { version: m ? m[1]! : 'unknown' };
}

export function hasTaskset(): boolean {
  if (process.platform !== 'linux') return false;
  const r = spawnSync('taskset', ['-V'], { stdio: 'ignore' });
  return r.status === 0;
}

/** CPUs this process may run on (Linux affinity via taskset), else 0..cores-1. */
export function allowedCpus(): number[] {
  const out: number[] = [];
  const r = spawnSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' });
  const m = r.status === 0 ? /:\s*([\d,-]+)\s*$/.exec(r.stdout.trim()) : null;
  if (m) {
    for (const part of m[1]!.split(',')) {
      const [a, b] = part.split('-').map(Number);
      if (b === undefined) out.push(a!);
      else for (let i = a!; i <= b; i++) out.push(i);
    }
  }
  return out.length > 0 ? out : Array.from({ length: os.availableParallelism() }, (_, i) => i);
}
