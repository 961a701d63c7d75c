// profileFingerprint(): how close a browser profile gets on the running Node. A real handshake
// against a loopback listener (the ClientHello's JA3/JA4, as TlsProfile.fingerprint()), a real
// HTTP/1.1 request to a loopback listener (the header names, order and values as received) and a
// real HTTP/2 connection to a loopback listener (the preface frames read here, from the bytes
// received, not from the engine's codec; the header fields as Node's own HTTP/2 server decodes
// them), side by side with the profile's targets, and every remaining difference with its reason.
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { UvfetchError } from '../core/errors.js';
import { binding } from '../native/binding.js';
import { ENGINE_SPEAKS_H2, impersonation } from '../profiles/profiles.js';
import type { ImpersonateOption } from '../profiles/types.js';
import { Session } from './session.js';

/** One part where what was sent differs from the browser. */
export interface ProfileDifference {
  /**
   * 'tls.ciphers', 'tls.extensions', 'tls.sigalgs', 'tls.groups', 'tls.pointFormats', 'tls.alpn',
   * 'ja3.order', 'http2' (the Akamai string), 'http2.headersPriority', 'http2.selfReport',
   * 'h2headers.order' (the regular header fields sent on HTTP/2), 'headers.order' (HTTP/1.1),
   * 'headers.value'.
   */
  part: string;
  /** What differs, e.g. 'extension 17613 (application_settings) not sent'. */
  what: string;
  reason: string;
}

export interface ProfileFingerprint {
  profile: string;
  node: string;
  openssl: string;
  target: {
    ja4: string;
    ja3: string;
    akamaiH2: string;
    /** HTTP/1.1 header names in order and spelling (Host first). */
    headerOrder: string[];
    /** HTTP/2 regular header names (lower case) in order: the profile's `headers`. */
    h2HeaderOrder: string[];
  };
  sent: {
    ja4: string;
    ja4r: string;
    ja3: string;
    /** The Akamai string of the HTTP/2 preface the listener received; null on a Node without nghttp2. */
    akamaiH2: string | null;
    /** What the engine itself reported for that connection (`res.info.h2Fingerprint`). */
    akamaiH2SelfReport: string | null;
    /** The priority on the first HEADERS frame (null: none), as received. */
    h2HeadersPriority: { exclusive: boolean; dependsOn: number; weight: number } | null;
    /** The HTTP/2 request's regular header fields as received: [name, value] in order. */
    h2Headers: [string, string][];
    h2HeaderOrder: string[];
    /** The HTTP/1.1 request head as the listener received it: [name, value] in order. */
    headers: [string, string][];
    headerOrder: string[];
  };
  match: { ja4: boolean; ja4Ciphers: boolean; ja3: boolean; akamaiH2: boolean; h2HeaderOrder: boolean; headerOrder: boolean };
  differences: ProfileDifference[];
}

const EXT_NAMES: Record<number, string> = {
  0: 'server_name',
  5: 'status_request',
  10: 'supported_groups',
  11: 'ec_point_formats',
  13: 'signature_algorithms',
  16: 'alpn',
  18: 'signed_certificate_timestamp',
  21: 'padding',
  22: 'encrypt_then_mac',
  23: 'extended_master_secret',
  27: 'compress_certificate',
  28: 'record_size_limit',
  34: 'delegated_credentials',
  35: 'session_ticket',
  43: 'supported_versions',
  45: 'psk_key_exchange_modes',
  51: 'key_share',
  17613: 'application_settings',
  65037: 'encrypted_client_hello',
  65281: 'renegotiation_info',
};

function missingExtReason(ext: number, openssl: string): string {
  switch (ext) {
    case 17613:
      return 'ALPS: OpenSSL cannot send the client settings it requires in the encrypted handshake; advertising it would break handshakes with servers that negotiate it (Google)';
    case 34:
      return 'OpenSSL cannot verify a delegated credential; advertising it would break handshakes with servers that use one (Cloudflare)';
    case 27:
      return `certificate compression: ${openssl} cannot decompress any algorithm (needs OpenSSL 3.2+ built with zlib/brotli: Node 24; not Node 20 (3.0) nor Node 22 (3.5 built without))`;
    case 21:
      return "OpenSSL pads only a hello of 256..511 bytes (the browser's rule differs)";
    case 65281:
      return 'OpenSSL 3.0 signals secure renegotiation with the 0x00ff SCSV cipher instead of the extension';
    default:
      return `not sent by ${openssl}`;
  }
}

