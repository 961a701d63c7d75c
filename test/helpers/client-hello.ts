// An independent TLS ClientHello parser with JA3 / JA4 fingerprints, and a capturing TLS server.
//
// Written from the specs (RFC 8446 §4.1.2 / §4.2, RFC 6066, RFC 7301, RFC 8701; JA3 by Salesforce;
// JA4 by FoxIO, technical_details/JA4.md), not from native/core/tls/client_hello.cc, so the two
// cross-check each other.
//
// startCapturingTlsServer() accepts TCP on 127.0.0.1, keeps the raw bytes of each connection's
// ClientHello records, then hands the connection to a real https.Server (default answer: 200
// "hello"). The connection goes through a tap that also records what the server sends first, so the
// negotiated group can be read from the ServerHello key_share (TLS 1.3) or the ServerKeyExchange
// (TLS 1.2 ECDHE): Node's getEphemeralKeyInfo() only answers on the client side. Each session is
// matched to its hello through the server's keylog lines, which carry the client random.
// Only the first ClientHello of a connection is captured (not the second one after a
// HelloRetryRequest; `serverHello.helloRetryRequest` says when that happened).
//
//   const srv = await startCapturingTlsServer({ key, cert });
//   ... connect to srv.port ...
//   ja4(parseClientHelloRecords(srv.hellos[0]))  srv.sessions[0].negotiatedGroupName

import * as crypto from 'node:crypto';
import * as https from 'node:https';
import type * as http from 'node:http';
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import type * as tls from 'node:tls';

// ---- parsing ------------------------------------------------------------------------------

export interface ClientHelloInfo {
  legacyVersion: number;
  random: Buffer;
  sessionId: Buffer;
  /** Cipher suites in wire order, GREASE included (likewise every list below). */
  ciphers: number[];
  compressionMethods: number[];
  /** Extension types in wire order. */
  extensions: number[];
  extensionData: { type: number; data: Buffer }[];
  groups: number[];
  pointFormats: number[];
  sigalgs: number[];
  alpn: string[];
  supportedVersions: number[];
  keyShareGroups: number[];
  /** host_name from server_name, null when the extension is absent. */
  sni: string | null;
}

export class ClientHelloError extends Error {}

/** RFC 8701 GREASE: 0x0A0A, 0x1A1A, ..., 0xFAFA. */
export function isGrease(v: number): boolean {
  const hi = v >> 8;
  const lo = v & 0xff;
  return hi === lo && (lo & 0x0f) === 0x0a;
}

