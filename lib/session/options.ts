// Validation of Session and request options into the engine's form. Every check throws
// ERR_INVALID_OPTION naming the option; defaults come from lib/core/defaults.ts.
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { DEFAULT_TIMEOUTS, DEFAULTS, LIMITS } from '../core/defaults.js';
import { invalidOption } from '../core/errors.js';
import { boolOpt, checkKeys, intOpt, MAX_TIMER, objectOpt } from '../core/options.js';
import type { TimeoutOptions } from '../core/types.js';
import { VERSION } from '../core/version.js';
import { dnsOptions, type ValidatedDns } from '../net/dns.js';
import { autoConnections } from '../net/limits.js';
import { defaultEngineOptions, type NativeEngineOptions } from '../native/binding.js';
import { OVERRIDE_SLOTS, Override } from '../native/wire.js';
import type { RequestOptions, SessionOptions } from './types.js';

/**
 * Benchmarks only (tools/bench-hooks.ts): as a Session option key, makes every connection a
 * socket-less stand-in answering with the given response. The symbol is registered (Symbol.for),
 * so the tools need not import this module to name it.
 */
export const kMemoryResponse: unique symbol = Symbol.for('uvfetch.bench.memoryResponse') as never;

/**
 * Tests only (test/helpers/io-threads-setup.ts): a number under this registered symbol on
 * globalThis is the default of `ioThreads`, so the suite can run once more on I/O threads.
 */
const kDefaultIoThreads = Symbol.for('uvfetch.test.defaultIoThreads');

// Redirects, retries, rate limits, cookies are built-in interceptors (interceptors.ts).
/** Request options handled by the built-in interceptors (the native submit never sees them). */
export const REQUEST_POLICY_KEYS = ['redirect', 'maxRedirects', 'redirectStripHeaders', 'allowDowngrade', 'retry'] as const;
/** Session options handled by the built-in interceptors. */
export const SESSION_POLICY_KEYS = [...REQUEST_POLICY_KEYS, 'rateLimit', 'cookies'] as const;

const SESSION_KEYS: ReadonlySet<string> = new Set([
  'connections',
  'fdReserve',
  'connectionsPerHost',
  'ioThreads',
  'keepAliveTimeout',
  'timeout',
  'noDelay',
  'tcpKeepAlive',
  'localAddress',
  'userAgent',
  'maxHeaderSize',
  'maxHeaderCount',
  'maxBodySize',
  'decompress',
  'maxDecompressionRatio',
  'tls',
  'impersonate',
  'dns',
  'proxy',
  'http2',
  'h2',
  'interceptors',
  ...SESSION_POLICY_KEYS,
]);
const REQUEST_KEYS: ReadonlySet<string> = new Set([
  'method',
  'headers',
  'body',
  'signal',
  'timeout',
  'maxHeaderSize',
  'maxHeaderCount',
  'maxBodySize',
  'timings',
  'tls',
  'decompress',
  'maxDecompressionRatio',
  'proxy',
  ...REQUEST_POLICY_KEYS,
]);
const TIMEOUT_KEYS: ReadonlySet<string> = new Set(['connect', 'tls', 'headers', 'body', 'total']);

export type Timeouts = Required<TimeoutOptions>;

/** `timeout` over `def` (each field replaces the default's). */
export function timeouts(t: TimeoutOptions | undefined, name: string, def: Timeouts): Timeouts {
  if (t === undefined) return def;
  objectOpt(t, name);
  checkKeys(t, TIMEOUT_KEYS, `${name}.`);
  return {
    connect: intOpt(t.connect, `${name}.connect`, def.connect, 0, MAX_TIMER),
    tls: intOpt(t.tls, `${name}.tls`, def.tls, 0, MAX_TIMER),
    headers: intOpt(t.headers, `${name}.headers`, def.headers, 0, MAX_TIMER),
    body: intOpt(t.body, `${name}.body`, def.body, 0, MAX_TIMER),
    total: intOpt(t.total, `${name}.total`, def.total, 0, MAX_TIMER),
  };
}

/** maxDecompressionRatio: a number ≥ 1, or 0 for no limit. */
export function ratioOpt(v: unknown, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (v > 0 && v < 1)) {
    throw invalidOption('maxDecompressionRatio', 'expected a number ≥ 1, or 0 for no limit');
  }
  return v;
}

const lim = (name: keyof typeof LIMITS): readonly [number, number] => LIMITS[name];

/** The Session options the engine takes, validated. */
export interface ValidatedSession {
  engine: NativeEngineOptions;
  timeouts: Timeouts;
  dns: ValidatedDns;
}

