// The one place the native addon is loaded (prebuilds/ first, then build/Release via node-gyp-build).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { DnsStats } from './types.js';

const require = createRequire(import.meta.url);
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const load = require('node-gyp-build') as (dir: string) => unknown;

/** Record types of the event batch (native/binding/engine_wrap.cc). */
export const enum Ev {
  Complete = 1,
  Head = 2,
  Data = 3,
  End = 4,
  Error = 5,
  Drain = 6,
  Closed = 7,
  Timings = 8,
  TlsInfo = 9,
  TlsForget = 10,
  TlsRef = 11,
  DnsLookup = 12,
  DnsResult = 13,
  // Raw sockets (lib/raw-socket.ts); id = raw socket id.
  RawOpen = 20,
  RawData = 21,
  RawEnd = 22,
  RawError = 23,
  RawDrain = 24,
  RawClosed = 25,
  RawFinished = 26,
}

/** Submit flags (native/binding/engine_wrap.cc). */
export const enum SubmitFlag {
  StreamResponse = 1,
  StreamedBody = 2,
  HasBody = 4,
  Timings = 8,
}

export interface NativeEngineOptions {
  connections: number;
  connectionsPerHost: number;
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
  /** Benchmarks only (bench-hooks.ts): socket-less connections answering with this response. */
  memoryResponse?: string;
  dns?: NativeDnsOptions;
}

/** Validated DNS options (lib/dns.ts); absent fields take the core's defaults. */
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
  retries: number;
  fdExhaustedWaits: number;
  bytesIn: number;
  bytesOut: number;
  tlsHandshakes: number;
  tlsResumed: number;
  tlsFailures: number;
  rawSockets: number;
  rawWaiting: number;
  dns: DnsStats;
}

/** rawConnect() options (validated in lib/raw-socket.ts). */
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
    proxy?: [number, string, number, string, string] | null,
  ): number;
  abort(id: number): boolean;
  pause(id: number): void;
  resume(id: number): void;
  writeBody(id: number, chunk: Uint8Array): boolean;
  endBody(id: number): void;
  close(): void;
  destroy(): void;
  stats(): NativeStats;
  originStats(): Array<{ origin: string; open: number; idle: number; queued: number }>;
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
  NativeEngine: new (
    options: NativeEngineOptions,
    onEvents: (batch: Buffer, bigs: Buffer[] | undefined) => void,
  ) => NativeEngine;
  NativeCaStore: new (pems: string[]) => NativeCaStore;
  NativeTlsContext: new (options: NativeTlsOptions, ca: NativeCaStore | null) => NativeTlsContext;
  fingerprintHello(bytes: Uint8Array): { ja3: string; ja3Hash: string; ja4: string; ja4r: string } | null;
  errorCodes: string[];
  errorMessages: string[];
  napiVersion: number;
  getFdLimit(): { soft: number; hard: number };
  setFdSoftLimit(n: number): number;
  openFds(): number;
}

// UVFETCH_ADDON=/path/to/uvfetch.node loads a specific build (e.g. a sanitizer-instrumented one).
export const binding = (process.env.UVFETCH_ADDON ? require(process.env.UVFETCH_ADDON) : load(root)) as NativeBinding;
