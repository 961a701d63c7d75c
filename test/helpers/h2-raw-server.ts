// A raw HTTP/2 server written with bytes (node:tls / node:net, no node:http2), for the hostile
// cases and for checking exactly what a client sends first.
//
// Each accepted connection becomes an H2RawConn and is handed to a script. The connection records
// the client's bytes after TLS, checks the 24-byte preface, and splits everything after it into
// frames (type, flags, stream, payload) kept in arrival order in `conn.frames`. Scripts read those
// frames (`next()`, `waitFrame()`, `readRequest()`), and write server frames built with `frames.*`
// and header blocks encoded by hand with `hpack.*` (literal representations, no Huffman), so a
// script can send anything, including what no library would (a HPACK bomb, a CONTINUATION flood,
// a frame larger than the peer's maximum, a WINDOW_UPDATE past 2^31-1, bad pseudo-headers).
//
// TLS: ALPN is chosen by a callback that records the list the client offered (`conn.alpnOffered`);
// the server picks the first of its `alpn` list (default ['h2']) that the client offered. When the
// client did not offer any of them, `http1Fallback` (default true) picks 'http/1.1' when offered and
// the connection is answered as HTTP/1.1 ("200 http1" for every request) instead of running the
// script. Plain TCP (`tls: false`) is h2c with prior knowledge: the client starts with the preface.
//
//   const srv = await startH2RawServer({ tls: fx.server }, async (c) => {
//     await c.handshake();                       // our SETTINGS, the client's preface + SETTINGS, ACK
//     const req = await c.readRequest();         // HEADERS (+ CONTINUATION) of the next stream
//     await c.send(frames.headers(req.streamId, hpack.block([[':status', '200']]), { endStream: true }));
//   });
//   ... srv.url('/'), srv.conns[0].frames, akamaiFingerprint(srv.conns[0].frames) ...
//   await srv.close();
//
// Script errors never escape: they are collected in `server.errors` (writes to a socket the client
// already reset are expected in hostile tests and are not recorded).

import * as net from 'node:net';
import * as tls from 'node:tls';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const FrameFlag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export const H2Error = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
  ENABLE_CONNECT_PROTOCOL: 0x8,
  NO_RFC7540_PRIORITIES: 0x9,
} as const;

const TYPE_NAMES = Object.fromEntries(Object.entries(FrameType).map(([k, v]) => [v, k])) as Record<number, string>;

export interface H2Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** The frame type's name ("HEADERS"), or "UNKNOWN(0xNN)". */
export function frameTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `UNKNOWN(0x${type.toString(16).padStart(2, '0')})`;
}

// ---- frame builders ----------------------------------------------------------------------------

export interface PrioritySpec {
  dependsOn: number;
  /** The weight as RFC 9113 counts it, 1..256 (the byte on the wire is weight - 1). */
  weight: number;
  exclusive?: boolean;
}

function prioBytes(p: PrioritySpec): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(((p.exclusive ? 0x80000000 : 0) | (p.dependsOn & 0x7fffffff)) >>> 0, 0);
  b[4] = (p.weight - 1) & 0xff;
  return b;
}

