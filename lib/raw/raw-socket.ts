// Raw non-blocking sockets for users' own protocols: a Duplex over the engine's RawConnection
// (native/core/client/raw_connection.h). The bytes never pass through node:net; connects go
// through the session's DNS cache and descriptor accounting, TLS through the native core.
//
// Flow control both ways: a full readable buffer (push() false) stops the native read; _read()
// restarts it. A write the kernel does not take at once is queued natively and its callback waits
// for the native drain, so further writes gather in the Writable buffer and write() returns false
// above writableHighWaterMark, exactly like node:net.

import { isIP } from 'node:net';
import { Duplex } from 'node:stream';
import { invalidOption, UvfetchError } from '../core/errors.js';
import { checkKeys, intIn, MAX_TIMER } from '../core/options.js';
import type { NativeEngine, NativeRawOptions } from '../native/binding.js';
import { nativeError } from '../native/errors.js';
import { Ev, type EventRecord } from '../native/wire.js';
import { kRawAccess, type RawAccess } from '../session/raw-access.js';
import { Session } from '../session/session.js';
import { rawContext, TlsProfile } from '../tls/profile.js';
import type { TlsInfo, TlsOptions } from '../tls/types.js';
const CONNECT_KEYS = new Set(['host', 'port', 'tls', 'servername', 'localAddress', 'timeout', 'noDelay', 'keepAlive', 'session', 'signal', 'highWaterMark']);

export interface ConnectOptions {
  host: string;
  port: number;
  /** TLS on the socket: `true` (the session's profile), a `TlsProfile`, or its options. */
  tls?: TlsProfile | TlsOptions | boolean;
  /** TLS: the name sent as SNI and verified against the certificate (default: `host`). */
  servername?: string;
  /** Local IP to bind to (default: the session's `localAddress`). */
  localAddress?: string;
  /** ms: name resolution + TCP connect, and (separately) the TLS handshake. Default: the session's `timeout.connect` / `timeout.tls`. 0 = none. */
  timeout?: number | { connect?: number; tls?: number };
  /** TCP_NODELAY, default true. */
  noDelay?: boolean;
  /** TCP keep-alive probes after this idle time (ms); 0 (default) = off. */
  keepAlive?: number;
  /** Share this session's engine: its DNS cache, descriptor budget, TLS session cache. Default: a module-wide session. */
  session?: Session;
  /** Aborts the connect (ERR_ABORTED). */
  signal?: AbortSignal;
  /** Readable and writable high-water marks, bytes (default 64 KiB). */
  highWaterMark?: number;
}

let defaultSession: Session | undefined;
/** The session raw sockets use when none is passed (created on first use, never closed). */
function sharedSession(): Session {
  // Its socket budget is the descriptor limit (less a reserve), not the HTTP default of 256.
  defaultSession ??= new Session({ connections: 'auto' });
  return defaultSession;
}

/** One engine's raw sockets by id, fed from its Dispatcher. */
class RawRouter {
  readonly sockets = new Map<number, RawSocket>();
  nextId = 1;
  constructor(readonly access: RawAccess) {}

  take(): number {
    // Ids are u32 and unique among live sockets of this engine.
    for (;;) {
      const id = this.nextId;
      this.nextId = id === 0xffffffff ? 1 : id + 1;
      if (!this.sockets.has(id)) return id;
    }
  }

  event(rec: EventRecord): void {
    const s = this.sockets.get(rec.id);
    if (s === undefined) return;
    switch (rec.type) {
      case Ev.RawData:
        // Small chunks are views into this turn's batch (a fresh buffer per turn: no copy).
        s[kOnData](rec.bodyView());
        return;
      case Ev.RawDrain:
        s[kOnDrain]();
        return;
      case Ev.RawOpen: {
        const [remote = '', local = ''] = rec.text().split('\0');
        const tlsId = rec.rawTlsInfoId;
        s[kOnOpen](remote, rec.remotePort, local, rec.localPort, tlsId !== 0 ? this.access.events.tlsInfo.get(tlsId) : undefined);
        return;
      }
      case Ev.RawEnd:
        s[kOnEnd]();
        return;
      case Ev.RawError:
        s[kOnError](nativeError(rec.errorIndex, rec.text(), rec.sysErrno));
        return;
      case Ev.RawFinished:
        s[kOnFinished]();
        return;
      case Ev.RawClosed:
        this.sockets.delete(rec.id);
        s[kOnClosed]();
        return;
    }
  }
}

