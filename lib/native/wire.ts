// The JS side of the native → JS event wire (native/binding/engine_wrap.cc, push_record): the one
// module that knows the record layout and what each record type's fields mean. Everything above
// reads records through the named accessors here, never by position.
//
// A batch is a sequence of records, each a 24-byte header of six little-endian u32 —
//   type, id, a, b, n1, n2
// — followed by n1 bytes of payload 1 and n2 bytes of payload 2. A payload above the binding's
// inline limit travels as its own Buffer in `bigs` and `b` holds its 1-based index there.
// test/unit/wire.test.ts checks the constants below against engine_wrap.cc.

import type { Timings } from '../core/types.js';
import type { NativeEngine, NativeTlsContext } from './binding.js';

/** Record types of the event batch (engine_wrap.cc kEv*). */
export const enum Ev {
  Complete = 1,
  Head = 2,
  Data = 3,
  End = 4,
  Error = 5,
  Drain = 6,
  Closed = 7,
  Timings = 8,
  TlsInfo = 9,
  TlsForget = 10,
  TlsRef = 11,
  DnsLookup = 12,
  DnsResult = 13,
  H2Info = 14,
  H2Forget = 15,
  Trailers = 16,
  // Raw sockets (lib/raw/raw-socket.ts); id = raw socket id.
  RawOpen = 20,
  RawData = 21,
  RawEnd = 22,
  RawError = 23,
  RawDrain = 24,
  RawClosed = 25,
  RawFinished = 26,
}

/** Submit flags (engine_wrap.cc kFlag*). */
export const enum SubmitFlag {
  StreamResponse = 1,
  StreamedBody = 2,
  HasBody = 4,
  Timings = 8,
}

/** Size of a record header in bytes. */
export const RECORD_HEADER = 24;

/**
 * One record, decoded in place: the decoder reuses a single instance for a whole batch (no
 * allocation per record), so a handler must not keep it past its call.
 */
export class EventRecord {
  type = 0;
  id = 0;
  /** Raw header words; prefer the named accessors below. */
  a = 0;
  b = 0;
  batch: Buffer = EMPTY;
  bigs: Buffer[] | undefined = undefined;
  /** Payload 1 (text: heads, details, host names) and payload 2 (inline body bytes). */
  p1 = 0;
  n1 = 0;
  p2 = 0;
  n2 = 0;

  /** Payload 1 as a latin1 string (heads, error details, host names, address lists). */
  text(): string {
    return this.n1 === 0 ? '' : this.batch.toString('latin1', this.p1, this.p1 + this.n1);
  }

  /** Data / Complete / RawData: the body bytes, copied out of the batch (a big one as is). */
  bodyCopy(): Buffer {
    if (this.b !== 0) return this.bigs![this.b - 1]!;
    if (this.n2 === 0) return EMPTY;
    const out = Buffer.allocUnsafe(this.n2); // from Node's pool for small sizes: cheap, and frees the batch
    this.batch.copy(out, 0, this.p2, this.p2 + this.n2);
    return out;
  }

  /** RawData: the bytes as a view into this turn's batch (a fresh buffer per turn: no copy). */
  bodyView(): Buffer {
    if (this.b !== 0) return this.bigs![this.b - 1]!;
    return this.n2 === 0 ? EMPTY : this.batch.subarray(this.p2, this.p2 + this.n2);
  }

  // --- Complete / Head: `a` packs the response meta (engine_wrap.cc pack_meta).
  get status(): number {
    return this.a & 0xffff;
  }
  get httpVersionMinor(): number {
    return (this.a >>> 16) & 0xf;
  }
  get httpVersionMajor(): number {
    return (this.a >>> 20) & 0xf;
  }
  get reused(): boolean {
    return ((this.a >>> 24) & 1) === 1;
  }
  get attempts(): number {
    return this.a >>> 25;
  }

  // --- Error / RawError: `a` is the native error index, `b` the system error (signed).
  get errorIndex(): number {
    return this.a;
  }
  get sysErrno(): number {
    return this.b | 0;
  }

  // --- TlsInfo: `a` flags (lib/tls/info.ts), `b` handshake duration in µs. TlsRef: `a` = TLS info id.
  get tlsFlags(): number {
    return this.a;
  }
  get handshakeMs(): number {
    return this.b / 1000;
  }
  get tlsInfoId(): number {
    return this.a;
  }
  /** TlsRef: the HTTP/2 info id of the connection (0: HTTP/1). H2Info: `id` is it, p1 the fingerprint. */
  get h2InfoId(): number {
    return this.b;
  }

