// The Response fetch() resolves with: a real global Response (a subclass, so `instanceof
// Response` holds), whose body is a web byte stream fed from the engine's streamed body with
// backpressure — made lazily (see FetchResponse).

import * as nodeStream from 'node:stream';
import type { Readable } from 'node:stream';
import { UvfetchError } from '../core/errors.js';
import type { FetchResponseDetails } from '../session/fetch-types.js';

const kMeta = Symbol('uvfetch.fetchResponse');

/** Per response (shared by the views of one response, not by clones). */
interface Meta {
  url: string;
  redirected: boolean;
  type: ResponseType;
  details: FetchResponseDetails;
  /** The engine's stream of the body, until it is read or turned into `stream`; undefined: no body. */
  readable: Readable | undefined;
  bodyOptions: BodyOptions | undefined;
  /** The web stream, once `body` was asked for (or a clone tee'd it). */
  stream: ReadableStream<Uint8Array> | undefined;
  /** Read through the fast path (text(), json(), arrayBuffer(), bytes()). */
  used: boolean;
}

type WithMeta = Response & { [kMeta]: Meta };

/**
 * A global Response whose url, redirected and type are those of the fetch that made it (a
 * constructed Response has no URL and type 'default'; the platform gives no other way to set them).
 *
 * Its body is lazy: `res.body` is a web byte stream over the engine's stream, made when first
 * asked for; text(), json(), arrayBuffer() and bytes() read the engine's stream directly when
 * nobody asked for `body` (the web stream, a platform Response around it and the platform's
 * reader cost ~30 µs a response — most of what fetch() would cost over request()). blob(),
 * formData() and clone() go through the platform, on the web stream.
 *
 * Made at the first fetch, not at import: on Node 20 touching the global Response loads Node's
 * own fetch implementation (~10 ms, ~4 MiB), which `import 'uvfetch'` must not cost users of
 * request(). (Node 22+ loads it at start-up anyway.)
 */
let FetchResponseClass: (new (body: null, init: ResponseInit) => Response) | undefined;
function fetchResponseClass(): new (body: null, init: ResponseInit) => Response {
  if (FetchResponseClass === undefined) {
    class FetchResponse extends Response {}
    Object.defineProperties(FetchResponse.prototype, prototypeProperties());
    FetchResponseClass = FetchResponse;
  }
  return FetchResponseClass;
}

const DECODER = new TextDecoder();
let unusable: TypeError | undefined;
/** The platform's own "body already read" error (its wording, whatever the Node version). */
async function usedError(): Promise<TypeError> {
  if (unusable === undefined) {
    const r = new Response('');
    await r.arrayBuffer();
    try {
      await r.arrayBuffer();
    } catch (e) {
      unusable = e as TypeError;
    }
  }
  return new TypeError(unusable?.message ?? 'Body is unusable: Body has already been read');
}

function isDisturbed(s: ReadableStream<unknown>): boolean {
  return (disturbedFn ??= (nodeStream as unknown as { isDisturbed: (s: unknown) => boolean }).isDisturbed)(s);
}
let disturbedFn: ((s: unknown) => boolean) | undefined;

/** The web stream of `m` (made now if need be), or null for a response without a body. */
function streamOf(m: Meta): ReadableStream<Uint8Array> | null {
  if (m.stream !== undefined) return m.stream;
  if (m.readable === undefined) return null;
  if (m.used) {
    // Read already: an empty, finished stream stands for it (bodyUsed stays true).
    m.stream = new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  } else {
    m.stream = webBody(m.readable, m.bodyOptions!);
  }
  m.readable = undefined;
  return m.stream;
}

/** The whole body from the engine's stream (fast path), bounded by maxBodySize. */
function readAll(readable: Readable, o: BodyOptions): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    if (readable.errored) {
      reject(o.mapError(readable.errored));
      return;
    }
    const parts: Buffer[] = [];
    let n = 0;
    readable.on('data', (c: Buffer) => {
      n += c.length;
      if (n > o.maxBodySize) {
        readable.destroy();
        reject(o.mapError(new UvfetchError('ERR_BODY_TOO_LARGE', `response body exceeds ${o.maxBodySize} bytes`, { url: o.url })));
        return;
      }
      parts.push(c);
    });
    readable.once('end', () => resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, n)));
    readable.once('error', (e) => reject(o.mapError(e)));
    readable.once('close', () => {
      if (!readable.readableEnded && !readable.errored) reject(o.mapError(new UvfetchError('ERR_ABORTED', 'response body destroyed', { url: o.url })));
    });
  });
}

const EMPTY = Buffer.alloc(0);

