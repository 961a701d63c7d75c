// TLS profiles: validated and compiled natively once, frozen, reusable across sessions. The
// handshake and record layer run in the native core (OpenSSL through memory BIOs); nothing on the
// handshake or record path runs in JS.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { rootCertificates } from 'node:tls';
import { binding, type NativeCaStore, type NativeTlsContext, type NativeTlsOptions } from './binding.js';
import { invalidOption, UvfetchError } from './errors.js';

export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

export interface TlsVerifyOptions {
  /** Check the certificate's names against the host (or `servername`). Default true. */
  checkHostname?: boolean;
  /** Longest accepted chain (intermediates). Default OpenSSL's (100). */
  depth?: number;
  /** Accept a chain that ends at a trusted intermediate (X509_V_FLAG_PARTIAL_CHAIN). Default false. */
  partialChain?: boolean;
}

export interface TlsOptions {
  /** Lowest version offered. Default 'TLSv1.2'. */
  minVersion?: TlsVersion;
  /** Highest version offered. Default 'TLSv1.3'. */
  maxVersion?: TlsVersion;
  /** TLS ≤ 1.2 cipher list (OpenSSL names), offered in the order given. */
  ciphers?: string | readonly string[];
  /** TLS 1.3 cipher suites, offered in the order given. */
  ciphersuites?: string | readonly string[];
  /** Key-exchange groups (supported_groups), in the order given. E.g. ['X25519', 'P-256']. */
  groups?: string | readonly string[];
  /** node:tls's name for `groups` (':'-separated). Give one or the other. */
  ecdhCurve?: string;
  /** Signature algorithms offered (signature_algorithms), e.g. ['ecdsa_secp256r1_sha256', 'rsa_pss_rsae_sha256']. */
  sigalgs?: string | readonly string[];
  /** ALPN protocols in preference order. Default ['http/1.1']; [] sends no ALPN extension. */
  alpn?: readonly string[];
  /** Name sent as SNI and verified against the certificate, instead of the URL's host. */
  servername?: string;
  /** Send SNI (never sent for IP-literal hosts). Default true. */
  sni?: boolean;
  /** Offer session tickets (the session_ticket extension). Default true. */
  sessionTickets?: boolean;
  /** Origins whose last session is kept for resumption. Default 256; 0 disables resumption. */
  sessionCacheSize?: number;
  /** Verify the server's chain and name. Default true; false must be asked for. */
  rejectUnauthorized?: boolean;
  /** Trust anchors (PEM). Replaces the default store (Node's bundled roots plus NODE_EXTRA_CA_CERTS). */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Client certificate chain (PEM, leaf first). */
  cert?: string | Buffer;
  /** Client private key (PEM). */
  key?: string | Buffer;
  /** Passphrase of an encrypted `key`. */
  passphrase?: string;
  verify?: TlsVerifyOptions;
}

export interface TlsFingerprint {
  /** JA3 string: version,ciphers,extensions,groups,point formats (GREASE removed). */
  ja3: string;
  /** MD5 of `ja3`. */
  ja3Hash: string;
  /** JA4 (FoxIO) TLS client fingerprint. */
  ja4: string;
  /** JA4_r: JA4 with the sorted lists instead of their hashes. */
  ja4r: string;
}

export interface PeerCertificateSummary {
  subject: string;
  issuer: string;
  /** As node:tls spells it: "DNS:localhost, IP Address:127.0.0.1". */
  subjectaltname: string;
  validFrom: string;
  validTo: string;
  /** SHA-256 of the DER certificate, colon-separated uppercase hex. */
  fingerprint256: string;
  serialNumber: string;
}

/** What the connection's handshake negotiated (`res.tls`). Shared by every response of that connection. */
export interface TlsInfo {
  protocol: string;
  /** OpenSSL cipher name. */
  cipher: string;
  /** IANA cipher name. */
  cipherStandardName: string;
  /** Selected ALPN protocol, '' if none. */
  alpn: string;
  /** Key-exchange group, e.g. 'x25519'. */
  group: string;
  resumed: boolean;
  /** Chain and name verified (also reported when verification was not enforced). */
  authorized: boolean;
  authorizationError: string | undefined;
  /** SNI sent, '' if none. */
  servername: string;
  /** Fingerprint of the ClientHello this connection actually sent. */
  ja3: string;
  ja3Hash: string;
  ja4: string;
  peerCertificate: PeerCertificateSummary | null;
}

const TLS_KEYS = new Set([
  'minVersion',
  'maxVersion',
  'ciphers',
  'ciphersuites',
  'groups',
  'ecdhCurve',
  'sigalgs',
  'alpn',
  'servername',
  'sni',
  'sessionTickets',
  'sessionCacheSize',
  'rejectUnauthorized',
  'ca',
  'cert',
  'key',
  'passphrase',
  'verify',
]);
const VERIFY_KEYS = new Set(['checkHostname', 'depth', 'partialChain']);
const VERSIONS = new Set(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']);

function list(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') {
    if (v === '') throw invalidOption(`tls.${name}`, 'expected a non-empty list');
    return v;
  }
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string' && x !== '' && !x.includes(':'))) {
    return v.join(':');
  }
  throw invalidOption(`tls.${name}`, "expected a ':'-separated string or a non-empty array of names");
}

