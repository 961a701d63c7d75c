// A keyed pool of raw sockets users drive themselves: limits (total and per key), FIFO waiters,
// LIFO reuse of idle sockets, idle expiry, a liveness check before every reuse. The same rules as
// the HTTP pool (native/core/pool/connection_pool.h), for connections speaking users' protocols.

import { invalidOption, UvfetchError } from '../core/errors.js';
import { intOpt, MAX_TIMER } from '../core/options.js';
import { TlsProfile } from '../tls/profile.js';
import { type ConnectOptions, connect, type RawSocket } from './raw-socket.js';

const POOL_KEYS = new Set(['connect', 'max', 'maxPerKey', 'idleTimeout']);

export interface SocketPoolOptions {
  /** Defaults for every connection (host/port may come from the key instead). */
  connect?: Partial<ConnectOptions>;
  /** Sockets across all keys (connecting + in use + idle). Default 100. */
  max?: number;
  /** Sockets for one key. Default 10. */
  maxPerKey?: number;
  /** An idle socket is closed after this long (ms); 0 = never. Default 30000. */
  idleTimeout?: number;
}

/**
 * What acquire() connects to: a "host:port" string (or any label when `connect` names the host
 * and port: then labels only separate sockets), or connect options merged over `connect`.
 */
export type PoolKey = string | Partial<ConnectOptions>;

export interface SocketPoolStats {
  /** Sockets connecting, in use or idle. */
  open: number;
  idle: number;
  /** acquire() calls waiting for a socket. */
  waiting: number;
  /** Connections made, and acquisitions served by an idle socket. */
  created: number;
  reused: number;
}

interface Waiter {
  key: string;
  options: ConnectOptions;
  resolve: (s: RawSocket) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

interface KeyState {
  open: number; // connecting + in use + idle
  idle: RawSocket[]; // LIFO: the most recently released is reused first
}

interface Idle {
  since: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  onGone: () => void;
}

const profileIds = new WeakMap<TlsProfile, number>();
let nextProfileId = 1;
function profileId(p: TlsProfile): number {
  let id = profileIds.get(p);
  if (id === undefined) {
    id = nextProfileId++;
    profileIds.set(p, id);
  }
  return id;
}

/** "host:port" / "[::1]:port" → host and port, or undefined. */
function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(s);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

export class SocketPool {
  readonly #defaults: Partial<ConnectOptions>;
  readonly #max: number;
  readonly #maxPerKey: number;
  readonly #idleTimeout: number;
  readonly #keys = new Map<string, KeyState>();
  readonly #owned = new Map<RawSocket, string>(); // every socket of the pool (not yet closed) → key
  readonly #idle = new Map<RawSocket, Idle>();
  readonly #waiters: Waiter[] = [];
  #open = 0;
  #created = 0;
  #reused = 0;
  #closed = false;
  #serving = false;
  #serveAgain = false;
  #closeResolve: (() => void) | undefined;
  #closePromise: Promise<void> | undefined;

  constructor(options: SocketPoolOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'expected an object');
    for (const k of Object.keys(options)) if (!POOL_KEYS.has(k)) throw invalidOption(k, 'unknown option');
    if (options.connect !== undefined && (options.connect === null || typeof options.connect !== 'object')) {
      throw invalidOption('connect', 'expected connect() options');
    }
    this.#defaults = { ...(options.connect ?? {}) };
    this.#max = intOpt(options.max, 'max', 100, 1, 1_000_000);
    this.#maxPerKey = intOpt(options.maxPerKey, 'maxPerKey', 10, 1, 1_000_000);
    this.#idleTimeout = intOpt(options.idleTimeout, 'idleTimeout', 30_000, 0, MAX_TIMER);
  }

