// Header handling: request headers as users give them (HeadersInit → a flat list or pairs, found
// by name), method names, and the lazily parsed response headers. Pure.
import { invalidOption } from './errors.js';
import type { HeadersInit } from './types.js';

/** Methods upper-cased when given in any case (as fetch does); any other method is sent as given. */
const STANDARD_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);

/** 'get' → 'GET' for the standard methods; other names unchanged. */
export function normalizeMethod(m: string): string {
  const u = m.toUpperCase();
  return STANDARD_METHODS.has(u) ? u : m;
}

/** Calls `fn` for each (name, value) of `h` in order; an array value gives one call per element. */
export function forEachHeader(h: HeadersInit, fn: (name: string, value: string) => void): void {
  if (typeof (h as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const pair of h as Iterable<readonly [string, string]>) {
      if (!Array.isArray(pair) || pair.length !== 2) throw invalidOption('headers', 'expected [name, value] pairs');
      fn(String(pair[0]), String(pair[1]));
    }
    return;
  }
  if (typeof h !== 'object' || h === null) throw invalidOption('headers', 'expected an object or an iterable of pairs');
  for (const name of Object.keys(h)) {
    const v = (h as Record<string, unknown>)[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      for (const x of v) fn(name, String(x));
    } else {
      fn(name, String(v));
    }
  }
}

/** `h` as a flat [name, value, name, value, ...] list (the native submit's form), appended to `out`. */
export function flattenHeaders(h: HeadersInit, out: string[]): string[] {
  forEachHeader(h, (n, v) => {
    out.push(n, v);
  });
  return out;
}

/** `h` as [name, value] pairs (the redirect and retry loop's form). */
export function headerPairs(h: HeadersInit | undefined | null): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (h !== undefined && h !== null) forEachHeader(h, (n, v) => out.push([n, v]));
  return out;
}

/** The first value of header `lower` (a lower-case name) in a flat list, or undefined. */
export function findHeader(flat: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i]!.toLowerCase() === lower) return flat[i + 1];
  return undefined;
}

/**
 * Response headers, parsed lazily from the raw head the engine validated. Nothing is split into
 * per-header strings until a header is read.
 */
export class ResponseHeaders implements Iterable<[string, string]> {
  readonly #raw: string;
  #names: string[] | undefined; // lower-cased
  #values: string[] | undefined;
  #rawNames: string[] | undefined;

  /** @param rawHead the response head exactly as received, status line included. */
  constructor(rawHead: string) {
    this.#raw = rawHead;
  }

  #parse(): void {
    const names: string[] = [];
    const values: string[] = [];
    const rawNames: string[] = [];
    const raw = this.#raw;
    let pos = raw.indexOf('\r\n') + 2; // skip the status line
    // The engine guarantees CRLF line ends, a colon in every field line and no obs-fold.
    while (pos < raw.length) {
      const eol = raw.indexOf('\r\n', pos);
      if (eol === -1 || eol === pos) break;
      const colon = raw.indexOf(':', pos);
      const name = raw.slice(pos, colon);
      rawNames.push(name);
      names.push(name.toLowerCase());
      values.push(raw.slice(colon + 1, eol).trim());
      pos = eol + 2;
    }
    this.#names = names;
    this.#values = values;
    this.#rawNames = rawNames;
  }

  /** Value of a header; repeated headers are joined with ", " (Set-Cookie: use getSetCookie()). */
  get(name: string): string | null {
    if (this.#names === undefined) this.#parse();
    const key = name.toLowerCase();
    const names = this.#names!;
    let out: string | null = null;
    for (let i = 0; i < names.length; i++) {
      if (names[i] === key) out = out === null ? this.#values![i]! : `${out}, ${this.#values![i]!}`;
    }
    return out;
  }

  has(name: string): boolean {
    if (this.#names === undefined) this.#parse();
    return this.#names!.includes(name.toLowerCase());
  }

  /** Every Set-Cookie value, unjoined. */
  getSetCookie(): string[] {
    if (this.#names === undefined) this.#parse();
    const out: string[] = [];
    this.#names!.forEach((n, i) => {
      if (n === 'set-cookie') out.push(this.#values![i]!);
    });
    return out;
  }

  /** Lower-cased name → every value, in order received (node-fetch's raw()). */
  raw(): Record<string, string[]> {
    if (this.#names === undefined) this.#parse();
    const out: Record<string, string[]> = Object.create(null);
    this.#names!.forEach((n, i) => {
      (out[n] ??= []).push(this.#values![i]!);
    });
    return out;
  }

  /** Flat [name, value, name, value, ...] with names as the server spelled them (node:http's rawHeaders). */
  rawPairs(): string[] {
    if (this.#names === undefined) this.#parse();
    const out: string[] = [];
    this.#rawNames!.forEach((n, i) => {
      out.push(n, this.#values![i]!);
    });
    return out;
  }

  /** The head as received: status line and header lines, CRLF-separated. */
  get rawHead(): string {
    return this.#raw;
  }

  *entries(): IterableIterator<[string, string]> {
    if (this.#names === undefined) this.#parse();
    for (let i = 0; i < this.#names!.length; i++) yield [this.#names![i]!, this.#values![i]!];
  }

  keys(): IterableIterator<string> {
    if (this.#names === undefined) this.#parse();
    return this.#names![Symbol.iterator]();
  }

  forEach(fn: (value: string, name: string) => void): void {
    for (const [n, v] of this.entries()) fn(v, n);
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

/** Status text from a raw head's status line ("HTTP/1.1 404 Not Found" → "Not Found"). */
export function statusTextOf(rawHead: string): string {
  const eol = rawHead.indexOf('\r\n');
  const line = eol === -1 ? rawHead : rawHead.slice(0, eol);
  // "HTTP/1.1 200 OK": the reason starts after the second space, if any.
  return line.length > 13 ? line.slice(13) : '';
}
