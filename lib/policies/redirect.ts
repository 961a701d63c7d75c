// Redirect policy: pure decisions, no I/O. Given the request that got a 3xx and the response's
// Location, nextHop() says what to send next (or that the 3xx is the answer, or why not to follow).
// The rules are fetch's where fetch has one, plus header stripping on every origin change.

import { invalidOption, UvfetchError } from '../core/errors.js';
import type { BodyInit } from '../core/types.js';

export type RedirectMode = 'follow' | 'manual' | 'error';

/** One followed redirect, as listed in `res.redirects`. */
export interface RedirectHop {
  /** The URL that answered with the redirect (credentials removed). */
  url: string;
  /** Its method. */
  method: string;
  /** Its status (301, 302, 303, 307 or 308). */
  status: number;
  /** Where it led: the Location resolved against `url` (credentials removed). */
  location: string;
}

export interface RedirectPolicy {
  readonly mode: RedirectMode;
  readonly max: number;
  /** Lower-case names stripped on a cross-origin hop, besides the fixed ones. */
  readonly strip: ReadonlySet<string>;
  readonly allowDowngrade: boolean;
}

export interface RedirectOptionBag {
  redirect?: RedirectMode;
  maxRedirects?: number;
  redirectStripHeaders?: readonly string[];
  allowDowngrade?: boolean;
}

export const DEFAULT_REDIRECT: RedirectPolicy = Object.freeze({ mode: 'follow', max: 10, strip: new Set<string>(), allowDowngrade: false });

/** Always removed when a hop changes scheme, host or port. */
const CROSS_ORIGIN_STRIP = ['authorization', 'cookie', 'proxy-authorization', 'host'];

export function hasRedirectOptions(o: RedirectOptionBag): boolean {
  return o.redirect !== undefined || o.maxRedirects !== undefined || o.redirectStripHeaders !== undefined || o.allowDowngrade !== undefined;
}

/**
 * The policy for `o` over `base` (a request's over the session's): each given field replaces the
 * base's, except redirectStripHeaders, which adds to it (stripping more is always safe).
 */
export function redirectPolicy(o: RedirectOptionBag, base: RedirectPolicy): RedirectPolicy {
  if (!hasRedirectOptions(o)) return base;
  let mode = base.mode;
  if (o.redirect !== undefined) {
    if (o.redirect !== 'follow' && o.redirect !== 'manual' && o.redirect !== 'error') {
      throw invalidOption('redirect', "expected 'follow', 'manual' or 'error'");
    }
    mode = o.redirect;
  }
  let max = base.max;
  if (o.maxRedirects !== undefined) {
    const m = o.maxRedirects;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 0 || m > 1000) {
      throw invalidOption('maxRedirects', `expected an integer from 0 to 1000, got ${String(m)}`);
    }
    max = m;
  }
  let strip = base.strip;
  if (o.redirectStripHeaders !== undefined) {
    const list = o.redirectStripHeaders;
    if (!Array.isArray(list)) throw invalidOption('redirectStripHeaders', 'expected an array of header names');
    const s = new Set(base.strip);
    for (const h of list) {
      if (typeof h !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h)) {
        throw invalidOption('redirectStripHeaders', `expected header names, got ${JSON.stringify(h)}`);
      }
      s.add(h.toLowerCase());
    }
    strip = s;
  }
  let allowDowngrade = base.allowDowngrade;
  if (o.allowDowngrade !== undefined) {
    if (typeof o.allowDowngrade !== 'boolean') throw invalidOption('allowDowngrade', 'expected a boolean');
    allowDowngrade = o.allowDowngrade;
  }
  return { mode, max, strip, allowDowngrade };
}

export function isRedirectStatus(s: number): boolean {
  return s === 301 || s === 302 || s === 303 || s === 307 || s === 308;
}

/** A request as the redirect and retry loop sees it. Headers are [name, value] pairs. */
export interface Hop {
  url: URL;
  method: string;
  headers: Array<[string, string]>;
  body: BodyInit | null | undefined;
}

/** Whether a body can be sent again (an iterator is consumed by the first send). */
export function replayable(body: BodyInit | null | undefined): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer || Array.isArray(body);
}

/** `url.href` without user:password (what res.url and errors show). */
export function publicHref(url: URL): string {
  return url.username !== '' || url.password !== '' ? `${url.protocol}//${url.host}${url.pathname}${url.search}` : url.href;
}

/**
 * What to send after `hop` got `status` with `location` (`followed` redirects so far), or null
 * when the response is the answer (no or unusable Location: returned as is, like fetch).
 * Throws ERR_REDIRECT ('error' mode, a downgrade, a non-http(s) target), ERR_TOO_MANY_REDIRECTS
 * or ERR_REDIRECT_BODY (a kept body that cannot be sent again).
 */
export function nextHop(policy: RedirectPolicy, hop: Hop, status: number, location: string | null, followed: number): Hop | null {
  const from = publicHref(hop.url);
  if (policy.mode === 'error') {
    throw new UvfetchError('ERR_REDIRECT', `redirect (${status}) not allowed by redirect: 'error'`, { reason: 'redirect', url: from, method: hop.method });
  }
  if (location === null) return null;
  let next: URL;
  try {
    next = new URL(location, hop.url);
  } catch {
    return null;
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new UvfetchError('ERR_REDIRECT', `redirect to unsupported scheme ${next.protocol}`, { reason: 'unsupported scheme', url: from, method: hop.method });
  }
  if (followed >= policy.max) {
    throw new UvfetchError('ERR_TOO_MANY_REDIRECTS', `more than ${policy.max} redirects`, { url: from, method: hop.method });
  }
  if (hop.url.protocol === 'https:' && next.protocol === 'http:' && !policy.allowDowngrade) {
    throw new UvfetchError('ERR_REDIRECT', `refusing to follow a redirect from https to http (${publicHref(next)}); set allowDowngrade to allow it`, {
      reason: 'downgrade',
      url: from,
      method: hop.method,
    });
  }
  next.hash = '';
  let method = hop.method;
  if ((status === 303 && method !== 'GET' && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')) method = 'GET';
  let headers = hop.headers;
  let body = hop.body;
  if (method !== hop.method) {
    // The body goes, and with it every header that described it.
    body = undefined;
    headers = headers.filter(([n]) => {
      const l = n.toLowerCase();
      return !l.startsWith('content-') && l !== 'transfer-encoding';
    });
  } else if (!replayable(body)) {
    throw new UvfetchError('ERR_REDIRECT_BODY', `redirect (${status}) keeps the method and body, but the streamed body cannot be sent again`, {
      url: from,
      method: hop.method,
    });
  }
  if (next.origin !== hop.url.origin) {
    const strip = policy.strip;
    headers = headers.filter(([n]) => {
      const l = n.toLowerCase();
      return !CROSS_ORIGIN_STRIP.includes(l) && !strip.has(l);
    });
    next.username = '';
    next.password = '';
  } else if (next.username === '' && next.password === '' && (hop.url.username !== '' || hop.url.password !== '')) {
    // Same origin: credentials from the URL stay (a relative Location keeps them anyway).
    next.username = hop.url.username;
    next.password = hop.url.password;
  }
  return { url: next, method, headers, body };
}
