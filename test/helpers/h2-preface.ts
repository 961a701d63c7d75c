// An independent reader of a client's HTTP/2 connection preface, and a TLS h2 server that keeps
// the bytes each connection received.
//
// Written from RFC 9113 (§3.4 the preface, §4.1 the frame layout, §6.2 HEADERS, §6.3 PRIORITY,
// §6.5 SETTINGS, §6.9 WINDOW_UPDATE) and the Akamai format ("Passive Fingerprinting of HTTP/2
// Clients", Black Hat EU 2017: SETTINGS|WINDOW_UPDATE|PRIORITY|pseudo-header order), not from
// native/core/http2, so the two cross-check each other. Header fields are not decoded here: the
// server is Node's own http2 server, whose 'stream' event gives the received fields in order
// (rawHeaders), pseudo-headers included.
//
//   const srv = await startH2CaptureServer({ key, cert });
//   ... request https://localhost:${srv.port}/ ...
//   const p = parseH2Preface(srv.conns[0].received());   akamaiString(p, srv.streams[0].rawHeaders)

import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

export interface H2Priority {
  exclusive: boolean;
  dependsOn: number;
  /** 1..256 (the wire byte plus one). */
  weight: number;
}

export interface H2FrameInfo {
  type: number;
  flags: number;
  streamId: number;
  length: number;
}

export interface H2Preface {
  /** Every frame up to and including the first request's header block, in order. */
  frames: H2FrameInfo[];
  /** The first SETTINGS frame (not an ACK): [id, value] in wire order. */
  settings: [number, number][];
  /** The first WINDOW_UPDATE on stream 0 before the first HEADERS; null: none was sent. */
  connectionWindowIncrement: number | null;
  /** PRIORITY frames before the first HEADERS, in order. */
  priorityFrames: (H2Priority & { streamId: number })[];
  /** The first HEADERS frame. */
  headers: { streamId: number; flags: number; endStream: boolean; priority: H2Priority | null; continuations: number };
}

export class H2PrefaceError extends Error {}

function priorityAt(b: Buffer, off: number): H2Priority {
  const d = b.readUInt32BE(off);
  return { exclusive: (d & 0x80000000) !== 0, dependsOn: d & 0x7fffffff, weight: b[off + 4]! + 1 };
}

/**
 * Parses what a client sent on a connection (decrypted), from the 24-byte preface to the end of
 * its first header block. null while the bytes end before that; every malformed part throws.
 */
export function parseH2Preface(buf: Buffer): H2Preface | null {
  if (buf.length < H2_PREFACE.length) {
    if (!H2_PREFACE.subarray(0, buf.length).equals(buf)) throw new H2PrefaceError('not the HTTP/2 client preface');
    return null;
  }
  if (!buf.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) throw new H2PrefaceError('not the HTTP/2 client preface');
  const out: H2Preface = {
    frames: [],
    settings: [],
    connectionWindowIncrement: null,
    priorityFrames: [],
    headers: { streamId: 0, flags: 0, endStream: false, priority: null, continuations: 0 },
  };
  let sawSettings = false;
  let inHeaders = false;
  let off = H2_PREFACE.length;
  while (buf.length - off >= 9) {
    const length = buf.readUIntBE(off, 3);
    const type = buf[off + 3]!;
    const flags = buf[off + 4]!;
    const streamId = buf.readUInt32BE(off + 5) & 0x7fffffff;
    if (buf.length - off - 9 < length) return null;
    const p = buf.subarray(off + 9, off + 9 + length);
    off += 9 + length;
    if (out.frames.length === 0 && (type !== FRAME.SETTINGS || (flags & ACK) !== 0)) {
      throw new H2PrefaceError(`the preface's first frame is type ${type}, not SETTINGS`);
    }
    out.frames.push({ type, flags, streamId, length });
    if (inHeaders) {
      if (type !== FRAME.CONTINUATION || streamId !== out.headers.streamId) throw new H2PrefaceError('header block interrupted');
      out.headers.continuations++;
      if (flags & END_HEADERS) return out;
      continue;
    }
    switch (type) {
      case FRAME.SETTINGS:
        if (streamId !== 0 || length % 6 !== 0) throw new H2PrefaceError('bad SETTINGS frame');
        if ((flags & ACK) === 0 && !sawSettings) {
          sawSettings = true;
          for (let i = 0; i < length; i += 6) out.settings.push([p.readUInt16BE(i), p.readUInt32BE(i + 2)]);
        }
        break;
      case FRAME.WINDOW_UPDATE:
        if (length !== 4) throw new H2PrefaceError('bad WINDOW_UPDATE frame');
        if (streamId === 0 && out.connectionWindowIncrement === null) out.connectionWindowIncrement = p.readUInt32BE(0) & 0x7fffffff;
        break;
      case FRAME.PRIORITY:
        if (length !== 5 || streamId === 0) throw new H2PrefaceError('bad PRIORITY frame');
        out.priorityFrames.push({ streamId, ...priorityAt(p, 0) });
        break;
      case FRAME.HEADERS: {
        if (streamId === 0 || streamId % 2 === 0) throw new H2PrefaceError(`HEADERS on stream ${streamId}`);
        let o = 0;
        if (flags & PADDED) o = 1;
        const priority = flags & PRIORITY_FLAG ? priorityAt(p, o) : null;
        out.headers = { streamId, flags, endStream: (flags & END_STREAM) !== 0, priority, continuations: 0 };
        if (flags & END_HEADERS) return out;
        inHeaders = true;
        break;
      }
      default:
        break;
    }
  }
  return null;
}

