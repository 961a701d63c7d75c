import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import { domainToASCII } from 'node:url';
import { binding, Ev, SubmitFlag, type NativeEngine, type NativeEngineOptions } from './binding.js';
import { invalidOption, nativeError, UvfetchError, codeOf } from './errors.js';
import { autoConnections, limits } from './limits.js';
import { dnsOptions, runLookup } from './dns.js';
import { VERSION } from './version.js';
import { kMemoryResponse } from './bench-hooks.js';
import { acquireLoopDelay, RateWindow, releaseLoopDelay } from './metrics.js';
import { channels, decodeTimings, tracingActive, type Timings } from './tracing.js';
import { fetchMany, type FetchManyOptions, type FetchManyRequest, type FetchManyResult } from './fetch-many.js';
import { sessionFetch, type UvfetchRequestInit, type UvfetchResponse } from './fetch/fetch.js';
import { Response, StreamResponse, type ResponseInfo } from './response.js';
import { decodeTlsInfo, TlsProfile, type TlsInfo } from './tls.js';
import { basicAuth, proxyConfig, proxyFor, type NativeProxy, type ProxyConfig } from './proxy.js';
import { prepare, REQUEST_POLICY_KEYS, run, runFrom, SESSION_POLICY_KEYS, sessionPolicies, type PolicyContext } from './policies.js';
import { hasRedirectOptions, redirectPolicy, type RedirectPolicy } from './redirect.js';
import type {
  BodyInit,
  DnsLookupFunction,
  HeadersInit,
  RequestOptions,
  SessionOptions,
  SessionStats,
  TimeoutOptions,
} from './types.js';

export { VERSION };

const SESSION_KEYS = new Set([
  'connections',
  'fdReserve',
  'connectionsPerHost',
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
  'dns',
  'proxy',
]);
const REQUEST_KEYS = new Set(['method', 'headers', 'body', 'signal', 'timeout', 'maxHeaderSize', 'maxHeaderCount', 'maxBodySize', 'timings', 'tls', 'decompress', 'maxDecompressionRatio', 'proxy']);
// Redirects, retries, rate limits, cookies: policies.ts.
for (const k of SESSION_POLICY_KEYS) SESSION_KEYS.add(k);
for (const k of REQUEST_POLICY_KEYS) REQUEST_KEYS.add(k);
const TIMEOUT_KEYS = new Set(['connect', 'tls', 'headers', 'body', 'total']);
const STANDARD_METHODS: Record<string, string> = {
  get: 'GET',
  head: 'HEAD',
  post: 'POST',
  put: 'PUT',
  delete: 'DELETE',
  options: 'OPTIONS',
  patch: 'PATCH',
};
const MAX_TIMER = 2 ** 31 - 1;
const EMPTY = Buffer.alloc(0);
const noop = (): void => {};


function checkKeys(obj: object, allowed: Set<string>, prefix: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.has(k)) throw invalidOption(prefix + k, 'unknown option');
  }
}