/** Validates the engine-level Session options (TLS, proxy and policies are validated by their owners). */
export function sessionOptions(options: SessionOptions): ValidatedSession {
  objectOpt(options, 'options');
  checkKeys(options, SESSION_KEYS);
  const t = timeouts(options.timeout, 'timeout', DEFAULT_TIMEOUTS);
  if (options.fdReserve !== undefined && options.connections !== 'auto') {
    throw invalidOption('fdReserve', "only meaningful with connections: 'auto'");
  }
  const o = defaultEngineOptions();
  o.connections =
    options.connections === 'auto'
      ? autoConnections(options.fdReserve === undefined ? undefined : intOpt(options.fdReserve, 'fdReserve', 0, ...lim('fdReserve')))
      : intOpt(options.connections, 'connections', DEFAULTS.connections, ...lim('connections'));
  o.connectionsPerHost = intOpt(options.connectionsPerHost, 'connectionsPerHost', DEFAULTS.connectionsPerHost, ...lim('connectionsPerHost'));
  const ioDefault = (globalThis as Record<symbol, unknown>)[kDefaultIoThreads];
  o.ioThreads = intOpt(options.ioThreads, 'ioThreads', typeof ioDefault === 'number' ? ioDefault : 0, 0, 64);
  o.keepAliveTimeout = intOpt(options.keepAliveTimeout, 'keepAliveTimeout', DEFAULTS.keepAliveTimeout, 0, MAX_TIMER);
  o.connectTimeout = t.connect;
  o.tlsTimeout = t.tls;
  o.headersTimeout = t.headers;
  o.bodyTimeout = t.body;
  o.totalTimeout = t.total;
  o.maxHeaderSize = intOpt(options.maxHeaderSize, 'maxHeaderSize', DEFAULTS.maxHeaderSize, ...lim('maxHeaderSize'));
  o.maxHeaderCount = intOpt(options.maxHeaderCount, 'maxHeaderCount', DEFAULTS.maxHeaderCount, ...lim('maxHeaderCount'));
  o.maxBodySize = intOpt(options.maxBodySize, 'maxBodySize', DEFAULTS.maxBodySize, ...lim('maxBodySize'));
  o.decompress = boolOpt(options.decompress, 'decompress', DEFAULTS.decompress);
  o.maxDecompressionRatio = ratioOpt(options.maxDecompressionRatio, DEFAULTS.maxDecompressionRatio);
  o.noDelay = boolOpt(options.noDelay, 'noDelay', DEFAULTS.noDelay);
  if (options.tcpKeepAlive !== undefined && options.tcpKeepAlive !== false) {
    o.tcpKeepAlive = intOpt(options.tcpKeepAlive, 'tcpKeepAlive', DEFAULTS.tcpKeepAlive, 0, MAX_TIMER);
  }
  const memoryResponse = (options as Record<symbol, unknown>)[kMemoryResponse];
  if (typeof memoryResponse === 'string') o.memoryResponse = memoryResponse;
  if (options.localAddress !== undefined) {
    if (typeof options.localAddress !== 'string' || isIP(options.localAddress) === 0) {
      throw invalidOption('localAddress', 'expected an IPv4 or IPv6 address');
    }
    o.localAddress = options.localAddress;
  }
  const ua = options.userAgent ?? `uvfetch/${VERSION}`;
  if (typeof ua !== 'string' || /[^\t\x20-\x7e\x80-\xff]/.test(ua)) {
    throw invalidOption('userAgent', 'expected a string of visible Latin-1 characters');
  }
  if (ua !== '') o.userAgent = ua;
  const dns = dnsOptions(options.dns);
  o.dns = dns.native;
  return { engine: o, timeouts: t, dns };
}

/** The request options object itself: an object with known keys. */
export function checkRequestOptions(options: RequestOptions): void {
  objectOpt(options, 'options');
  checkKeys(options, REQUEST_KEYS);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw invalidOption('signal', 'expected an AbortSignal');
}

/** Whether a request overrides any of the engine's per-request limits or timeouts. */
export function hasOverrides(o: RequestOptions): boolean {
  return (
    o.timeout !== undefined ||
    o.maxHeaderCount !== undefined ||
    o.maxHeaderSize !== undefined ||
    o.maxBodySize !== undefined ||
    o.decompress !== undefined ||
    o.maxDecompressionRatio !== undefined
  );
}

/** A request's overrides in the engine's form (lib/native/wire.ts Override slots; NaN = the session's). */
export function requestOverrides(o: RequestOptions, session: Timeouts): Float64Array {
  const t = timeouts(o.timeout, 'timeout', session);
  const v = new Float64Array(OVERRIDE_SLOTS);
  v[Override.ConnectTimeout] = t.connect;
  v[Override.HeadersTimeout] = t.headers;
  v[Override.BodyTimeout] = t.body;
  v[Override.TotalTimeout] = t.total;
  v[Override.TlsTimeout] = t.tls;
  v[Override.MaxHeaderSize] = o.maxHeaderSize === undefined ? NaN : intOpt(o.maxHeaderSize, 'maxHeaderSize', 0, ...lim('maxHeaderSize'));
  v[Override.MaxHeaderCount] = o.maxHeaderCount === undefined ? NaN : intOpt(o.maxHeaderCount, 'maxHeaderCount', 0, ...lim('maxHeaderCount'));
  v[Override.MaxBodySize] = o.maxBodySize === undefined ? NaN : intOpt(o.maxBodySize, 'maxBodySize', 0, ...lim('maxBodySize'));
  v[Override.Decompress] = o.decompress === undefined ? NaN : Number(boolOpt(o.decompress, 'decompress', DEFAULTS.decompress));
  v[Override.MaxDecompressionRatio] = o.maxDecompressionRatio === undefined ? NaN : ratioOpt(o.maxDecompressionRatio, DEFAULTS.maxDecompressionRatio);
  return v;
}

/** IP literals (brackets dropped) as given; names in their ASCII (punycode) form, '' if invalid. */
export function normalizeHost(h: string): string {
  const s = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  return isIP(s) !== 0 ? s : domainToASCII(s);
}
