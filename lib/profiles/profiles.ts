// Browser profiles: the shipped data made into frozen profile objects, name resolution, and what
// a Session needs of one (its TLS profile and its default request headers in order).
import { invalidOption } from '../core/errors.js';
import { binding } from '../native/binding.js';
import { TlsProfile } from '../tls/profile.js';
import type { TlsOptions } from '../tls/types.js';
import { SHIPPED } from './data.js';
import type { BrowserProfile, BrowserProfileData, BrowserProfilePatch, ImpersonateOption } from './types.js';

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

const isProfile = new WeakSet<object>();

function checkData(d: BrowserProfileData): void {
  if (d === null || typeof d !== 'object') throw invalidOption('impersonate', 'expected a profile name or a profile object');
  if (typeof d.name !== 'string' || d.name === '') throw invalidOption('impersonate.name', 'expected a non-empty string');
  if (d.tls === null || typeof d.tls !== 'object') throw invalidOption('impersonate.tls', 'expected TLS options');
  const pairs = d.headers;
  if (!Array.isArray(pairs) || !pairs.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && p[0] !== '' && typeof p[1] === 'string')) {
    throw invalidOption('impersonate.headers', 'expected an array of [name, value] string pairs');
  }
  const h1 = d.http1;
  if (
    h1 === null ||
    typeof h1 !== 'object' ||
    !Array.isArray(h1.headerOrder) ||
    !h1.headerOrder.every((n) => typeof n === 'string' && n !== '') ||
    typeof h1.connection !== 'string'
  ) {
    throw invalidOption('impersonate.http1', 'expected { headerOrder: string[], connection: string }');
  }
}

/** A frozen profile object over `data` (copied), with `with()`. */
export function makeProfile(data: BrowserProfileData): BrowserProfile {
  checkData(data);
  const p = clone(data) as BrowserProfile;
  Object.defineProperty(p, 'with', {
    enumerable: false,
    value(patch: BrowserProfilePatch): BrowserProfile {
      if (patch === null || typeof patch !== 'object') throw invalidOption('with', 'expected an object');
      const base = clone(p);
      const next: BrowserProfileData = {
        ...base,
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.browser !== undefined ? { browser: patch.browser } : {}),
        ...(patch.version !== undefined ? { version: patch.version } : {}),
        tls: { ...base.tls, ...clone(patch.tls) },
        h2: { ...base.h2, ...clone(patch.h2) },
        headers: patch.headers !== undefined ? clone(patch.headers) : base.headers,
        http1: { ...base.http1, ...clone(patch.http1) },
        targets: { ...base.targets, ...clone(patch.targets) },
        sources: { ...base.sources, ...clone(patch.sources) },
      };
      return makeProfile(next);
    },
  });
  deepFreeze(p);
  isProfile.add(p);
  return p;
}

function buildShipped(): Readonly<Record<string, BrowserProfile>> {
  const out: Record<string, BrowserProfile> = {};
  for (const d of SHIPPED) {
    const p = makeProfile(d);
    out[d.name] = p;
    out[d.browser] ??= p; // the first of a browser is its newest
  }
  return Object.freeze(out);
}

/**
 * The shipped browser profiles by name: 'chrome', 'firefox', 'safari' (the newest of each) and
 * the versioned names ('chrome-149', 'chrome-141', 'firefox-141', 'safari-26').
 */
export const profiles: Readonly<Record<string, BrowserProfile>> = buildShipped();

/** A profile for `impersonate`: a shipped name, a profile object, or a plain profile data object. */
export function resolveProfile(opt: ImpersonateOption): BrowserProfile {
  if (typeof opt === 'string') {
    const p = Object.hasOwn(profiles, opt) ? profiles[opt] : undefined;
    if (p === undefined) throw invalidOption('impersonate', `unknown profile '${opt}' (known: ${Object.keys(profiles).join(', ')})`);
    return p;
  }
  if (opt !== null && typeof opt === 'object' && isProfile.has(opt)) return opt as BrowserProfile;
  return makeProfile(opt as BrowserProfileData);
}

/** What a Session applies for a profile. */
export interface Impersonation {
  profile: BrowserProfile;
  tls: TlsProfile;
  /** Default HTTP/1.1 request headers, flat [name, value, …], in the profile's order and spelling. */
  headers: readonly string[];
  /** What differs from the profile because this engine cannot honour it ('alpn', a header name → reason). */
  adjusted: ReadonlyMap<string, string>;
}

