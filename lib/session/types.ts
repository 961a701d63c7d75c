// The public option and stats types of Session (they name types of every layer below it).
import type { BodyInit, DnsOptions, DnsStats, HeadersInit, LimitOptions, TimeoutOptions } from '../core/types.js';
import type { CookieJar } from '../policies/cookies.js';
import type { ImpersonateOption } from '../profiles/types.js';
import type { RateLimitOptions, RateLimitStats } from '../policies/rate-limit.js';
import type { RetryOptions } from '../policies/retry.js';
import type { TlsProfile } from '../tls/profile.js';
import type { TlsOptions } from '../tls/types.js';
import type { Response, StreamResponse } from './response.js';

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
  /** Interceptors every request goes through, first = outermost (see Interceptor; `session.use()` appends). */
  interceptors?: readonly Interceptor[];
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
  /**
   * Run the engine on this many native I/O threads, each with its own event loop, so a busy
   * JavaScript thread never stalls the network (README "I/O threads"). Default 0: the engine runs
   * on the JavaScript thread's loop. 1–64; origins are spread over the threads by their pool key.
   * With N > 1, `connections` and the DNS cache are per thread. Raw sockets stay on the JS thread.
   */
  ioThreads?: number;
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
  /**
   * Present as a browser: 'chrome', 'firefox', 'safari' (the newest shipped), a versioned name
   * ('chrome-149', …) or a profile object (`profiles.chrome.with({ … })`). Sets the TLS profile
   * (`tls`, when given, must then be options: they apply over the profile's), the default request
   * headers in the browser's order and spelling (a request's own headers replace values, keeping
   * that order), and `res.info.impersonate`. See README "Browser profiles".
   */
  impersonate?: ImpersonateOption;
  /** Proxy for every request: 'http://[user:pass@]host:port', 'socks5://[user:pass@]host:port',
   * 'env' (HTTP_PROXY / HTTPS_PROXY / NO_PROXY, read at construction) or null (direct; default). */
  proxy?: string | URL | 'env' | null;
  /** Name resolution: the session's DNS cache, resolver and address selection. */
  dns?: DnsOptions;
  /**
   * HTTP/2. `true` (default): https connections offer `h2` and `http/1.1` by ALPN (a TLS profile's
   * own `alpn` wins) and speak what the server picks; `false`: never h2; `'prior-knowledge'`: also
   * h2c to http: origins without asking (RFC 9113 §3.3; not through an HTTP proxy). On a Node whose
   * binary exports no nghttp2, the default quietly means HTTP/1.1 and an explicit `true` or
   * `'prior-knowledge'` throws ERR_HTTP2_UNAVAILABLE.
   */
  http2?: boolean | 'prior-knowledge';
  /** What HTTP/2 connections send first and how many streams they carry (see H2Options). */
  h2?: H2Options;
}

/** A SETTINGS entry: a name ('HEADER_TABLE_SIZE', 'SETTINGS_ENABLE_PUSH', any case) or id, and a value. */
export type H2SettingEntry = readonly [name: string | number, value: number];

/** HTTP/2 connection options. With `impersonate`, unset fields take the browser profile's values. */
export interface H2Options {
  /** The first SETTINGS frame, in exactly this order; settings not listed are not sent.
   * Default `[['ENABLE_PUSH', 0], ['INITIAL_WINDOW_SIZE', 4194304], ['MAX_HEADER_LIST_SIZE', 262144]]`. */
  settings?: readonly H2SettingEntry[];
  /** The WINDOW_UPDATE on stream 0 right after SETTINGS (0 = none). Default 16711681 (a 16 MiB window). */
  connectionWindowIncrement?: number;
  /** PRIORITY frames sent after the preface, before any request. Default none. */
  priorityFrames?: readonly { streamId: number; dependsOn: number; weight: number; exclusive?: boolean }[];
  /** The priority field on every HEADERS frame, or null for none (default). Weight 1..256. */
  headersPriority?: { dependsOn: number; weight: number; exclusive?: boolean } | null;
  /** Pseudo-header order. Default ['method', 'authority', 'scheme', 'path'] (':method' etc. also accepted). */
  pseudoHeaderOrder?: readonly string[];
  /** Streams one connection carries at once (the server's SETTINGS_MAX_CONCURRENT_STREAMS may lower it). Default 100. */
  maxStreamsPerConnection?: number;
  /** PING an open connection this often (ms); no ACK within max(interval, 1 s) closes it. Default 0 (off). */
  pingInterval?: number;
  /** Our SETTINGS must be acknowledged within this (ms), else the connection fails with ERR_HTTP2_PROTOCOL. Default 10 000. */
  settingsTimeout?: number;
}

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
    /**
     * Idle connections closed to make room under the `connections` limit for another origin (or a
     * raw socket). High against `created` means the limit is too low for the origins in flight.
     */
    evicted: number;
    /** Open HTTP/2 connections (of `open`). */
    http2: number;
    /** Requests in flight on HTTP/2 connections (streams). */
    streams: number;
    /** Per origin (with `stats({ perOrigin: true })`); `streams`: requests on its HTTP/2 connections;
     * `thread`: with `ioThreads` ≥ 2, the I/O thread (0-based) the origin runs on. */
    perOrigin?: Array<{ origin: string; open: number; idle: number; queued: number; streams: number; thread?: number }>;
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

/** A buffered or a streamed response. */
export type AnyResponse = Response | StreamResponse;

/**
 * A request as interceptors see it: the URL, method, headers (a global Headers) and body, and
 * every other request option as given. `next(req)` takes the same shape (change it, or pass a copy).
 */
export interface InterceptedRequest extends Omit<RequestOptions, 'method' | 'headers' | 'body'> {
  /** The absolute URL (with user:password when the caller gave them; see redactUrl()). */
  url: string;
  /** Upper-case for the standard methods. */
  method: string;
  headers: Headers;
  body: BodyInit | null | undefined;
}

/** The rest of the chain below an interceptor. */
export type InterceptorNext = (req: InterceptedRequest) => Promise<AnyResponse>;

/** What an interceptor knows about the call besides the request. */
export interface InterceptorContext {
  /** The caller asked for a streamed response (stream(), fetch(), UvfetchAgent): `next` resolves with
   * a StreamResponse, and what the interceptor returns is handed over as one (a Response is wrapped). */
  readonly stream: boolean;
}

/** `async (req, next, ctx) => response`: may change req, call next 0, 1 or many times, change or replace the response, or throw. */
export type Interceptor = (req: InterceptedRequest, next: InterceptorNext, ctx: InterceptorContext) => Promise<AnyResponse>;
