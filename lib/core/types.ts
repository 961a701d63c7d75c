// Public data types every layer may use (pure: types only).

/** Durations are milliseconds. A timeout of 0 disables that timeout. */
export interface TimeoutOptions {
  /** Resolving plus TCP connect. Default 10 000. */
  connect?: number;
  /** TLS handshake (after the TCP connect). Default 10 000. */
  tls?: number;
  /** From the moment the request is written until the response head is complete. Default 30 000. */
  headers?: number;
  /** Longest silence between response body bytes. Default 30 000. */
  body?: number;
  /** The whole request, queueing included. Default: none. */
  total?: number;
}

export interface LimitOptions {
  /** Largest response head in bytes. Default 65 536. */
  maxHeaderSize?: number;
  /** Most response header fields. Default 200. */
  maxHeaderCount?: number;
  /** Largest buffered response body in bytes, after decoding (request(); stream() is unbounded). Default 64 MiB. */
  maxBodySize?: number;
  /** Send Accept-Encoding and decode gzip, deflate, br (and zstd where Node has it). Default true. */
  decompress?: boolean;
  /** Past the first MiB, decoded bytes may be at most this many times the encoded ones (else
   * ERR_DECOMPRESSION_BOMB). Default 100; 0 = no ratio limit. */
  maxDecompressionRatio?: number;
}

/** One address a resolver found. */
export interface DnsAddress {
  /** An IPv4 or IPv6 address (no brackets). */
  address: string;
  /** 4 or 6 (the address itself decides; a wrong family is ignored). */
  family?: 4 | 6;
  /** How long this answer may be cached, in **milliseconds** (clamped by minTtl/maxTtl). Default: `dns.ttl`. */
  ttl?: number;
}

/**
 * A resolver of your own: called once per real lookup (the cache coalesces concurrent requests
 * and serves hits natively). Throw (or reject) to fail; an error whose `code` is `ENOTFOUND`,
 * `ENODATA` or `ERR_DNS_NOT_FOUND` becomes ERR_DNS_NOT_FOUND, `EAI_AGAIN`, `ETIMEOUT`,
 * `ESERVFAIL`, `ECONNREFUSED` or `ERR_DNS_TEMPORARY` becomes ERR_DNS_TEMPORARY, anything else ERR_DNS.
 */
export type DnsLookupFunction = (hostname: string, family: 0 | 4 | 6) => Promise<readonly DnsAddress[]> | readonly DnsAddress[];

export interface DnsOptions {
  /** How long an answer is cached when the resolver gives no TTL (ms). Default 10 000. */
  ttl?: number;
  /** Lower bound of every positive TTL (ms). Default 0. */
  minTtl?: number;
  /** Upper bound of every positive TTL (ms). Default: none. */
  maxTtl?: number;
  /** How long a failed lookup is cached, with its error code (ms). Default 1 000; 0 = not cached. */
  negativeTtl?: number;
  /** Serve an expired answer this long after its TTL while one background lookup refreshes it (ms). Default 0 (off). */
  staleTtl?: number;
  /** Most cached names (LRU beyond). Default 1 000. */
  maxEntries?: number;
  /** Most resolver lookups in flight at once; the rest wait in order. Default 256; 0 = no limit. */
  maxInFlight?: number;
  /** Addresses used: 4 (IPv4 only), 6 (IPv6 only) or 0 (both; default). */
  family?: 0 | 4 | 6;
  /** Happy Eyeballs: start a connection to the other address family after this long (ms). Default 250; 0 = one address at a time. */
  happyEyeballsDelay?: number;
  /** `'system'` (default): getaddrinfo (hosts file, nsswitch). `'records'`: DNS A/AAAA queries with their TTLs (node:dns Resolver). */
  resolver?: 'system' | 'records';
  /** With `resolver: 'records'`: the DNS servers (`'1.2.3.4'`, `'1.2.3.4:5353'`, `'[::1]:53'`). Default: the system's. */
  servers?: readonly string[];
  /** Your own resolver (instead of `resolver`). */
  lookup?: DnsLookupFunction;
  /** Static answers, like curl's --resolve: `{ 'example.com': ['127.0.0.1'], 'example.com:8443': '::1' }`. A `host:port` key wins over a `host` one. */
  overrides?: Readonly<Record<string, string | readonly string[]>>;
}

/** `session.stats().dns`. Every name lookup is one of hits, staleHits, negativeHits, misses or static. */
export interface DnsStats {
  /** Names looked up through the cache (by new connections and dns.lookup()). */
  queries: number;
  /** Answered by a fresh cached entry. */
  hits: number;
  /** Answered by an expired entry within staleTtl (a refresh was started). */
  staleHits: number;
  /** Answered by a cached failure. */
  negativeHits: number;
  /** Had to wait for the resolver. */
  misses: number;
  /** Misses that joined a lookup already in flight for the same name. */
  coalesced: number;
  /** IP literals and overrides (the resolver is never asked). */
  static: number;
  /** Real resolver lookups (misses that started one, plus background refreshes). */
  lookups: number;
  /** Resolver lookups that failed. */
  errors: number;
  /** Entries dropped by the maxEntries bound. */
  evictions: number;
  /** Resolver lookups in flight now. */
  inFlight: number;
  /** Lookups waiting for a maxInFlight slot. */
  queued: number;
  /** Cached names (answers and failures). */
  entries: number;
}

export type HeadersInit = Record<string, string | number | readonly string[] | undefined> | Iterable<readonly [string, string]>;

export type BodyInit = string | Uint8Array | ArrayBuffer | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>;

/**
 * Phase durations of one request in milliseconds (microsecond precision), like curl's -w timings.
 * Measured natively, and only when someone asked (a tracing subscriber, or `timings: true`).
 */
export interface Timings {
  /** Submitted → handed to a connection (waiting for a free or new socket). */
  queued: number;
  /** Name resolution for the connection this request opened (0 when reused, or an IP literal). */
  dns: number;
  /** TCP connect of the connection this request opened (0 when reused). */
  connect: number;
  /** TLS handshake of the connection this request opened (0 when reused, or plain http). */
  tls: number;
  /** Handed to the connection → first response byte. */
  ttfb: number;
  /** Handed to the connection → complete response head. */
  headers: number;
  /** Submitted → the event the timings travel with (head, completion or error). */
  total: number;
}