/** The pseudo-header letters ('m', 'a', 's', 'p') of a flat [name, value, …] field list, in order. */
export function pseudoLetters(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i]!;
    if (n.startsWith(':')) out.push(n[1]!);
  }
  return out;
}

/**
 * The Akamai string: SETTINGS as id:value joined by ';' | the connection WINDOW_UPDATE increment
 * ('00' when none was sent, as the paper writes it) | PRIORITY frames as stream:exclusive:
 * dependency:weight joined by ',' ('0' for none) | pseudo-header letters joined by ','.
 */
export function akamaiString(p: H2Preface, rawHeaders: readonly string[]): string {
  const settings = p.settings.map(([id, v]) => `${id}:${v}`).join(';');
  const win = p.connectionWindowIncrement === null ? '00' : String(p.connectionWindowIncrement);
  const prio = p.priorityFrames.length === 0 ? '0' : p.priorityFrames.map((f) => `${f.streamId}:${f.exclusive ? 1 : 0}:${f.dependsOn}:${f.weight}`).join(',');
  return `${settings}|${win}|${prio}|${pseudoLetters(rawHeaders).join(',')}`;
}

// ---- the server --------------------------------------------------------------------------

/** A Duplex over a TLS socket that keeps every byte read from it (handed to Node's http2 server). */
class RecordingStream extends Duplex {
  readonly chunks: Buffer[] = [];
  constructor(private readonly inner: tls.TLSSocket) {
    super();
    inner.on('data', (d: Buffer) => {
      this.chunks.push(d);
      if (!this.push(d)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('close', () => this.destroy());
    inner.on('error', () => {});
  }
  override _read(): void {
    this.inner.resume();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.inner.destroyed) cb();
    else this.inner.write(chunk, () => cb());
  }
  override _final(cb: (e?: Error | null) => void): void {
    this.inner.end();
    cb();
  }
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.inner.destroy();
    cb(err);
  }
}

export interface H2CaptureConn {
  alpn: string | false | null;
  /** Every (decrypted) byte this connection received so far. */
  received(): Buffer;
}

export interface H2CapturedStream {
  conn: number;
  /** The request's fields as received, flat [name, value, …], pseudo-headers first, in order. */
  rawHeaders: string[];
}

export interface H2CaptureServer {
  port: number;
  conns: H2CaptureConn[];
  streams: H2CapturedStream[];
  tlsErrors: Error[];
  close(): Promise<void>;
}

/**
 * A TLS server on 127.0.0.1 offering only h2 by ALPN; each connection's decrypted bytes are kept
 * and it is served by Node's http2 server (default answer: 200 "ok").
 */
export async function startH2CaptureServer(opts: {
  key: string | Buffer;
  cert: string | Buffer;
  handler?: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;
}): Promise<H2CaptureServer> {
  const conns: H2CaptureConn[] = [];
  const streams: H2CapturedStream[] = [];
  const tlsErrors: Error[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const h2 = http2.createServer();
  const connOf = new WeakMap<object, number>();
  h2.on('session', (s) => {
    // The session's socket is the RecordingStream or a wrapper around it: match by order.
    connOf.set(s, conns.length - 1);
  });
  h2.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    streams.push({ conn: connOf.get(stream.session as object) ?? -1, rawHeaders: [...rawHeaders] });
    if (opts.handler) opts.handler(stream, headers);
    else {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end('ok');
    }
  });
  const server = tls.createServer({ key: opts.key, cert: opts.cert, ALPNProtocols: ['h2'] }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    const rec = new RecordingStream(s);
    conns.push({ alpn: s.alpnProtocol ?? null, received: () => Buffer.concat(rec.chunks) });
    h2.emit('connection', rec);
  });
  server.on('tlsClientError', (e) => tlsErrors.push(e));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    streams,
    tlsErrors,
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