const routers = new WeakMap<object, RawRouter>();
function routerOf(session: Session): RawRouter {
  const access = session[kRawAccess]();
  let r = routers.get(access.engine);
  if (r === undefined) {
    const router = new RawRouter(access);
    access.events.raw = (rec) => router.event(rec);
    routers.set(access.engine, router);
    r = router;
  }
  return r;
}

const kOnOpen = Symbol('onOpen');
const kOnData = Symbol('onData');
const kOnEnd = Symbol('onEnd');
const kOnError = Symbol('onError');
const kOnDrain = Symbol('onDrain');
const kOnClosed = Symbol('onClosed');
const kOnFinished = Symbol('onFinished');
const kConnecting = Symbol('connecting');
const kAbortConnect = Symbol('abortConnect');

/**
 * A connected raw socket (from `connect()` or a `SocketPool`). A `Duplex` with `allowHalfOpen`:
 * `end()` sends a FIN (after a TLS close_notify) while reading goes on; the peer's FIN ends the
 * readable side while writing goes on.
 */
export class RawSocket extends Duplex {
  /** Peer and local addresses (set when the connection opened). */
  remoteAddress = '';
  remotePort = 0;
  localAddress = '';
  localPort = 0;
  /** What the TLS handshake negotiated (protocol, cipher, alpn, ja3, ja4, ...); undefined on plain TCP. */
  tls: TlsInfo | undefined;
  /** The peer sent its FIN (or TLS close_notify): nothing more will be read. */
  peerEnded = false;
  /** Plaintext bytes received / handed to the engine. */
  bytesRead = 0;
  bytesWritten = 0;
  /** The pool key this socket belongs to (SocketPool sockets only). */
  poolKey: string | undefined;

  readonly #engine: NativeEngine;
  readonly #id: number;
  #writeCb: ((err?: Error | null) => void) | undefined;
  #finalCb: ((err?: Error | null) => void) | undefined;
  #nativePaused = false;
  #nativeClosed = false;
  #destroyCb: (() => void) | undefined;
  #opening: { resolve: (s: RawSocket) => void; reject: (e: unknown) => void } | undefined;
  #abortReason: UvfetchError | undefined;

  /** @internal Use connect(). */
  constructor(engine: NativeEngine, id: number, highWaterMark: number) {
    super({ allowHalfOpen: true, highWaterMark, decodeStrings: true });
    this.#engine = engine;
    this.#id = id;
  }

  /** Bytes waiting in this socket's Writable buffer (the native queue holds at most one write's remainder). */
  get bufferedAmount(): number {
    return this.writableLength;
  }

  /** Destroys the socket with a TCP RST instead of a FIN. */
  resetAndDestroy(): this {
    if (!this.#nativeClosed) this.#engine.rawDestroy(this.#id, true);
    return this.destroy();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const q = this.#engine.rawWrite(this.#id, chunk);
    if (q < 0) {
      cb(new UvfetchError('ERR_SOCKET_CLOSED', 'socket is closed'));
      return;
    }
    this.bytesWritten += chunk.byteLength;
    if (q === 0) {
      cb();
    } else {
      this.#writeCb = cb; // the native drain event calls it
    }
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    this._write(bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs), 'buffer' as BufferEncoding, cb);
  }

  // 'finish' means what it means on node:net: every byte written and the FIN are in the kernel
  // (the native end completes after the queued bytes and, under TLS, the close_notify).
  override _final(cb: (err?: Error | null) => void): void {
    if (this.#nativeClosed) {
      cb(new UvfetchError('ERR_SOCKET_CLOSED', 'socket is closed'));
      return;
    }
    this.#finalCb = cb;
    this.#engine.rawEnd(this.#id);
  }

