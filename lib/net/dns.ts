// DNS options and the JS side of delegated resolution. The cache itself (TTLs, coalescing,
// negative entries, stale-while-revalidate, LRU, overrides, IP literals) is native; JS is only
// asked once per real lookup when `dns.lookup` or `dns.resolver: 'records'` is set, and answers
// with engine.dnsAnswer().
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { type ErrorCode, invalidOption } from '../core/errors.js';
import { intIn, MAX_TIMER } from '../core/options.js';
import type { NativeDnsOptions, NativeEngine } from '../native/binding.js';
import { indexOf } from '../native/errors.js';
import type { DnsAddress, DnsLookupFunction, DnsOptions } from '../core/types.js';

const DNS_KEYS = new Set([
  'ttl',
  'minTtl',
  'maxTtl',
  'negativeTtl',
  'staleTtl',
  'maxEntries',
  'maxInFlight',
  'family',
  'happyEyeballsDelay',
  'resolver',
  'servers',
  'lookup',
  'overrides',
]);
const MAX_MS = Number.MAX_SAFE_INTEGER;

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA', 'EAI_NONAME', 'EAI_NODATA', 'ERR_DNS_NOT_FOUND']);
const TEMPORARY = new Set(['EAI_AGAIN', 'ETIMEOUT', 'ETIMEDOUT', 'ESERVFAIL', 'ECONNREFUSED', 'ERR_DNS_TEMPORARY']);

/** An optional integer: undefined leaves the core's default. */
function int(v: unknown, name: string, min: number, max: number): number | undefined {
  return v === undefined ? undefined : intIn(v, name, min, max);
}

/** `example.com`, `example.com:8080`, `[::1]:8080`: the host part, or undefined if malformed. */
function overrideHost(key: string): string | undefined {
  if (key.startsWith('[')) {
    const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(key);
    if (m === null || (m[2] !== undefined && Number(m[2]) > 65535)) return undefined;
    return m[1];
  }
  const m = /^([^:\s/]+)(?::(\d{1,5}))?$/.exec(key);
  if (m === null || (m[2] !== undefined && Number(m[2]) > 65535)) return undefined;
  return m[1];
}

export interface ValidatedDns {
  native: NativeDnsOptions;
  /** Set when lookups are delegated to JS. */
  lookup: DnsLookupFunction | undefined;
}

/** Validates `options.dns` (ERR_INVALID_OPTION naming the field). */
export function dnsOptions(d: DnsOptions | undefined): ValidatedDns {
  if (d === undefined) return { native: {}, lookup: undefined };
  if (d === null || typeof d !== 'object') throw invalidOption('dns', 'expected an object');
  for (const k of Object.keys(d)) if (!DNS_KEYS.has(k)) throw invalidOption(`dns.${k}`, 'unknown option');
  const n: NativeDnsOptions = {
    ttl: int(d.ttl, 'dns.ttl', 0, MAX_MS),
    minTtl: int(d.minTtl, 'dns.minTtl', 0, MAX_MS),
    maxTtl: int(d.maxTtl, 'dns.maxTtl', 0, MAX_MS),
    negativeTtl: int(d.negativeTtl, 'dns.negativeTtl', 0, MAX_MS),
    staleTtl: int(d.staleTtl, 'dns.staleTtl', 0, MAX_MS),
    maxEntries: int(d.maxEntries, 'dns.maxEntries', 0, 10_000_000),
    maxInFlight: int(d.maxInFlight, 'dns.maxInFlight', 0, 1_000_000),
    happyEyeballsDelay: int(d.happyEyeballsDelay, 'dns.happyEyeballsDelay', 0, MAX_TIMER),
  };
  if (n.minTtl !== undefined && n.maxTtl !== undefined && n.minTtl > n.maxTtl) {
    throw invalidOption('dns.minTtl', 'must not exceed dns.maxTtl');
  }
  if (d.family !== undefined) {
    if (d.family !== 0 && d.family !== 4 && d.family !== 6) throw invalidOption('dns.family', 'expected 0, 4 or 6');
    n.family = d.family;
  }
  if (d.overrides !== undefined) {
    if (d.overrides === null || typeof d.overrides !== 'object') throw invalidOption('dns.overrides', 'expected an object');
    const list: Array<[string, string[]]> = [];
    for (const [key, v] of Object.entries(d.overrides)) {
      if (overrideHost(key) === undefined) throw invalidOption('dns.overrides', `bad key ${JSON.stringify(key)} (expected "host" or "host:port")`);
      const addrs = typeof v === 'string' ? [v] : v;
      if (!Array.isArray(addrs) || addrs.length === 0) throw invalidOption('dns.overrides', `${key}: expected an address or a non-empty array of addresses`);
      const clean: string[] = [];
      for (const a of addrs as unknown[]) {
        const s = typeof a === 'string' && a.startsWith('[') && a.endsWith(']') ? a.slice(1, -1) : a;
        if (typeof s !== 'string' || isIP(s) === 0) throw invalidOption('dns.overrides', `${key}: ${String(a)} is not an IP address`);
        clean.push(s);
      }
      list.push([key, clean]);
    }
    n.overrides = list;
  }
  let lookup: DnsLookupFunction | undefined;
  if (d.lookup !== undefined) {
    if (typeof d.lookup !== 'function') throw invalidOption('dns.lookup', 'expected a function');
    if (d.resolver !== undefined) throw invalidOption('dns.resolver', 'not together with dns.lookup');
    lookup = d.lookup;
  }
  if (d.resolver !== undefined && d.resolver !== 'system' && d.resolver !== 'records') {
    throw invalidOption('dns.resolver', "expected 'system' or 'records'");
  }
  if (d.servers !== undefined) {
    if (d.resolver !== 'records') throw invalidOption('dns.servers', "only with dns.resolver: 'records'");
    if (!Array.isArray(d.servers) || d.servers.length === 0 || d.servers.some((s) => typeof s !== 'string')) {
      throw invalidOption('dns.servers', 'expected a non-empty array of strings');
    }
  }
  if (d.resolver === 'records') lookup = recordsLookup(d.servers);
  if (lookup !== undefined) n.external = true;
  return { native: n, lookup };
}

