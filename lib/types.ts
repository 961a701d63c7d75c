import type { TlsOptions, TlsProfile } from './tls.js';
import type { CookieJar } from './cookies.js';
import type { RateLimitOptions, RateLimitStats } from './rate-limit.js';
import type { RetryOptions } from './retry.js';

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

/** Redirects and retries: per session, and per request (a request's fields override the session's). */
export interface PolicyOptions {
  /** 'follow' (default): follow 301/302/303/307/308; 'manual': return the 3xx; 'error': reject with ERR_REDIRECT. */
  redirect?: 'follow' | 'manual' | 'error';
  /** Redirects followed before ERR_TOO_MANY_REDIRECTS. Default 10. */
  maxRedirects?: number;
  /** Headers removed on a cross-origin hop, besides Authorization, Cookie, Proxy-Authorization
   * and Host (a request's list adds to the session's). */
  redirectStripHeaders?: readonly string[];
  /** Follow https → http redirects. Default false (ERR_REDIRECT). */
  allowDowngrade?: boolean;
  /** Retry failed attempts (see RetryOptions); `true` = the defaults, `false` = off. Default: off. */
  retry?: RetryOptions | boolean;
}

export interface SessionOptions extends LimitOptions, PolicyOptions {
  /** Token-bucket rate limits per origin and/or overall; requests wait before they are submitted. */
  rateLimit?: RateLimitOptions;
  /** A cookie jar for this session: `true` (a new in-memory tough-cookie CookieJar) or your own
   * CookieJar. Default: none (cookies are neither stored nor sent). */
  cookies?: boolean | CookieJar;
  /**
   * Connections across all origins (connecting, busy and idle). Default 256. `'auto'` derives it
   * from the file-descriptor soft limit less `fdReserve`.
   */
  connections?: number | 'auto';
  /** With `connections: 'auto'`: descriptors kept for everything else. Default max(64, 10% of the limit). */
  fdReserve?: number;
  /** Connections to one origin (scheme + host + port). Default 64. */
  connectionsPerHost?: number;
  /** How long an idle keep-alive connection is kept. Default 15 000. A server's Keep-Alive: timeout= lowers it. */
  keepAliveTimeout?: number;
  timeout?: TimeoutOptions;
  /** TCP_NODELAY. Default true. */
  noDelay?: boolean;
  /** TCP keep-alive probes after this much idle time (ms); 0/false = off (default). */
  tcpKeepAlive?: number | false;
  /** Local IP address to bind outgoing connections to. */
  localAddress?: string;
  /** Default User-Agent, sent when a request sets none. Default `uvfetch/<version>`; '' sends none. */
  userAgent?: string;
  /** TLS profile for https requests (a TlsProfile, or its options). Default: `new TlsProfile()`. */
  tls?: TlsProfile | TlsOptions;
  /** Proxy for every request: 'http://[user:pass@]host:port', 'socks5://[user:pass@]host:port',
   * 'env' (HTTP_PROXY / HTTPS_PROXY / NO_PROXY, read at construction) or null (direct; default). */
  proxy?: string | URL | 'env' | null;
  /** Name resolution: the session's DNS cache, resolver and address selection. */
  dns?: DnsOptions;
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

export type HeadersInit =
  | Record<string, string | number | readonly string[] | undefined>
  | Iterable<readonly [string, string]>;

export type BodyInit =
  | string
  | Uint8Array
  | ArrayBuffer
  | AsyncIterable<Uint8Array | string>
  | Iterable<Uint8Array | string>;

export interface RequestOptions extends LimitOptions, PolicyOptions {
  /** Default 'GET'. Standard methods are upper-cased (as fetch does); others are sent as given. */
  method?: string;
  headers?: HeadersInit;
  /** Buffer, string (UTF-8), Uint8Array, ArrayBuffer, or an (async) iterable of chunks (sent chunked
   * unless a content-length header is given). */
  body?: BodyInit | null;
  signal?: AbortSignal;
  timeout?: TimeoutOptions;
  /** Measure phase timings natively and expose them as `res.timings` (always on while tracing). */
  timings?: boolean;
  /** TLS profile for this request (overrides the session's). Pass the same TlsProfile (or options
   * object) to share connections: the pool key includes the profile. */
  tls?: TlsProfile | TlsOptions;
  /** Proxy for this request (overrides the session's; null = direct). Connections are pooled per proxy. */
  proxy?: string | URL | 'env' | null;
}

export interface SessionStats {
  requests: {
    started: number;
    completed: number;
    failed: number;
    inFlight: number;
    queued: number;
    /** Transparent retries after stale keep-alive sockets. */
    retried: number;
    /** Responses by status class. */
    byStatus: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number };
    /** Completed requests per second over the last 1 s and 10 s. */
    perSecond: { '1s': number; '10s': number };
  };
  connections: {
    open: number;
    idle: number;
    active: number;
    connecting: number;
    created: number;
    reused: number;
    /** reused / (created + reused): how often a request found a kept-alive socket. */
    reuseRatio: number;
    /** Per origin (with `stats({ perOrigin: true })`). */
    perOrigin?: Array<{ origin: string; open: number; idle: number; queued: number }>;
  };
  /** Event-loop delay of this thread (perf_hooks.monitorEventLoopDelay), ms, since the first stats() call. */
  eventLoop: { p50: number; p99: number; max: number };
  bytes: { in: number; out: number };
  fd: {
    /** Soft RLIMIT_NOFILE. */
    limit: number;
    /** Descriptors open in the whole process (null when none is free to count them with). */
    open: number | null;
    /** Requests and raw connects that had to wait for a descriptor (EMFILE/ENFILE treated as backpressure). */
    exhaustedWaits: number;
  };
  /** Raw sockets (`connect()` / `SocketPool` with this session). They count against `connections`. */
  raw: {
    /** Not yet closed: connecting, open, or waiting. */
    open: number;
    /** Of those, connects waiting for a slot under `connections` or for a free descriptor. */
    waiting: number;
  };
  tls: {
    /** Completed handshakes (full and resumed). */
    handshakes: number;
    /** Of those, resumed from the session cache. */
    resumed: number;
    /** Handshakes that failed (verification, alerts, timeouts, closed by the server). */
    failures: number;
  };
  dns: DnsStats;
  /** With `rateLimit`: waiting requests and the current rate of each origin. */
  rateLimit?: RateLimitStats;
}
