// Request bodies for fetch() and UvfetchAgent: every BodyInit kind turned into what the engine
// sends (bytes, or an async iterable of Uint8Array chunks with or without a known length), plus
// the Content-Type the body implies. Written after the Fetch standard's "extract a body" and the
// HTML standard's multipart/form-data encoding algorithm.

import { randomBytes } from 'node:crypto';

/** A request body ready for the engine. */
export interface ExtractedBody {
  /** The whole body, when it is in memory (sent with one submit, and resendable). */
  readonly bytes: Uint8Array | undefined;
  /** Otherwise: a fresh chunk source for each send (a second call fails unless `replayable`). */
  readonly chunks: (() => AsyncIterable<Uint8Array>) | undefined;
  /** Can be sent again (a redirect that keeps the body, a retry): everything but streams. */
  readonly replayable: boolean;
  /** Byte length, -1 when unknown (sent chunked). */
  readonly length: number;
  /** Content-Type implied by the body (added when the request sets none). */
  readonly type: string | null;
}

const ENCODER = new TextEncoder();
/** Blobs up to this size are read into memory (one submit) rather than streamed. */
const SMALL_BLOB = 64 * 1024;

function bytesBody(bytes: Uint8Array, type: string | null): ExtractedBody {
  return { bytes, chunks: undefined, replayable: true, length: bytes.byteLength, type };
}

/** A copy of a view's bytes (the Fetch standard copies at extraction: later writes do not leak in). */
function copyView(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
}

/** True for web ReadableStreams (also ones from another realm or undici build). */
export function isReadableStream(x: unknown): x is ReadableStream<unknown> {
  return (
    x instanceof ReadableStream ||
    (typeof x === 'object' && x !== null && typeof (x as ReadableStream).getReader === 'function' && typeof (x as ReadableStream).tee === 'function')
  );
}

function isAsyncIterable(x: unknown): x is AsyncIterable<unknown> {
  return typeof x === 'object' && x !== null && typeof (x as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

/**
 * Reads a web ReadableStream as the engine's chunk source. Chunks must be Uint8Arrays (as fetch
 * requires); reading stops at the engine's pace (the engine waits for its socket to drain), so
 * backpressure reaches the stream's source. Ending early (an aborted request) cancels the stream.
 */
export async function* streamChunks(stream: ReadableStream<unknown>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let finished = false;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) {
        finished = true;
        return;
      }
      const v = r.value;
      if (!(v instanceof Uint8Array)) {
        throw new TypeError('Received non-Uint8Array chunk');
      }
      yield v;
    }
  } finally {
    if (!finished) reader.cancel().catch(() => {});
    else reader.releaseLock();
  }
}

/** An async iterable of chunks (Node extension of fetch): strings become UTF-8, views are kept. */
async function* iterableChunks(it: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const c of it) {
    if (typeof c === 'string') yield ENCODER.encode(c);
    else if (c instanceof Uint8Array) yield c;
    else if (ArrayBuffer.isView(c)) yield new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
    else if (c instanceof ArrayBuffer) yield new Uint8Array(c);
    else throw new TypeError('Received non-Uint8Array chunk');
  }
}

async function* blobChunks(blob: Blob): AsyncGenerator<Uint8Array> {
  yield* streamChunks(blob.stream());
}

/** Once-only chunk source: a second send of a streamed body is refused (never sends nothing). */
function once(make: () => AsyncIterable<Uint8Array>): () => AsyncIterable<Uint8Array> {
  let used = false;
  return () => {
    if (used) throw new TypeError('the streamed request body was already sent and cannot be sent again');
    used = true;
    return make();
  };
}

// --- multipart/form-data ---------------------------------------------------------------------

/** Name escaping of the HTML multipart/form-data encoding algorithm. */
function escapeName(s: string): string {
  return s.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
}

/** Every lone CR, lone LF and CRLF becomes CRLF. */
function crlf(s: string): string {
  return s.replace(/\r\n|\r|\n/g, '\r\n');
}

/**
 * Encodes a FormData as multipart/form-data: text fields in memory, files streamed from their
 * Blob (never read whole into memory). The length is always known (Blob sizes are).
 */
