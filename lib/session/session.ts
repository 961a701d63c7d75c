// The Session: one native engine with its keyed keep-alive pool, and the public request API over
// it. The work is done by its parts: options.ts (validation), submit.ts (one native submit),
// dispatcher.ts (engine events → responses), interceptors.ts (the chain: the session's
// interceptors, then redirects, retries, rate limits, cookies), fetch-many.ts (bulk),
// raw-access.ts (the seam raw sockets use).
import { invalidOption, UvfetchError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { limits } from '../net/limits.js';
import { type ProxyConfig, proxyConfig } from '../net/proxy.js';
import { binding, type NativeEngine } from '../native/binding.js';
import { acquireLoopDelay, releaseLoopDelay } from '../observability/metrics.js';
import { type RedirectPolicy, redirectPolicy } from '../policies/redirect.js';
import { retryPolicy } from '../policies/retry.js';
import { impersonation, withUserAgent } from '../profiles/profiles.js';
import type { H2Profile } from '../profiles/types.js';
import { TlsProfile } from '../tls/profile.js';
import { Dispatcher, type Pending, type ResolvedAddress } from './dispatcher.js';
import { http2Options } from './h2-options.js';
import { type FetchManyOptions, type FetchManyRequest, type FetchManyResult, fetchMany } from './fetch-many.js';
import { fetchImpl, type UvfetchRequestInit, type UvfetchResponse } from './fetch-types.js';
import { checkRequestOptions, normalizeHost, sessionOptions, type Timeouts } from './options.js';
import {
  type AnyResponse,
  buildChain,
  dispatch,
  followFrom,
  type Interceptor,
  type InterceptorContext,
  type InterceptedRequest,
  interceptedRequest,
  interceptorsOption,
  kTransport,
  policyChain,
  type SessionPolicies,
  sessionPolicies,
  settle,
  type Terminal,
} from './interceptors.js';
import { kRawAccess, type RawAccess } from './raw-access.js';
import type { Response, StreamResponse } from './response.js';
import { parseUrl, type SubmitContext, submitRequest } from './submit.js';
import type { RequestOptions, SessionOptions, SessionStats } from './types.js';

export { VERSION };
export type { ResolvedAddress };

/** `session.dns`: the session's DNS cache. */
export interface SessionDns {
  /**
   * Resolves `hostname` through the session's cache (hits, coalescing, negative entries,
   * overrides, IP literals: exactly as a new connection would), rotated like the answers
   * connections get. Rejects with ERR_DNS_NOT_FOUND / ERR_DNS_TEMPORARY / ERR_DNS.
   */
  lookup(hostname: string, family?: 0 | 4 | 6): Promise<ResolvedAddress[]>;
  /** Forgets cached answers (and failures) of one host, or of every host. Overrides stay. */
  clear(hostname?: string): void;
}

const STREAM: InterceptorContext = Object.freeze({ stream: true });
const BUFFER: InterceptorContext = Object.freeze({ stream: false });

/**
 * A long-lived client: one native engine with its keyed keep-alive pool. Create one per process
 * (or per worker) and reuse it; close() it when done.
 */
export class Session {
  readonly #engine: NativeEngine;
  readonly #dispatcher: Dispatcher;
  // The native side holds this callback weakly (strongly only while requests are in flight or a
  // close is pending), so the Session must keep it alive itself.
  readonly #onEvents: (batch: Buffer, bigs: Buffer[] | undefined) => void;
  readonly #timeouts: Timeouts;
  readonly #tlsOption: TlsProfile | undefined;
  #tlsDefault: TlsProfile | undefined;
  // The interceptor chain (interceptors.ts): the session's own (#user), then redirects, retries,
  // rate limits, cookies, a transport. #slow: every request needs the chain; #submit: what a
  // native submit needs of this session; #terminal: the chain's end (one submit, no following).
  readonly #policies: SessionPolicies;
  readonly #user: Interceptor[];
  readonly #transport: Interceptor | undefined;
  #chain: Interceptor[];
  #slow: boolean;
  readonly #submit: SubmitContext;
  readonly #terminal: Terminal;
  #closed = false;
  #closePromise: Promise<void> | undefined;
  #loopDelay: ReturnType<typeof acquireLoopDelay> | undefined;
  /** The session's DNS cache: lookup(host) through it, clear(host?). */
  readonly dns: SessionDns;

  constructor(options: SessionOptions = {}) {
    const v = sessionOptions(options);
    // Compiled now, so a bad profile fails here rather than at the first https request.
    let defaultHeaders: readonly string[] | null = null;
    let impersonate: string | undefined;
    let profileH2: H2Profile | undefined;
    let profileH2Order: string[] | undefined;
    let profileH2Only: string[] | undefined;
    if (options.impersonate !== undefined) {
      if (options.tls instanceof TlsProfile) {
        throw invalidOption('tls', "with impersonate, give TLS options (applied over the profile's), not a TlsProfile");
      }
      const imp = impersonation(options.impersonate, options.tls);
      this.#tlsOption = imp.tls;
      defaultHeaders = imp.headers;
      if (typeof options.userAgent === 'string') defaultHeaders = withUserAgent(defaultHeaders, options.userAgent);
      impersonate = imp.profile.name;
      profileH2 = imp.profile.h2;
      // On HTTP/2 the browser sends its headers in the profile's `headers` order (lower-cased).
      profileH2Order = imp.profile.headers.map(([n]) => n);
      // Fields the browser sends on HTTP/2 only (not in its HTTP/1.1 order, e.g. Firefox's te).
      const h1 = new Set(imp.profile.http1.headerOrder.map((n) => n.toLowerCase()));
      profileH2Only = imp.profile.headers.filter(([n]) => !h1.has(n.toLowerCase())).flat();
    } else {
      this.#tlsOption = options.tls === undefined ? undefined : TlsProfile.from(options.tls);
    }
    const h2 = http2Options(options.http2, options.h2, profileH2, profileH2Order, profileH2Only);
    v.engine.http2 = h2.native;
    const proxy: ProxyConfig | null = proxyConfig(options.proxy, 'proxy') ?? null;
    const t = v.timeouts;
    this.#timeouts = t;
    const d = new Dispatcher();
    d.impersonate = impersonate;
    d.lookup = v.dns.lookup;
    d.lookupTimeout = t.connect;
    this.#dispatcher = d;
    this.#onEvents = (batch, bigs) => d.onEvents(batch, bigs);
    this.#engine = new binding.NativeEngine(v.engine, this.#onEvents);
    d.engine = this.#engine;
    const policies = sessionPolicies(options);
    this.#policies = policies;
    this.#user = interceptorsOption(options.interceptors);
    const transport = (options as { [kTransport]?: unknown })[kTransport];
    if (transport !== undefined && typeof transport !== 'function') throw invalidOption('transport', 'expected a function');
    this.#transport = transport as Interceptor | undefined;
    this.#chain = buildChain(this.#user, policies, t.total, this.#transport);
    this.#slow = policies.slow || this.#user.length > 0 || this.#transport !== undefined;
    this.#terminal = (req, s) => {
      const { url, ...opts } = req;
      return submitRequest(this.#submit, url, opts as RequestOptions, s, false);
    };
    const redirect: RedirectPolicy | undefined = policies.redirect.mode === 'manual' ? undefined : policies.redirect;
    this.#submit = {
      engine: this.#engine,
      dispatcher: d,
      timeouts: t,
      proxy,
      redirect,
      redirectBase: policies.redirect,
      closed: () => this.#closed,
      tls: () => this.#tls(),
      http2: h2.offer,
      defaultHeaders,
    };
    const self = new WeakRef(this); // the Dispatcher must not keep the Session alive
    d.onRedirect = (p, res) => {
      const session = self.deref();
      return session === undefined ? undefined : session.#follow(p, res);
    };
    this.dns = {
      lookup: (hostname, family = 0) => this.#dnsLookup(hostname, family),
      clear: (hostname) => {
        if (hostname !== undefined && typeof hostname !== 'string') throw invalidOption('hostname', 'expected a string');
        this.#engine.dnsClear(hostname === undefined ? undefined : normalizeHost(hostname));
      },
    };
  }

  #tls(): TlsProfile {
    return this.#tlsOption ?? (this.#tlsDefault ??= new TlsProfile());
  }

  /** @internal For lib/raw/raw-socket.ts: raw sockets share this session's engine (DNS cache, fds). */
  [kRawAccess](): RawAccess {
    return {
      engine: this.#engine,
      events: this.#dispatcher,
      closed: () => this.#closed,
      tls: () => this.#tls(),
      connectTimeout: this.#timeouts.connect,
      tlsTimeout: this.#timeouts.tls,
    };
  }

  #dnsLookup(hostname: string, family: 0 | 4 | 6): Promise<ResolvedAddress[]> {
    if (typeof hostname !== 'string') return Promise.reject(invalidOption('hostname', 'expected a string'));
    if (family !== 0 && family !== 4 && family !== 6) return Promise.reject(invalidOption('family', 'expected 0, 4 or 6'));
    const host = normalizeHost(hostname);
    if (host === '') return Promise.reject(new UvfetchError('ERR_INVALID_URL', `invalid host name: ${hostname}`));
    if (this.#closed) return Promise.reject(new UvfetchError('ERR_SESSION_CLOSED', 'session is closed'));
    const d = this.#dispatcher;
    const id = d.nextQuery;
    d.nextQuery = id >= 0xffffffff ? 1 : id + 1;
    return new Promise<ResolvedAddress[]>((resolve, reject) => {
      d.dnsQueries.set(id, { host, resolve, reject });
      if (!this.#engine.dnsQuery(id, host, family)) {
        d.dnsQueries.delete(id);
        reject(new UvfetchError('ERR_SESSION_CLOSED', 'session is closed'));
      }
    });
  }

  /**
   * Appends an interceptor (innermost of the session's own, outside the built-in redirect,
   * retry, rate-limit and cookie interceptors). Applies to requests made from now on. Returns this.
   */
  use(interceptor: Interceptor): this {
    if (typeof interceptor !== 'function') throw invalidOption('interceptor', 'expected a function');
    this.#user.push(interceptor);
    this.#chain = buildChain(this.#user, this.#policies, this.#timeouts.total, this.#transport);
    this.#slow = true;
    return this;
  }

  /** Sends a request and buffers the whole response body (bounded by maxBodySize). */
  request(url: string | URL, options?: RequestOptions): Promise<Response> {
    if (this.#slow || (options != null && options.retry !== undefined)) return this.#run(url, options, false) as Promise<Response>;
    return submitRequest(this.#submit, url, options, false, true) as Promise<Response>;
  }

  /** Like request(), but resolves at the response head; `body` is a Readable with backpressure. */
  stream(url: string | URL, options?: RequestOptions): Promise<StreamResponse> {
    if (this.#slow || (options != null && options.retry !== undefined)) return this.#run(url, options, true) as Promise<StreamResponse>;
    return submitRequest(this.#submit, url, options, true, true) as Promise<StreamResponse>;
  }

  /** A request through the interceptor chain; input errors still throw. */
  #run(input: string | URL, options: RequestOptions | undefined, stream: boolean): Promise<AnyResponse> {
    if (this.#closed) return Promise.reject(new UvfetchError('ERR_SESSION_CLOSED', 'session is closed'));
    const url = parseUrl(input);
    if (options !== undefined) {
      checkRequestOptions(options);
      // The policy options are checked now, so that a bad one throws here as on the plain path.
      redirectPolicy(options, this.#policies.redirect);
      if (options.retry !== undefined) retryPolicy(options.retry, this.#policies.retry);
    }
    const req = interceptedRequest(url, options);
    return dispatch(this.#chain, 0, req, stream ? STREAM : BUFFER, this.#terminal).then((res) => settle(res, stream));
  }

  /** A plain-path request got a 3xx to follow: the chain below the redirect interceptor takes over from that response. */
  #follow(p: Pending, res: AnyResponse): Promise<AnyResponse> {
    try {
      const req: InterceptedRequest = interceptedRequest(p.input ?? new URL(p.url), p.options);
      const below = policyChain(this.#policies, this.#timeouts.total, this.#transport).slice(1);
      const ctx = p.stream ? STREAM : BUFFER;
      return followFrom(p.redirect!, req, res, (r) => dispatch(below, 0, r, ctx, this.#terminal), this.#timeouts.total, p.start);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** WHATWG fetch() through this session (lib/fetch): a global Response; uvfetch options in `init`. */
  fetch(input: string | URL | Request, init?: UvfetchRequestInit): Promise<UvfetchResponse> {
    const impl = fetchImpl();
    if (impl === undefined) return Promise.reject(new UvfetchError('ERR_INTERNAL', "fetch() is not loaded: import Session from 'uvfetch'"));
    return impl(this, input, init);
  }

  /**
   * Bounded bulk fetching: pulls `input` lazily (never more than `concurrency` ahead of the
   * results taken), and yields exactly one `{ index, request, response }` or
   * `{ index, request, error }` per item — one failure never stops the batch. See FetchManyOptions.
   */
  fetchMany(
    input: Iterable<FetchManyRequest> | AsyncIterable<FetchManyRequest>,
    options: FetchManyOptions & { stream: true },
  ): AsyncIterableIterator<FetchManyResult<StreamResponse>>;
  fetchMany(
    input: Iterable<FetchManyRequest> | AsyncIterable<FetchManyRequest>,
    options: FetchManyOptions & { stream?: false },
  ): AsyncIterableIterator<FetchManyResult<Response>>;
  fetchMany(
    input: Iterable<FetchManyRequest> | AsyncIterable<FetchManyRequest>,
    options: FetchManyOptions,
  ): AsyncIterableIterator<FetchManyResult<AnyResponse>> {
    return fetchMany(this, input, options);
  }

  /**
   * Live counters; cheap enough to poll every 100 ms. The first call starts this thread's
   * event-loop delay monitor (stopped again by close()).
   */
  stats(options: { perOrigin?: boolean } = {}): SessionStats {
    const s = this.#engine.stats();
    const d = this.#dispatcher;
    if (this.#loopDelay === undefined && !this.#closed) this.#loopDelay = acquireLoopDelay();
    const h = this.#loopDelay;
    const ms = (ns: number) => (Number.isFinite(ns) ? ns / 1e6 : 0);
    const bs = d.byStatus;
    const limiter = this.#policies.limiter;
    return {
      requests: {
        started: s.started,
        completed: s.completed,
        failed: s.failed,
        inFlight: s.inFlight,
        queued: s.queued,
        retried: s.retries,
        byStatus: { '1xx': bs[1]!, '2xx': bs[2]!, '3xx': bs[3]!, '4xx': bs[4]!, '5xx': bs[5]! },
        perSecond: { '1s': d.rate.perSecond(1), '10s': d.rate.perSecond(10) },
      },
      connections: {
        open: s.open,
        idle: s.idle,
        active: Math.max(0, s.open - s.idle - s.connecting),
        connecting: s.connecting,
        created: s.created,
        reused: s.reused,
        reuseRatio: s.created + s.reused === 0 ? 0 : s.reused / (s.created + s.reused),
        evicted: s.evicted,
        http2: s.h2Connections,
        streams: s.streams,
        ...(options.perOrigin ? { perOrigin: this.#engine.originStats() } : {}),
      },
      eventLoop: h === undefined ? { p50: 0, p99: 0, max: 0 } : { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) },
      bytes: { in: s.bytesIn, out: s.bytesOut },
      fd: { limit: limits.getFdLimit().soft, open: limits.openFds(), exhaustedWaits: s.fdExhaustedWaits },
      tls: { handshakes: s.tlsHandshakes, resumed: s.tlsResumed, failures: s.tlsFailures },
      raw: { open: s.rawSockets, waiting: s.rawWaiting },
      dns: s.dns,
      ...(limiter !== undefined ? { rateLimit: limiter.stats() } : {}),
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Graceful close: new requests reject with ERR_SESSION_CLOSED, requests already made finish,
   * then every socket and handle is closed. Resolves when all are closed. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    this.#closed = true;
    this.#policies.limiter?.clear(() => new UvfetchError('ERR_SESSION_CLOSED', 'session is closed'));
    if (this.#loopDelay !== undefined) {
      this.#loopDelay = undefined;
      releaseLoopDelay();
    }
    this.#closePromise = new Promise<void>((resolve) => {
      this.#dispatcher.closeResolve = resolve;
    });
    this.#engine.close();
    return this.#closePromise;
  }

  /** Abortive close: every pending request rejects with ERR_SESSION_CLOSED, sockets are reset. */
  destroy(): Promise<void> {
    const p = this.close();
    this.#engine.destroy();
    return p;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