/** `'records'`: A/AAAA queries through a node:dns Resolver, record TTLs honoured. */
function recordsLookup(servers: readonly string[] | undefined): DnsLookupFunction {
  const r = new Resolver();
  if (servers !== undefined) {
    try {
      r.setServers(servers as string[]);
    } catch (cause) {
      throw invalidOption('dns.servers', String((cause as Error).message ?? cause));
    }
  }
  return async (host, family) => {
    const [a4, a6] = await Promise.allSettled([
      family === 6 ? Promise.resolve([]) : r.resolve4(host, { ttl: true }),
      family === 4 ? Promise.resolve([]) : r.resolve6(host, { ttl: true }),
    ]);
    const out: DnsAddress[] = [];
    // IPv6 first: the order Happy Eyeballs prefers (the engine interleaves families anyway).
    if (a6.status === 'fulfilled') for (const x of a6.value) out.push({ address: x.address, family: 6, ttl: x.ttl * 1000 });
    if (a4.status === 'fulfilled') for (const x of a4.value) out.push({ address: x.address, family: 4, ttl: x.ttl * 1000 });
    if (out.length > 0) return out;
    const errs = [a4, a6].filter((x): x is PromiseRejectedResult => x.status === 'rejected').map((x) => x.reason as { code?: string });
    // A temporary failure of either query wins over "no such record" of the other.
    throw errs.find((e) => TEMPORARY.has(String(e?.code))) ?? errs[0] ?? Object.assign(new Error('no addresses'), { code: 'ENODATA' });
  };
}

function dnsErrorIndex(err: unknown): number {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  const c: ErrorCode = NOT_FOUND.has(code) ? 'ERR_DNS_NOT_FOUND' : TEMPORARY.has(code) ? 'ERR_DNS_TEMPORARY' : 'ERR_DNS';
  return indexOf(c);
}

/**
 * Runs one delegated lookup and answers the engine. Bounded by `timeoutMs` (the session's connect
 * timeout; 0 = none): a lookup that never settles must not hold the name's cache slot forever.
 */
export function runLookup(engine: NativeEngine, lookup: DnsLookupFunction, lookupId: number, host: string, family: 0 | 4 | 6, timeoutMs: number): void {
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const answer = (addrs: string[] | null, ttl: number, errorIndex: number) => {
    if (done) return;
    done = true;
    if (timer !== undefined) clearTimeout(timer);
    engine.dnsAnswer(lookupId, addrs, ttl, errorIndex);
  };
  if (timeoutMs > 0) {
    timer = setTimeout(() => answer(null, -1, indexOf('ERR_DNS_TEMPORARY')), timeoutMs);
    timer.unref();
  }
  let p: Promise<readonly DnsAddress[]>;
  try {
    p = Promise.resolve(lookup(host, family));
  } catch (err) {
    p = Promise.reject(err);
  }
  p.then(
    (list) => {
      if (!Array.isArray(list)) {
        answer(null, -1, indexOf('ERR_DNS'));
        return;
      }
      const addrs: string[] = [];
      let ttl = -1;
      for (const x of list as readonly DnsAddress[]) {
        const f = x === null || typeof x !== 'object' || typeof x.address !== 'string' ? 0 : isIP(x.address);
        if (f === 0 || (family !== 0 && f !== family)) continue;
        addrs.push(x.address);
        if (typeof x.ttl === 'number' && Number.isFinite(x.ttl) && x.ttl >= 0) ttl = ttl < 0 ? x.ttl : Math.min(ttl, x.ttl);
      }
      if (addrs.length === 0) answer(null, -1, indexOf('ERR_DNS_NOT_FOUND'));
      else answer(addrs, Math.floor(ttl), 0);
    },
    (err) => answer(null, -1, dnsErrorIndex(err)),
  );
}