/** The accept-encoding value restricted to what this engine decodes (never advertise what it cannot). */
function decodableEncodings(value: string, adjusted: Map<string, string>): string {
  const can = new Set(
    binding
      .acceptEncoding()
      .split(',')
      .map((t) => t.trim().toLowerCase()),
  );
  const tokens = value.split(',').map((t) => t.trim());
  const kept = tokens.filter((t) => {
    const coding = t.split(';')[0]!.trim().toLowerCase();
    return coding === 'identity' || coding === '*' || can.has(coding);
  });
  if (kept.length !== tokens.length) {
    const dropped = tokens.filter((t) => !kept.includes(t));
    adjusted.set('accept-encoding', `${dropped.join(', ')} dropped: this Node cannot decode it`);
  }
  return kept.join(', ');
}

function profileHeaders(p: BrowserProfile, adjusted: Map<string, string>): string[] {
  const values = new Map<string, string>();
  for (const [n, v] of p.headers) values.set(n.toLowerCase(), v);
  const out: string[] = [];
  for (const name of p.http1.headerOrder) {
    const lower = name.toLowerCase();
    let v = lower === 'connection' ? p.http1.connection : values.get(lower);
    if (v === undefined) continue;
    if (lower === 'accept-encoding') v = decodableEncodings(v, adjusted);
    if (v === '') continue;
    out.push(name, v);
  }
  return out;
}

/**
 * Whether the engine speaks HTTP/2: on a Node without nghttp2 a profile's 'h2' is left out of ALPN
 * (a server would choose it and the handshake would end in ERR_TLS_ALPN). A session with
 * `http2: false` leaves it out too (lib/tls/profile.ts httpContext).
 */
export const ENGINE_SPEAKS_H2: boolean = binding.http2Available();

function profileTls(p: BrowserProfile, adjusted: Map<string, string>): TlsOptions {
  const tls = clone(p.tls) as TlsOptions;
  if (!ENGINE_SPEAKS_H2 && tls.alpn !== undefined && tls.alpn.includes('h2')) {
    tls.alpn = tls.alpn.filter((a) => a !== 'h2');
    adjusted.set('alpn', 'h2 left out: this Node exports no nghttp2 (a server would choose it)');
  }
  return tls;
}

const cache = new WeakMap<BrowserProfile, Impersonation>();

/**
 * The TLS profile and default headers of `opt`. `tlsExtra` (the Session's own `tls` options,
 * e.g. `ca` or `rejectUnauthorized`) is applied over the profile's TLS options.
 */
export function impersonation(opt: ImpersonateOption, tlsExtra?: TlsOptions): Impersonation {
  const profile = resolveProfile(opt);
  if (tlsExtra === undefined) {
    const hit = cache.get(profile);
    if (hit !== undefined) return hit;
  }
  const adjusted = new Map<string, string>();
  const headers = profileHeaders(profile, adjusted);
  const tls = new TlsProfile({ ...profileTls(profile, adjusted), ...(tlsExtra ?? {}) });
  const imp: Impersonation = { profile, tls, headers: Object.freeze(headers), adjusted };
  if (tlsExtra === undefined) cache.set(profile, imp);
  return imp;
}

/**
 * The request's headers over the profile's defaults: a header the user gives replaces the
 * profile's value (every value the user gives for that name, in the profile's position and
 * spelling); the user's other headers follow, in their order. `user` and the result are flat.
 */
export function mergeProfileHeaders(defaults: readonly string[], user: readonly string[] | null): string[] {
  if (user === null || user.length === 0) return defaults.slice();
  const used = new Uint8Array(user.length / 2);
  const lowerUser: string[] = [];
  for (let i = 0; i < user.length; i += 2) lowerUser.push(user[i]!.toLowerCase());
  const out: string[] = [];
  for (let j = 0; j < defaults.length; j += 2) {
    const name = defaults[j]!;
    const lower = name.toLowerCase();
    let found = false;
    for (let i = 0; i < lowerUser.length; i++) {
      if (used[i] === 0 && lowerUser[i] === lower) {
        out.push(name, user[2 * i + 1]!);
        used[i] = 1;
        found = true;
      }
    }
    if (!found) out.push(name, defaults[j + 1]!);
  }
  for (let i = 0; i < lowerUser.length; i++) if (used[i] === 0) out.push(user[2 * i]!, user[2 * i + 1]!);
  return out;
}

/** `defaults` with the User-Agent value replaced (kept in place), or removed for ''. */
export function withUserAgent(defaults: readonly string[], ua: string): string[] {
  const out: string[] = [];
  let seen = false;
  for (let i = 0; i < defaults.length; i += 2) {
    const name = defaults[i]!;
    if (name.toLowerCase() !== 'user-agent') out.push(name, defaults[i + 1]!);
    else if (ua !== '') {
      out.push(name, ua);
      seen = true;
    } else seen = true;
  }
  if (!seen && ua !== '') out.push('User-Agent', ua);
  return out;
}
