// The Response fetch() resolves with: a real global Response (a subclass, so `instanceof
// Response` holds and text()/json()/arrayBuffer()/blob()/formData()/clone() are the platform's),
// whose body is a web byte stream fed from the engine's streamed body with backpressure.

import type { Readable } from 'node:stream';
import { UvfetchError } from '../errors.js';
import type { ResponseInfo } from '../response.js';
import type { RedirectHop } from '../redirect.js';
import type { Timings } from '../tracing.js';
import type { TlsInfo } from '../tls.js';

/** What uvfetch knows about a fetch() response beyond the standard (`res.uvfetch`). */
export interface FetchResponseDetails {
  /** HTTP version, connection reuse, the engine's transparent retry. */
  info: ResponseInfo;
  /** https: what the handshake negotiated (version, cipher, ALPN, peer certificate, JA3/JA4). */
  tls: TlsInfo | undefined;
  /** Phase timings of the last hop, with `timings: true` (or while tracing). */
  timings: Timings | undefined;
  /** The redirects followed (empty when none). */
  redirects: readonly RedirectHop[];
}

const kMeta = Symbol('uvfetch.fetchResponse');

interface Meta {
  url: string;
  redirected: boolean;
  type: ResponseType;
  details: FetchResponseDetails;
}

type WithMeta = Response & { [kMeta]: Meta };

/**
 * A global Response whose url, redirected and type are those of the fetch that made it (a
 * constructed Response has no URL and type 'default'; the platform gives no other way to set them).
 */
class FetchResponse extends Response {}

Object.defineProperties(FetchResponse.prototype, {
  url: {
    get(this: WithMeta): string {
      return this[kMeta].url;
    },
    configurable: true,
    enumerable: true,
  },
  redirected: {
    get(this: WithMeta): boolean {
      return this[kMeta].redirected;
    },
    configurable: true,
    enumerable: true,
  },
  type: {
    get(this: WithMeta): ResponseType {
      return this[kMeta].type;
    },
    configurable: true,
    enumerable: true,
  },
  uvfetch: {
    get(this: WithMeta): FetchResponseDetails {
      return this[kMeta].details;
    },
    configurable: true,
  },
  clone: {
    value: function clone(this: WithMeta): Response {
      // The platform's clone() tees the body and returns a plain Response: give it our view.
      const c = Response.prototype.clone.call(this) as WithMeta;
      Object.setPrototypeOf(c, FetchResponse.prototype);
      c[kMeta] = this[kMeta];
      return c;
    },
    configurable: true,
    writable: true,
  },
});

/** Statuses whose response has no body (and HEAD responses): Response forbids one. */
function nullBodyStatus(status: number): boolean {
  return status === 101 || status === 103 || status === 204 || status === 205 || status === 304;
}

/** Header pairs of a raw head (status line skipped; the engine validated every line). */
export function headerPairs(raw: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let pos = raw.indexOf('\r\n') + 2;
  while (pos < raw.length) {
    const eol = raw.indexOf('\r\n', pos);
    if (eol === -1 || eol === pos) break;
    const colon = raw.indexOf(':', pos);
    out.push([raw.slice(pos, colon), raw.slice(colon + 1, eol).trim()]);
    pos = eol + 2;
  }
  return out;
}

export interface BodyOptions {
  /** What a failed body read rejects with (fetch: the signal's reason, or TypeError('terminated')). */
  mapError(err: unknown): unknown;
  /** Largest body (decoded bytes) before the stream errors with ERR_BODY_TOO_LARGE. */
  maxBodySize: number;
  url: string;
}

const HIGH_WATER = 64 * 1024;

/**
 * A web byte stream over the engine's streamed body. Flowing while the stream's queue has room
 * (64 KiB); when it is full the Readable is paused, its own buffer fills, and the engine stops
 * reading the socket. Cancelling the stream aborts the request (the socket is closed).
 */
export function webBody(readable: Readable, o: BodyOptions): ReadableStream<Uint8Array> {
  let received = 0;
  let settled = false;
  return new ReadableStream(
    {
      type: 'bytes',
      start(c: ReadableByteStreamController) {
        readable.on('data', (chunk: Buffer) => {
          if (settled) return;
          received += chunk.byteLength;
          if (received > o.maxBodySize) {
            settled = true;
            readable.destroy();
            c.error(o.mapError(new UvfetchError('ERR_BODY_TOO_LARGE', `response body exceeds ${o.maxBodySize} bytes`, { url: o.url })));
            return;
          }
          enqueue(c, chunk);
          if ((c.desiredSize ?? 0) <= 0) readable.pause();
        });
        readable.once('end', () => {
          if (settled) return;
          settled = true;
          c.close();
          c.byobRequest?.respond(0);
        });
        readable.once('error', (err) => {
          if (settled) return;
          settled = true;
          c.error(o.mapError(err));
        });
      },
      pull() {
        if (readable.isPaused()) readable.resume();
      },
      cancel() {
        settled = true;
        readable.destroy();
      },
    },
    { highWaterMark: HIGH_WATER },
  );
}

/**
 * enqueue() on a byte stream transfers (detaches) the chunk's ArrayBuffer: a Buffer that shares
 * one (Node's small-Buffer pool) is copied; one that owns its memory is handed over as is, unless
 * its memory cannot be transferred (then it is copied too).
 */
function enqueue(c: ReadableByteStreamController, chunk: Buffer): void {
  if (chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.byteLength >= 4096) {
    try {
      c.enqueue(chunk as Uint8Array<ArrayBuffer>);
      return;
    } catch {
      /* not transferable: copy */
    }
  }
  c.enqueue(new Uint8Array(chunk));
}

export interface MakeResponse {
  status: number;
  statusText: string;
  rawHead: string;
  body: Readable;
  /** HEAD: no body whatever the status. */
  head: boolean;
  url: string;
  redirected: boolean;
  type: ResponseType;
  details: FetchResponseDetails;
  bodyOptions: BodyOptions;
}

/** The global Response of a fetch. */
export function makeResponse(m: MakeResponse): Response {
  let stream: ReadableStream<Uint8Array> | null = null;
  if (m.head || nullBodyStatus(m.status)) {
    m.body.resume(); // nothing to read; lets the (empty) Readable end
  } else {
    stream = webBody(m.body, m.bodyOptions);
  }
  const res = new FetchResponse(stream, { status: m.status, statusText: m.statusText, headers: headerPairs(m.rawHead) }) as unknown as WithMeta;
  res[kMeta] = { url: m.url, redirected: m.redirected, type: m.type, details: m.details };
  return res;
}
