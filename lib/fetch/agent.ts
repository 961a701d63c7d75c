// UvfetchAgent: undici's Dispatcher contract over a Session, so that Node's global fetch
// (setGlobalDispatcher), undici's request/stream/pipeline/fetch and every library that takes a
// `dispatcher` send through the native engine. Both handler styles are driven: undici 7's
// (onRequestStart, onResponseStart, onResponseData, onResponseEnd, onResponseError, with a
// controller that pauses, resumes and aborts) and the older one Node 20's bundled undici calls
// (onConnect, onHeaders, onData, onComplete, onError; returning false from onHeaders/onData
// pauses until the `resume` callback). A paused handler stops the body's Readable; its buffer
// fills and the engine stops reading the socket.
//
// A dispatcher hands over the bytes as the server sent them: no decoding (the caller, e.g.
// fetch, decodes), no redirects followed (the caller follows), no headers added but Host and
// framing (the session's default User-Agent is off unless you set `userAgent`).

import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { Session } from '../session/session.js';
import type { StreamResponse } from '../session/response.js';
import { UvfetchError } from '../core/errors.js';
import { IdTable } from '../core/id-table.js';
import type { RequestOptions, SessionOptions, SessionStats } from '../session/types.js';
import { dispatchBody, type ExtractedBody } from './body.js';
import { headerPairs } from './response.js';

/** The request a dispatcher is asked to make (the fields of undici's DispatchOptions uvfetch reads). */
export interface UvfetchDispatchOptions {
  origin?: string | URL;
  path: string;
  method: string;
  body?: unknown;
  headers?: Record<string, string | string[] | number | undefined> | string[] | Iterable<[string, string]> | null;
  query?: Record<string, unknown>;
  /** Truthy: an HTTP upgrade, which uvfetch does not do (rejected). */
  upgrade?: boolean | string | null;
  /** ms to the complete response head (0 = none). Default: the session's `timeout.headers`. */
  headersTimeout?: number | null;
  /** ms of silence between body bytes (0 = none). Default: the session's `timeout.body`. */
  bodyTimeout?: number | null;
  /** true: `Connection: close` (the socket is not reused). */
  reset?: boolean;
  [key: string]: unknown;
}

/** undici 7's DispatchController, as uvfetch gives it to onRequestStart & co. */
export interface UvfetchDispatchController {
  readonly aborted: boolean;
  readonly paused: boolean;
  readonly reason: Error | null;
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

/** Either handler style (see the file comment). */
export interface UvfetchDispatchHandler {
  onRequestStart?(controller: UvfetchDispatchController, context: unknown): void;
  onResponseStart?(controller: UvfetchDispatchController, statusCode: number, headers: Record<string, string | string[]>, statusMessage?: string): void;
  onResponseData?(controller: UvfetchDispatchController, chunk: Buffer): void;
  onResponseEnd?(controller: UvfetchDispatchController, trailers: Record<string, string | string[]>): void;
  onResponseError?(controller: UvfetchDispatchController, error: Error): void;
  onConnect?(abort: (err?: Error) => void, context?: unknown): void;
  onResponseStarted?(): void;
  // biome-ignore lint/suspicious/noConfusingVoidType: undici's own handler type (a handler may return nothing)
  onHeaders?(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean | void;
  // biome-ignore lint/suspicious/noConfusingVoidType: as above
  onData?(chunk: Buffer): boolean | void;
  onComplete?(trailers: Buffer[] | string[] | null): void;
  onError?(err: Error): void;
  onUpgrade?(...args: unknown[]): void;
  onRequestUpgrade?(...args: unknown[]): void;
}

type Callback = (err: Error | null, data: null) => void;
const MAX_TIMER = 2 ** 31 - 1;

function unsupported(what: string): UvfetchError {
  return new UvfetchError(
    'ERR_UNSUPPORTED_PROTOCOL',
    `${what} is not supported by UvfetchAgent (uvfetch speaks plain HTTP request/response only); use undici's own Agent for it`,
    { reason: what },
  );
}

/** undici's header forms as [name, value] pairs. */
function flatHeaders(h: UvfetchDispatchOptions['headers'], out: Array<[string, string]>): void {
  if (h === undefined || h === null) return;
  if (Array.isArray(h)) {
    if (h.length > 0 && Array.isArray(h[0])) {
      for (const [n, v] of h as unknown as Array<[string, string]>) out.push([String(n), String(v)]);
      return;
    }
    if (h.length % 2 !== 0) throw new UvfetchError('ERR_INVALID_HEADER', 'headers array must be even', { reason: 'headers' });
    for (let i = 0; i < h.length; i += 2) {
      const v = h[i + 1] as unknown;
      if (Array.isArray(v)) for (const x of v) out.push([String(h[i]), String(x)]);
      else out.push([String(h[i]), String(v)]);
    }
    return;
  }
  if (typeof (h as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [n, v] of h as Iterable<[string, string]>) out.push([String(n), String(v)]);
    return;
  }
  for (const name of Object.keys(h)) {
    const v = (h as Record<string, unknown>)[name];
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) for (const x of v) out.push([name, String(x)]);
    else out.push([name, String(v)]);
  }
}

function hasHeader(pairs: Array<[string, string]>, lower: string): boolean {
  for (const p of pairs) if (p[0].toLowerCase() === lower) return true;
  return false;
}

/** undici's parsed form: lower-case names, repeated ones as arrays. */
function parsedHeaders(pairs: Array<[string, string]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [n, v] of pairs) {
    const k = n.toLowerCase();
    const cur = out[k];
    if (cur === undefined) out[k] = v;
    else if (Array.isArray(cur)) cur.push(v);
    else out[k] = [cur, v];
  }
  return out;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function isModern(h: UvfetchDispatchHandler): boolean {
  return typeof h.onRequestStart === 'function' || typeof h.onResponseStart === 'function';
}

function rawPairs(h: Record<string, string | string[] | undefined> | null | undefined): Buffer[] {
  const raw: Buffer[] = [];
  if (h == null) return raw;
  for (const [n, v] of Object.entries(h)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) raw.push(Buffer.from(n, 'latin1'), Buffer.from(String(x), 'latin1'));
    else raw.push(Buffer.from(n, 'latin1'), Buffer.from(String(v), 'latin1'));
  }
  return raw;
}

