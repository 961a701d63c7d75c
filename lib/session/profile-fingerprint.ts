// profileFingerprint(): how close a browser profile gets on the running Node. A real handshake
// against a loopback listener (the ClientHello's JA3/JA4, as TlsProfile.fingerprint()) and a real
// HTTP/1.1 request to a loopback listener (the header names, order and values as received),
// side by side with the profile's targets, and every remaining difference with its reason.
import net from 'node:net';
import { UvfetchError } from '../core/errors.js';
import { binding } from '../native/binding.js';
import { impersonation } from '../profiles/profiles.js';
import type { ImpersonateOption } from '../profiles/types.js';
import { Session } from './session.js';

/** One part where what was sent differs from the browser. */
export interface ProfileDifference {
  /** 'tls.ciphers', 'tls.extensions', 'tls.sigalgs', 'ja3.order', 'http2', 'headers.order', 'headers.value'. */
  part: string;
  /** What differs, e.g. 'extension 17613 (application_settings) not sent'. */
  what: string;
  reason: string;
}

export interface ProfileFingerprint {
  profile: string;
  node: string;
  openssl: string;
  target: { ja4: string; ja3: string; akamaiH2: string; headerOrder: string[] };
  sent: {
    ja4: string;
    ja4r: string;
    ja3: string;
    /** null: HTTP/2 is not spoken by the engine yet. */
    akamaiH2: string | null;
    /** The HTTP/1.1 request head as the listener received it: [name, value] in order. */
    headers: [string, string][];
    headerOrder: string[];
  };
  match: { ja4: boolean; ja4Ciphers: boolean; ja3: boolean; akamaiH2: boolean; headerOrder: boolean };
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

/**
 * How close `profile` ('chrome', 'firefox-141', a profile object, …) gets on this Node: the
 * target JA4, JA3, Akamai HTTP/2 string and header order next to what was actually sent (a real
 * handshake and a real HTTP/1.1 request, each against a loopback listener), and each remaining
 * difference with its reason.
 */
export async function profileFingerprint(profile: ImpersonateOption, options: { timeout?: number } = {}): Promise<ProfileFingerprint> {
  const timeout = options.timeout ?? 5000;
  const imp = impersonation(profile);
  const p = imp.profile;
  const openssl = binding.tlsCapabilities().openssl;
  const fp = await imp.tls.fingerprint({ timeout });
  const headers = await captureHead(p, timeout);
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
  // HTTP/2.
  differences.push({
    part: 'http2',
    what: `Akamai ${p.targets.akamaiH2} not sent`,
    reason: 'HTTP/2 not yet in the engine (the profile keeps its SETTINGS, window, priority and pseudo-header order for it)',
  });
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
    target: { ja4: p.targets.ja4, ja3: p.targets.ja3, akamaiH2: p.targets.akamaiH2, headerOrder: targetOrder },
    sent: { ja4: fp.ja4, ja4r: fp.ja4r, ja3: fp.ja3, akamaiH2: null, headers, headerOrder: sentOrder },
    match: {
      ja4: fp.ja4 === p.targets.ja4,
      ja4Ciphers: fp.ja4.split('_')[1] === p.targets.ja4.split('_')[1],
      ja3: fp.ja3 === p.targets.ja3,
      akamaiH2: false,
      headerOrder: sentOrder.join('\n') === targetOrder.join('\n'),
    },
    differences,
  };
}
