// The one place the native addon is loaded (node-gyp-build: build/Release when present, else the prebuild
// for this platform; UVFETCH_ADDON overrides), and the shapes of what the binding (native/binding/*.cc)
// exposes. The event wire: ./wire.ts.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_TIMEOUTS, DEFAULTS } from '../core/defaults.js';
import type { DnsStats } from '../core/types.js';

const require = createRequire(import.meta.url);
// lib/native/binding.ts and dist/native/binding.js: the package root is two levels up.
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const load = require('node-gyp-build') as (dir: string) => unknown;

export interface NativeEngineOptions {
  connections: number;
  connectionsPerHost: number;
  /** Native I/O threads running the engine (0: on this thread's loop). */
  ioThreads: number;
  keepAliveTimeout: number;
  connectTimeout: number;
  tlsTimeout: number;
  headersTimeout: number;
  bodyTimeout: number;
  totalTimeout: number;
  maxHeaderSize: number;
  maxHeaderCount: number;
  maxBodySize: number;
  decompress: boolean;
  maxDecompressionRatio: number;
  noDelay: boolean;
  tcpKeepAlive: number;
  localAddress?: string;
  userAgent?: string;
  /** Benchmarks only (tools/bench-hooks.ts): socket-less connections answering with this response. */
  memoryResponse?: string;
  dns?: NativeDnsOptions;
  http2?: NativeHttp2Options;
}

/** Validated HTTP/2 options (lib/session/h2-options.ts); absent fields take the core's defaults. */
export interface NativeHttp2Options {
  /** 0 off, 1 by ALPN, 2 also h2c by prior knowledge. */
  mode: 0 | 1 | 2;
  maxStreams?: number;
  settingsTimeout?: number;
  pingInterval?: number;
  /** Flat [id, value, id, value, ...], in order. */
  settings?: number[];
  connectionWindowIncrement?: number;
  /** Flat [streamId, dependsOn, weight, exclusive (0/1), ...]. */
  priorityFrames?: number[];
  /** [dependsOn, weight, exclusive (0/1)]; absent: no priority on HEADERS. */
  headersPriority?: [number, number, number];
  /** A permutation of 'masp' (:method, :authority, :scheme, :path). */
  pseudoOrder?: string;
  /** Lower-case header names in the order HTTP/2 requests send them (a browser profile's order). */
  headerOrder?: string[];
  /** Flat [name, value, ...]: sent on HTTP/2 when the request has no field of that name. */
  extraHeaders?: string[];
}

/** Validated DNS options (lib/net/dns.ts); absent fields take the core's defaults. */
export interface NativeDnsOptions {
  ttl?: number;
  minTtl?: number;
  maxTtl?: number;
  negativeTtl?: number;
  staleTtl?: number;
  maxEntries?: number;
  maxInFlight?: number;
  family?: number;
  happyEyeballsDelay?: number;
  /** Lookups are delivered as DnsLookup events and answered with dnsAnswer(). */
  external?: boolean;
  overrides?: Array<[string, string[]]>;
}

export interface NativeStats {
  started: number;
  completed: number;
  failed: number;
  inFlight: number;
  queued: number;
  open: number;
  idle: number;
  connecting: number;
  created: number;
  reused: number;
  evicted: number;
  retries: number;
  fdExhaustedWaits: number;
  bytesIn: number;
  bytesOut: number;
  tlsHandshakes: number;
  tlsResumed: number;
  tlsFailures: number;
  rawSockets: number;
  rawWaiting: number;
  h2Connections: number;
  streams: number;
  dns: DnsStats;
}

/** rawConnect() options (validated in lib/raw/raw-socket.ts). */
export interface NativeRawOptions {
  servername?: string;
  localAddress?: string;
  connectTimeout: number;
  tlsTimeout: number;
  noDelay: boolean;
  keepAlive: number;
}

/** A parsed set of trust anchors (native/binding/tls_wrap.cc). */
export interface NativeCaStore {
  count(): number;
}

/** One compiled, validated TLS profile (native/binding/tls_wrap.cc). */
export interface NativeTlsContext {
  id(): number;
  cachedSessions(): number;
}

export interface NativeTlsOptions {
  minVersion?: string;
  maxVersion?: string;
  ciphers?: string;
  ciphersuites?: string;
  groups?: string;
  sigalgs?: string;
  alpn?: string[];
  servername?: string;
  sni?: boolean;
  sessionTickets?: boolean;
  sessionCacheSize?: number;
  rejectUnauthorized?: boolean;
  checkHostname?: boolean;
  verifyDepth?: number;
  partialChain?: boolean;
  cert?: string;
  key?: string;
  passphrase?: string;
  grease?: boolean;
  statusRequest?: boolean;
  signedCertificateTimestamps?: boolean;
  encryptThenMac?: boolean;
  padding?: boolean;
  recordSizeLimit?: number;
  echGrease?: boolean;
  certCompression?: string[];
}