  // --- DnsLookup: the 64-bit lookup id is id (low) | a (high); `b` the address family.
  get lookupId(): number {
    return this.a * 2 ** 32 + this.id;
  }
  get family(): 0 | 4 | 6 {
    return this.b as 0 | 4 | 6;
  }

  // --- RawOpen: `a` = remote port | local port << 16, `b` = TLS info id (0: plain TCP), p1 = "remote\0local".
  get remotePort(): number {
    return this.a & 0xffff;
  }
  get localPort(): number {
    return this.a >>> 16;
  }
  get rawTlsInfoId(): number {
    return this.b;
  }

  /** Timings: the seven µs counters in wire order (engine_wrap.cc on_timings), in ms. */
  timings(): Timings {
    const v = this.batch;
    const o = this.p1;
    const ms = (i: number) => v.readUInt32LE(o + i * 4) / 1000;
    return { queued: ms(0), dns: ms(1), connect: ms(2), ttfb: ms(3), headers: ms(4), total: ms(5), tls: ms(6) };
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Calls `fn` once per record of `batch`, with `rec` filled in. An exception from one record's
 * handler does not lose the rest of the batch: it is rethrown on a microtask.
 */
export function forEachRecord(batch: Buffer, bigs: Buffer[] | undefined, rec: EventRecord, fn: (rec: EventRecord) => void): void {
  const end = batch.byteLength;
  rec.batch = batch;
  rec.bigs = bigs;
  let off = 0;
  while (off + RECORD_HEADER <= end) {
    rec.type = batch.readUInt32LE(off);
    rec.id = batch.readUInt32LE(off + 4);
    rec.a = batch.readUInt32LE(off + 8);
    rec.b = batch.readUInt32LE(off + 12);
    rec.n1 = batch.readUInt32LE(off + 16);
    rec.n2 = batch.readUInt32LE(off + 20);
    rec.p1 = off + RECORD_HEADER;
    rec.p2 = rec.p1 + rec.n1;
    off = rec.p2 + rec.n2;
    try {
      fn(rec);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }
  // Drop the references so a batch is not kept alive by an idle engine's record.
  rec.batch = EMPTY;
  rec.bigs = undefined;
}

// ---------------------------------------------------------------------------------------------
// JS → native: submit() takes positional arguments (engine_wrap.cc EngineWrap::Submit); this is the
// one place that orders them. Per-request overrides travel as a Float64Array whose slots are named
// here; NaN leaves the session's value.

/** Slots of the per-request overrides array (engine_wrap.cc Submit, `pick(i, ...)`). */
export const enum Override {
  ConnectTimeout = 0,
  HeadersTimeout = 1,
  BodyTimeout = 2,
  TotalTimeout = 3,
  MaxHeaderSize = 4,
  MaxHeaderCount = 5,
  MaxBodySize = 6,
  TlsTimeout = 7,
  /** 0 or 1. */
  Decompress = 8,
  MaxDecompressionRatio = 9,
}
export const OVERRIDE_SLOTS = 10;

/** One request for the engine, by name. */
export interface NativeSubmit {
  id: number;
  host: string;
  port: number;
  tls: NativeTlsContext | false;
  method: string;
  target: string;
  /** Flat [name, value, ...] or null. */
  headers: string[] | null;
  body: Uint8Array | string | null;
  /** SubmitFlag bits. */
  flags: number;
  /** A streamed body's declared content-length, or -1 (chunked). */
  streamedLength: number;
  /** OVERRIDE_SLOTS numbers indexed by Override, NaN = the session's; or null. */
  overrides: Float64Array | null;
  /** [kind (1 HTTP, 2 SOCKS5), host, port, user, pass] (lib/net/proxy.ts), or null. */
  proxy: [number, string, number, string, string] | null;
}

/** Hands `s` to the engine: 0, or a native error index (details: engine.lastError()). */
export function submit(engine: NativeEngine, s: NativeSubmit): number {
  return engine.submit(s.id, s.host, s.port, s.tls, s.method, s.target, s.headers, s.body, s.flags, s.streamedLength, s.overrides, s.proxy);
}