/** An old-style handler seen through the new-style interface (for interceptors). */
class LegacyAsModern implements UvfetchDispatchHandler {
  readonly #h: UvfetchDispatchHandler;
  constructor(h: UvfetchDispatchHandler) {
    this.#h = h;
  }
  onRequestStart(c: UvfetchDispatchController, context: unknown): void {
    this.#h.onConnect?.((reason?: Error) => c.abort(reason ?? new UvfetchError('ERR_ABORTED', 'request aborted')), context);
  }
  onRequestUpgrade(...args: unknown[]): void {
    this.#h.onUpgrade?.(args[1], rawPairs(args[2] as Record<string, string>), args[3]);
  }
  onResponseStart(c: UvfetchDispatchController, status: number, headers: Record<string, string | string[]>, message?: string): void {
    this.#h.onResponseStarted?.();
    if (this.#h.onHeaders?.(status, rawPairs(headers), () => c.resume(), message ?? '') === false) c.pause();
  }
  onResponseData(c: UvfetchDispatchController, chunk: Buffer): void {
    if (this.#h.onData?.(chunk) === false) c.pause();
  }
  onResponseEnd(_c: UvfetchDispatchController, trailers: Record<string, string | string[]>): void {
    this.#h.onComplete?.(rawPairs(trailers));
  }
  onResponseError(_c: UvfetchDispatchController, err: Error): void {
    if (typeof this.#h.onError !== 'function') throw err;
    this.#h.onError(err);
  }
}

let lastCallId = 0;
function nextCallId(): number {
  lastCallId = lastCallId >= 0x7fffffff ? 1 : lastCallId + 1;
  return lastCallId;
}

/** One dispatched request and its handler, whichever style it has. */
class Call implements UvfetchDispatchController {
  readonly #h: UvfetchDispatchHandler;
  readonly #modern: boolean;
  readonly #agent: UvfetchAgent;
  readonly ac = new AbortController();
  /** How the agent lists it: weakly, so a body its consumer dropped unread can be collected (the session then aborts it). */
  readonly ref = new WeakRef(this);
  /** Its key in the agent's list (an IdTable, not a Set: see lib/core/id-table.ts). */
  readonly id = nextCallId();
  #paused = false;
  #aborted = false;
  #reason: Error | null = null;
  #finished = false;
  #res: StreamResponse | undefined;
  readable: Readable | undefined;

  constructor(agent: UvfetchAgent, handler: UvfetchDispatchHandler) {
    this.#agent = agent;
    this.#h = handler;
    this.#modern = isModern(handler);
  }

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  get finished(): boolean {
    return this.#finished;
  }

  readonly abort = (reason?: Error): void => {
    if (this.#aborted || this.#finished) return;
    this.#aborted = true;
    this.#reason = reason ?? new UvfetchError('ERR_ABORTED', 'request aborted');
    this.ac.abort(this.#reason); // the engine drops a request still in flight
    // A body already under way (perhaps complete, still buffered) errors with the reason through
    // its 'error' listener; before the head, the reason is delivered here.
    if (this.readable !== undefined) this.readable.destroy(new UvfetchError('ERR_ABORTED', 'request aborted'));
    else queueMicrotask(() => this.fail(this.#reason!));
  };

  pause(): void {
    this.#paused = true;
    this.readable?.pause();
  }

  readonly resume = (): void => {
    if (!this.#paused) return;
    this.#paused = false;
    if (!this.#finished) this.readable?.resume();
  };

  start(): void {
    if (this.#modern) this.#h.onRequestStart?.(this, {});
    else this.#h.onConnect?.(this.abort, {});
  }

  head(res: StreamResponse): void {
    this.#res = res;
    const pairs = headerPairs(res.headers.rawHead);
    if (this.#modern) {
      this.#h.onResponseStart?.(this, res.status, parsedHeaders(pairs), res.statusText);
    } else {
      this.#h.onResponseStarted?.();
      const raw: Buffer[] = [];
      for (const [n, v] of pairs) raw.push(Buffer.from(n, 'latin1'), Buffer.from(v, 'latin1'));
      if (this.#h.onHeaders?.(res.status, raw, this.resume, res.statusText) === false) this.#paused = true;
    }
  }

  data(chunk: Buffer): void {
    if (this.#modern) this.#h.onResponseData?.(this, chunk);
    else if (this.#h.onData?.(chunk) === false) this.#paused = true;
  }

  end(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#agent[kDone](this);
    // Trailer fields (chunked HTTP/1.1 or HTTP/2), as each handler style expects them.
    const t = this.#res?.trailers;
    const pairs = t === undefined ? [] : headerPairs(t.rawHead);
    if (this.#modern) {
      this.#h.onResponseEnd?.(this, parsedHeaders(pairs));
    } else {
      const raw: Buffer[] = [];
      for (const [n, v] of pairs) raw.push(Buffer.from(n, 'latin1'), Buffer.from(v, 'latin1'));
      this.#h.onComplete?.(raw);
    }
  }

  /** Delivers the one error of this request (an abort delivers the abort's reason). */
  fail(err: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#agent[kDone](this);
    let e = asError(err);
    if (this.#aborted && e instanceof UvfetchError && e.code === 'ERR_ABORTED') e = this.#reason!;
    if (this.#modern) {
      if (typeof this.#h.onResponseError !== 'function') throw e;
      this.#h.onResponseError(this, e);
    } else {
      if (typeof this.#h.onError !== 'function') throw e;
      this.#h.onError(e);
    }
  }
}

const kDone = Symbol('uvfetch.agent.done');

/**
 * An undici Dispatcher backed by a uvfetch Session: `setGlobalDispatcher(new UvfetchAgent())`
 * sends Node's global fetch and undici's APIs through the native engine.
 */
export class UvfetchAgent extends EventEmitter {
  readonly #session: Session;
  readonly #calls = new IdTable<WeakRef<Call>>();
  #closed = false;
  #destroyed = false;
  #closing: Promise<void> | undefined;

  /** `options`: the Session's options (pool limits, timeouts, TLS, proxy, DNS, …). */
  constructor(options: SessionOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError('UvfetchAgent options must be an object');
    this.#session = new Session({ userAgent: '', ...options });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** The session's live counters (the same shape as session.stats()). */
  stats(options?: { perOrigin?: boolean }): SessionStats {
    return this.#session.stats(options);
  }

  /** @internal */
  [kDone](call: Call): void {
    this.#calls.delete(call.id);
  }

  /**
   * undici's Dispatcher.dispatch(): starts the request and drives `handler`. Returns true (the
   * native pool queues: there is never a reason to wait for 'drain'), or false when the request
   * failed at once (its error went to the handler).
   */
  dispatch(opts: UvfetchDispatchOptions, handler: UvfetchDispatchHandler): boolean {
    if (handler === null || typeof handler !== 'object') throw new TypeError('handler must be an object');
    const call = new Call(this, handler);
    try {
      if (opts === null || typeof opts !== 'object') throw new TypeError('opts must be an object.');
      if (this.#destroyed) throw new UvfetchError('ERR_SESSION_CLOSED', 'the UvfetchAgent is destroyed');
      if (this.#closed) throw new UvfetchError('ERR_SESSION_CLOSED', 'the UvfetchAgent is closed');
      const method = String(opts.method ?? 'GET');
      if (opts.upgrade) throw unsupported(`HTTP upgrade (${typeof opts.upgrade === 'string' ? opts.upgrade : 'Upgrade'})`);
      if (method.toUpperCase() === 'CONNECT') throw unsupported('CONNECT');
      const url = targetUrl(opts);
      const headers: Array<[string, string]> = [];
      flatHeaders(opts.headers, headers);
      if (hasHeader(headers, 'upgrade')) throw unsupported('HTTP upgrade (Upgrade header)');
      if (opts.reset === true && !hasHeader(headers, 'connection')) headers.push(['connection', 'close']);
      const o: RequestOptions = { method, headers, signal: call.ac.signal, decompress: false, redirect: 'manual' };
      if (opts.headersTimeout != null || opts.bodyTimeout != null) {
        o.timeout = {};
        if (opts.headersTimeout != null) o.timeout.headers = Math.min(MAX_TIMER, Math.max(0, Math.trunc(Number(opts.headersTimeout))));
        if (opts.bodyTimeout != null) o.timeout.body = Math.min(MAX_TIMER, Math.max(0, Math.trunc(Number(opts.bodyTimeout))));
      }
      this.#calls.set(call.id, call.ref);
      call.start();
      if (call.aborted) return true; // the handler aborted in onConnect/onRequestStart: fail() is queued
      const b = opts.body;
      if (b === undefined || b === null || typeof b === 'string' || b instanceof Uint8Array) {
        if (b !== undefined && b !== null) o.body = b;
        this.#send(call, url, o);
      } else {
        dispatchBody(b).then(
          (body) => {
            if (call.aborted || call.finished) return;
            withBody(o, headers, body);
            this.#send(call, url, o);
          },
          (err) => call.fail(err),
        );
      }
      return true;
    } catch (err) {
      call.fail(err);
      return false;
    }
  }

  #send(call: Call, url: URL, o: RequestOptions): void {
    let p: Promise<StreamResponse>;
    try {
      p = this.#session.stream(url, o);
    } catch (err) {
      call.fail(err);
      return;
    }
    p.then(
      (res) => this.#onHead(call, res),
      (err) => call.fail(err),
    );
  }

  #onHead(call: Call, res: StreamResponse): void {
    const body = res.body;
    call.readable = body;
    if (call.finished) {
      body.destroy();
      return;
    }
    body.once('error', (err) => call.fail(err));
    try {
      call.head(res);
    } catch (err) {
      body.destroy();
      call.fail(err);
      return;
    }
    if (call.aborted) return; // aborted in onHeaders/onResponseStart: the body's error delivers the reason
    body.on('data', (chunk: Buffer) => {
      if (call.finished) return;
      try {
        call.data(chunk);
      } catch (err) {
        body.destroy();
        call.fail(err);
        return;
      }
      if (call.paused) body.pause();
    });
    body.once('end', () => {
      try {
        call.end();
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    });
    if (call.paused) body.pause();
  }

  /** Graceful: new dispatches fail, dispatched requests finish, then the session closes. */
  close(): Promise<void>;
  close(callback: Callback): void;
  close(callback?: Callback): Promise<void> | void {
    this.#closed = true;
    const p = (this.#closing ??= this.#session.close());
    if (callback === undefined) return p;
    p.then(
      () => callback(null, null),
      (e: Error) => callback(e, null),
    );
  }

  /** Abortive: every pending request fails with `err` (default ERR_SESSION_CLOSED), sockets are reset. */
  destroy(err?: Error | null): Promise<void>;
  destroy(callback: Callback): void;
  destroy(err: Error | null | undefined, callback: Callback): void;
  destroy(a?: Error | null | Callback, b?: Callback): Promise<void> | void {
    const callback = typeof a === 'function' ? a : b;
    const err = typeof a === 'function' ? undefined : (a ?? undefined);
    this.#closed = true;
    this.#destroyed = true;
    const reason = err ?? new UvfetchError('ERR_SESSION_CLOSED', 'the UvfetchAgent was destroyed');
    this.#calls.forEach((r) => {
      r.deref()?.abort(reason);
    });
    const p = this.#session.destroy();
    this.#closing ??= p;
    if (callback === undefined) return p;
    p.then(
      () => callback(null, null),
      (e: Error) => callback(e, null),
    );
  }

  /**
   * undici's Dispatcher convenience methods (`dispatcher.request(opts)` & co, which some SDKs
   * call): undici's own implementations, run over this dispatcher's dispatch(). They need the
   * `undici` package installed next to your code (uvfetch does not depend on it).
   */
  request(...args: unknown[]): unknown {
    return undiciApi('request').apply(this, args);
  }
  stream(...args: unknown[]): unknown {
    return undiciApi('stream').apply(this, args);
  }
  pipeline(...args: unknown[]): unknown {
    return undiciApi('pipeline').apply(this, args);
  }
  connect(...args: unknown[]): unknown {
    return undiciApi('connect').apply(this, args);
  }
  upgrade(...args: unknown[]): unknown {
    return undiciApi('upgrade').apply(this, args);
  }

  /** undici's Dispatcher.compose(): this agent with interceptors wrapped around dispatch(). */
  compose(...args: unknown[]): UvfetchAgent {
    const list = (Array.isArray(args[0]) ? args[0] : args) as Array<((d: UvfetchAgent['dispatch']) => UvfetchAgent['dispatch']) | null | undefined>;
    let dispatch: UvfetchAgent['dispatch'] = this.dispatch.bind(this);
    for (const interceptor of list) {
      if (interceptor == null) continue;
      if (typeof interceptor !== 'function') throw new TypeError(`invalid interceptor, expected function received ${typeof interceptor}`);
      const inner = interceptor(dispatch);
      if (typeof inner !== 'function' || inner.length !== 2) throw new TypeError('invalid interceptor');
      // Interceptors (undici 7's) speak the new handler style: an old-style handler is adapted.
      dispatch = (opts, handler) => inner(opts, isModern(handler) ? handler : new LegacyAsModern(handler));
    }
    return new Proxy(this, {
      get: (target, key) => (key === 'dispatch' ? dispatch : Reflect.get(target, key, target)),
    });
  }
}

type ApiFn = (this: unknown, ...args: unknown[]) => unknown;
let undiciProto: Record<string, ApiFn> | undefined;

/** A method of undici's Dispatcher.prototype, from the undici the application has installed. */
function undiciApi(name: string): ApiFn {
  if (undiciProto === undefined) {
    for (const base of [path.join(process.cwd(), 'noop.js'), import.meta.url]) {
      try {
        const mod = createRequire(base)('undici') as { Dispatcher?: { prototype: Record<string, ApiFn> } };
        if (mod.Dispatcher !== undefined) {
          undiciProto = mod.Dispatcher.prototype;
          break;
        }
      } catch {
        /* next */
      }
    }
  }
  const fn = undiciProto?.[name];
  if (typeof fn !== 'function') {
    throw new UvfetchError(
      'ERR_INVALID_OPTION',
      `UvfetchAgent.${name}() needs the undici package (npm install undici); or call undici.${name}(url, { dispatcher: agent })`,
      { reason: name },
    );
  }
  return fn;
}

/** The URL a dispatch addresses: origin + path (+ query). */
function targetUrl(opts: UvfetchDispatchOptions): URL {
  const path = typeof opts.path === 'string' ? opts.path : '/';
  let url: URL;
  try {
    if (/^https?:\/\//i.test(path)) {
      url = new URL(path);
    } else {
      if (opts.origin === undefined || opts.origin === null) throw new TypeError('origin is required');
      const origin = new URL(String(opts.origin)).origin;
      url = new URL(origin + (path.startsWith('/') ? path : `/${path}`));
    }
  } catch (cause) {
    throw new UvfetchError('ERR_INVALID_URL', `invalid origin or path: ${String(opts.origin)} ${path}`, { cause });
  }
  if (opts.query !== undefined && opts.query !== null) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) {
      if (v === undefined || v === null) continue;
      if (Array.isArray(v)) for (const x of v) q.append(k, String(x));
      else q.append(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
    const s = q.toString();
    if (s !== '') url.search = url.search === '' ? s : `${url.search.slice(1)}&${s}`;
  }
  return url;
}

function withBody(o: RequestOptions, headers: Array<[string, string]>, body: ExtractedBody | null): void {
  if (body === null) return;
  if (body.type !== null && !hasHeader(headers, 'content-type')) headers.push(['content-type', body.type]);
  if (body.bytes !== undefined) {
    o.body = body.bytes;
    return;
  }
  if (body.length >= 0 && !hasHeader(headers, 'content-length')) headers.push(['content-length', String(body.length)]);
  o.body = body.chunks!();
}