function ja3Parts(ja3: string): { ciphers: number[]; exts: number[]; groups: string; pointFormats: string } {
  const f = ja3.split(',');
  const nums = (s: string | undefined) => (s === undefined || s === '' ? [] : s.split('-').map(Number));
  return { ciphers: nums(f[1]), exts: nums(f[2]), groups: f[3] ?? '', pointFormats: f[4] ?? '' };
}

function ja4rSigalgs(ja4r: string): string[] {
  const f = ja4r.split('_');
  return f.length >= 4 && f[3] !== '' ? f[3]!.split(',') : [];
}

const hex4 = (n: number) => n.toString(16).padStart(4, '0');

/** Captures one HTTP/1.1 request head on a loopback listener and answers 200. */
async function captureHead(imp: ImpersonateOption, timeout: number): Promise<[string, string][]> {
  let got: (v: string | Error) => void = () => {};
  const head = new Promise<string | Error>((resolve) => {
    got = resolve;
  });
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        got(buf.slice(0, end));
        sock.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      } else if (buf.length > 64 * 1024) {
        got(new UvfetchError('ERR_HEADERS_TOO_LARGE', 'request head over 64 KiB'));
        sock.destroy();
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const session = new Session({ impersonate: imp, timeout: { total: timeout } });
  try {
    const port = (server.address() as net.AddressInfo).port;
    await session.request(`http://127.0.0.1:${port}/`);
    const h = await head;
    if (h instanceof Error) throw h;
    return h
      .split('\r\n')
      .slice(1)
      .map((line) => {
        const i = line.indexOf(':');
        return [line.slice(0, i), line.slice(i + 1).trim()] as [string, string];
      });
  } finally {
    await session.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// ---- HTTP/2: the preface as received (RFC 9113 §3.4, §4.1, §6) --------------------------------

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
type H2Priority = { exclusive: boolean; dependsOn: number; weight: number };

interface ReceivedPreface {
  settings: [number, number][];
  /** The first connection-level WINDOW_UPDATE before the first HEADERS (null: none). */
  window: number | null;
  priorityFrames: (H2Priority & { streamId: number })[];
  headersPriority: H2Priority | null;
}

function priorityAt(b: Buffer, off: number): H2Priority {
  const d = b.readUInt32BE(off);
  return { exclusive: (d & 0x80000000) !== 0, dependsOn: d & 0x7fffffff, weight: b[off + 4]! + 1 };
}

/** The frames before and including the first HEADERS frame; null while they have not all arrived. */
function readPreface(buf: Buffer): ReceivedPreface | null {
  if (buf.length < H2_PREFACE.length) return null;
  if (!buf.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) throw new UvfetchError('ERR_HTTP2_PROTOCOL', 'the client preface is not HTTP/2');
  const out: ReceivedPreface = { settings: [], window: null, priorityFrames: [], headersPriority: null };
  let settings = false;
  for (let off = H2_PREFACE.length; buf.length - off >= 9; ) {
    const len = buf.readUIntBE(off, 3);
    const type = buf[off + 3]!;
    const flags = buf[off + 4]!;
    const sid = buf.readUInt32BE(off + 5) & 0x7fffffff;
    if (buf.length - off - 9 < len) return null;
    const p = buf.subarray(off + 9, off + 9 + len);
    off += 9 + len;
    if (type === 4 && (flags & 1) === 0 && !settings) {
      settings = true;
      for (let i = 0; i + 6 <= len; i += 6) out.settings.push([p.readUInt16BE(i), p.readUInt32BE(i + 2)]);
    } else if (type === 8 && sid === 0 && len === 4 && out.window === null) {
      out.window = p.readUInt32BE(0) & 0x7fffffff;
    } else if (type === 2 && len === 5) {
      out.priorityFrames.push({ streamId: sid, ...priorityAt(p, 0) });
    } else if (type === 1) {
      if (flags & 0x20) out.headersPriority = priorityAt(p, flags & 0x8 ? 1 : 0);
      return out;
    }
  }
  return null;
}

/** Akamai: SETTINGS | WINDOW_UPDATE ('00': none) | PRIORITY frames ('0': none) | pseudo-header letters. */
function akamai(
  settings: readonly (readonly [number, number])[],
  window: number | null,
  prio: readonly (H2Priority & { streamId: number })[],
  pseudo: readonly string[],
): string {
  const s = settings.map(([k, v]) => `${k}:${v}`).join(';');
  const w = window === null ? '00' : String(window); // the paper's value for "none sent"
  const p = prio.length === 0 ? '0' : prio.map((f) => `${f.streamId}:${f.exclusive ? 1 : 0}:${f.dependsOn}:${f.weight}`).join(',');
  return `${s}|${w}|${p}|${pseudo.map((x) => x.replace(/^:/, '')[0]).join(',')}`;
}

/** A Duplex over a socket that keeps every byte read (Node's HTTP/2 server reads through it). */
class Recorder extends Duplex {
  readonly chunks: Buffer[] = [];
  readonly #sock: net.Socket;
  constructor(sock: net.Socket) {
    super();
    this.#sock = sock;
    sock.on('data', (d: Buffer) => {
      this.chunks.push(d);
      if (!this.push(d)) sock.pause();
    });
    sock.on('end', () => this.push(null));
    sock.on('close', () => this.destroy());
    sock.on('error', () => {});
  }
  override _read(): void {
    this.#sock.resume();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#sock.destroyed) cb();
    else this.#sock.write(chunk, () => cb());
  }
  override _final(cb: (e?: Error | null) => void): void {
    this.#sock.end();
    cb();
  }
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.#sock.destroy();
    cb(err);
  }
}

interface H2Capture {
  preface: ReceivedPreface;
  /** Pseudo-header names in the order received. */
  pseudo: string[];
  headers: [string, string][];
  selfReport: string | null;
}

/**
 * One HTTP/2 request as `imp` sends it (h2c with prior knowledge: the same preface and header
 * block the engine writes after an ALPN h2 handshake) to a loopback listener: Node's HTTP/2 server
 * decodes the header fields (in order) and answers 200; the preface frames are read from the
 * bytes it received.
 */
async function captureH2(imp: ImpersonateOption, timeout: number): Promise<H2Capture> {
  const http2 = await import('node:http2');
  const recorders: Recorder[] = [];
  let fields: string[] | null = null;
  const h2 = http2.createServer();
  h2.on('stream', (stream: ServerHttp2Stream, _headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
    fields ??= [...raw];
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-length': '0' });
    stream.end();
  });
  h2.on('sessionError', () => {});
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    const rec = new Recorder(sock);
    recorders.push(rec);
    h2.emit('connection', rec);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const session = new Session({ impersonate: imp, http2: 'prior-knowledge', timeout: { total: timeout } });
  try {
    const port = (server.address() as net.AddressInfo).port;
    const res = await session.request(`http://127.0.0.1:${port}/`);
    await res.arrayBuffer();
    const got = fields as string[] | null;
    const preface = recorders.length === 0 ? null : readPreface(Buffer.concat(recorders[0]!.chunks));
    if (got === null || preface === null) throw new UvfetchError('ERR_HTTP2_PROTOCOL', 'the loopback listener received no complete HTTP/2 request');
    const pseudo: string[] = [];
    const headers: [string, string][] = [];
    for (let i = 0; i + 1 < got.length; i += 2) {
      if (got[i]!.startsWith(':')) pseudo.push(got[i]!);
      else headers.push([got[i]!, got[i + 1]!]);
    }
    return { preface, pseudo, headers, selfReport: res.info.h2Fingerprint ?? null };
  } finally {
    await session.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * How close `profile` ('chrome', 'firefox-141', a profile object, …) gets on this Node: the
 * target JA4, JA3, Akamai HTTP/2 string and header orders next to what was actually sent (a real
 * handshake, a real HTTP/1.1 request and a real HTTP/2 request, each against a loopback listener),
 * and each remaining difference with its reason.
 */
export async function profileFingerprint(profile: ImpersonateOption, options: { timeout?: number } = {}): Promise<ProfileFingerprint> {
  const timeout = options.timeout ?? 5000;
  const imp = impersonation(profile);
  const p = imp.profile;
  const openssl = binding.tlsCapabilities().openssl;
  const fp = await imp.tls.fingerprint({ timeout });
  const headers = await captureHead(p, timeout);
  const h2 = ENGINE_SPEAKS_H2 ? await captureH2(p, timeout) : null;
  const differences: ProfileDifference[] = [];

  // TLS: cipher and extension sets (JA3 lists carry no GREASE), signature algorithms (JA4_r).
  const t = ja3Parts(p.targets.ja3);
  const s = ja3Parts(fp.ja3);
  for (const c of t.ciphers) {
    if (!s.ciphers.includes(c)) {
      const tripleDes = c === 0xc008 || c === 0xc012 || c === 0x000a;
      differences.push({
        part: 'tls.ciphers',
        what: `cipher 0x${hex4(c)} not sent`,
        reason: tripleDes ? `${openssl} has no 3DES suites` : `not available in ${openssl}`,
      });
    }
  }
  for (const c of s.ciphers) {
    if (!t.ciphers.includes(c)) {
      differences.push({
        part: 'tls.ciphers',
        what: `cipher 0x${hex4(c)} sent, not by the browser`,
        reason: c === 0x00ff ? 'OpenSSL 3.0 always appends the renegotiation SCSV' : `added by ${openssl}`,
      });
    }
  }
  for (const e of t.exts) {
    if (!s.exts.includes(e)) {
      differences.push({ part: 'tls.extensions', what: `extension ${e} (${EXT_NAMES[e] ?? '?'}) not sent`, reason: missingExtReason(e, openssl) });
    }
  }
  for (const e of s.exts) {
    if (!t.exts.includes(e)) {
      differences.push({
        part: 'tls.extensions',
        what: `extension ${e} (${EXT_NAMES[e] ?? '?'}) sent, not by the browser`,
        reason: `always sent by ${openssl}`,
      });
    }
  }
  const tSig = ja4rSigalgs(p.targets.ja4r);
  const sSig = ja4rSigalgs(fp.ja4r);
  if (tSig.length > 0 && tSig.join(',') !== sSig.join(',')) {
    const missing = tSig.filter((x) => !sSig.includes(x));
    differences.push({
      part: 'tls.sigalgs',
      what: `signature algorithms ${sSig.join(',')} instead of ${tSig.join(',')}`,
      reason:
        missing.some((x) => x.endsWith('01') || x.endsWith('03')) && missing.some((x) => x.startsWith('02'))
          ? `${openssl}'s default security level leaves out SHA-1 signatures`
          : `${openssl} sends each signature algorithm once, in its own way`,
    });
  }
  if (s.groups !== t.groups) {
    const mlkem = t.groups.split('-').includes('4588') && !s.groups.split('-').includes('4588');
    differences.push({
      part: 'tls.groups',
      what: `supported_groups ${s.groups} instead of ${t.groups}`,
      reason: mlkem ? `${openssl} has no X25519MLKEM768 (OpenSSL 3.5+: Node 22.20+, 24.5+)` : `${openssl} leaves out groups it does not offer`,
    });
  }
  if (s.pointFormats !== t.pointFormats) {
    differences.push({
      part: 'tls.pointFormats',
      what: `ec_point_formats ${s.pointFormats} instead of ${t.pointFormats}`,
      reason: `${openssl} always offers its compressed point formats too`,
    });
  }
  if (fp.ja3 !== p.targets.ja3 && s.exts.join('-') !== t.exts.join('-')) {
    differences.push({
      part: 'ja3.order',
      what: 'extension order differs',
      reason: 'OpenSSL fixes the order of its extensions (custom ones first); Chrome shuffles its order per connection anyway',
    });
  }
  // HTTP/2: the preface and the header fields as received, against the profile's h2 section (what
  // the engine was asked to send) and its target (what the browser sends).
  const h2Target = p.headers.map(([n]) => n.toLowerCase());
  let h2Order: string[] = [];
  let sentAkamai: string | null = null;
  if (h2 === null) {
    differences.push({ part: 'http2', what: `Akamai ${p.targets.akamaiH2} not sent`, reason: 'HTTP/2 is unavailable: this Node exports no nghttp2' });
  } else {
    const pre = h2.preface;
    sentAkamai = akamai(pre.settings, pre.window, pre.priorityFrames, h2.pseudo);
    const h = p.h2;
    const asked = akamai(h.settings, h.connectionWindowIncrement === 0 ? null : h.connectionWindowIncrement, h.priorityFrames, h.pseudoHeaderOrder);
    if (sentAkamai !== p.targets.akamaiH2) {
      differences.push({
        part: 'http2',
        what: `Akamai ${sentAkamai} instead of ${p.targets.akamaiH2}`,
        reason:
          sentAkamai === asked
            ? "the profile's h2 section (SETTINGS, window, PRIORITY frames, pseudo-header order) differs from its target"
            : `the engine's preface differs from what the profile's h2 section asks (${asked})`,
      });
    }
    const hp = pre.headersPriority;
    const want = h.headersPriority;
    const same = hp === null || want === null ? hp === want : hp.exclusive === want.exclusive && hp.dependsOn === want.dependsOn && hp.weight === want.weight;
    if (!same) {
      const show = (x: H2Priority | null) => (x === null ? 'none' : `${x.exclusive ? 'exclusive ' : ''}on ${x.dependsOn}, weight ${x.weight}`);
      differences.push({
        part: 'http2.headersPriority',
        what: `HEADERS priority ${show(hp)} instead of ${show(want)}`,
        reason: "the engine did not send the profile's HEADERS priority",
      });
    }
    if (h2.selfReport !== sentAkamai) {
      differences.push({
        part: 'http2.selfReport',
        what: `res.info.h2Fingerprint ${h2.selfReport ?? '(none)'} but ${sentAkamai} was received`,
        reason: "the engine's self-report disagrees with the bytes it sent",
      });
    }
    h2Order = h2.headers.map(([n]) => n);
    const missing = h2Target.filter((n) => !h2Order.includes(n));
    for (const n of missing) {
      const h1 = p.http1.headerOrder.some((x) => x.toLowerCase() === n);
      differences.push({
        part: 'h2headers.order',
        what: `${n} not sent on HTTP/2`,
        reason: h1
          ? 'left out by the engine'
          : 'the browser sends it on HTTP/2 only and the engine should add it there (an HTTP/2-only default header): a regression',
      });
    }
    for (const [n, v] of h2.headers) {
      const want = p.headers.find(([x]) => x.toLowerCase() === n)?.[1];
      if (want !== undefined && want !== v && !imp.adjusted.has(n)) {
        differences.push({ part: 'headers.value', what: `${n}: ${v} on HTTP/2 instead of ${want}`, reason: 'changed by the engine' });
      }
    }
    const extra = h2Order.filter((n) => !h2Target.includes(n));
    for (const n of extra) differences.push({ part: 'h2headers.order', what: `${n} sent on HTTP/2, not by the browser`, reason: 'added by the engine' });
    const common = h2Order.filter((n) => h2Target.includes(n));
    if (common.join('\n') !== h2Target.filter((n) => h2Order.includes(n)).join('\n')) {
      differences.push({ part: 'h2headers.order', what: `sent ${h2Order.join(', ')}`, reason: "the engine did not keep the profile's HTTP/2 order" });
    }
  }
  // Headers (HTTP/1.1): the profile's order and spelling, after Host.
  const targetOrder = [
    'Host',
    ...p.http1.headerOrder.filter((n) => n.toLowerCase() === 'connection' || p.headers.some(([h]) => h.toLowerCase() === n.toLowerCase())),
  ];
  const sentOrder = headers.map(([n]) => n);
  if (sentOrder.join('\n') !== targetOrder.join('\n')) {
    differences.push({
      part: 'headers.order',
      what: `sent ${sentOrder.join(', ')}`,
      reason: 'differs from the profile (an engine-managed header moved or added?)',
    });
  }
  for (const [name, reason] of imp.adjusted) {
    differences.push(
      name === 'alpn'
        ? { part: 'tls.alpn', what: `ALPN ${(imp.tls.options.alpn ?? []).join(',')} instead of ${(p.tls.alpn ?? []).join(',')}`, reason }
        : { part: 'headers.value', what: name, reason },
    );
  }

  return {
    profile: p.name,
    node: process.version,
    openssl,
    target: { ja4: p.targets.ja4, ja3: p.targets.ja3, akamaiH2: p.targets.akamaiH2, headerOrder: targetOrder, h2HeaderOrder: h2Target },
    sent: {
      ja4: fp.ja4,
      ja4r: fp.ja4r,
      ja3: fp.ja3,
      akamaiH2: sentAkamai,
      akamaiH2SelfReport: h2?.selfReport ?? null,
      h2HeadersPriority: h2?.preface.headersPriority ?? null,
      h2Headers: h2?.headers ?? [],
      h2HeaderOrder: h2Order,
      headers,
      headerOrder: sentOrder,
    },
    match: {
      ja4: fp.ja4 === p.targets.ja4,
      ja4Ciphers: fp.ja4.split('_')[1] === p.targets.ja4.split('_')[1],
      ja3: fp.ja3 === p.targets.ja3,
      akamaiH2: sentAkamai === p.targets.akamaiH2,
      h2HeaderOrder: h2Order.join('\n') === h2Target.join('\n'),
      headerOrder: sentOrder.join('\n') === targetOrder.join('\n'),
    },
    differences,
  };
}
