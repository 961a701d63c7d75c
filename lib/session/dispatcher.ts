// Receives a Session's event batches from the engine and settles its requests: buffered responses,
// streamed heads and bodies, errors, DNS lookups and queries, TLS session info; raw-socket events
// go on to lib/raw/ through the RawEvents hook. Records are read through lib/native/wire.ts.
import { Readable } from 'node:stream';
import type { UvfetchError } from '../core/errors.js';
import type { DnsLookupFunction, Timings } from '../core/types.js';
import { runLookup } from '../net/dns.js';
import type { NativeEngine } from '../native/binding.js';
import { ResponseHeaders } from '../core/headers.js';
import { IdTable } from '../core/id-table.js';
import { nativeError } from '../native/errors.js';
import { Ev, EventRecord, forEachRecord } from '../native/wire.js';
import { RateWindow } from '../observability/metrics.js';
import { channels, publishHead } from '../observability/tracing.js';
import { isRedirectStatus, type RedirectPolicy } from '../policies/redirect.js';
import { decodeTlsInfo } from '../tls/info.js';
import type { TlsInfo } from '../tls/types.js';
import type { RawEvents } from './raw-access.js';
import { httpVersionOf, Response, type ResponseInfo, StreamResponse } from './response.js';
import type { RequestOptions } from './types.js';

const noop = (): void => {};

/** One request in flight, from submit to its settlement. */
export interface Pending {
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
  // Redirects on the plain path: a 3xx to follow hands these to the interceptor chain below the redirect interceptor (interceptors.ts followFrom()).
  input: URL | undefined; // only when it has credentials (p.url has them removed); else p.url is parsed again
  options: RequestOptions | undefined;
  redirect: RedirectPolicy | undefined; // undefined: hand every 3xx back as is
  start: number; // performance.now() at submit when a total timeout applies, else 0
  trailers?: string; // trailer fields received (before Complete / End)
  streamRes?: WeakRef<StreamResponse>; // stream mode: gets `trailers` at the end
}

function trailersOf(fields: string): ResponseHeaders {
  return new ResponseHeaders(`trailers\r\n${fields}\r\n`);
}

/** An address from session.dns.lookup(). */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

function infoOf(rec: EventRecord, impersonate: string | undefined, h2Fingerprint: string | undefined): ResponseInfo {
  const minor = rec.httpVersionMinor;
  const info: ResponseInfo = {
    httpVersion: httpVersionOf(rec.httpVersionMajor, minor),
    httpVersionMinor: minor,
    reused: rec.reused,
    attempts: rec.attempts,
    impersonate,
  };
  if (h2Fingerprint !== undefined) info.h2Fingerprint = h2Fingerprint;
  return info;
}

/**
 * Receives the engine's event batches. Deliberately holds no reference to the Session, so a
 * Session dropped without close() can still be garbage-collected (its native side then closes).
 */
export class Dispatcher implements RawEvents {
  /** In-flight requests by id (an IdTable, not a Map: see lib/core/id-table.ts). */
  readonly pending = new IdTable<Pending>();
  readonly #abandoned = new FinalizationRegistry<number>((id) => this.#onAbandoned(id));
  readonly #rec = new EventRecord();
  readonly #handle = (rec: EventRecord): void => this.#one(rec);
  readonly byStatus = new Float64Array(6); // index = status / 100
  readonly rate = new RateWindow();
  closeResolve: (() => void) | undefined;
  engine: NativeEngine | undefined;
  /** The session's browser profile name (res.info.impersonate). */
  impersonate: string | undefined;
  // TLS session info per live connection (by the engine's info id), and the info of the
  // connection that served the next Complete/Head record (a TlsRef record precedes it).
  readonly tlsInfo = new Map<number, TlsInfo>();
  refId = 0;
  refTls: TlsInfo | undefined = undefined;
  // HTTP/2 connections' fingerprints (by info id), and the one of the next Complete/Head record.
  readonly h2Info = new Map<number, string>();
  refH2: string | undefined = undefined;
  /** dns.lookup / dns.resolver 'records': the engine asks here once per real lookup. */
  lookup: DnsLookupFunction | undefined;
  lookupTimeout = 0;
  /** Continues a request whose 3xx is to be followed (undefined: the session is gone). */
  onRedirect: ((p: Pending, res: Response | StreamResponse) => Promise<Response | StreamResponse> | undefined) | undefined;
  /** Raw-socket events (types 20 and up), routed by lib/raw/raw-socket.ts; set on first use. */
  raw: ((rec: EventRecord) => void) | undefined;
  readonly dnsQueries = new Map<number, { host: string; resolve: (a: ResolvedAddress[]) => void; reject: (e: unknown) => void }>();
  nextQuery = 1;
  /** Stream bodies collected before their end (their requests were aborted). */
  abandoned = 0;

