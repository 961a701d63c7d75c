// The opt-in cookie jar: tough-cookie (RFC 6265) decides which cookies go to which URL; this file
// only parses the option, merges the jar's cookies with a Cookie header of the caller's, and stores
// Set-Cookie fields. tough-cookie is loaded on first use, so sessions without cookies never load it.

import { createRequire } from 'node:module';
import type { CookieJar } from 'tough-cookie';
import { invalidOption } from '../core/errors.js';

export type { CookieJar };

/** What the session needs of a jar: tough-cookie's promise API (a CookieJar from any copy of it). */
export interface CookieJarLike {
  getCookieString(url: string): Promise<string>;
  setCookie(cookie: string, url: string, options?: { ignoreError?: boolean }): Promise<unknown>;
}

const requireHere = createRequire(import.meta.url);

/** `cookies` option → a jar, or undefined (off). `true` makes a new in-memory CookieJar. */
export function cookieJarOption(v: unknown): CookieJarLike | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true) {
    const { CookieJar: Jar } = requireHere('tough-cookie') as typeof import('tough-cookie');
    return new Jar() as unknown as CookieJarLike;
  }
  if (
    v !== null &&
    typeof v === 'object' &&
    typeof (v as CookieJarLike).getCookieString === 'function' &&
    typeof (v as CookieJarLike).setCookie === 'function'
  ) {
    return v as CookieJarLike;
  }
  throw invalidOption('cookies', 'expected true, false or a tough-cookie CookieJar');
}

function cookieName(pair: string): string {
  const i = pair.indexOf('=');
  return (i < 0 ? pair : pair.slice(0, i)).trim();
}

/**
 * `headers` with the jar's cookies for `url` added. The caller's own Cookie header(s) come first
 * and win: a jar cookie whose name the caller already sends is left out. The result is one
 * Cookie header.
 */
export async function withJarCookies(jar: CookieJarLike, url: URL, headers: Array<[string, string]>): Promise<Array<[string, string]>> {
  const fromJar = await jar.getCookieString(url.href);
  if (fromJar === '') return headers;
  const own: string[] = [];
  const rest: Array<[string, string]> = [];
  for (const h of headers) {
    if (h[0].toLowerCase() === 'cookie') own.push(h[1]);
    else rest.push(h);
  }
  if (own.length === 0) {
    rest.push(['cookie', fromJar]);
    return rest;
  }
  const names = new Set<string>();
  for (const v of own) for (const p of v.split(';')) if (p.trim() !== '') names.add(cookieName(p));
  const add = fromJar.split('; ').filter((p) => !names.has(cookieName(p)));
  rest.push(['cookie', [...own, ...add].join('; ')]);
  return rest;
}

/** Stores a response's Set-Cookie fields (invalid or foreign ones are ignored, as browsers do). */
export async function storeJarCookies(jar: CookieJarLike, url: URL, setCookies: string[]): Promise<void> {
  for (const c of setCookies) await jar.setCookie(c, url.href, { ignoreError: true });
}
