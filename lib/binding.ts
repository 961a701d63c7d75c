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
  DnsLookup = 9,
  DnsResult = 10,
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
  headersTimeout: number;
  bodyTimeout: number;
  totalTimeout: number;
  maxHeaderSize: number;
  maxHeaderCount: number;
  maxBodySize: number;
  noDelay: boolean;
  tcpKeepAlive: number;
  localAddress?: string;
  userAgent?: string;
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
  dns: DnsStats;
}

export interface NativeEngine {
  submit(
    id: number,
    host: string,
    port: number,
    tls: boolean,
    method: string,
    target: string,
    headers: string[] | null,
    body: Uint8Array | string | null,
    flags: number,
    streamedLength: number,
    overrides: Float64Array | null,
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
}

export interface NativeBinding {
  NativeEngine: new (
    options: NativeEngineOptions,
    onEvents: (batch: Buffer, bigs: Buffer[] | undefined) => void,
  ) => NativeEngine;
  errorCodes: string[];
  errorMessages: string[];
  napiVersion: number;
  getFdLimit(): { soft: number; hard: number };
  setFdSoftLimit(n: number): number;
  openFds(): number;
}

// UVFETCH_ADDON=/path/to/uvfetch.node loads a specific build (e.g. a sanitizer-instrumented one).
export const binding = (process.env.UVFETCH_ADDON ? require(process.env.UVFETCH_ADDON) : load(root)) as NativeBinding;