export const frames = {
  /** Any frame; `length` overrides the 24-bit length field (to lie about it). */
  raw(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0), length = payload.length): Buffer {
    const h = Buffer.alloc(9);
    h.writeUIntBE(length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(streamId >>> 0, 5);
    return Buffer.concat([h, payload]);
  },
  settings(entries: ReadonlyArray<readonly [number, number]> = []): Buffer {
    const p = Buffer.alloc(entries.length * 6);
    entries.forEach(([id, v], i) => {
      p.writeUInt16BE(id, i * 6);
      p.writeUInt32BE(v >>> 0, i * 6 + 2);
    });
    return frames.raw(FrameType.SETTINGS, 0, 0, p);
  },
  settingsAck(): Buffer {
    return frames.raw(FrameType.SETTINGS, FrameFlag.ACK, 0);
  },
  headers(streamId: number, block: Buffer, o: { endStream?: boolean; endHeaders?: boolean; priority?: PrioritySpec; padding?: number } = {}): Buffer {
    let flags = (o.endStream ? FrameFlag.END_STREAM : 0) | (o.endHeaders === false ? 0 : FrameFlag.END_HEADERS);
    const parts: Buffer[] = [];
    if (o.padding !== undefined) {
      flags |= FrameFlag.PADDED;
      parts.push(Buffer.from([o.padding]));
    }
    if (o.priority) {
      flags |= FrameFlag.PRIORITY;
      parts.push(prioBytes(o.priority));
    }
    parts.push(block);
    if (o.padding !== undefined) parts.push(Buffer.alloc(o.padding));
    return frames.raw(FrameType.HEADERS, flags, streamId, Buffer.concat(parts));
  },
  continuation(streamId: number, block: Buffer, endHeaders: boolean): Buffer {
    return frames.raw(FrameType.CONTINUATION, endHeaders ? FrameFlag.END_HEADERS : 0, streamId, block);
  },
  data(streamId: number, payload: Buffer | string, endStream = false): Buffer {
    return frames.raw(FrameType.DATA, endStream ? FrameFlag.END_STREAM : 0, streamId, typeof payload === 'string' ? Buffer.from(payload) : payload);
  },
  rstStream(streamId: number, code: number): Buffer {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(code >>> 0);
    return frames.raw(FrameType.RST_STREAM, 0, streamId, p);
  },
  goaway(lastStreamId: number, code: number, debug = ''): Buffer {
    const p = Buffer.alloc(8);
    p.writeUInt32BE(lastStreamId & 0x7fffffff, 0);
    p.writeUInt32BE(code >>> 0, 4);
    return frames.raw(FrameType.GOAWAY, 0, 0, Buffer.concat([p, Buffer.from(debug)]));
  },
  ping(opaque: Buffer = Buffer.alloc(8), ack = false): Buffer {
    return frames.raw(FrameType.PING, ack ? FrameFlag.ACK : 0, 0, opaque);
  },
  windowUpdate(streamId: number, increment: number): Buffer {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(increment >>> 0);
    return frames.raw(FrameType.WINDOW_UPDATE, 0, streamId, p);
  },
  priority(streamId: number, p: PrioritySpec): Buffer {
    return frames.raw(FrameType.PRIORITY, 0, streamId, prioBytes(p));
  },
  pushPromise(streamId: number, promisedId: number, block: Buffer): Buffer {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(promisedId & 0x7fffffff);
    return frames.raw(FrameType.PUSH_PROMISE, FrameFlag.END_HEADERS, streamId, Buffer.concat([p, block]));
  },
};

// ---- HPACK (RFC 7541), encoded by hand: literals without Huffman --------------------------------

/** The static table (RFC 7541 Appendix A): index 1..61 → [name, value]. */
export const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  ['', ''],
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