/** What the running OpenSSL can do for a TLS profile. */
export interface NativeTlsCapabilities {
  openssl: string;
  /** SSL_CTX_set1_cert_comp_preference exists (OpenSSL 3.2+). */
  certCompression: boolean;
  /** Algorithms it can decompress ('zlib', 'brotli', 'zstd'). */
  certCompressionAlgorithms: string[];
}

/** Every engine option at its default (lib/core/defaults.ts); callers override what they validated. */
export function defaultEngineOptions(): NativeEngineOptions {
  return {
    connections: DEFAULTS.connections,
    connectionsPerHost: DEFAULTS.connectionsPerHost,
    ioThreads: 0,
    keepAliveTimeout: DEFAULTS.keepAliveTimeout,
    connectTimeout: DEFAULT_TIMEOUTS.connect,
    tlsTimeout: DEFAULT_TIMEOUTS.tls,
    headersTimeout: DEFAULT_TIMEOUTS.headers,
    bodyTimeout: DEFAULT_TIMEOUTS.body,
    totalTimeout: DEFAULT_TIMEOUTS.total,
    maxHeaderSize: DEFAULTS.maxHeaderSize,
    maxHeaderCount: DEFAULTS.maxHeaderCount,
    maxBodySize: DEFAULTS.maxBodySize,
    decompress: DEFAULTS.decompress,
    maxDecompressionRatio: DEFAULTS.maxDecompressionRatio,
    noDelay: DEFAULTS.noDelay,
    tcpKeepAlive: DEFAULTS.tcpKeepAlive,
  };
}

export interface NativeEngine {
  submit(
    id: number,
    host: string,
    port: number,
    tls: NativeTlsContext | false,
    method: string,
    target: string,
    headers: string[] | null,
    body: Uint8Array | string | null,
    flags: number,
    streamedLength: number,
    overrides: Float64Array | null,
    proxy: [number, string, number, string, string] | null,
  ): number;
  abort(id: number): boolean;
  pause(id: number): void;
  resume(id: number): void;
  writeBody(id: number, chunk: Uint8Array): boolean;
  endBody(id: number): void;
  close(): void;
  destroy(): void;
  stats(): NativeStats;
  originStats(): Array<{ origin: string; open: number; idle: number; queued: number; streams: number; thread?: number }>; // thread: ioThreads ≥ 2
  lastError(): string;
  /** The answer to a DnsLookup event: addresses, or null with a DNS error index. ttlMs -1: none. */
  dnsAnswer(lookupId: number, addresses: string[] | null, ttlMs: number, errorIndex: number): void;
  /** Resolves through the cache; answered by a DnsResult event. False once closed. */
  dnsQuery(queryId: number, host: string, family: number): boolean;
  dnsClear(host?: string): void;
  /** Starts a raw socket: 0, or an error index (lastError()); then RawOpen or RawError, RawClosed. */
  rawConnect(id: number, host: string, port: number, tls: NativeTlsContext | null, options: NativeRawOptions): number;
  /** Bytes queued natively after this write (0: all in the kernel), or -1 (not writable). */
  rawWrite(id: number, chunk: Uint8Array): number;
  rawEnd(id: number): void;
  rawDestroy(id: number, abortive: boolean): void;
  rawPause(id: number): void;
  rawResume(id: number): void;
}

export interface NativeBinding {
  NativeEngine: new (options: NativeEngineOptions, onEvents: (batch: Buffer, bigs: Buffer[] | undefined) => void) => NativeEngine;
  NativeCaStore: new (pems: string[]) => NativeCaStore;
  NativeTlsContext: new (options: NativeTlsOptions, ca: NativeCaStore | null) => NativeTlsContext;
  fingerprintHello(bytes: Uint8Array): { ja3: string; ja3Hash: string; ja4: string; ja4r: string } | null;
  tlsCapabilities(): NativeTlsCapabilities;
  /** The Accept-Encoding the engine can decode: 'gzip, deflate, br' (+ ', zstd' where Node has zstd). */
  acceptEncoding(): string;
  /** Whether this Node exports nghttp2 (HTTP/2 works). */
  http2Available(): boolean;
  errorCodes: string[];
  errorMessages: string[];
  napiVersion: number;
  getFdLimit(): { soft: number; hard: number };
  setFdSoftLimit(n: number): number;
  openFds(): number;
}

// UVFETCH_ADDON=/path/to/uvfetch.node loads a specific build (e.g. a sanitizer-instrumented one).
export const binding = (process.env.UVFETCH_ADDON ? require(process.env.UVFETCH_ADDON) : load(root)) as NativeBinding;