function intOpt(v: unknown, name: string, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidOption(name, `expected an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

function boolOpt(v: unknown, name: string, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw invalidOption(name, 'expected a boolean');
  return v;
}

function ratioOpt(v: unknown, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalidOption('maxDecompressionRatio', 'expected a number ≥ 1, or 0 for no limit');
  if (v > 0 && v < 1) throw invalidOption('maxDecompressionRatio', 'expected a number ≥ 1, or 0 for no limit');
  return v;
}

function timeouts(t: TimeoutOptions | undefined, name: string, def: Required<TimeoutOptions>): Required<TimeoutOptions> {
  if (t === undefined) return def;
  if (t === null || typeof t !== 'object') throw invalidOption(name, 'expected an object');
  checkKeys(t, TIMEOUT_KEYS, `${name}.`);
  return {
    connect: intOpt(t.connect, `${name}.connect`, def.connect, 0, MAX_TIMER),
    tls: intOpt(t.tls, `${name}.tls`, def.tls, 0, MAX_TIMER),
    headers: intOpt(t.headers, `${name}.headers`, def.headers, 0, MAX_TIMER),
    body: intOpt(t.body, `${name}.body`, def.body, 0, MAX_TIMER),
    total: intOpt(t.total, `${name}.total`, def.total, 0, MAX_TIMER),
  };
}

interface Pending {
  id: number;
  url: string;
  method: string;
  stream: boolean;
  resolve: (r: Response | StreamResponse | PromiseLike<Response | StreamResponse>) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  // Stream mode, after the head. Held weakly: a body its consumer dropped unread is collected,
  // and the finalizer below aborts its request so the socket does not stay pinned.
  readable: WeakRef<Readable> | undefined;
  drain: (() => void) | undefined; // a streamed request body waits for this
  done: boolean;
  traced: boolean; // publish on the diagnostics channels
  timings: Timings | undefined;
  status: number;
  // Redirects on the plain path: a 3xx to follow hands these to policies.runFrom().
  input: URL | undefined; // only when it has credentials (p.url has them removed); else p.url is parsed again
  options: RequestOptions | undefined;
  redirect: RedirectPolicy | undefined; // undefined: hand every 3xx back as is
  start: number; // performance.now() at submit when a total timeout applies, else 0
}

/**
 * Receives the engine's event batches. Deliberately holds no reference to the Session, so a
 * Session dropped without close() can still be garbage-collected (its native side then closes).
 */
class Dispatcher {
  readonly pending = new Map<number, Pending>();
  readonly #abandoned = new FinalizationRegistry<number>((id) => this.#onAbandoned(id));
  readonly byStatus = new Float64Array(6); // index = status / 100
  readonly rate = new RateWindow();
  closeResolve: (() => void) | undefined;
  engine: NativeEngine | undefined;
  // TLS session info per live connection (by the engine's info id), and the info of the
  // connection that served the next Complete/Head record (a TlsRef record precedes it).
  readonly tlsInfo = new Map<number, TlsInfo>();
  refId = 0;
  refTls: TlsInfo | undefined = undefined;
  /** dns.lookup / dns.resolver 'records': the engine asks here once per real lookup. */
  lookup: DnsLookupFunction | undefined;
  lookupTimeout = 0;
  /** Continues a request whose 3xx is to be followed (undefined: the session is gone). */
  onRedirect: ((p: Pending, res: Response | StreamResponse) => Promise<Response | StreamResponse> | undefined) | undefined;
  /** Raw-socket events (types 20 and up), routed by lib/raw-socket.ts; set on first use. */
  raw: ((type: number, id: number, a: number, b: number, batch: Buffer, p1: number, n1: number, p2: number, n2: number, bigs: Buffer[] | undefined) => void) | undefined;
  readonly dnsQueries = new Map<number, { host: string; resolve: (a: ResolvedAddress[]) => void; reject: (e: unknown) => void }>();
  nextQuery = 1;

  onEvents(batch: Buffer, bigs: Buffer[] | undefined): void {
    const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    const end = batch.byteLength;
    let off = 0;
    while (off < end) {
      const type = view.getUint32(off, true);
      const id = view.getUint32(off + 4, true);
      const a = view.getUint32(off + 8, true);
      const b = view.getUint32(off + 12, true);
      const n1 = view.getUint32(off + 16, true);
      const n2 = view.getUint32(off + 20, true);
      const p1 = off + 24;
      const p2 = p1 + n1;
      off = p2 + n2;
      try {
        this.#one(type, id, a, b, batch, p1, n1, p2, n2, bigs);
      } catch (err) {
        // A user-visible failure in one event must not lose the rest of the batch.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  #one(type: number, id: number, a: number, b: number, batch: Buffer, p1: number, n1: number, p2: number, n2: number, bigs: Buffer[] | undefined): void {
    if (type >= Ev.RawOpen) {
      this.raw?.(type, id, a, b, batch, p1, n1, p2, n2, bigs);
      return;
    }
    switch (type) {
      case Ev.Closed: {
        const r = this.closeResolve;
        this.closeResolve = undefined;
        this.tlsInfo.clear();
        r?.();
        return;
      }
      case Ev.TlsInfo: {
        const info = decodeTlsInfo(a, batch.toString('latin1', p1, p1 + n1));
        this.tlsInfo.set(id, info);
        if (channels.tlsHandshake.hasSubscribers) {
          const origin = batch.toString('latin1', p1, p1 + n1).split('\0')[17] ?? '';
          channels.tlsHandshake.publish({ origin, duration: b / 1000, tls: info });
        }
        return;
      }
      case Ev.TlsForget:
        this.tlsInfo.delete(id);
        return;
      case Ev.TlsRef:
        this.refId = id;
        this.refTls = this.tlsInfo.get(a);
        return;
    }
    if (type === Ev.DnsLookup) {
      const host = batch.toString('latin1', p1, p1 + n1);
      if (this.lookup !== undefined && this.engine !== undefined) {
        runLookup(this.engine, this.lookup, a * 2 ** 32 + id, host, b as 0 | 4 | 6, this.lookupTimeout);
      }
      return;
    }
    if (type === Ev.DnsResult) {
      const q = this.dnsQueries.get(id);
      if (q === undefined) return;
      this.dnsQueries.delete(id);
      if (a !== 0) {
        q.reject(nativeError(a, q.host, 0));
        return;
      }
      const list = n1 === 0 ? [] : batch.toString('latin1', p1, p1 + n1).split(',');
      q.resolve(list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
      return;
    }
    const p = this.pending.get(id);
    if (p === undefined) return; // aborted meanwhile
    switch (type) {
      case Ev.Timings:
        p.timings = decodeTimings(new DataView(batch.buffer, batch.byteOffset + p1, n1), 0);
        return;
      case Ev.Complete: {
        this.#settle(p);
        const head = batch.toString('latin1', p1, p1 + n1);
        const body = b !== 0 ? bigs![b - 1]! : copyOut(batch, p2, n2);
        const res = new Response(a & 0xffff, p.url, head, infoOf(a), body);
        res.timings = p.timings;
        if (this.refId === id) res.tls = this.#takeTls();
        this.#count(res.status);
        if (p.traced) publishHead(p, res.status, res.info.reused, true);
        p.resolve(p.redirect !== undefined && isRedirect(res.status) ? (this.onRedirect?.(p, res) ?? res) : res);
        return;
      }
      case Ev.Head: {
        const head = batch.toString('latin1', p1, p1 + n1);
        const engine = this.engine!;
        const readable = new Readable({
          highWaterMark: 64 * 1024,
          read() {
            engine.resume(id);
          },
          destroy: (err, cb) => {
            if (!p.done) {
              // The consumer gave up early: the half-read socket is destroyed, never reused.
              this.#settle(p);
              engine.abort(id);
            }
            cb(err);
          },
        });
        p.readable = new WeakRef(readable);
        this.#abandoned.register(readable, id, p);
        const res = new StreamResponse(a & 0xffff, p.url, head, infoOf(a), readable);
        res.timings = p.timings;
        if (this.refId === id) res.tls = this.#takeTls();
        p.status = res.status;
        this.#count(res.status);
        if (p.traced) publishHead(p, res.status, res.info.reused, false);
        p.resolve(p.redirect !== undefined && isRedirect(res.status) ? (this.onRedirect?.(p, res) ?? res) : res);
        // The resolvers keep the settled promise, and through it the response, reachable: drop
        // them so an unread body can be collected (errors from here on go to the body).
        p.resolve = noop;
        p.reject = noop;
        return;
      }
      case Ev.Data: {
        const chunk = b !== 0 ? bigs![b - 1]! : copyOut(batch, p2, n2);
        const r = p.readable?.deref();
        if (r !== undefined && !r.push(chunk)) this.engine!.pause(id);
        return;
      }
      case Ev.End:
        this.#settle(p);
        if (p.traced && channels.requestEnd.hasSubscribers) {
          channels.requestEnd.publish({ id: p.id, method: p.method, url: p.url, status: p.status, timings: p.timings });
        }
        p.readable?.deref()?.push(null);
        return;
      case Ev.Error: {
        this.#settle(p);
        const detail = batch.toString('latin1', p1, p1 + n1);
        const err = nativeError(a, detail, b | 0, p.url, p.method);
        if (p.traced && channels.requestError.hasSubscribers) {
          channels.requestError.publish({ id: p.id, method: p.method, url: p.url, error: err, timings: p.timings });
        }
        if (p.readable !== undefined) {
          p.readable.deref()?.destroy(err);
        } else {
          p.reject(err);
        }
        return;
      }
      case Ev.Drain: {
        const d = p.drain;
        p.drain = undefined;
        d?.();
        return;
      }
    }
  }

  #takeTls(): TlsInfo | undefined {
    const t = this.refTls;
    this.refId = 0;
    this.refTls = undefined;
    return t;
  }

  #count(status: number): void {
    this.byStatus[Math.min(5, Math.floor(status / 100))]! += 1;
    this.rate.add();
  }

  /** A stream body was garbage-collected before its end: nobody will read it; free the socket. */
  #onAbandoned(id: number): void {
    const p = this.pending.get(id);
    if (p === undefined || p.done) return;
    this.abandoned++;
    this.#settle(p);
    this.engine?.abort(id); // the half-read socket is destroyed, never reused
  }

  abandoned = 0;

  #settle(p: Pending): void {
    p.done = true;
    if (p.readable !== undefined) this.#abandoned.unregister(p);
    this.pending.delete(p.id);
    if (p.onAbort !== undefined) p.signal!.removeEventListener('abort', p.onAbort);
    const d = p.drain;
    p.drain = undefined;
    d?.();
  }

  /** Settles a request from the JS side (abort, invalid streamed body). */
  fail(p: Pending, err: UvfetchError): void {
    if (p.done) return;
    this.#settle(p);
    if (p.traced && channels.requestError.hasSubscribers) {
      channels.requestError.publish({ id: p.id, method: p.method, url: p.url, error: err, timings: p.timings });
    }
    this.engine!.abort(p.id);
    if (p.readable !== undefined) {
      p.readable.deref()?.destroy(err);
    } else {
      p.reject(err);
    }
  }
}

/** Publishes what a response head tells: connection created or reused, DNS, headers (and end). */
function publishHead(p: Pending, status: number, reused: boolean, complete: boolean): void {
  const t = p.timings!;
  const origin = new URL(p.url).origin;
  if (reused) {
    if (channels.connectionReuse.hasSubscribers) channels.connectionReuse.publish({ origin });
  } else {
    if (t.dns > 0 && channels.dnsLookup.hasSubscribers) {
      channels.dnsLookup.publish({ hostname: new URL(p.url).hostname, duration: t.dns });
    }
    if (channels.connectionCreate.hasSubscribers) {
      channels.connectionCreate.publish({ origin, dns: t.dns, connect: t.connect });
    }
  }
  if (channels.requestHeaders.hasSubscribers) {
    channels.requestHeaders.publish({ id: p.id, method: p.method, url: p.url, status, reused, timings: t });
  }
  if (complete && channels.requestEnd.hasSubscribers) {
    channels.requestEnd.publish({ id: p.id, method: p.method, url: p.url, status, timings: t });
  }
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function infoOf(a: number): ResponseInfo {
  return { httpVersionMinor: (a >>> 16) & 0xff, reused: ((a >>> 24) & 1) === 1, attempts: a >>> 25 };
}

function copyOut(batch: Buffer, start: number, n: number): Buffer {
  if (n === 0) return EMPTY;
  const out = Buffer.allocUnsafe(n); // from Node's pool for small sizes: cheap, and frees the batch
  batch.copy(out, 0, start, start + n);
  return out;
}

function flattenHeaders(h: HeadersInit, out: string[]): void {
  if (typeof (h as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const pair of h as Iterable<readonly [string, string]>) {
      if (!Array.isArray(pair) || pair.length !== 2) throw invalidOption('headers', 'expected [name, value] pairs');
      out.push(String(pair[0]), String(pair[1]));
    }
    return;
  }
  if (typeof h !== 'object' || h === null) throw invalidOption('headers', 'expected an object or an iterable of pairs');
  for (const name of Object.keys(h)) {
    const v = (h as Record<string, unknown>)[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      for (const x of v) out.push(name, String(x));
    } else {
      out.push(name, String(v));
    }
  }
}

/** IP literals (brackets dropped) as given; names in their ASCII (punycode) form, '' if invalid. */
function normalizeHost(h: string): string {
  const s = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  return isIP(s) !== 0 ? s : domainToASCII(s);
}

function hasHeader(flat: string[], lower: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i]!.toLowerCase() === lower) return flat[i + 1];
  return undefined;
}

function isIterableBody(b: unknown): b is AsyncIterable<unknown> | Iterable<unknown> {
  return (
    typeof b === 'object' &&
    b !== null &&
    (typeof (b as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' ||
      typeof (b as Iterable<unknown>)[Symbol.iterator] === 'function')
  );
}

let nextId = 1;

/** An address from session.dns.lookup(). */
/** @internal Raw sockets (lib/raw-socket.ts) reach a session's engine and event routing here. */
export const kRawAccess = Symbol('uvfetch.rawAccess');

/** @internal Where raw-socket events go (the Dispatcher), and the TLS infos they refer to. */
export interface RawEvents {
  raw: ((type: number, id: number, a: number, b: number, batch: Buffer, p1: number, n1: number, p2: number, n2: number, bigs: Buffer[] | undefined) => void) | undefined;
  readonly tlsInfo: Map<number, TlsInfo>;
}

/** @internal What kRawAccess hands out: the engine, the event route, the session's defaults. */
export interface RawAccess {
  readonly engine: NativeEngine;
  /** The Dispatcher's hooks (it holds no Session, so neither does a raw socket). */
  readonly events: RawEvents;
  closed(): boolean;
  /** The session's TLS profile (its `tls` option, else a default profile). */
  tls(): TlsProfile;
  readonly connectTimeout: number;
  readonly tlsTimeout: number;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

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
  readonly #timeouts: Required<TimeoutOptions>;
  readonly #tlsOption: TlsProfile | undefined;
  #tlsDefault: TlsProfile | undefined;
  readonly #proxy: ProxyConfig | null;
  // Redirects, retries, rate limits, cookies (policies.ts). #slow: every request needs the JS
  // loop; #redirect: the session's redirect policy, undefined for 'manual'.
  readonly #policy: PolicyContext;
  readonly #slow: boolean;
  readonly #redirect: RedirectPolicy | undefined;
  #closed = false;
  #closePromise: Promise<void> | undefined;
  #loopDelay: ReturnType<typeof acquireLoopDelay> | undefined;
  /** The session's DNS cache: lookup(host) through it, clear(host?). */
  readonly dns: SessionDns;

  constructor(options: SessionOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'expected an object');
    checkKeys(options, SESSION_KEYS, '');
    const t = timeouts(options.timeout, 'timeout', { connect: 10_000, tls: 10_000, headers: 30_000, body: 30_000, total: 0 });
    // Compiled now, so a bad profile fails here rather than at the first https request.
    this.#tlsOption = options.tls === undefined ? undefined : TlsProfile.from(options.tls);
    this.#proxy = proxyConfig(options.proxy, 'proxy') ?? null;
    if (options.fdReserve !== undefined && options.connections !== 'auto') {
      throw invalidOption('fdReserve', "only meaningful with connections: 'auto'");
    }
    this.#timeouts = t;
    const o: NativeEngineOptions = {
      connections:
        options.connections === 'auto'
          ? autoConnections(options.fdReserve === undefined ? undefined : intOpt(options.fdReserve, 'fdReserve', 0, 0, 1_000_000))
          : intOpt(options.connections, 'connections', 256, 1, 1_000_000),
      connectionsPerHost: intOpt(options.connectionsPerHost, 'connectionsPerHost', 64, 1, 1_000_000),
      keepAliveTimeout: intOpt(options.keepAliveTimeout, 'keepAliveTimeout', 15_000, 0, MAX_TIMER),
      connectTimeout: t.connect,
      tlsTimeout: t.tls,
      headersTimeout: t.headers,
      bodyTimeout: t.body,
      totalTimeout: t.total,
      maxHeaderSize: intOpt(options.maxHeaderSize, 'maxHeaderSize', 64 * 1024, 64, 2 ** 31 - 1),
      maxHeaderCount: intOpt(options.maxHeaderCount, 'maxHeaderCount', 200, 1, 1_000_000),
      maxBodySize: intOpt(options.maxBodySize, 'maxBodySize', 64 * 1024 * 1024, 0, Number.MAX_SAFE_INTEGER),
      decompress: boolOpt(options.decompress, 'decompress', true),
      maxDecompressionRatio: ratioOpt(options.maxDecompressionRatio, 100),
      noDelay: true,
      tcpKeepAlive: 0,
    };
    if (options.noDelay !== undefined) {
      if (typeof options.noDelay !== 'boolean') throw invalidOption('noDelay', 'expected a boolean');
      o.noDelay = options.noDelay;
    }
    if (options.tcpKeepAlive !== undefined && options.tcpKeepAlive !== false) {
      o.tcpKeepAlive = intOpt(options.tcpKeepAlive, 'tcpKeepAlive', 0, 0, MAX_TIMER);
    }
    const memoryResponse = (options as Record<symbol, unknown>)[kMemoryResponse];
    if (typeof memoryResponse === 'string') o.memoryResponse = memoryResponse; // bench-hooks.ts
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
    const d = new Dispatcher();
    d.lookup = dns.lookup;
    d.lookupTimeout = t.connect;
    this.#dispatcher = d;
    this.#onEvents = (batch, bigs) => d.onEvents(batch, bigs);
    this.#engine = new binding.NativeEngine(o, this.#onEvents);
    d.engine = this.#engine;
    const policies = sessionPolicies(options);
    this.#policy = { policies, totalTimeout: t.total, send: (u, opts, s) => this.#submit(u, opts, s, false) };
    this.#slow = policies.slow;
    this.#redirect = policies.redirect.mode === 'manual' ? undefined : policies.redirect;
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

  /** @internal For lib/raw-socket.ts: raw sockets share this session's engine (DNS cache, fds). */
  [kRawAccess](): RawAccess {
    return {
      engine: this.#engine,
      events: this.#dispatcher,
      closed: () => this.#closed,
      tls: () => this.#tlsOption ?? (this.#tlsDefault ??= new TlsProfile()),
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

  /** Sends a request and buffers the whole response body (bounded by maxBodySize). */
  request(url: string | URL, options?: RequestOptions): Promise<Response> {
    if (this.#slow || (options != null && options.retry !== undefined)) return this.#run(url, options, false) as Promise<Response>;
    return this.#submit(url, options, false, true) as Promise<Response>;
  }

  /** Like request(), but resolves at the response head; `body` is a Readable with backpressure. */
  stream(url: string | URL, options?: RequestOptions): Promise<StreamResponse> {
    if (this.#slow || (options != null && options.retry !== undefined)) return this.#run(url, options, true) as Promise<StreamResponse>;
    return this.#submit(url, options, true, true) as Promise<StreamResponse>;
  }

  /** A request through the policy loop (retry, rate limit, cookies); input errors still throw. */
  #run(input: string | URL, options: RequestOptions | undefined, stream: boolean): Promise<Response | StreamResponse> {
    if (this.#closed) return Promise.reject(new UvfetchError('ERR_SESSION_CLOSED', 'session is closed'));
    let url: URL;
    try {
      url = input instanceof URL ? input : new URL(String(input));
    } catch (cause) {
      throw new UvfetchError('ERR_INVALID_URL', `invalid URL: ${String(input)}`, { cause });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new UvfetchError('ERR_UNSUPPORTED_PROTOCOL', `unsupported URL scheme ${url.protocol} (http: and https: only)`, { url: url.href });
    }
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') throw invalidOption('options', 'expected an object');
      checkKeys(options, REQUEST_KEYS, '');
      if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw invalidOption('signal', 'expected an AbortSignal');
    }
    return run(this.#policy, prepare(this.#policy, url, options), stream);
  }

  /** A plain-path request got a 3xx to follow: the policy loop takes over from that response. */
  #follow(p: Pending, res: Response | StreamResponse): Promise<Response | StreamResponse> {
    try {
      return runFrom(this.#policy, prepare(this.#policy, p.input ?? new URL(p.url), p.options, p.redirect), p.stream, res, p.start);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** One native submit; `follow`: a 3xx may be followed (false inside the policy loop). */
  #submit(input: string | URL, options: RequestOptions | undefined, stream: boolean, follow: boolean): Promise<Response | StreamResponse> {
    if (this.#closed) {
      return Promise.reject(new UvfetchError('ERR_SESSION_CLOSED', 'session is closed'));
    }
    let url: URL;
    try {
      url = typeof input === 'string' ? new URL(input) : input instanceof URL ? input : new URL(String(input));
    } catch (cause) {
      throw new UvfetchError('ERR_INVALID_URL', `invalid URL: ${String(input)}`, { cause });
    }
    const https = url.protocol === 'https:';
    if (!https && url.protocol !== 'http:') {
      throw new UvfetchError('ERR_UNSUPPORTED_PROTOCOL', `unsupported URL scheme ${url.protocol} (http: and https: only)`, {
        url: url.href,
      });
    }
    let profile: TlsProfile | undefined;
    let proxyCfg = this.#proxy;
    let method = 'GET';
    let headers: string[] | null = null;
    let body: BodyInit | null | undefined;
    let signal: AbortSignal | undefined;
    let overrides: Float64Array | null = null;
    let wantTimings = false;
    let redirect = follow ? this.#redirect : undefined;
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') throw invalidOption('options', 'expected an object');
      checkKeys(options, REQUEST_KEYS, '');
      if (options.method !== undefined) {
        if (typeof options.method !== 'string') throw invalidOption('method', 'expected a string');
        method = STANDARD_METHODS[options.method.toLowerCase()] ?? options.method;
      }
      if (options.headers !== undefined && options.headers !== null) {
        headers = [];
        flattenHeaders(options.headers, headers);
      }
      body = options.body;
      signal = options.signal;
      if (options.timings !== undefined) {
        if (typeof options.timings !== 'boolean') throw invalidOption('timings', 'expected a boolean');
        wantTimings = options.timings;
      }
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidOption('signal', 'expected an AbortSignal');
      if (options.tls !== undefined) profile = TlsProfile.from(options.tls);
      if (options.proxy !== undefined) proxyCfg = proxyConfig(options.proxy, 'proxy') ?? null;
      if (follow && hasRedirectOptions(options)) {
        const r = redirectPolicy(options, this.#policy.policies.redirect);
        redirect = r.mode === 'manual' ? undefined : r;
      }
      if (
        options.timeout !== undefined ||
        options.maxHeaderCount !== undefined ||
        options.maxHeaderSize !== undefined ||
        options.maxBodySize !== undefined ||
        options.decompress !== undefined ||
        options.maxDecompressionRatio !== undefined
      ) {
        const t = timeouts(options.timeout, 'timeout', this.#timeouts);
        overrides = new Float64Array([
          t.connect,
          t.headers,
          t.body,
          t.total,
          options.maxHeaderSize === undefined ? NaN : intOpt(options.maxHeaderSize, 'maxHeaderSize', 0, 64, 2 ** 31 - 1),
          options.maxHeaderCount === undefined ? NaN : intOpt(options.maxHeaderCount, 'maxHeaderCount', 0, 1, 1_000_000),
          options.maxBodySize === undefined ? NaN : intOpt(options.maxBodySize, 'maxBodySize', 0, 0, Number.MAX_SAFE_INTEGER),
          t.tls,
          options.decompress === undefined ? NaN : Number(boolOpt(options.decompress, 'decompress', true)),
          options.maxDecompressionRatio === undefined ? NaN : ratioOpt(options.maxDecompressionRatio, 100),
        ]);
      }
    }
    if (url.username !== '' || url.password !== '') {
      headers ??= [];
      if (hasHeader(headers, 'authorization') === undefined) {
        const cred = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
        headers.push('authorization', `Basic ${Buffer.from(cred, 'utf8').toString('base64')}`);
      }
    }

    const traced = tracingActive();
    let flags = stream ? SubmitFlag.StreamResponse : 0;
    if (traced || wantTimings) flags |= SubmitFlag.Timings;
    let payload: Uint8Array | string | null = null;
    let iterable: AsyncIterable<unknown> | Iterable<unknown> | undefined;
    let streamedLength = -1;
    if (body !== undefined && body !== null) {
      if (typeof body === 'string' || body instanceof Uint8Array) {
        payload = body;
        flags |= SubmitFlag.HasBody;
      } else if (body instanceof ArrayBuffer) {
        payload = new Uint8Array(body);
        flags |= SubmitFlag.HasBody;
      } else if (isIterableBody(body)) {
        iterable = body;
        flags |= SubmitFlag.StreamedBody;
        const cl = headers === null ? undefined : hasHeader(headers, 'content-length');
        if (cl !== undefined) {
          if (!/^\d+$/.test(cl) || !Number.isSafeInteger(Number(cl))) {
            throw new UvfetchError('ERR_INVALID_HEADER', 'invalid header: content-length must be a non-negative integer', { reason: 'content-length' });
          }
          streamedLength = Number(cl);
        }
      } else {
        throw new UvfetchError('ERR_INVALID_BODY', 'body must be a string, Buffer, Uint8Array, ArrayBuffer or (async) iterable');
      }
    }

    const id = nextId;
    nextId = nextId >= 0x7fffffff ? 1 : nextId + 1;
    // Credentials never travel into res.url or error messages (they end up in logs).
    const href = url.username !== '' || url.password !== '' ? `${url.protocol}//${url.host}${url.pathname}${url.search}` : url.href;
    const host = url.hostname.charCodeAt(0) === 91 /* [ */ ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port === '' ? (https ? 443 : 80) : Number(url.port);
    if (https) profile ??= this.#tlsOption ?? (this.#tlsDefault ??= new TlsProfile());
    let target = url.pathname + url.search;
    let px: NativeProxy | null = null;
    if (proxyCfg !== null) {
      px = proxyFor(proxyCfg, url, https);
      if (px !== null && px[0] === 1 && !https) {
        // Plain http through an HTTP proxy: absolute-form target, credentials for the proxy.
        target = `http://${url.host}${target}`;
        if (px[3] !== '' || px[4] !== '') {
          headers ??= [];
          if (hasHeader(headers, 'proxy-authorization') === undefined) headers.push('proxy-authorization', basicAuth(px[3], px[4]));
        }
      }
    }
    if (signal?.aborted) {
      return Promise.reject(new UvfetchError('ERR_ABORTED', 'request aborted', { cause: signal.reason, url: href, method }));
    }
    const rc = this.#engine.submit(id, host, port, https ? profile!.native : false, method, target, headers, payload, flags, streamedLength, overrides, px);
    if (rc !== 0) {
      const code = codeOf(rc);
      const err = nativeError(rc, this.#engine.lastError(), 0, href, method);
      if (code === 'ERR_SESSION_CLOSED') return Promise.reject(err);
      throw err;
    }
    const d = this.#dispatcher;
    return new Promise<Response | StreamResponse>((resolve, reject) => {
      const p: Pending = {
        id,
        url: href,
        method,
        stream,
        resolve,
        reject,
        signal,
        onAbort: undefined,
        readable: undefined,
        drain: undefined,
        done: false,
        traced,
        timings: undefined,
        status: 0,
        // Not the URL object itself: kept until the response, it would outlive the young generation.
        input: href === url.href ? undefined : url,
        options,
        redirect,
        start: redirect !== undefined && (overrides !== null ? overrides[3]! : this.#timeouts.total) > 0 ? performance.now() : 0,
      };
      d.pending.set(id, p);
      if (traced && channels.requestStart.hasSubscribers) channels.requestStart.publish({ id, method, url: href });
      if (signal !== undefined) {
        p.onAbort = () => d.fail(p, new UvfetchError('ERR_ABORTED', 'request aborted', { cause: signal.reason, url: href, method }));
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      if (iterable !== undefined) void pumpBody(this.#engine, d, p, iterable, streamedLength);
    });
  }

  /** WHATWG fetch() through this session (lib/fetch): a global Response; uvfetch options in `init`. */
  fetch(input: string | URL | Request, init?: UvfetchRequestInit): Promise<UvfetchResponse> {
    return sessionFetch(this, input, init);
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
  ): AsyncIterableIterator<FetchManyResult<Response | StreamResponse>> {
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
        ...(options.perOrigin ? { perOrigin: this.#engine.originStats() } : {}),
      },
      eventLoop: h === undefined ? { p50: 0, p99: 0, max: 0 } : { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) },
      bytes: { in: s.bytesIn, out: s.bytesOut },
      fd: { limit: limits.getFdLimit().soft, open: limits.openFds(), exhaustedWaits: s.fdExhaustedWaits },
      tls: { handshakes: s.tlsHandshakes, resumed: s.tlsResumed, failures: s.tlsFailures },
      raw: { open: s.rawSockets, waiting: s.rawWaiting },
      dns: s.dns,
      ...(this.#policy.policies.limiter !== undefined ? { rateLimit: this.#policy.policies.limiter.stats() } : {}),
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
    this.#policy.policies.limiter?.clear(() => new UvfetchError('ERR_SESSION_CLOSED', 'session is closed'));
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

async function pumpBody(
  engine: NativeEngine,
  d: Dispatcher,
  p: Pending,
  body: AsyncIterable<unknown> | Iterable<unknown>,
  declared: number,
): Promise<void> {
  let sent = 0;
  try {
    for await (const chunk of body as AsyncIterable<unknown>) {
      if (p.done) return;
      let buf: Uint8Array;
      if (typeof chunk === 'string') {
        buf = Buffer.from(chunk, 'utf8');
      } else if (chunk instanceof Uint8Array) {
        buf = chunk;
      } else {
        throw new UvfetchError('ERR_INVALID_BODY', 'body chunks must be strings or Uint8Arrays');
      }
      sent += buf.byteLength;
      if (declared >= 0 && sent > declared) {
        throw new UvfetchError('ERR_INVALID_BODY', `body is longer than its content-length (${declared})`);
      }
      if (buf.byteLength === 0) continue;
      if (!engine.writeBody(p.id, buf)) {
        await new Promise<void>((resolve) => {
          p.drain = resolve;
        });
      }
    }
    if (p.done) return;
    if (declared >= 0 && sent !== declared) {
      throw new UvfetchError('ERR_INVALID_BODY', `body is shorter (${sent}) than its content-length (${declared})`);
    }
    engine.endBody(p.id);
  } catch (err) {
    const e = err instanceof UvfetchError ? err : new UvfetchError('ERR_INVALID_BODY', 'reading the request body failed', { cause: err });
    d.fail(p, e);
  }
}