export const hpack = {
  /** An integer with an N-bit prefix (RFC 7541 §5.1); `high` holds the bits above the prefix. */
  int(value: number, prefixBits: number, high = 0): Buffer {
    const max = (1 << prefixBits) - 1;
    if (value < max) return Buffer.from([high | value]);
    const out = [high | max];
    let v = value - max;
    while (v >= 128) {
      out.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(v);
    return Buffer.from(out);
  },
  /** A string literal, raw octets (H = 0). */
  str(s: string | Buffer): Buffer {
    const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
    return Buffer.concat([hpack.int(b.length, 7, 0), b]);
  },
  /** Literal header field without indexing, new name (0000 0000). */
  literal(name: string, value: string | Buffer): Buffer {
    return Buffer.concat([Buffer.from([0x00]), hpack.str(name), hpack.str(value)]);
  },
  /** Literal header field with incremental indexing, new name (0100 0000): adds to the dynamic table. */
  literalIndexed(name: string, value: string | Buffer): Buffer {
    return Buffer.concat([Buffer.from([0x40]), hpack.str(name), hpack.str(value)]);
  },
  /** Indexed header field (1xxx xxxx): static 1..61, dynamic 62.. (newest first). */
  indexed(index: number): Buffer {
    return hpack.int(index, 7, 0x80);
  },
  /** Dynamic table size update (001x xxxx). */
  tableSizeUpdate(size: number): Buffer {
    return hpack.int(size, 5, 0x20);
  },
  /** A header block of literals without indexing, in the given order. */
  block(headers: ReadonlyArray<readonly [string, string]>): Buffer {
    return Buffer.concat(headers.map(([n, v]) => hpack.literal(n, v)));
  },
};

export interface DecodedField {
  /** undefined when the name was a Huffman-coded literal (this decoder has no Huffman table). */
  name: string | undefined;
  /** undefined when the value was Huffman-coded. */
  value: string | undefined;
  /** How the field was represented: 'indexed', 'incremental', 'literal' (without/never indexed). */
  rep: 'indexed' | 'incremental' | 'literal';
}

/**
 * A HPACK decoder for what a client sends, enough to read header *names* in order (pseudo-header
 * order, header order) without a Huffman table: indexed fields and literals whose name comes from
 * the static table (as every pseudo-header does) or from an earlier raw literal are named; a
 * Huffman-coded string is left undefined. It keeps its own dynamic table, with entry sizes taken
 * from the encoded lengths when a string was Huffman-coded (an approximation: only eviction order
 * could differ, and only once the table fills). Keep one per connection.
 */
export class HpackNameDecoder {
  #dyn: Array<{ name: string | undefined; value: string | undefined; size: number }> = [];
  #size = 0;
  #max = 4096;

  decode(block: Buffer): DecodedField[] {
    const out: DecodedField[] = [];
    let pos = 0;
    const readInt = (prefixBits: number): number => {
      const max = (1 << prefixBits) - 1;
      let v = block[pos++]! & max;
      if (v < max) return v;
      let m = 1;
      for (;;) {
        if (pos >= block.length) throw new Error('HPACK: truncated integer');
        const b = block[pos++]!;
        v += (b & 0x7f) * m;
        m *= 128;
        if ((b & 0x80) === 0) return v;
      }
    };
    const readStr = (): { s: string | undefined; len: number } => {
      if (pos >= block.length) throw new Error('HPACK: truncated string');
      const huff = (block[pos]! & 0x80) !== 0;
      const len = readInt(7);
      if (pos + len > block.length) throw new Error('HPACK: truncated string');
      const s = huff ? undefined : block.subarray(pos, pos + len).toString('latin1');
      pos += len;
      return { s, len };
    };
    const lookup = (i: number): { name: string | undefined; value: string | undefined } => {
      if (i >= 1 && i <= 61) return { name: STATIC_TABLE[i]![0], value: STATIC_TABLE[i]![1] };
      const e = this.#dyn[i - 62];
      if (!e) throw new Error(`HPACK: index ${i} out of range`);
      return e;
    };
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        const e = lookup(readInt(7));
        out.push({ name: e.name, value: e.value, rep: 'indexed' });
      } else if ((b & 0xc0) === 0x40) {
        const idx = readInt(6);
        let name: string | undefined;
        let nameLen: number;
        if (idx === 0) {
          const r = readStr();
          name = r.s;
          nameLen = r.len;
        } else {
          name = lookup(idx).name;
          nameLen = name?.length ?? 0;
        }
        const v = readStr();
        out.push({ name, value: v.s, rep: 'incremental' });
        this.#add(name, v.s, nameLen + v.len + 32);
      } else if ((b & 0xe0) === 0x20) {
        this.#max = readInt(5);
        this.#evict();
      } else {
        const idx = readInt(4);
        const name = idx === 0 ? readStr().s : lookup(idx).name;
        const v = readStr();
        out.push({ name, value: v.s, rep: 'literal' });
      }
    }
    return out;
  }

  #add(name: string | undefined, value: string | undefined, size: number): void {
    this.#dyn.unshift({ name, value, size });
    this.#size += size;
    this.#evict();
  }

  #evict(): void {
    while (this.#size > this.#max && this.#dyn.length) this.#size -= this.#dyn.pop()!.size;
  }
}

// ---- parsing what the client sent ----------------------------------------------------------------

/** Splits bytes into whole frames; `rest` is an incomplete tail. */
export function parseFrames(buf: Buffer): { frames: H2Frame[]; rest: Buffer } {
  const out: H2Frame[] = [];
  let pos = 0;
  while (buf.length - pos >= 9) {
    const len = buf.readUIntBE(pos, 3);
    if (buf.length - pos < 9 + len) break;
    out.push({
      type: buf[pos + 3]!,
      flags: buf[pos + 4]!,
      streamId: buf.readUInt32BE(pos + 5) & 0x7fffffff,
      payload: Buffer.from(buf.subarray(pos + 9, pos + 9 + len)),
    });
    pos += 9 + len;
  }
  return { frames: out, rest: Buffer.from(buf.subarray(pos)) };
}