function pem(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('latin1');
  throw invalidOption(`tls.${name}`, 'expected a PEM string or Buffer');
}

function bool(v: unknown, name: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalidOption(`tls.${name}`, 'expected a boolean');
  return v;
}

let defaultStore: NativeCaStore | undefined;

/** Node's bundled root certificates plus NODE_EXTRA_CA_CERTS, parsed once per thread. */
function defaultCaStore(): NativeCaStore {
  if (defaultStore !== undefined) return defaultStore;
  const pems: string[] = [...rootCertificates];
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (extra) {
    try {
      pems.push(readFileSync(extra, 'latin1'));
    } catch (err) {
      // Node itself only warns about an unreadable file; so do we.
      process.emitWarning(`Ignoring extra certs from \`${extra}\`, load failed: ${(err as Error).message}`);
    }
  }
  try {
    defaultStore = new binding.NativeCaStore(pems);
  } catch (err) {
    if (!extra) throw err;
    process.emitWarning(`Ignoring extra certs from \`${extra}\`: ${(err as Error).message}`);
    defaultStore = new binding.NativeCaStore([...rootCertificates]);
  }
  return defaultStore;
}

function toNative(o: TlsOptions): { opts: NativeTlsOptions; ca: NativeCaStore | null } {
  if (o === null || typeof o !== 'object') throw invalidOption('tls', 'expected a TlsProfile or an options object');
  for (const k of Object.keys(o)) if (!TLS_KEYS.has(k)) throw invalidOption(`tls.${k}`, 'unknown option');
  const n: NativeTlsOptions = {};
  for (const k of ['minVersion', 'maxVersion'] as const) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !VERSIONS.has(v)) throw invalidOption(`tls.${k}`, "expected 'TLSv1', 'TLSv1.1', 'TLSv1.2' or 'TLSv1.3'");
    n[k] = v;
  }
  n.ciphers = list(o.ciphers, 'ciphers');
  n.ciphersuites = list(o.ciphersuites, 'ciphersuites');
  if (o.groups !== undefined && o.ecdhCurve !== undefined) throw invalidOption('tls.ecdhCurve', 'give groups or ecdhCurve, not both');
  n.groups = list(o.groups ?? o.ecdhCurve, o.groups !== undefined ? 'groups' : 'ecdhCurve');
  n.sigalgs = list(o.sigalgs, 'sigalgs');
  if (o.alpn !== undefined) {
    if (!Array.isArray(o.alpn) || !o.alpn.every((p) => typeof p === 'string' && p.length > 0 && Buffer.byteLength(p) <= 255)) {
      throw invalidOption('tls.alpn', 'expected an array of protocol names (1 to 255 bytes each)');
    }
    n.alpn = [...o.alpn];
  }
  if (o.servername !== undefined) {
    if (typeof o.servername !== 'string' || o.servername === '' || /[\s/]/.test(o.servername)) {
      throw invalidOption('tls.servername', 'expected a host name');
    }
    n.servername = o.servername;
  }
  n.sni = bool(o.sni, 'sni');
  n.sessionTickets = bool(o.sessionTickets, 'sessionTickets');
  n.rejectUnauthorized = bool(o.rejectUnauthorized, 'rejectUnauthorized');
  if (o.sessionCacheSize !== undefined) {
    const v = o.sessionCacheSize;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 1_000_000) {
      throw invalidOption('tls.sessionCacheSize', 'expected an integer from 0 to 1000000');
    }
    n.sessionCacheSize = v;
  }
  if (o.verify !== undefined) {
    const v = o.verify;
    if (v === null || typeof v !== 'object') throw invalidOption('tls.verify', 'expected an object');
    for (const k of Object.keys(v)) if (!VERIFY_KEYS.has(k)) throw invalidOption(`tls.verify.${k}`, 'unknown option');
    n.checkHostname = bool(v.checkHostname, 'verify.checkHostname');
    n.partialChain = bool(v.partialChain, 'verify.partialChain');
    if (v.depth !== undefined) {
      if (typeof v.depth !== 'number' || !Number.isInteger(v.depth) || v.depth < 0 || v.depth > 100) {
        throw invalidOption('tls.verify.depth', 'expected an integer from 0 to 100');
      }
      n.verifyDepth = v.depth;
    }
  }
  n.cert = pem(o.cert, 'cert');
  n.key = pem(o.key, 'key');
  if (o.passphrase !== undefined) {
    if (typeof o.passphrase !== 'string') throw invalidOption('tls.passphrase', 'expected a string');
    n.passphrase = o.passphrase;
  }
  for (const k of Object.keys(n) as (keyof NativeTlsOptions)[]) if (n[k] === undefined) delete n[k];
  let ca: NativeCaStore | null = null;
  if (o.ca !== undefined) {
    const arr = Array.isArray(o.ca) ? o.ca : [o.ca];
    if (arr.length === 0) throw invalidOption('tls.ca', 'expected at least one PEM certificate');
    ca = new binding.NativeCaStore(arr.map((c, i) => pem(c, `ca[${i}]`)!));
  } else if (n.rejectUnauthorized !== false) {
    ca = defaultCaStore();
  }
  return { opts: n, ca };
}

