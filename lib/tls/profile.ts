// TLS profiles: validated and compiled natively once, frozen, reusable across sessions. The
// handshake and record layer run in the native core (OpenSSL through memory BIOs); nothing on the
// handshake or record path runs in JS.
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { invalidOption, UvfetchError } from '../core/errors.js';
import { binding, type NativeCaStore, type NativeTlsContext, type NativeTlsOptions } from '../native/binding.js';
import { fingerprintHello } from './fingerprint.js';
import type { TlsFingerprint, TlsOptions } from './types.js';

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
  'grease',
  'statusRequest',
  'signedCertificateTimestamps',
  'encryptThenMac',
  'padding',
  'recordSizeLimit',
  'echGrease',
  'certCompression',
]);
const DEFAULT_ALPN: readonly string[] = binding.http2Available() ? ['h2', 'http/1.1'] : ['http/1.1'];
const CERT_COMPRESSION = new Set(['brotli', 'zlib', 'zstd']);
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
  for (const k of ['grease', 'statusRequest', 'signedCertificateTimestamps', 'encryptThenMac', 'padding', 'echGrease'] as const) {
    n[k] = bool(o[k], k);
  }
  if (o.recordSizeLimit !== undefined) {
    const v = o.recordSizeLimit;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 64 || v > 16385) {
      throw invalidOption('tls.recordSizeLimit', 'expected an integer from 64 to 16385');
    }
    n.recordSizeLimit = v;
  }
  if (o.certCompression !== undefined) {
    const v = o.certCompression;
    if (!Array.isArray(v) || !v.every((a) => typeof a === 'string' && CERT_COMPRESSION.has(a)) || new Set(v).size !== v.length) {
      throw invalidOption('tls.certCompression', "expected an array of distinct 'brotli', 'zlib' or 'zstd'");
    }
    n.certCompression = [...v];
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
  /** The ALPN protocols offered, in order (the `alpn` option, or ['h2', 'http/1.1'] by default). */
  readonly alpn: readonly string[];

  constructor(options: TlsOptions = {}) {
    const { opts, ca } = toNative(options);
    // No `alpn`: h2 and http/1.1, in that order (http/1.1 alone on a Node without nghttp2).
    if (opts.alpn === undefined) opts.alpn = DEFAULT_ALPN.slice();
    this.alpn = Object.freeze([...opts.alpn]);
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
    return fingerprintHello(this.native, options.timeout ?? 5000);
  }
}

// Contexts derived from a profile whose ALPN list does not suit a use: an HTTP/2-less session,
// or a raw socket (by profile; one per use).
const derived = new WeakMap<TlsProfile, { h1?: NativeTlsContext; raw?: NativeTlsContext }>();

function derive(profile: TlsProfile, slot: 'h1' | 'raw', alpn: string[]): NativeTlsContext {
  let c = derived.get(profile);
  if (c === undefined) {
    c = {};
    derived.set(profile, c);
  }
  let ctx = c[slot];
  if (ctx === undefined) {
    const { opts, ca } = toNative({ ...profile.options, alpn });
    ctx = new binding.NativeTlsContext(opts, ca);
    c[slot] = ctx;
  }
  return ctx;
}

/**
 * @internal The native context for a session's HTTP connections: the profile's own, except that a
 * session with `http2: false` never offers 'h2' (it is taken out of the list).
 */
export function httpContext(profile: TlsProfile, http2: boolean): NativeTlsContext {
  const alpn = profile.alpn;
  if (http2 || !alpn.includes('h2')) return profile.native;
  return derive(
    profile,
    'h1',
    alpn.filter((a) => a !== 'h2'),
  );
}

/**
 * @internal The native context for raw sockets: a profile that sets no `alpn` offers only
 * 'http/1.1' there (as before HTTP/2), since a raw socket's user speaks whatever is selected.
 */
export function rawContext(profile: TlsProfile): NativeTlsContext {
  if (profile.options.alpn !== undefined || !profile.alpn.includes('h2')) return profile.native;
  return derive(profile, 'raw', ['http/1.1']);
}
