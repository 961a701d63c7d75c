// Request bodies: classifying what users pass as `body`, and pumping an (async) iterable body into
// the engine with backpressure (writeBody() false → wait for the Drain event).
import { UvfetchError } from '../core/errors.js';
import { findHeader } from '../core/headers.js';
import type { BodyInit } from '../core/types.js';
import type { NativeEngine } from '../native/binding.js';
import { SubmitFlag } from '../native/wire.js';
import type { Dispatcher, Pending } from './dispatcher.js';

/** A body ready for submit: bytes sent with the head, or an iterable pumped afterwards. */
export interface RequestBody {
  payload: Uint8Array | string | null;
  iterable: AsyncIterable<unknown> | Iterable<unknown> | undefined;
  /** SubmitFlag.HasBody or SubmitFlag.StreamedBody, or 0. */
  flags: number;
  /** A streamed body's content-length header, or -1 (sent chunked). */
  streamedLength: number;
}

const NO_BODY: RequestBody = Object.freeze({ payload: null, iterable: undefined, flags: 0, streamedLength: -1 });

function isIterableBody(b: unknown): b is AsyncIterable<unknown> | Iterable<unknown> {
  return (
    typeof b === 'object' &&
    b !== null &&
    (typeof (b as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' || typeof (b as Iterable<unknown>)[Symbol.iterator] === 'function')
  );
}

/** Classifies `body` (ERR_INVALID_BODY / ERR_INVALID_HEADER on bad input). `headers`: the flat request headers. */
export function requestBody(body: BodyInit | null | undefined, headers: string[] | null): RequestBody {
  if (body === undefined || body === null) return NO_BODY;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    return { payload: body, iterable: undefined, flags: SubmitFlag.HasBody, streamedLength: -1 };
  }
  if (body instanceof ArrayBuffer) {
    return { payload: new Uint8Array(body), iterable: undefined, flags: SubmitFlag.HasBody, streamedLength: -1 };
  }
  if (isIterableBody(body)) {
    let streamedLength = -1;
    const cl = headers === null ? undefined : findHeader(headers, 'content-length');
    if (cl !== undefined) {
      if (!/^\d+$/.test(cl) || !Number.isSafeInteger(Number(cl))) {
        throw new UvfetchError('ERR_INVALID_HEADER', 'invalid header: content-length must be a non-negative integer', { reason: 'content-length' });
      }
      streamedLength = Number(cl);
    }
    return { payload: null, iterable: body, flags: SubmitFlag.StreamedBody, streamedLength };
  }
  throw new UvfetchError('ERR_INVALID_BODY', 'body must be a string, Buffer, Uint8Array, ArrayBuffer or (async) iterable');
}

/** Writes an iterable body into the engine; a bad chunk or a length mismatch fails the request. */
export async function pumpBody(
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