export function multipart(form: FormData, boundary = `----uvfetch-formdata-${randomBytes(12).toString('hex')}`): ExtractedBody {
  const parts: Array<Uint8Array | Blob> = [];
  let length = 0;
  let text = '';
  let hasFiles = false;
  const flush = () => {
    if (text !== '') {
      const b = ENCODER.encode(text);
      parts.push(b);
      length += b.byteLength;
      text = '';
    }
  };
  for (const [name, value] of form) {
    const n = escapeName(crlf(name));
    if (typeof value === 'string') {
      text += `--${boundary}\r\nContent-Disposition: form-data; name="${n}"\r\n\r\n${crlf(value)}\r\n`;
    } else {
      const file = value as File;
      const type = file.type !== '' ? file.type : 'application/octet-stream';
      text += `--${boundary}\r\nContent-Disposition: form-data; name="${n}"; filename="${escapeName(file.name ?? 'blob')}"\r\nContent-Type: ${type}\r\n\r\n`;
      flush();
      parts.push(file);
      length += file.size;
      hasFiles = true;
      text += '\r\n';
    }
  }
  text += `--${boundary}--\r\n`;
  flush();
  const type = `multipart/form-data; boundary=${boundary}`;
  if (!hasFiles) return bytesBody(parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts as Uint8Array[]), type);
  const chunks = async function* (): AsyncGenerator<Uint8Array> {
    for (const p of parts) {
      if (p instanceof Uint8Array) yield p;
      else yield* blobChunks(p);
    }
  };
  return { bytes: undefined, chunks, replayable: true, length, type };
}

// --- extract ---------------------------------------------------------------------------------

/**
 * The engine's form of a fetch body (`BodyInit`), or null for none. Throws TypeError where fetch
 * does: a stream body without `duplex: 'half'`, a locked or already read stream.
 */
export async function extractBody(body: unknown, duplex: unknown): Promise<ExtractedBody | null> {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return bytesBody(ENCODER.encode(body), 'text/plain;charset=UTF-8');
  if (body instanceof URLSearchParams) return bytesBody(ENCODER.encode(body.toString()), 'application/x-www-form-urlencoded;charset=UTF-8');
  if (body instanceof ArrayBuffer) return bytesBody(new Uint8Array(body.slice(0)), null);
  if (ArrayBuffer.isView(body)) return bytesBody(copyView(body), null);
  if (body instanceof Blob) {
    const type = body.type !== '' ? body.type : null;
    if (body.size <= SMALL_BLOB) return bytesBody(new Uint8Array(await body.arrayBuffer()), type);
    const blob = body;
    return { bytes: undefined, chunks: () => blobChunks(blob), replayable: true, length: blob.size, type };
  }
  if (body instanceof FormData) return multipart(body);
  if (isReadableStream(body) || isAsyncIterable(body)) {
    if (duplex !== 'half') throw new TypeError('RequestInit: duplex option is required when sending a body.');
    if (isReadableStream(body)) {
      if (body.locked) throw new TypeError('Response body object should not be disturbed or locked');
      const s = body;
      return { bytes: undefined, chunks: once(() => streamChunks(s)), replayable: false, length: -1, type: null };
    }
    const it = body;
    return { bytes: undefined, chunks: once(() => iterableChunks(it)), replayable: false, length: -1, type: null };
  }
  // WebIDL: anything else is converted to a string.
  return bytesBody(ENCODER.encode(String(body)), 'text/plain;charset=UTF-8');
}

/**
 * The body of a dispatch (undici's `DispatchOptions.body`): string, Buffer/Uint8Array, a Node
 * Readable or any (async) iterable of chunks, a FormData, a Blob, or a web ReadableStream.
 */
export async function dispatchBody(body: unknown): Promise<ExtractedBody | null> {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return bytesBody(Buffer.from(body, 'utf8'), null);
  if (body instanceof Uint8Array) return bytesBody(body, null);
  if (body instanceof ArrayBuffer) return bytesBody(new Uint8Array(body), null);
  if (ArrayBuffer.isView(body)) return bytesBody(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), null);
  if (body instanceof FormData) return multipart(body);
  if (body instanceof Blob) return extractBody(body, undefined);
  if (isReadableStream(body)) {
    const s = body;
    return { bytes: undefined, chunks: once(() => streamChunks(s)), replayable: false, length: -1, type: null };
  }
  if (isAsyncIterable(body)) {
    const it = body;
    return { bytes: undefined, chunks: once(() => iterableChunks(it)), replayable: false, length: -1, type: null };
  }
  if (typeof (body as Iterable<unknown>)[Symbol.iterator] === 'function') {
    const it = body as Iterable<unknown>;
    const asyncIt = (async function* () {
      yield* it;
    })();
    return { bytes: undefined, chunks: once(() => iterableChunks(asyncIt)), replayable: false, length: -1, type: null };
  }
  throw new TypeError('invalid body: expected a string, Buffer, Uint8Array, Readable, (async) iterable, FormData, Blob or ReadableStream');
}