/** The body's bytes by the fast path, or by the platform when the web stream exists. */
async function bytesOf(res: WithMeta): Promise<Buffer | null> {
  const m = res[kMeta];
  if (m.stream !== undefined) return null; // the platform reads the stream
  if (m.used) throw await usedError();
  if (m.readable === undefined) return EMPTY;
  m.used = true;
  const readable = m.readable;
  return readAll(readable, m.bodyOptions!);
}

/** A platform Response over the web stream, to read it with the platform's semantics. */
async function platformView(res: WithMeta): Promise<Response> {
  const stream = streamOf(res[kMeta]);
  if (stream !== null && (stream.locked || isDisturbed(stream))) throw await usedError();
  const ct = res.headers.get('content-type');
  return new Response(stream, ct === null ? undefined : { headers: { 'content-type': ct } });
}

function copyToArrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

const methods: PropertyDescriptorMap = {
  body: {
    get(this: WithMeta): ReadableStream<Uint8Array> | null {
      return streamOf(this[kMeta]);
    },
    configurable: true,
    enumerable: true,
  },
  bodyUsed: {
    get(this: WithMeta): boolean {
      const m = this[kMeta];
      return m.used || (m.stream !== undefined && isDisturbed(m.stream));
    },
    configurable: true,
    enumerable: true,
  },
  text: {
    value: async function text(this: WithMeta): Promise<string> {
      const b = await bytesOf(this);
      return b === null ? (await platformView(this)).text() : DECODER.decode(b);
    },
    configurable: true,
    writable: true,
  },
  json: {
    value: async function json(this: WithMeta): Promise<unknown> {
      const b = await bytesOf(this);
      return b === null ? (await platformView(this)).json() : JSON.parse(DECODER.decode(b));
    },
    configurable: true,
    writable: true,
  },
  arrayBuffer: {
    value: async function arrayBuffer(this: WithMeta): Promise<ArrayBuffer> {
      const b = await bytesOf(this);
      return b === null ? (await platformView(this)).arrayBuffer() : copyToArrayBuffer(b);
    },
    configurable: true,
    writable: true,
  },
  blob: {
    value: function blob(this: WithMeta): Promise<Blob> {
      return bodyUsedCheck(this).then(async () => (await platformView(this)).blob());
    },
    configurable: true,
    writable: true,
  },
  formData: {
    value: function formData(this: WithMeta): Promise<FormData> {
      return bodyUsedCheck(this).then(async () => (await platformView(this)).formData());
    },
    configurable: true,
    writable: true,
  },
  clone: {
    value: function clone(this: WithMeta): Response {
      const m = this[kMeta];
      if (m.used || (m.stream !== undefined && (m.stream.locked || isDisturbed(m.stream)))) {
        throw new TypeError('Response.clone: Body has already been consumed.');
      }
      const s = streamOf(m);
      let other: ReadableStream<Uint8Array> | undefined;
      if (s !== null) [m.stream, other] = s.tee();
      const c = new (fetchResponseClass())(null, { status: this.status, statusText: this.statusText, headers: this.headers }) as unknown as WithMeta;
      c[kMeta] = { ...m, readable: undefined, stream: other, used: false };
      return c;
    },
    configurable: true,
    writable: true,
  },
};
/** Response.bytes(), where the platform's Response has it (Node 22.3+). */
const bytesMethod: PropertyDescriptor = {
  value: async function bytes(this: WithMeta): Promise<Uint8Array> {
    const b = await bytesOf(this);
    return b === null ? ((await platformView(this)) as Response & { bytes(): Promise<Uint8Array> }).bytes() : new Uint8Array(copyToArrayBuffer(b));
  },
  configurable: true,
  writable: true,
};

async function bodyUsedCheck(res: WithMeta): Promise<void> {
  const m = res[kMeta];
  if (m.used) throw await usedError();
}

function prototypeProperties(): PropertyDescriptorMap {
  return {
    ...methods,
    ...('bytes' in Response.prototype ? { bytes: bytesMethod } : {}),
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
  };
}

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
        if (readable.errored) {
          settled = true;
          c.error(o.mapError(readable.errored));
          return;
        }
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

/** The global Response of a fetch (its body is made lazily, see FetchResponse). */
export function makeResponse(m: MakeResponse): Response {
  let readable: Readable | undefined;
  if (m.head || nullBodyStatus(m.status)) {
    m.body.resume(); // nothing to read; lets the (empty) Readable end
  } else {
    readable = m.body;
    // An error while nobody reads is kept by the Readable (readable.errored) for the first read.
    readable.on('error', noop);
  }
  const res = new (fetchResponseClass())(null, { status: m.status, statusText: m.statusText, headers: headerPairs(m.rawHead) }) as unknown as WithMeta;
  res[kMeta] = { url: m.url, redirected: m.redirected, type: m.type, details: m.details, readable, bodyOptions: m.bodyOptions, stream: undefined, used: false };
  return res;
}

function noop(): void {}
