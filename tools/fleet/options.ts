// Command-line options shared by `uvfetch fetch` and `uvfetch worker`: how the Session is made
// (connections, timeouts, retries, proxy, TLS, DNS overrides) and how bodies are recorded.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { SessionOptions } from 'uvfetch';
import type { TlsOptions } from 'uvfetch';
import type { BodyPolicy } from 'uvfetch/fleet';

/** parseArgs option specs common to both commands. */
export const SESSION_ARG_SPECS = {
  concurrency: { type: 'string', short: 'c' },
  connections: { type: 'string' },
  'per-host': { type: 'string' },
  'rps-per-host': { type: 'string' },
  retry: { type: 'string' },
  timeout: { type: 'string' },
  proxy: { type: 'string' },
  'user-agent': { type: 'string' },
  impersonate: { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-insecure': { type: 'boolean' },
  'tls-min-version': { type: 'string' },
  'tls-max-version': { type: 'string' },
  'tls-ciphers': { type: 'string' },
  resolve: { type: 'string', multiple: true },
  'session-options': { type: 'string' },
  bodies: { type: 'string' },
  'inline-max': { type: 'string' },
} as const;

export const SESSION_ARGS_USAGE = `  -c, --concurrency N     requests in flight at once (default 64)
  --connections N         most connections of the session (default: --concurrency)
  --per-host N            most requests in flight to one origin
  --rps-per-host R        requests per second to one origin (token bucket, burst = one second's worth)
  --retry N               retry a failed request up to N times (idempotent methods; connection
                          errors and 429/502/503/504; exponential backoff, Retry-After honoured)
  --timeout MS            total time allowed for one request, queueing included (default 30000)
  --proxy URL             http://[user:pass@]host:port, socks5://..., or 'env'
  --user-agent S          User-Agent header ('' sends none)
  --impersonate NAME      present as a browser: its TLS hello, default headers and their order
                          (chrome, firefox, safari, or a versioned name; see \`uvfetch fingerprint\`)
  --tls-ca FILE           trust anchors (PEM) instead of the default store
  --tls-cert FILE         client certificate chain (PEM)      --tls-key FILE   its private key (PEM)
  --tls-insecure          do not verify the server's certificate (never in production)
  --tls-min-version V     TLSv1.2 or TLSv1.3                  --tls-max-version V
  --tls-ciphers LIST      TLS <= 1.2 cipher list (OpenSSL names, ':'-separated)
  --resolve HOST[:PORT]:ADDR  answer HOST with ADDR (like curl --resolve; repeatable)
  --session-options FILE  a JSON file of Session options (see the README), merged under the flags
  --bodies DIR            write each body to a file in DIR (named in the record's bodyFile)
  --inline-max N          put bodies of at most N bytes inline in the record (default 65536)`;

export type SessionArgValues = {
  [K in keyof typeof SESSION_ARG_SPECS]?: (typeof SESSION_ARG_SPECS)[K] extends { multiple: true }
    ? string[]
    : (typeof SESSION_ARG_SPECS)[K] extends { type: 'boolean' }
      ? boolean
      : string;
};

export class FleetUsageError extends Error {}

export function intArg(name: string, v: string | undefined, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return def;
  const s = v.replace(/_/g, '');
  if (!/^\d+$/.test(s)) throw new FleetUsageError(`--${name} must be an integer, got '${v}'`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new FleetUsageError(`--${name} must be between ${min} and ${max}, got ${v}`);
  return n;
}

export function numArg(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 1e9) throw new FleetUsageError(`--${name} must be a positive number, got '${v}'`);
  return n;
}

function readFileArg(name: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new FleetUsageError(`--${name}: cannot read ${file}: ${(e as Error).message}`);
  }
}

/** `--resolve host:addr`, `host:port:addr`, `host:[v6]` → a dns.overrides entry. */
function resolveEntry(s: string): [string, string] {
  let addr: string;
  let key: string;
  const v6 = /^(.*):\[([0-9a-fA-F:.]+)\]$/.exec(s);
  if (v6 !== null) {
    key = v6[1]!;
    addr = v6[2]!;
  } else {
    const i = s.lastIndexOf(':');
    if (i <= 0) throw new FleetUsageError(`--resolve expects HOST[:PORT]:ADDR, got '${s}'`);
    key = s.slice(0, i);
    addr = s.slice(i + 1);
  }
  if (isIP(addr) === 0) throw new FleetUsageError(`--resolve: '${addr}' is not an IP address`);
  return [key, addr];
}