/** A SETTINGS payload as [id, value] pairs in wire order. */
export function parseSettings(payload: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i + 6 <= payload.length; i += 6) out.push([payload.readUInt16BE(i), payload.readUInt32BE(i + 2)]);
  return out;
}

/** A PRIORITY payload, or the priority part of a HEADERS frame with the PRIORITY flag. */
export function parsePriority(b: Buffer): { dependsOn: number; weight: number; exclusive: boolean } {
  const w = b.readUInt32BE(0);
  return { exclusive: (w & 0x80000000) !== 0, dependsOn: w & 0x7fffffff, weight: b[4]! + 1 };
}

/** A HEADERS frame's parts: priority (when flagged) and the header block fragment (padding removed). */
export function parseHeadersFrame(f: H2Frame): { priority?: { dependsOn: number; weight: number; exclusive: boolean }; fragment: Buffer } {
  let p = f.payload;
  if (f.flags & FrameFlag.PADDED) {
    const pad = p[0]!;
    p = p.subarray(1, p.length - pad);
  }
  if (f.flags & FrameFlag.PRIORITY) return { priority: parsePriority(p), fragment: p.subarray(5) };
  return { fragment: p };
}

const PSEUDO_LETTER: Record<string, string> = { ':method': 'm', ':authority': 'a', ':scheme': 's', ':path': 'p' };

/**
 * The Akamai HTTP/2 fingerprint (`SETTINGS|WINDOW_UPDATE|PRIORITY|pseudo-header order`) of what a
 * client sent, computed from its frames in order: the first SETTINGS (`id:value` joined by `;`),
 * the WINDOW_UPDATE increment on stream 0 before the first HEADERS (`00` when none), the PRIORITY
 * frames before the first HEADERS (`stream:exclusive:dependsOn:weight` joined by `,`; `0` when
 * none), and the pseudo-headers of the first HEADERS block as letters (`m,a,s,p`).
 */