/** Reads a buffer front to back; every overrun or leftover is an error. */
class Cursor {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  bytes(n: number): Buffer {
    if (n > this.remaining) throw new ClientHelloError(`${this.what}: needs ${n} bytes, has ${this.remaining}`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  int(width: 1 | 2 | 3): number {
    return this.bytes(width).readUIntBE(0, width);
  }
  /** A vector with a `width`-byte length prefix, as its own cursor. */
  vector(width: 1 | 2 | 3, what: string, min = 0): Cursor {
    const len = this.int(width);
    if (len < min) throw new ClientHelloError(`${what}: length ${len} < ${min}`);
    return new Cursor(this.bytes(len), what);
  }
  done(): void {
    if (this.remaining !== 0) throw new ClientHelloError(`${this.what}: ${this.remaining} trailing bytes`);
  }
  uint16s(): number[] {
    if (this.remaining % 2) throw new ClientHelloError(`${this.what}: odd length`);
    const out: number[] = [];
    while (this.remaining) out.push(this.int(2));
    return out;
  }
}

/**
 * How many bytes of `buf` (TLS records) carry the whole first handshake message: 0 while more is
 * needed, -1 when `buf` does not start with handshake records.
 */
export function handshakeRecordsLength(buf: Buffer): number {
  let off = 0;
  let msgBytes = 0;
  let header = Buffer.alloc(0);
  while (buf.length - off >= 5) {
    if (buf[off] !== 22 || buf[off + 1] !== 3) return -1;
    const len = buf.readUInt16BE(off + 3);
    if (len === 0 || len > 16384) return -1;
    if (buf.length - off - 5 < len) return 0;
    const frag = buf.subarray(off + 5, off + 5 + len);
    if (header.length < 4) header = Buffer.concat([header, frag.subarray(0, 4 - header.length)]);
    msgBytes += len;
    off += 5 + len;
    if (header.length === 4 && msgBytes >= 4 + header.readUIntBE(1, 3)) return off;
  }
  if (buf.length > off && buf[off] !== 22) return -1;
  return 0;
}

/** Parses the ClientHello carried by TLS records (it may span several). */
export function parseClientHelloRecords(buf: Buffer): ClientHelloInfo {
  const parts: Buffer[] = [];
  let off = 0;
  let total = 0;
  let need = Infinity;
  while (total < need) {
    if (buf.length - off < 5) throw new ClientHelloError('records end before the ClientHello does');
    if (buf[off] !== 22) throw new ClientHelloError(`record type ${buf[off]} is not handshake`);
    const len = buf.readUInt16BE(off + 3);
    const frag = buf.subarray(off + 5, off + 5 + len);
    if (frag.length !== len) throw new ClientHelloError('truncated record');
    parts.push(frag);
    total += len;
    off += 5 + len;
    if (need === Infinity && total >= 4) need = 4 + Buffer.concat(parts).readUIntBE(1, 3);
  }
  const msg = Buffer.concat(parts);
  if (msg.length !== need) throw new ClientHelloError('another message shares the ClientHello record');
  return parseClientHelloMessage(msg);
}

/** Parses one handshake message (type 1, 24-bit length, body). */
export function parseClientHelloMessage(msg: Buffer): ClientHelloInfo {
  const outer = new Cursor(msg, 'handshake');
  if (outer.int(1) !== 1) throw new ClientHelloError('not a ClientHello');
  const body = outer.vector(3, 'ClientHello');
  outer.done();

  const hello: ClientHelloInfo = {
    legacyVersion: body.int(2),
    random: Buffer.alloc(0),
    sessionId: Buffer.alloc(0),
    ciphers: [],
    compressionMethods: [],
    extensions: [],
    extensionData: [],
    groups: [],
    pointFormats: [],
    sigalgs: [],
    alpn: [],
    supportedVersions: [],
    keyShareGroups: [],
    sni: null,
  };
  hello.random = Buffer.from(body.bytes(32));
  const sid = body.vector(1, 'legacy_session_id');
  if (sid.remaining > 32) throw new ClientHelloError('legacy_session_id longer than 32');
  hello.sessionId = Buffer.from(sid.bytes(sid.remaining));
  hello.ciphers = body.vector(2, 'cipher_suites', 2).uint16s();
  const comp = body.vector(1, 'legacy_compression_methods', 1);
  while (comp.remaining) hello.compressionMethods.push(comp.int(1));
  if (body.remaining === 0) return hello;

  const exts = body.vector(2, 'extensions');
  body.done();
  while (exts.remaining) {
    const type = exts.int(2);
    const data = exts.vector(2, `extension ${type}`);
    if (hello.extensions.includes(type)) throw new ClientHelloError(`extension ${type} twice`);
    hello.extensions.push(type);
    hello.extensionData.push({ type, data: Buffer.from(data.bytes(data.remaining)) });
    readExtension(hello, type, new Cursor(hello.extensionData.at(-1)!.data, `extension ${type}`));
  }
  return hello;
}

function readExtension(hello: ClientHelloInfo, type: number, c: Cursor): void {
  switch (type) {
    case 0x0000: {
      // server_name: ServerNameList<1..2^16-1> of { NameType, opaque HostName<1..2^16-1> }.
      const list = c.vector(2, 'server_name list', 1);
      c.done();
      hello.sni = '';
      let found = false;
      while (list.remaining) {
        const nameType = list.int(1);
        const name = list.vector(2, 'server_name entry', 1);
        const value = name.bytes(name.remaining).toString('latin1');
        if (nameType === 0 && !found) {
          hello.sni = value;
          found = true;
        }
      }
      return;
    }
    case 0x000a: {
      const v = c.vector(2, 'supported_groups', 2);
      c.done();
      hello.groups = v.uint16s();
      return;
    }
    case 0x000b: {
      const v = c.vector(1, 'ec_point_formats', 1);
      c.done();
      while (v.remaining) hello.pointFormats.push(v.int(1));
      return;
    }
    case 0x000d: {
      const v = c.vector(2, 'signature_algorithms', 2);
      c.done();
      hello.sigalgs = v.uint16s();
      return;
    }
    case 0x0010: {
      const v = c.vector(2, 'alpn', 2);
      c.done();
      while (v.remaining) {
        const p = v.vector(1, 'alpn protocol', 1);
        hello.alpn.push(p.bytes(p.remaining).toString('latin1'));
      }
      return;
    }
    case 0x002b: {
      const v = c.vector(1, 'supported_versions', 2);
      c.done();
      hello.supportedVersions = v.uint16s();
      return;
    }
    case 0x0033: {
      const v = c.vector(2, 'key_share');
      c.done();
      while (v.remaining) {
        hello.keyShareGroups.push(v.int(2));
        v.vector(2, 'key_exchange', 1);
      }
      return;
    }
    default:
      return;
  }
}

// ---- fingerprints -------------------------------------------------------------------------

const noGrease = (v: number[]): number[] => v.filter((x) => !isGrease(x));
const hex4 = (v: number): string => v.toString(16).padStart(4, '0');

/** JA3 (Salesforce): SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats. */
export function ja3(hello: ClientHelloInfo): { ja3: string; ja3Hash: string } {
  const dec = (v: number[]): string => noGrease(v).join('-');
  const s = [String(hello.legacyVersion), dec(hello.ciphers), dec(hello.extensions), dec(hello.groups), hello.pointFormats.join('-')].join(',');
  return { ja3: s, ja3Hash: crypto.createHash('md5').update(s).digest('hex') };
}

const JA4_VERSIONS: Record<number, string> = {
  0x0304: '13',
  0x0303: '12',
  0x0302: '11',
  0x0301: '10',
  0x0300: 's3',
  0x0002: 's2',
  0xfeff: 'd1',
  0xfefd: 'd2',
  0xfefc: 'd3',
};

function ja4Pieces(hello: ClientHelloInfo, transport: 't' | 'q' | 'd') {
  const versions = noGrease(hello.supportedVersions);
  const version = versions.length ? Math.max(...versions) : hello.legacyVersion;
  const ciphers = noGrease(hello.ciphers);
  const exts = noGrease(hello.extensions);
  const two = (n: number): string => String(Math.min(n, 99)).padStart(2, '0');

  let alpnPart = '00';
  const first = hello.alpn[0];
  if (first !== undefined && first.length > 0) {
    const isAlnum = (ch: string): boolean => /^[0-9A-Za-z]$/.test(ch);
    const a = first[0]!;
    const z = first[first.length - 1]!;
    if (isAlnum(a) && isAlnum(z)) {
      alpnPart = a + z;
    } else {
      const hex = Buffer.from(first, 'latin1').toString('hex');
      alpnPart = hex[0]! + hex[hex.length - 1]!;
    }
  }
  const partA =
    transport + (JA4_VERSIONS[version] ?? '00') + (hello.extensions.includes(0x0000) ? 'd' : 'i') + two(ciphers.length) + two(exts.length) + alpnPart;

  const cipherList = [...ciphers]
    .sort((x, y) => x - y)
    .map(hex4)
    .join(',');
  const extList = exts
    .filter((e) => e !== 0x0000 && e !== 0x0010)
    .sort((x, y) => x - y)
    .map(hex4)
    .join(',');
  const sigs = noGrease(hello.sigalgs).map(hex4).join(',');
  return { partA, cipherList, extList, extsAndSigs: sigs ? `${extList}_${sigs}` : extList };
}

const sha12 = (s: string): string => crypto.createHash('sha256').update(s).digest('hex').slice(0, 12);

/** JA4 (FoxIO), e.g. "t13d1516h2_8daaf6152771_e5627efa2ab1". */
export function ja4(hello: ClientHelloInfo, transport: 't' | 'q' | 'd' = 't'): string {
  const p = ja4Pieces(hello, transport);
  const b = p.cipherList === '' ? '000000000000' : sha12(p.cipherList);
  const c = p.extList === '' ? '000000000000' : sha12(p.extsAndSigs);
  return `${p.partA}_${b}_${c}`;
}

/** JA4_r: JA4 with the sorted lists in place of their hashes. */
export function ja4Raw(hello: ClientHelloInfo, transport: 't' | 'q' | 'd' = 't'): string {
  const p = ja4Pieces(hello, transport);
  return `${p.partA}_${p.cipherList}_${p.extsAndSigs}`;
}

/** IANA TLS supported-group names for the groups a test is likely to see. */
export const GROUP_NAMES: Record<number, string> = {
  0x0017: 'secp256r1',
  0x0018: 'secp384r1',
  0x0019: 'secp521r1',
  0x001d: 'x25519',
  0x001e: 'x448',
  0x0100: 'ffdhe2048',
  0x0101: 'ffdhe3072',
  0x0102: 'ffdhe4096',
  0x0103: 'ffdhe6144',
  0x0104: 'ffdhe8192',
  0x11ec: 'X25519MLKEM768',
};

// ---- the server's first flight ------------------------------------------------------------

export interface ServerHelloInfo {
  /** supported_versions selection when present, else legacy_version. */
  version: number;
  cipher: number;
  /** The group the server picked: ServerHello key_share (1.3) or ServerKeyExchange (1.2 ECDHE). */
  group: number | null;
  helloRetryRequest: boolean;
}

// SHA-256("HelloRetryRequest"): the random a HelloRetryRequest carries (RFC 8446 §4.1.3).
const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');

/**
 * Reads the server's plaintext handshake messages from the bytes it wrote (stops at the first
 * encrypted or non-handshake record, skipping ChangeCipherSpec). Returns null when no ServerHello
 * is found. After a HelloRetryRequest the later ServerHello wins.
 */
export function parseServerFlight(out: Buffer): ServerHelloInfo | null {
  let hs = Buffer.alloc(0);
  for (let off = 0; out.length - off >= 5; ) {
    const type = out[off]!;
    const len = out.readUInt16BE(off + 3);
    if (out.length - off - 5 < len) break;
    if (type === 22) hs = Buffer.concat([hs, out.subarray(off + 5, off + 5 + len)]);
    else if (type !== 20) break;
    off += 5 + len;
  }
  let result: ServerHelloInfo | null = null;
  let retried = false;
  for (let off = 0; hs.length - off >= 4; ) {
    const type = hs[off]!;
    const len = hs.readUIntBE(off + 1, 3);
    if (hs.length - off - 4 < len) break;
    const body = new Cursor(hs.subarray(off + 4, off + 4 + len), `handshake ${type}`);
    off += 4 + len;
    if (type === 2) {
      let version = body.int(2);
      const random = body.bytes(32);
      body.vector(1, 'session_id');
      const cipher = body.int(2);
      body.int(1);
      const hrr = random.equals(HRR_RANDOM);
      let group: number | null = null;
      if (body.remaining) {
        const exts = body.vector(2, 'extensions');
        while (exts.remaining) {
          const extType = exts.int(2);
          const data = exts.vector(2, 'extension');
          if (extType === 0x002b) version = data.int(2);
          if (extType === 0x0033) group = data.int(2); // selected_group (HRR) or KeyShareEntry.group
        }
      }
      retried ||= hrr;
      result = { version, cipher, group, helloRetryRequest: retried };
    } else if (type === 12 && result && result.group === null) {
      // ServerKeyExchange, ECDHE: ECParameters { curve_type named_curve(3), NamedCurve }.
      if (body.int(1) === 3) result.group = body.int(2);
    }
  }
  return result;
}

// ---- the capturing server -----------------------------------------------------------------

export interface CapturedTlsSession {
  /** Index into `hellos` of this connection's ClientHello (-1 if it could not be matched). */
  helloIndex: number;
  clientHello: ClientHelloInfo | null;
  protocol: string | null;
  cipher: tls.CipherNameAndProtocol;
  /** What Node reports server-side (documented as client-only: expect null/empty). */
  ephemeralKeyInfo: unknown;
  /** From the server's own ServerHello / ServerKeyExchange. */
  negotiatedGroup: number | null;
  negotiatedGroupName: string | null;
  serverHello: ServerHelloInfo | null;
  alpnProtocol: string | false | null;
  servername: string | false | null;
  sessionReused: boolean;
  authorized: boolean;
  authorizationError: string | null;
  peerSubject: Record<string, unknown> | null;
}

export interface CapturingTlsServer {
  port: number;
  host: '127.0.0.1';
  /** Raw bytes of each connection's ClientHello records, in accept order. */
  hellos: Buffer[];
  /** One entry per completed TLS handshake. */
  sessions: CapturedTlsSession[];
  /** Handshake failures seen by the server (`tlsClientError`). */
  tlsErrors: Error[];
  https: https.Server;
  close(): Promise<void>;
}

export type CapturingTlsServerOptions = tls.TlsOptions & {
  handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  /** Give up on a connection whose ClientHello has not arrived by then (ms, default 10000). */
  helloTimeoutMs?: number;
};

const MAX_TAPPED_OUTPUT = 64 * 1024;

/** A Duplex over a net.Socket that keeps the first bytes the TLS server writes. */
class TapStream extends Duplex {
  readonly written: Buffer[] = [];
  private writtenBytes = 0;
  constructor(readonly raw: net.Socket) {
    super({ allowHalfOpen: false });
    raw.on('data', (d: Buffer) => {
      if (!this.push(d)) raw.pause();
    });
    raw.on('end', () => this.push(null));
    raw.on('error', (e) => this.destroy(e));
    raw.on('close', () => this.destroy());
  }
  override _read(): void {
    this.raw.resume();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.writtenBytes < MAX_TAPPED_OUTPUT) {
      this.written.push(Buffer.from(chunk));
      this.writtenBytes += chunk.length;
    }
    this.raw.write(chunk, cb);
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.raw.end(cb);
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.raw.destroy();
    cb(err);
  }
}

export async function startCapturingTlsServer(opts: CapturingTlsServerOptions): Promise<CapturingTlsServer> {
  const { handler, helloTimeoutMs = 10_000, ...tlsOpts } = opts;
  const hellos: Buffer[] = [];
  const sessions: CapturedTlsSession[] = [];
  const tlsErrors: Error[] = [];
  const sockets = new Set<net.Socket>();
  // Which TLSSocket belongs to which captured hello: the server's keylog lines carry the client
  // random, which we also read from the hello.
  interface Conn {
    helloIndex: number;
    hello: ClientHelloInfo;
    tap: TapStream;
  }
  const byRandom = new Map<string, Conn>();
  const byTlsSocket = new WeakMap<tls.TLSSocket, Conn>();

  const server = https.createServer(
    tlsOpts,
    handler ??
      ((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('hello');
      }),
  );
  server.on('tlsClientError', (err) => tlsErrors.push(err));
  server.on('keylog', (line: Buffer, s: tls.TLSSocket) => {
    const conn = byRandom.get(line.toString('latin1').split(' ')[1] ?? '');
    if (conn) byTlsSocket.set(s, conn);
  });
  server.on('secureConnection', (s: tls.TLSSocket) => {
    const conn = byTlsSocket.get(s);
    const serverHello = conn ? parseServerFlight(Buffer.concat(conn.tap.written)) : null;
    const group = serverHello?.group ?? null;
    const peer = s.getPeerCertificate();
    sessions.push({
      helloIndex: conn?.helloIndex ?? -1,
      clientHello: conn?.hello ?? null,
      protocol: s.getProtocol(),
      cipher: s.getCipher(),
      ephemeralKeyInfo: s.getEphemeralKeyInfo(),
      negotiatedGroup: group,
      negotiatedGroupName: group === null ? null : (GROUP_NAMES[group] ?? `0x${hex4(group)}`),
      serverHello,
      alpnProtocol: s.alpnProtocol ?? null,
      servername: (s as unknown as { servername?: string | false }).servername ?? null,
      sessionReused: s.isSessionReused(),
      authorized: s.authorized,
      authorizationError: s.authorizationError ? String(s.authorizationError) : null,
      peerSubject: peer && Object.keys(peer).length ? { ...peer.subject } : null,
    });
  });

  const tcp = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => {});
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => raw.destroy(), helloTimeoutMs);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const n = handshakeRecordsLength(buf);
      if (n === 0) return;
      clearTimeout(timer);
      raw.off('data', onData);
      raw.pause();
      if (n < 0) {
        raw.destroy();
        return;
      }
      const helloIndex = hellos.push(Buffer.from(buf.subarray(0, n))) - 1;
      let hello: ClientHelloInfo;
      try {
        hello = parseClientHelloRecords(buf.subarray(0, n));
      } catch (e) {
        tlsErrors.push(e as Error);
        raw.destroy();
        return;
      }
      raw.unshift(buf);
      const tap = new TapStream(raw);
      const key = hello.random.toString('hex');
      byRandom.set(key, { helloIndex, hello, tap });
      tap.on('close', () => byRandom.delete(key));
      server.emit('connection', tap);
    };
    raw.on('data', onData);
    raw.on('close', () => clearTimeout(timer));
  });

  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (tcp.address() as net.AddressInfo).port;

  return {
    port,
    host: '127.0.0.1',
    hellos,
    sessions,
    tlsErrors,
    https: server,
    async close() {
      const closed = new Promise<void>((r) => tcp.close(() => r()));
      for (const s of sockets) s.destroy();
      server.closeAllConnections?.();
      await closed;
    },
  };
}