const fromOptions = new WeakMap<object, TlsProfile>();

/**
 * A TLS client configuration, validated and compiled once (bad cipher, group or sigalg names
 * throw ERR_TLS_CONFIG naming the token), then frozen. Reuse one profile across sessions and
 * requests: connections are pooled per profile, and the TLS session cache (resumption) lives in it.
 */
export class TlsProfile {
  /** The options as given (frozen). */
  readonly options: Readonly<TlsOptions>;
  /** @internal */
  readonly native: NativeTlsContext;

  constructor(options: TlsOptions = {}) {
    const { opts, ca } = toNative(options);
    try {
      this.native = new binding.NativeTlsContext(opts, ca);
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === 'ERR_TLS_CONFIG') throw new UvfetchError('ERR_TLS_CONFIG', `invalid TLS profile: ${e.message}`, { reason: e.message });
      throw err;
    }
    this.options = Object.freeze({ ...options });
    Object.freeze(this);
  }

  /** A profile for `tls` as users pass it: a TlsProfile as is; the same options object → the same profile. */
  static from(tls: TlsProfile | TlsOptions): TlsProfile {
    if (tls instanceof TlsProfile) return tls;
    if (tls === null || typeof tls !== 'object') throw invalidOption('tls', 'expected a TlsProfile or an options object');
    let p = fromOptions.get(tls);
    if (p === undefined) {
      p = new TlsProfile(tls);
      fromOptions.set(tls, p);
    }
    return p;
  }

  /** Resumable sessions currently cached (origins). */
  get cachedSessions(): number {
    return this.native.cachedSessions();
  }

  /**
   * The JA3/JA4 fingerprint of the ClientHello this profile sends, computed from the bytes of a
   * real handshake attempt against a loopback listener (which hangs up after the hello).
   * The hello is sent for 'localhost' (so SNI is present, as for any named host), or for the
   * profile's `servername` when it sets one.
   */
  async fingerprint(options: { timeout?: number } = {}): Promise<TlsFingerprint> {
    const host = 'localhost';
    const timeout = options.timeout ?? 5000;
    const { Session } = await import('./session.js');
    let done: (fp: TlsFingerprint | Error) => void = () => {};
    const result = new Promise<TlsFingerprint | Error>((resolve) => {
      done = resolve;
    });
    const server = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const fp = binding.fingerprintHello(buf);
        if (fp !== null) {
          done(fp);
          sock.destroy();
        } else if (buf.length > 64 * 1024) {
          done(new UvfetchError('ERR_TLS', 'no ClientHello in the first 64 KiB'));
          sock.destroy();
        }
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as net.AddressInfo).port;
    const session = new Session({ connections: 1, timeout: { connect: timeout }, dns: { overrides: { [host]: ['127.0.0.1'] } } });
    const timer = setTimeout(() => done(new UvfetchError('ERR_TLS_HANDSHAKE_TIMEOUT', 'no ClientHello arrived')), timeout);
    try {
      session.request(`https://${host}:${port}/`, { tls: this }).then(
        () => done(new UvfetchError('ERR_TLS', 'the loopback listener answered unexpectedly')),
        () => {},
      );
      const r = await result;
      if (r instanceof Error) throw r;
      return r;
    } finally {
      clearTimeout(timer);
      await session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}

/** Decodes a TlsInfo event payload (NUL-separated fields, native/binding/engine_wrap.cc). */
export function decodeTlsInfo(flags: number, payload: string): TlsInfo {
  const f = payload.split('\0');
  const s = (i: number) => f[i] ?? '';
  const hasCert = s(10) !== '' || s(15) !== '';
  return {
    protocol: s(0),
    cipher: s(1),
    cipherStandardName: s(2),
    alpn: s(3),
    group: s(4),
    resumed: (flags & 1) !== 0,
    authorized: (flags & 2) !== 0,
    authorizationError: (flags & 2) !== 0 ? undefined : s(5),
    servername: s(6),
    ja3: s(7),
    ja3Hash: s(8),
    ja4: s(9),
    peerCertificate: hasCert
      ? {
          subject: s(10),
          issuer: s(11),
          subjectaltname: s(12),
          validFrom: s(13),
          validTo: s(14),
          fingerprint256: s(15),
          serialNumber: s(16),
        }
      : null,
  };
}