  override _read(): void {
    if (this.#nativePaused) {
      this.#nativePaused = false;
      this.#engine.rawResume(this.#id);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#writeCb = undefined;
    if (this.#nativeClosed) {
      cb(err);
      return;
    }
    // 'close' follows the native close, so a closed socket never holds a descriptor.
    this.#destroyCb = () => cb(err);
    this.#engine.rawDestroy(this.#id, false);
  }

  /** @internal */
  [kOnOpen](remote: string, remotePort: number, local: string, localPort: number, tls: TlsInfo | undefined): void {
    this.remoteAddress = remote;
    this.remotePort = remotePort;
    this.localAddress = local;
    this.localPort = localPort;
    this.tls = tls;
    const o = this.#opening;
    this.#opening = undefined;
    o?.resolve(this);
  }

  /** @internal */
  [kOnData](chunk: Buffer): void {
    this.bytesRead += chunk.byteLength;
    if (!this.push(chunk) && !this.#nativePaused) {
      this.#nativePaused = true;
      this.#engine.rawPause(this.#id);
    }
  }

  /** @internal */
  [kOnEnd](): void {
    this.peerEnded = true;
    this.push(null);
    this.emit('peerend');
  }

  /** @internal */
  [kOnError](err: UvfetchError): void {
    const o = this.#opening;
    if (o !== undefined) {
      this.#opening = undefined;
      o.reject(this.#abortReason ?? err);
      this.destroy();
      return;
    }
    this.destroy(err);
  }

  /** @internal */
  [kOnDrain](): void {
    const cb = this.#writeCb;
    this.#writeCb = undefined;
    cb?.();
  }

  /** @internal */
  [kOnFinished](): void {
    const cb = this.#finalCb;
    this.#finalCb = undefined;
    cb?.();
  }

  /** @internal */
  [kOnClosed](): void {
    this.#nativeClosed = true;
    // Closed before end() completed (an error, or destroy()): the stream is being destroyed, for
    // which a pending final callback is a no-op; calling it releases it.
    const fin = this.#finalCb;
    this.#finalCb = undefined;
    fin?.();
    const o = this.#opening;
    if (o !== undefined) {
      this.#opening = undefined;
      o.reject(this.#abortReason ?? new UvfetchError('ERR_SOCKET_CLOSED', 'socket closed while connecting'));
      this.destroy();
    }
    // Otherwise both directions ended natively: the descriptor is gone, and the Duplex destroys
    // itself (autoDestroy) once its consumer has read to the end.
    const cb = this.#destroyCb;
    this.#destroyCb = undefined;
    cb?.();
  }

  /** @internal */
  [kConnecting](resolve: (s: RawSocket) => void, reject: (e: unknown) => void): void {
    this.#opening = { resolve, reject };
  }

  /** @internal Aborting a connect: the engine closes it; the promise rejects with `reason`. */
  [kAbortConnect](reason: UvfetchError): void {
    if (this.#opening === undefined) return;
    this.#abortReason = reason;
    this.#engine.rawDestroy(this.#id, true);
  }
}

const timeoutOpt = (v: unknown, name: string): number => intIn(v, name, 0, MAX_TIMER);

/** Validates connect() options into the native form (throws ERR_INVALID_OPTION). */
function nativeOptions(o: ConnectOptions, access: RawAccess): { host: string; tls: TlsProfile | null; native: NativeRawOptions; hwm: number } {
  if (o === null || typeof o !== 'object') throw invalidOption('options', 'expected an object');
  checkKeys(o, CONNECT_KEYS);
  if (typeof o.host !== 'string' || o.host === '' || /[\s/]/.test(o.host)) throw invalidOption('host', 'expected a host name or IP address');
  const host = o.host.startsWith('[') && o.host.endsWith(']') ? o.host.slice(1, -1) : o.host;
  if (typeof o.port !== 'number' || !Number.isInteger(o.port) || o.port < 1 || o.port > 65535)
    throw invalidOption('port', 'expected an integer from 1 to 65535');
  let tls: TlsProfile | null = null;
  if (o.tls === true) tls = access.tls();
  else if (o.tls !== undefined && o.tls !== false) tls = TlsProfile.from(o.tls);
  const native: NativeRawOptions = {
    connectTimeout: access.connectTimeout,
    tlsTimeout: access.tlsTimeout,
    noDelay: true,
    keepAlive: 0,
  };
  if (o.servername !== undefined) {
    if (typeof o.servername !== 'string' || o.servername === '' || /[\s/]/.test(o.servername)) throw invalidOption('servername', 'expected a host name');
    native.servername = o.servername;
  }
  if (o.localAddress !== undefined) {
    if (typeof o.localAddress !== 'string' || isIP(o.localAddress) === 0) throw invalidOption('localAddress', 'expected an IPv4 or IPv6 address');
    native.localAddress = o.localAddress;
  }
  if (typeof o.timeout === 'number') {
    native.connectTimeout = native.tlsTimeout = timeoutOpt(o.timeout, 'timeout');
  } else if (o.timeout !== undefined) {
    if (o.timeout === null || typeof o.timeout !== 'object') throw invalidOption('timeout', 'expected a number or { connect, tls }');
    if (o.timeout.connect !== undefined) native.connectTimeout = timeoutOpt(o.timeout.connect, 'timeout.connect');
    if (o.timeout.tls !== undefined) native.tlsTimeout = timeoutOpt(o.timeout.tls, 'timeout.tls');
  }
  if (o.noDelay !== undefined) {
    if (typeof o.noDelay !== 'boolean') throw invalidOption('noDelay', 'expected a boolean');
    native.noDelay = o.noDelay;
  }
  if (o.keepAlive !== undefined) native.keepAlive = timeoutOpt(o.keepAlive, 'keepAlive');
  let hwm = 64 * 1024;
  if (o.highWaterMark !== undefined) {
    if (typeof o.highWaterMark !== 'number' || !Number.isInteger(o.highWaterMark) || o.highWaterMark < 1)
      throw invalidOption('highWaterMark', 'expected a positive integer');
    hwm = o.highWaterMark;
  }
  return { host, tls, native, hwm };
}

/**
 * Opens a raw TCP (or TLS) connection through uvfetch's engine. Resolves once connected (and the
 * TLS handshake finished); rejects with a UvfetchError (ERR_CONNECTION_REFUSED, ERR_DNS_NOT_FOUND,
 * ERR_CONNECT_TIMEOUT, ERR_TLS_*, ERR_FD_EXHAUSTED, ERR_ABORTED, ...). Invalid options throw.
 */
export function connect(options: ConnectOptions): Promise<RawSocket> {
  if (options !== null && typeof options === 'object' && options.session !== undefined && !(options.session instanceof Session)) {
    throw invalidOption('session', 'expected a Session');
  }
  const session = options?.session ?? sharedSession();
  const router = routerOf(session);
  const access = router.access;
  const { host, tls, native, hwm } = nativeOptions(options, access);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidOption('signal', 'expected an AbortSignal');
  if (access.closed()) return Promise.reject(new UvfetchError('ERR_SESSION_CLOSED', 'session is closed'));
  if (signal?.aborted) return Promise.reject(new UvfetchError('ERR_ABORTED', 'connect aborted', { cause: signal.reason }));
  const id = router.take();
  const sock = new RawSocket(access.engine, id, hwm);
  const rc = access.engine.rawConnect(id, host, options.port, tls === null ? null : rawContext(tls), native);
  if (rc !== 0) return Promise.reject(nativeError(rc, access.engine.lastError(), 0));
  router.sockets.set(id, sock);
  return new Promise<RawSocket>((resolve, reject) => {
    if (signal === undefined) {
      sock[kConnecting](resolve, reject);
      return;
    }
    const onAbort = () => sock[kAbortConnect](new UvfetchError('ERR_ABORTED', 'connect aborted', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    sock[kConnecting](
      (s) => {
        signal.removeEventListener('abort', onAbort);
        resolve(s);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
