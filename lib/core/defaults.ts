// Defaults of the engine options, defined once. The Session validates user options over these;
// every NativeEngine is constructed with all fields set from here (the binding's own fallbacks in
// native/binding/engine_wrap.cc are never reached from TS).

/** Timeouts (ms; 0 = none). */
export const DEFAULT_TIMEOUTS = Object.freeze({ connect: 10_000, tls: 10_000, headers: 30_000, body: 30_000, total: 0 });

export const DEFAULTS = Object.freeze({
  connections: 256,
  connectionsPerHost: 64,
  keepAliveTimeout: 15_000,
  maxHeaderSize: 64 * 1024,
  maxHeaderCount: 200,
  maxBodySize: 64 * 1024 * 1024,
  decompress: true,
  maxDecompressionRatio: 100,
  noDelay: true,
  /** TCP keep-alive probes: 0 = off. */
  tcpKeepAlive: 0,
});

/** Limits of the numeric options: [min, max]. */
export const LIMITS = Object.freeze({
  connections: [1, 1_000_000],
  connectionsPerHost: [1, 1_000_000],
  fdReserve: [0, 1_000_000],
  maxHeaderSize: [64, 2 ** 31 - 1],
  maxHeaderCount: [1, 1_000_000],
  maxBodySize: [0, Number.MAX_SAFE_INTEGER],
} as const);