export interface SessionSetup {
  concurrency: number;
  perHost: number | undefined;
  rpsPerHost: number | undefined;
  sessionOptions: SessionOptions;
  /** Per-request total timeout (ms, 0 = none). */
  timeout: number;
  bodies: BodyPolicy;
}

/**
 * Builds the Session options from the flags. `localRateLimit`: apply --rps-per-host in the
 * Session's own limiter (one machine); the fleet enforces it in Redis instead.
 */
export function sessionSetup(v: SessionArgValues, localRateLimit: boolean): SessionSetup {
  const concurrency = intArg('concurrency', v.concurrency, 64, 1, 100_000);
  const perHost = v['per-host'] === undefined ? undefined : intArg('per-host', v['per-host'], 1, 1, 100_000);
  const rpsPerHost = numArg('rps-per-host', v['rps-per-host']);
  const retry = intArg('retry', v.retry, 0, 0, 100);
  const timeout = intArg('timeout', v.timeout, 30_000, 0, 2 ** 31 - 1);
  let base: SessionOptions = {};
  if (v['session-options'] !== undefined) {
    const text = readFileArg('session-options', v['session-options']);
    try {
      base = JSON.parse(text) as SessionOptions;
    } catch (e) {
      throw new FleetUsageError(`--session-options: ${v['session-options']} is not valid JSON: ${(e as Error).message}`);
    }
    if (base === null || typeof base !== 'object' || Array.isArray(base)) throw new FleetUsageError('--session-options: expected a JSON object');
  }
  const o: SessionOptions = { ...base };
  const connections = v.connections === undefined ? undefined : intArg('connections', v.connections, concurrency, 1, 100_000);
  if (connections !== undefined) o.connections = connections;
  else if (o.connections === undefined) o.connections = Math.max(concurrency, 1);
  if (o.connectionsPerHost === undefined && perHost !== undefined) o.connectionsPerHost = perHost;
  if (retry > 0) o.retry = { attempts: retry + 1 };
  if (localRateLimit && rpsPerHost !== undefined)
    o.rateLimit = { ...(o.rateLimit ?? {}), perHost: { rps: rpsPerHost, burst: Math.max(1, Math.ceil(rpsPerHost)) } };
  if (v.proxy !== undefined) o.proxy = v.proxy;
  if (v['user-agent'] !== undefined) o.userAgent = v['user-agent'];
  if (v.impersonate !== undefined) o.impersonate = v.impersonate;
  const tls: TlsOptions = { ...((o.tls as TlsOptions | undefined) ?? {}) };
  let tlsSet = o.tls !== undefined;
  const setTls = <K extends keyof TlsOptions>(k: K, val: TlsOptions[K]): void => {
    tls[k] = val;
    tlsSet = true;
  };
  if (v['tls-ca'] !== undefined) setTls('ca', readFileArg('tls-ca', v['tls-ca']));
  if (v['tls-cert'] !== undefined) setTls('cert', readFileArg('tls-cert', v['tls-cert']));
  if (v['tls-key'] !== undefined) setTls('key', readFileArg('tls-key', v['tls-key']));
  if (v['tls-insecure'] === true) setTls('rejectUnauthorized', false);
  if (v['tls-min-version'] !== undefined) setTls('minVersion', v['tls-min-version'] as TlsOptions['minVersion']);
  if (v['tls-max-version'] !== undefined) setTls('maxVersion', v['tls-max-version'] as TlsOptions['maxVersion']);
  if (v['tls-ciphers'] !== undefined) setTls('ciphers', v['tls-ciphers']);
  if (tlsSet) o.tls = tls;
  if (v.resolve !== undefined && v.resolve.length > 0) {
    const overrides: Record<string, string | readonly string[]> = { ...(o.dns?.overrides ?? {}) };
    for (const r of v.resolve) {
      const [k, a] = resolveEntry(r);
      overrides[k] = a;
    }
    o.dns = { ...(o.dns ?? {}), overrides };
  }
  const inlineMax = intArg('inline-max', v['inline-max'], 65_536, 0, 64 * 1024 * 1024);
  return { concurrency, perHost, rpsPerHost, sessionOptions: o, timeout, bodies: { inlineMax, bodiesDir: v.bodies } };
}