  /**
   * A connected socket for `key`: an idle one (most recently released first, checked alive), a
   * new connection while under the limits, or the next one released or freed (FIFO). Rejects
   * with the connect error, ERR_ABORTED (signal) or ERR_POOL_CLOSED.
   */
  acquire(key?: PoolKey, options: { signal?: AbortSignal } = {}): Promise<RawSocket> {
    if (this.#closed) return Promise.reject(new UvfetchError('ERR_POOL_CLOSED', 'socket pool is closed'));
    const { name, connectOptions } = this.#resolve(key);
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new UvfetchError('ERR_ABORTED', 'acquire aborted', { cause: signal.reason }));
    const idle = this.#takeIdle(name);
    if (idle !== undefined) return Promise.resolve(idle);
    return new Promise<RawSocket>((resolve, reject) => {
      const w: Waiter = { key: name, options: connectOptions, resolve, reject, signal, onAbort: undefined };
      if (signal !== undefined) {
        // Settles at once, queued or connecting (the connect gets the signal too, so a hanging
        // one does not hold its slot until the connect timeout).
        w.onAbort = () => {
          w.onAbort = undefined;
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new UvfetchError('ERR_ABORTED', 'acquire aborted', { cause: signal.reason }));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      if (this.#tryOpen(w)) return;
      this.#waiters.push(w);
    });
  }

  /** Gives a socket back for reuse (a waiter for its key gets it at once). Ended, failed or foreign sockets are destroyed. */
  release(s: RawSocket): void {
    const key = this.#owned.get(s);
    if (key === undefined) {
      if (!s.destroyed) s.destroy();
      return;
    }
    if (this.#idle.has(s)) return; // released twice
    if (this.#closed || !reusable(s)) {
      this.destroy(s);
      return;
    }
    // A waiter for this key takes it directly (FIFO among that key's waiters).
    const wi = this.#waiters.findIndex((w) => w.key === key);
    if (wi >= 0) {
      const [w] = this.#waiters.splice(wi, 1);
      this.#reused++;
      this.#settle(w!, s);
      return;
    }
    this.#park(key, s);
  }

  /** Closes a socket and frees its slot. */
  destroy(s: RawSocket, err?: Error): void {
    this.#forget(s);
    if (!s.destroyed) s.destroy(err);
  }

  stats(): SocketPoolStats {
    return { open: this.#open, idle: this.#idle.size, waiting: this.#waiters.length, created: this.#created, reused: this.#reused };
  }

  /**
   * Graceful: waiters reject with ERR_POOL_CLOSED, idle sockets close, sockets in use close when
   * released (or destroyed) — or at once with `force: true`. Resolves once every socket of the
   * pool has closed.
   */
  close(options: { force?: boolean } = {}): Promise<void> {
    if (options.force === true) {
      for (const s of [...this.#owned.keys()]) this.destroy(s);
    }
    if (this.#closePromise !== undefined) return this.#closePromise;
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) {
      if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
      w.reject(new UvfetchError('ERR_POOL_CLOSED', 'socket pool is closed'));
    }
    for (const s of [...this.#idle.keys()]) this.destroy(s);
    this.#closePromise = new Promise<void>((resolve) => {
      this.#closeResolve = resolve;
      this.#maybeClosed();
    });
    return this.#closePromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #resolve(key: PoolKey | undefined): { name: string; connectOptions: ConnectOptions } {
    const d = this.#defaults;
    let o: Partial<ConnectOptions>;
    let label = '';
    if (key === undefined) {
      o = { ...d };
    } else if (typeof key === 'string') {
      const hp = parseHostPort(key);
      if (hp !== undefined && (d.host === undefined || d.port === undefined)) {
        o = { ...d, host: hp.host, port: hp.port };
      } else if (d.host !== undefined && d.port !== undefined) {
        o = { ...d };
        label = key; // an opaque label: separate sockets to the same place
      } else {
        throw invalidOption('key', 'expected "host:port" (or set connect.host and connect.port)');
      }
    } else if (key !== null && typeof key === 'object') {
      o = { ...d, ...key };
    } else {
      throw invalidOption('key', 'expected a string or connect options');
    }
    if (o.host === undefined || o.port === undefined) throw invalidOption('key', 'no host and port (from the key or connect options)');
    let tls = 'tcp';
    if (o.tls === true) tls = 'tls';
    else if (o.tls !== undefined && o.tls !== false) tls = `tls${profileId(TlsProfile.from(o.tls))}`;
    const timeout = typeof o.timeout === 'object' && o.timeout !== null ? `${o.timeout.connect}/${o.timeout.tls}` : String(o.timeout);
    const name = [tls, o.host, o.port, o.servername ?? '', o.localAddress ?? '', o.noDelay ?? '', o.keepAlive ?? '', timeout, label].join('|');
    return { name, connectOptions: o as ConnectOptions };
  }

  #state(key: string): KeyState {
    let k = this.#keys.get(key);
    if (k === undefined) {
      k = { open: 0, idle: [] };
      this.#keys.set(key, k);
    }
    return k;
  }

  /** The most recently released live idle socket of `key`; dead ones met on the way are dropped. */
  #takeIdle(key: string): RawSocket | undefined {
    const k = this.#keys.get(key);
    if (k === undefined) return undefined;
    while (k.idle.length > 0) {
      const s = k.idle.pop()!;
      this.#unpark(s);
      if (reusable(s)) {
        this.#reused++;
        return s;
      }
      this.destroy(s);
    }
    return undefined;
  }

  /** Opens a socket for `w` if the limits allow (closing the oldest idle socket of another key when only the total is in the way). */
  #tryOpen(w: Waiter): boolean {
    const k = this.#state(w.key);
    if (k.open >= this.#maxPerKey) return false;
    if (this.#open >= this.#max && !this.#evictOldestIdle()) return false;
    k.open++;
    this.#open++;
    this.#created++;
    let p: Promise<RawSocket>;
    try {
      const own = w.options.signal;
      const signal = w.signal === undefined ? own : own === undefined ? w.signal : AbortSignal.any([own, w.signal]);
      p = connect(signal === own ? w.options : { ...w.options, signal });
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (s) => {
        s.poolKey = w.key;
        this.#owned.set(s, w.key);
        s.once('close', () => this.#forget(s));
        if (w.signal?.aborted || this.#closed) {
          // Nobody wants it any more: keep it for the next caller (or close it if closing).
          this.#unwait(w);
          w.reject(
            this.#closed
              ? new UvfetchError('ERR_POOL_CLOSED', 'socket pool is closed')
              : new UvfetchError('ERR_ABORTED', 'acquire aborted', { cause: w.signal!.reason }),
          );
          this.release(s);
          return;
        }
        this.#settle(w, s);
      },
      (err) => {
        k.open--;
        this.#open--;
        this.#unwait(w);
        w.reject(err);
        this.#serve();
        this.#maybeClosed();
      },
    );
    return true;
  }

  #unwait(w: Waiter): void {
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
    w.onAbort = undefined;
  }

  #settle(w: Waiter, s: RawSocket): void {
    this.#unwait(w);
    w.resolve(s);
  }

  #evictOldestIdle(): boolean {
    let oldest: RawSocket | undefined;
    let since = Infinity;
    for (const [s, i] of this.#idle) {
      if (i.since < since) {
        since = i.since;
        oldest = s;
      }
    }
    if (oldest === undefined) return false;
    this.destroy(oldest);
    return true;
  }

  #park(key: string, s: RawSocket): void {
    const onGone = () => this.destroy(s); // the peer closed or failed an idle socket
    const i: Idle = { since: performance.now(), timer: undefined, onGone };
    if (this.#idleTimeout > 0) {
      i.timer = setTimeout(() => this.destroy(s), this.#idleTimeout);
      i.timer.unref();
    }
    s.on('peerend', onGone);
    s.on('error', onGone);
    this.#idle.set(s, i);
    this.#state(key).idle.push(s);
    // Whoever waits on the total limit may now evict it.
    if (this.#waiters.length > 0) this.#serve();
  }

  #unpark(s: RawSocket): void {
    const i = this.#idle.get(s);
    if (i === undefined) return;
    this.#idle.delete(s);
    if (i.timer !== undefined) clearTimeout(i.timer);
    s.off('peerend', i.onGone);
    s.off('error', i.onGone);
    const key = this.#owned.get(s);
    const k = key !== undefined ? this.#keys.get(key) : undefined;
    if (k !== undefined) {
      const at = k.idle.indexOf(s);
      if (at >= 0) k.idle.splice(at, 1);
    }
  }

  /** A socket left the pool (destroyed, closed, failed): free its slot, serve waiters. */
  #forget(s: RawSocket): void {
    const key = this.#owned.get(s);
    if (key === undefined) return;
    this.#unpark(s);
    this.#owned.delete(s);
    const k = this.#keys.get(key)!;
    k.open--;
    this.#open--;
    if (k.open === 0 && k.idle.length === 0) this.#keys.delete(key);
    this.#serve();
    this.#maybeClosed();
  }

  /** Serves waiters in FIFO order while sockets can be found or made. */
  #serve(): void {
    // Serving can close dead idle sockets, which serves again: run the loop once, from the top.
    if (this.#serving) {
      this.#serveAgain = true;
      return;
    }
    this.#serving = true;
    try {
      do {
        this.#serveAgain = false;
        this.#serveOnce();
      } while (this.#serveAgain);
    } finally {
      this.#serving = false;
    }
  }

  #serveOnce(): void {
    for (let i = 0; i < this.#waiters.length; ) {
      const w = this.#waiters[i]!;
      const idle = this.#takeIdle(w.key);
      if (idle !== undefined) {
        this.#waiters.splice(i, 1);
        this.#settle(w, idle);
        continue;
      }
      if (this.#tryOpen(w)) {
        this.#waiters.splice(i, 1);
        continue;
      }
      if (this.#open >= this.#max && this.#idle.size === 0) return; // nothing can move
      i++;
    }
  }

  #maybeClosed(): void {
    if (this.#closeResolve === undefined || this.#open > 0) return;
    const r = this.#closeResolve;
    this.#closeResolve = undefined;
    r();
  }
}

function reusable(s: RawSocket): boolean {
  return !s.destroyed && !s.peerEnded && !s.writableEnded && !s.errored;
}