export function akamaiFingerprint(clientFrames: readonly H2Frame[]): string {
  const settings = clientFrames.find((f) => f.type === FrameType.SETTINGS && !(f.flags & FrameFlag.ACK));
  const firstHeaders = clientFrames.findIndex((f) => f.type === FrameType.HEADERS);
  const before = firstHeaders < 0 ? clientFrames : clientFrames.slice(0, firstHeaders);
  const wu = before.find((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0);
  const prios = before.filter((f) => f.type === FrameType.PRIORITY);
  const s = settings
    ? parseSettings(settings.payload)
        .map(([id, v]) => `${id}:${v}`)
        .join(';')
    : '';
  const w = wu ? String(wu.payload.readUInt32BE(0) & 0x7fffffff) : '00';
  const p = prios.length
    ? prios
        .map((f) => {
          const q = parsePriority(f.payload);
          return `${f.streamId}:${q.exclusive ? 1 : 0}:${q.dependsOn}:${q.weight}`;
        })
        .join(',')
    : '0';
  let order = '';
  if (firstHeaders >= 0) {
    const block = headerBlockAt(clientFrames, firstHeaders);
    const names = new HpackNameDecoder().decode(block).map((f) => f.name);
    order = names
      .filter((n): n is string => n?.startsWith(':') === true)
      .map((n) => PSEUDO_LETTER[n] ?? n)
      .join(',');
  }
  return `${s}|${w}|${p}|${order}`;
}

/** The whole header block starting at the HEADERS frame at index i (its CONTINUATIONs appended). */
export function headerBlockAt(list: readonly H2Frame[], i: number): Buffer {
  const first = list[i]!;
  const parts = [parseHeadersFrame(first).fragment];
  let end = (first.flags & FrameFlag.END_HEADERS) !== 0;
  for (let j = i + 1; !end && j < list.length; j++) {
    const f = list[j]!;
    if (f.type !== FrameType.CONTINUATION || f.streamId !== first.streamId) break;
    parts.push(f.payload);
    end = (f.flags & FrameFlag.END_HEADERS) !== 0;
  }
  return Buffer.concat(parts);
}

// ---- the connection ------------------------------------------------------------------------------

export interface RawH2Request {
  streamId: number;
  /** The decoded fields in wire order (see HpackNameDecoder for what may be undefined). */
  fields: DecodedField[];
  /** Priority carried on the HEADERS frame, when flagged. */
  priority?: { dependsOn: number; weight: number; exclusive: boolean };
  /** The HEADERS frame had END_STREAM (no body follows). */
  endStream: boolean;
  /** The HEADERS frame itself. */
  frame: H2Frame;
}

export type H2Script = (conn: H2RawConn) => unknown;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class H2RawConn {
  readonly index: number;
  readonly socket: net.Socket;
  /** ALPN protocols the client offered (TLS only; undefined when it sent no ALPN extension). */
  alpnOffered: string[] | undefined;
  /** SNI the client sent (TLS only). */
  servername: string | false | undefined;
  /** The protocol ALPN chose ('h2', 'http/1.1'), false when none. */
  alpn: string | false = false;
  /** Every byte received (after TLS). */
  received: Buffer = Buffer.alloc(0);
  /** undefined until 24 bytes have arrived; then whether they were exactly the preface. */
  prefaceOk: boolean | undefined;
  /** The client's frames after the preface, in arrival order. */
  readonly frames: H2Frame[] = [];
  /** Frames already handed out by next(); next() continues from here. */
  cursor = 0;
  /** The client closed (FIN) or the socket closed. */
  clientEnded = false;
  isClosed = false;
  readonly closed: Promise<void>;
  /** One decoder per connection, for the client's header blocks, fed in order by readRequest(). */
  readonly decoder = new HpackNameDecoder();
  /** Set by the server: called once when the client turns out to speak something other than h2. */
  onNotH2: ((received: Buffer) => void) | undefined;
  /** The connection was handed to the HTTP/1.1 fallback. */
  http1 = false;
  #tail: Buffer = Buffer.alloc(0);
  #waiters: Array<() => void> = [];

  constructor(index: number, socket: net.Socket) {
    this.index = index;
    this.socket = socket;
    socket.setNoDelay(true);
    this.closed = new Promise<void>((resolve) => {
      socket.on('close', () => {
        this.isClosed = true;
        this.clientEnded = true;
        this.#wake();
        resolve();
      });
    });
    socket.on('error', () => {});
    socket.on('end', () => {
      this.clientEnded = true;
      this.#wake();
    });
  }

  /** Starts consuming the socket as HTTP/2 (called by the server). */
  start(): void {
    this.socket.on('data', (d: Buffer) => this.#onData(d));
  }

  #onData(d: Buffer): void {
    this.received = Buffer.concat([this.received, d]);
    if (this.prefaceOk === undefined) {
      if (this.received.length < PREFACE.length) {
        if (!PREFACE.subarray(0, this.received.length).equals(this.received)) this.#notH2();
        this.#wake();
        return;
      }
      this.prefaceOk = this.received.subarray(0, PREFACE.length).equals(PREFACE);
      if (!this.prefaceOk) this.#notH2();
      this.#tail = Buffer.from(this.received.subarray(PREFACE.length));
    } else if (this.prefaceOk) {
      this.#tail = Buffer.concat([this.#tail, d]);
    }
    if (this.prefaceOk) {
      const r = parseFrames(this.#tail);
      this.frames.push(...r.frames);
      this.#tail = r.rest;
    }
    this.#wake();
  }

  #notH2(): void {
    this.prefaceOk = false;
    if (this.onNotH2 && !this.http1) {
      this.http1 = true;
      this.onNotH2(this.received);
    }
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Waits until cond() holds; throws after timeoutMs or when the connection ends first. */
  async until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!cond()) {
      if (this.isClosed || this.clientEnded) {
        if (cond()) return;
        throw Object.assign(new Error(`connection ${this.index} closed while waiting for ${what}`), { code: 'H2RAW_CLOSED' });
      }
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Waits for the 24-byte preface; throws when the client sent something else. */
  async preface(timeoutMs = 5000): Promise<void> {
    await this.until(() => this.prefaceOk !== undefined, timeoutMs, 'the client preface');
    if (!this.prefaceOk) throw new Error(`not an HTTP/2 preface: ${JSON.stringify(this.received.subarray(0, 24).toString('latin1'))}`);
  }

  /** The next frame after the cursor that matches `pred` (frames skipped over are consumed too). */
  async next(pred: (f: H2Frame) => boolean = () => true, timeoutMs = 5000, what = 'a frame'): Promise<H2Frame> {
    let found: H2Frame | undefined;
    await this.until(
      () => {
        while (this.cursor < this.frames.length) {
          const f = this.frames[this.cursor++]!;
          if (pred(f)) {
            found = f;
            return true;
          }
        }
        return false;
      },
      timeoutMs,
      what,
    );
    return found!;
  }

  /** Any frame received so far (or later) that matches, regardless of the cursor. */
  async waitFrame(pred: (f: H2Frame) => boolean, timeoutMs = 5000, what = 'a frame'): Promise<H2Frame> {
    await this.until(() => this.frames.some(pred), timeoutMs, what);
    return this.frames.find(pred)!;
  }

  /** Writes bytes; resolves once handed to the kernel (or at once when the socket is gone). */
  send(...bufs: Buffer[]): Promise<void> {
    const b = bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs);
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve();
    return new Promise<void>((resolve) => this.socket.write(b, () => resolve()));
  }

  /** The socket can take more now (false while the kernel and Node buffers are full). */
  get writable(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  /**
   * The usual start: sends our SETTINGS (`settings`, default none), waits for the preface and the
   * client's SETTINGS, and ACKs it unless `ack` is false. Returns the client's SETTINGS frame.
   */
  async handshake(o: { settings?: ReadonlyArray<readonly [number, number]>; ack?: boolean; timeoutMs?: number } = {}): Promise<H2Frame> {
    await this.send(frames.settings(o.settings ?? []));
    await this.preface(o.timeoutMs);
    const s = await this.waitFrame((f) => f.type === FrameType.SETTINGS && !(f.flags & FrameFlag.ACK), o.timeoutMs, "the client's SETTINGS");
    if (o.ack !== false) await this.send(frames.settingsAck());
    return s;
  }

  /**
   * The next request: waits for a HEADERS frame after the cursor (and its CONTINUATIONs), decodes
   * its names with this connection's HPACK decoder.
   */
  async readRequest(timeoutMs = 5000): Promise<RawH2Request> {
    const h = await this.next((f) => f.type === FrameType.HEADERS, timeoutMs, 'a request HEADERS frame');
    const i = this.frames.indexOf(h);
    if (!(h.flags & FrameFlag.END_HEADERS)) {
      await this.until(
        () => this.frames.slice(i + 1).some((f) => f.type === FrameType.CONTINUATION && f.streamId === h.streamId && f.flags & FrameFlag.END_HEADERS),
        timeoutMs,
        'the CONTINUATION that ends the header block',
      );
    }
    const parsed = parseHeadersFrame(h);
    const fields = this.decoder.decode(headerBlockAt(this.frames, i));
    return { streamId: h.streamId, fields, priority: parsed.priority, endStream: (h.flags & FrameFlag.END_STREAM) !== 0, frame: h };
  }

  /** Collects the DATA payload of a stream until END_STREAM. */
  async readBody(streamId: number, timeoutMs = 10_000): Promise<Buffer> {
    await this.until(
      () => this.frames.some((f) => f.streamId === streamId && (f.type === FrameType.DATA || f.type === FrameType.HEADERS) && f.flags & FrameFlag.END_STREAM),
      timeoutMs,
      `the end of stream ${streamId}`,
    );
    return Buffer.concat(
      this.frames
        .filter((f) => f.streamId === streamId && f.type === FrameType.DATA)
        .map((f) => (f.flags & FrameFlag.PADDED ? f.payload.subarray(1, f.payload.length - f.payload[0]!) : f.payload)),
    );
  }

  /** A complete response: HEADERS (:status + headers, literals) and one DATA frame with END_STREAM. */
  respond(streamId: number, status = 200, body: string | Buffer = 'ok', headers: ReadonlyArray<readonly [string, string]> = []): Promise<void> {
    const b = typeof body === 'string' ? Buffer.from(body) : body;
    const block = hpack.block([[':status', String(status)], ['content-length', String(b.length)], ...headers]);
    if (b.length === 0) return this.send(frames.headers(streamId, block, { endStream: true }));
    const out = [frames.headers(streamId, block)];
    for (let i = 0; i < b.length; i += 16384) out.push(frames.data(streamId, b.subarray(i, i + 16384), i + 16384 >= b.length));
    return this.send(...out);
  }

  /**
   * Answers every request on this connection with `respond` (default: 200 "ok") until it closes,
   * ACKing the client's PINGs and later SETTINGS. Handy for the healthy part of a script.
   */
  async serve(respond: (req: RawH2Request, c: H2RawConn) => unknown = (r, c) => c.respond(r.streamId)): Promise<void> {
    let acked = this.frames.filter((f) => f.type === FrameType.SETTINGS && !(f.flags & FrameFlag.ACK)).length;
    let pinged = 0;
    for (;;) {
      let req: RawH2Request | undefined;
      try {
        await this.until(
          () => {
            const pings = this.frames.filter((f) => f.type === FrameType.PING && !(f.flags & FrameFlag.ACK));
            const settings = this.frames.filter((f) => f.type === FrameType.SETTINGS && !(f.flags & FrameFlag.ACK));
            if (pings.length > pinged || settings.length > acked) return true;
            return this.frames.slice(this.cursor).some((f) => f.type === FrameType.HEADERS);
          },
          60_000,
          'a request',
        );
      } catch {
        return;
      }
      const pings = this.frames.filter((f) => f.type === FrameType.PING && !(f.flags & FrameFlag.ACK));
      while (pinged < pings.length) await this.send(frames.ping(pings[pinged++]!.payload, true));
      const settings = this.frames.filter((f) => f.type === FrameType.SETTINGS && !(f.flags & FrameFlag.ACK)).length;
      while (acked < settings) {
        acked++;
        await this.send(frames.settingsAck());
      }
      if (this.frames.slice(this.cursor).some((f) => f.type === FrameType.HEADERS)) {
        req = await this.readRequest();
        await respond(req, this);
      }
    }
  }

  /** Closes at once. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Half-close after pending writes. */
  end(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.end(() => resolve());
    });
  }
}