  onEvents(batch: Buffer, bigs: Buffer[] | undefined): void {
    forEachRecord(batch, bigs, this.#rec, this.#handle);
  }

  #one(rec: EventRecord): void {
    const type = rec.type;
    if (type >= Ev.RawOpen) {
      this.raw?.(rec);
      return;
    }
    switch (type) {
      case Ev.Closed: {
        const r = this.closeResolve;
        this.closeResolve = undefined;
        this.tlsInfo.clear();
        this.h2Info.clear();
        r?.();
        return;
      }
      case Ev.TlsInfo: {
        const { info, origin } = decodeTlsInfo(rec.tlsFlags, rec.text());
        this.tlsInfo.set(rec.id, info);
        if (channels.tlsHandshake.hasSubscribers) channels.tlsHandshake.publish({ origin, duration: rec.handshakeMs, tls: info });
        return;
      }
      case Ev.TlsForget:
        this.tlsInfo.delete(rec.id);
        return;
      case Ev.TlsRef:
        this.refId = rec.id;
        this.refTls = rec.tlsInfoId === 0 ? undefined : this.tlsInfo.get(rec.tlsInfoId);
        this.refH2 = rec.h2InfoId === 0 ? undefined : this.h2Info.get(rec.h2InfoId);
        return;
      case Ev.H2Info:
        this.h2Info.set(rec.id, rec.text());
        return;
      case Ev.H2Forget:
        this.h2Info.delete(rec.id);
        return;
      case Ev.DnsLookup:
        if (this.lookup !== undefined && this.engine !== undefined) {
          runLookup(this.engine, this.lookup, rec.lookupId, rec.text(), rec.family, this.lookupTimeout);
        }
        return;
      case Ev.DnsResult: {
        const q = this.dnsQueries.get(rec.id);
        if (q === undefined) return;
        this.dnsQueries.delete(rec.id);
        if (rec.errorIndex !== 0) {
          q.reject(nativeError(rec.errorIndex, q.host, 0));
          return;
        }
        const list = rec.n1 === 0 ? [] : rec.text().split(',');
        q.resolve(list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
        return;
      }
    }
    const p = this.pending.get(rec.id);
    if (p === undefined) return; // aborted meanwhile
    switch (type) {
      case Ev.Timings:
        p.timings = rec.timings();
        return;
      case Ev.Complete:
        this.#onComplete(p, rec);
        return;
      case Ev.Head:
        this.#onHead(p, rec);
        return;
      case Ev.Data: {
        const chunk = rec.bodyCopy();
        const r = p.readable?.deref();
        if (r !== undefined && !r.push(chunk)) this.engine!.pause(p.id);
        return;
      }
      case Ev.Trailers: {
        if (!p.stream) {
          p.trailers = rec.text();
        } else {
          const res = p.streamRes?.deref();
          if (res !== undefined) res.trailers = trailersOf(rec.text());
        }
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
        const err = nativeError(rec.errorIndex, rec.text(), rec.sysErrno, p.url, p.method);
        if (p.traced && channels.requestError.hasSubscribers) {
          channels.requestError.publish({ id: p.id, method: p.method, url: p.url, error: err, timings: p.timings });
        }
        if (p.readable !== undefined) {
          p.readable.deref()?.destroy(err);
        } else {
          p.reject(err);
          p.resolve = noop;
          p.reject = noop;
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

  #onComplete(p: Pending, rec: EventRecord): void {
    this.#settle(p);
    const ref = this.refId === p.id;
    const res = new Response(rec.status, p.url, rec.text(), infoOf(rec, this.impersonate, ref ? this.refH2 : undefined), rec.bodyCopy());
    res.timings = p.timings;
    if (ref) res.tls = this.#takeTls();
    if (p.trailers !== undefined) res.trailers = trailersOf(p.trailers);
    this.#count(res.status);
    if (p.traced) publishHead(p.id, p.method, p.url, res.status, res.info.reused, p.timings!, true);
    p.resolve(p.redirect !== undefined && isRedirectStatus(res.status) ? (this.onRedirect?.(p, res) ?? res) : res);
    // Settled: nothing of the request may keep its promise (and through it the Response)
    // reachable from here on.
    p.resolve = noop;
    p.reject = noop;
  }

  #onHead(p: Pending, rec: EventRecord): void {
    const id = p.id;
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
    const ref = this.refId === id;
    const res = new StreamResponse(rec.status, p.url, rec.text(), infoOf(rec, this.impersonate, ref ? this.refH2 : undefined), readable);
    res.timings = p.timings;
    if (ref) res.tls = this.#takeTls();
    p.streamRes = new WeakRef(res);
    p.status = res.status;
    this.#count(res.status);
    if (p.traced) publishHead(id, p.method, p.url, res.status, res.info.reused, p.timings!, false);
    p.resolve(p.redirect !== undefined && isRedirectStatus(res.status) ? (this.onRedirect?.(p, res) ?? res) : res);
    // The resolvers keep the settled promise, and through it the response, reachable: drop
    // them so an unread body can be collected (errors from here on go to the body).
    p.resolve = noop;
    p.reject = noop;
  }

  #takeTls(): TlsInfo | undefined {
    const t = this.refTls;
    this.refId = 0;
    this.refTls = undefined;
    this.refH2 = undefined;
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
      p.resolve = noop;
      p.reject = noop;
    }
  }
}