export interface H2RawServerOptions {
  /** Certificate and key: TLS with ALPN. false (default): plain TCP, h2c with prior knowledge. */
  tls?: { cert: string; key: string } | false;
  /** Protocols the server accepts, in its preference order. Default ['h2']. */
  alpn?: string[];
  /** Answer clients that did not pick h2 as HTTP/1.1 (200 "http1"). Default true. */
  http1Fallback?: boolean;
}

export interface H2RawServer {
  readonly port: number;
  /** https:// (TLS) or http:// URL on 127.0.0.1, or on `host` (e.g. 'localhost' for SNI). */
  url(path?: string, host?: string): string;
  readonly conns: H2RawConn[];
  readonly connectionCount: number;
  /** Connections that chose HTTP/1.1 and were answered by the fallback. */
  readonly http1Connections: number;
  /** Unexpected errors thrown by scripts. */
  readonly errors: unknown[];
  /** TLS handshakes that failed (e.g. no ALPN match). */
  readonly tlsErrors: Error[];
  /** Resolves when connection i (0-based) has been accepted. */
  connection(i: number, timeoutMs?: number): Promise<H2RawConn>;
  close(): Promise<void>;
}

const EXPECTED = new Set(['EPIPE', 'ECONNRESET', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END', 'H2RAW_CLOSED']);

/** Starts the raw server on 127.0.0.1:0. Connection i runs scripts[i] (the last one for the rest). */
export async function startH2RawServer(o: H2RawServerOptions, scripts: H2Script | H2Script[]): Promise<H2RawServer> {
  const list = Array.isArray(scripts) ? scripts : [scripts];
  const conns: H2RawConn[] = [];
  const errors: unknown[] = [];
  const tlsErrors: Error[] = [];
  const sockets = new Set<net.Socket>();
  const accepted: Array<Array<(c: H2RawConn) => void>> = [];
  let http1 = 0;
  const serverAlpn = o.alpn ?? ['h2'];
  const fallback = o.http1Fallback !== false;

  const run = (socket: net.Socket, info: { offered?: string[]; servername?: string | false; alpn: string | false }) => {
    const c = new H2RawConn(conns.length, socket);
    c.alpnOffered = info.offered;
    c.servername = info.servername;
    c.alpn = info.alpn;
    conns.push(c);
    for (const f of accepted[c.index] ?? []) f(c);
    if (info.alpn === 'http/1.1') {
      http1++;
      c.http1 = true;
      answerHttp1(socket, Buffer.alloc(0));
      return;
    }
    if (fallback && info.alpn === false && ctx) {
      // TLS without ALPN: h2 only if the client starts with the preface.
      c.onNotH2 = (received) => {
        http1++;
        answerHttp1(socket, received);
      };
    }
    c.start();
    const script = list[Math.min(c.index, list.length - 1)]!;
    Promise.resolve()
      .then(() => script(c))
      .catch((e: unknown) => {
        const code = (e as { code?: string } | null)?.code;
        if (!c.http1 && (code === undefined || !EXPECTED.has(code))) errors.push(e);
      });
  };

  // TLS is set up per accepted socket (new tls.TLSSocket), so the ALPN callback knows which
  // connection offered which list.
  const ctx = o.tls ? tls.createSecureContext({ key: o.tls.key, cert: o.tls.cert }) : undefined;
  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => {});
    if (!ctx) {
      run(raw, { alpn: false });
      return;
    }
    let offered: string[] | undefined;
    const s = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: ctx,
      ALPNCallback: ({ protocols }: { protocols: string[] }) => {
        offered = protocols;
        const pick = serverAlpn.find((p) => protocols.includes(p));
        if (pick !== undefined) return pick;
        if (fallback && protocols.includes('http/1.1')) return 'http/1.1';
        return undefined;
      },
    } as tls.TLSSocketOptions);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.once('error', (e: Error) => {
      if (!s.alpnProtocol && !conns.some((c) => c.socket === s)) tlsErrors.push(e);
    });
    s.once('secure', () => {
      run(s, { offered, servername: (s as tls.TLSSocket & { servername?: string | false }).servername, alpn: s.alpnProtocol ?? false });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: (p = '/', host = '127.0.0.1') => `${o.tls ? 'https' : 'http'}://${host}:${port}${p}`,
    conns,
    get connectionCount() {
      return conns.length;
    },
    get http1Connections() {
      return http1;
    },
    errors,
    tlsErrors,
    connection(i: number, timeoutMs = 5000) {
      if (conns[i] !== undefined) return Promise.resolve(conns[i]!);
      return new Promise<H2RawConn>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no connection ${i} within ${timeoutMs} ms`)), timeoutMs);
        (accepted[i] ??= []).push((c) => {
          clearTimeout(t);
          resolve(c);
        });
      });
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Minimal HTTP/1.1 answers ("200 http1", keep-alive) for clients that chose HTTP/1.1 by ALPN. */
function answerHttp1(socket: net.Socket, already: Buffer): void {
  let buf = '';
  const onData = (d: Buffer) => {
    buf += d.toString('latin1');
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.slice(0, end);
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const bodyLen = cl ? Number(cl[1]) : 0;
      if (buf.length < end + 4 + bodyLen) return;
      buf = buf.slice(end + 4 + bodyLen);
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhttp1');
    }
  };
  socket.on('data', onData);
  if (already.length) onData(already);
}

/** Writes `frame` repeatedly (in batches) until `count` frames are out or the socket is gone; returns how many were written. */
export async function flood(c: H2RawConn, frame: Buffer, count: number, batch = 1000): Promise<number> {
  let sent = 0;
  while (sent < count && c.writable && !c.isClosed) {
    const n = Math.min(batch, count - sent);
    const chunk = Buffer.concat(Array.from({ length: n }, () => frame));
    sent += n;
    // Respect backpressure so the server's own memory stays bounded.
    if (!c.socket.write(chunk)) {
      await Promise.race([new Promise<void>((r) => c.socket.once('drain', () => r())), c.closed, sleep(5000)]);
    }
  }
  return sent;
}

export { sleep };
