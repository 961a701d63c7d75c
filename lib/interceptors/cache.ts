// A ready-made interceptor: a bounded in-memory HTTP cache (a private cache in RFC 9111's terms).
// What of RFC 9111 it does, exactly, is listed in the README ("Response cache").
import { invalidOption } from '../core/errors.js';
import { createResponse, Response } from '../session/response.js';
import type { AnyResponse, InterceptedRequest, Interceptor } from '../session/types.js';

export interface ResponseCacheOptions {
  /** Entries kept (least recently used go first). Default 1000. */
  maxEntries?: number;
  /** Body bytes kept in all. Default 50 MiB. */
  maxBytes?: number;
  /** A larger body is not stored. Default 1 MiB. */
  maxEntrySize?: number;
}

export interface ResponseCacheStats {
  /** Served from the cache without a request. */
  hits: number;
  /** Stale, revalidated with a conditional request that got 304: served from the cache. */
  revalidated: number;
  /** Sent on (nothing usable stored). */
  misses: number;
  /** Responses stored (or replaced). */
  stored: number;
  entries: number;
  bytes: number;
}

/** The cache interceptor, with its counters and a way to empty it. */
export interface ResponseCacheInterceptor extends Interceptor {
  stats(): ResponseCacheStats;
  clear(): void;
}

/** Statuses a cache may store without explicit permission (RFC 9110 §15.1 "heuristically cacheable"); only stored here with explicit freshness or a validator. */
const CACHEABLE = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]);
const UNSAFE = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);

interface Entry {
  key: string;
  status: number;
  url: string;
  /** [name, value] pairs as stored (Set-Cookie never is). */
  headers: Array<[string, string]>;
  body: Buffer;
  /** Request header values the response varies on (lower-case name → value or ''). */
  vary: Array<[string, string]>;
  /** performance.now() when the response was received (or revalidated). */
  received: number;
  /** Its Age header, seconds, at that time. */
  ageAtReceipt: number;
  /** Freshness lifetime, seconds (0: must be revalidated before each use). */
  lifetime: number;
  etag: string | null;
  lastModified: string | null;
}

interface Directives {
  noStore: boolean;
  noCache: boolean;
  maxAge: number | undefined;
  onlyIfCached: boolean;
}

function directives(v: string | null): Directives {
  const d: Directives = { noStore: false, noCache: false, maxAge: undefined, onlyIfCached: false };
  if (v === null) return d;
  for (const part of v.split(',')) {
    const [rawName, rawValue] = part.split('=', 2) as [string, string | undefined];
    const name = rawName.trim().toLowerCase();
    const value = rawValue?.trim().replace(/^"(.*)"$/, '$1');
    if (name === 'no-store') d.noStore = true;
    else if (name === 'no-cache') d.noCache = true;
    else if (name === 'only-if-cached') d.onlyIfCached = true;
    else if (name === 'max-age' && value !== undefined && /^\d+$/.test(value)) d.maxAge = Number(value);
  }
  return d;
}

/** Freshness lifetime in seconds: max-age, else Expires − Date; undefined when neither is given. */
function lifetimeOf(h: { get(n: string): string | null }, cc: Directives): number | undefined {
  if (cc.maxAge !== undefined) return cc.maxAge;
  const expires = h.get('expires');
  if (expires === null) return undefined;
  const e = Date.parse(expires);
  if (Number.isNaN(e)) return 0; // an invalid Expires means "already expired"
  const dateHeader = h.get('date');
  const date = dateHeader === null ? Date.now() : Date.parse(dateHeader);
  return Number.isNaN(date) ? 0 : Math.max(0, Math.floor((e - date) / 1000));
}

function posInt(v: unknown, name: string, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalidOption(name, 'expected a non-negative integer');
  return v;
}

/** A bounded in-memory response cache (see the README for what of RFC 9111 it covers). */
export function responseCache(options: ResponseCacheOptions = {}): ResponseCacheInterceptor {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'expected an object');
  const maxEntries = posInt(options.maxEntries, 'maxEntries', 1000);
  const maxBytes = posInt(options.maxBytes, 'maxBytes', 50 * 1024 * 1024);
  const maxEntrySize = posInt(options.maxEntrySize, 'maxEntrySize', 1024 * 1024);
  // Map order is the LRU order: a use moves the entry to the end. Key: URL (no fragment); one
  // entry per URL (a response with Vary replaces the one stored for other request headers).
  const entries = new Map<string, Entry>();
  let bytes = 0;
  const stats = { hits: 0, revalidated: 0, misses: 0, stored: 0 };

  const remove = (key: string) => {
    const e = entries.get(key);
    if (e === undefined) return;
    entries.delete(key);
    bytes -= e.body.length;
  };
  const store = (e: Entry) => {
    remove(e.key);
    if (e.body.length > maxEntrySize || e.body.length > maxBytes || maxEntries === 0) return;
    entries.set(e.key, e);
    bytes += e.body.length;
    stats.stored++;
    for (const k of entries.keys()) {
      if (entries.size <= maxEntries && bytes <= maxBytes) break;
      remove(k);
    }
  };
  const ageOf = (e: Entry) => e.ageAtReceipt + (performance.now() - e.received) / 1000;
  const serve = (e: Entry, stream: boolean): AnyResponse => {
    entries.delete(e.key);
    entries.set(e.key, e);
    const headers = e.headers.filter(([n]) => n !== 'age');
    headers.push(['age', String(Math.floor(ageOf(e)))]);
    return createResponse(e.status, e.body, headers, { url: e.url, stream });
  };
  const entryFor = (req: InterceptedRequest, key: string): Entry | undefined => {
    const e = entries.get(key);
    if (e === undefined) return undefined;
    for (const [n, v] of e.vary) if ((req.headers.get(n) ?? '') !== v) return undefined;
    return e;
  };
  const toEntry = (req: InterceptedRequest, key: string, res: Response, received: number): Entry | undefined => {
    if (!CACHEABLE.has(res.status)) return undefined;
    const h = res.headers;
    const cc = directives(h.get('cache-control'));
    if (cc.noStore || h.getSetCookie().length > 0) return undefined;
    const varyHeader = h.get('vary');
    const vary: Array<[string, string]> = [];
    if (varyHeader !== null) {
      for (const raw of varyHeader.split(',')) {
        const n = raw.trim().toLowerCase();
        if (n === '*') return undefined;
        if (n !== '') vary.push([n, req.headers.get(n) ?? '']);
      }
    }
    const etag = h.get('etag');
    const lastModified = h.get('last-modified');
    const life = cc.noCache ? 0 : lifetimeOf(h, cc);
    // Without explicit freshness, stored only when it can be revalidated (no heuristic freshness).
    if (life === undefined && etag === null && lastModified === null) return undefined;
    if (life === 0 && etag === null && lastModified === null) return undefined;
    const age = Number(h.get('age'));
    const headers: Array<[string, string]> = [];
    for (const [n, v] of h) if (n !== 'set-cookie') headers.push([n, v]);
    return {
      key,
      status: res.status,
      url: res.url,
      headers,
      body: res.body,
      vary,
      received,
      ageAtReceipt: Number.isFinite(age) && age > 0 ? age : 0,
      lifetime: life ?? 0,
      etag,
      lastModified,
    };
  };

  const fn: Interceptor = async (req, next, ctx) => {
    const method = req.method;
    const u = new URL(req.url);
    u.hash = '';
    const key = u.href;
    if (method !== 'GET') {
      const res = await next(req);
      // RFC 9111 §4.4: an unsafe method's non-error response invalidates the target URI.
      if (UNSAFE.has(method) && res.status < 400) remove(key);
      return res;
    }
    // Requests carrying credentials are neither answered from nor stored in the cache.
    if (req.headers.has('authorization') || req.headers.has('cookie')) return next(req);
    const rcc = directives(req.headers.get('cache-control'));
    const pragmaNoCache = req.headers.get('cache-control') === null && /no-cache/i.test(req.headers.get('pragma') ?? '');
    if (rcc.noStore) return next(req);
    const e = entryFor(req, key);
    if (e !== undefined && !rcc.noCache && !pragmaNoCache) {
      const age = ageOf(e);
      const fresh = age < e.lifetime && (rcc.maxAge === undefined || age <= rcc.maxAge);
      if (fresh) {
        stats.hits++;
        return serve(e, ctx.stream);
      }
    }
    if (rcc.onlyIfCached) {
      if (e !== undefined) {
        stats.hits++;
        return serve(e, ctx.stream);
      }
      stats.misses++;
      return createResponse(504, null, undefined, { url: key, stream: ctx.stream });
    }
    // Stale (or must be revalidated): a conditional request when the entry has a validator.
    let sent = req;
    if (e !== undefined && (e.etag !== null || e.lastModified !== null)) {
      const headers = new Headers(req.headers);
      if (e.etag !== null && !headers.has('if-none-match')) headers.set('if-none-match', e.etag);
      if (e.lastModified !== null && !headers.has('if-modified-since')) headers.set('if-modified-since', e.lastModified);
      sent = { ...req, headers };
    }
    const received = performance.now();
    const res = await next(sent);
    if (e !== undefined && sent !== req && res.status === 304) {
      // RFC 9111 §4.3.4: the stored response, with the 304's header fields updated.
      const h = res.headers;
      const updated = new Map(e.headers.map(([n, v]) => [n, v] as [string, string]));
      for (const [n, v] of h) if (n !== 'content-length' && n !== 'set-cookie' && n !== 'transfer-encoding') updated.set(n, v);
      const merged = [...updated.entries()];
      const cc = directives(updated.get('cache-control') ?? null);
      const getter = { get: (n: string) => updated.get(n) ?? null };
      const age = Number(updated.get('age'));
      const next2: Entry = {
        ...e,
        headers: merged,
        received,
        ageAtReceipt: Number.isFinite(age) && age > 0 ? age : 0,
        lifetime: cc.noCache ? 0 : (lifetimeOf(getter, cc) ?? 0),
        etag: updated.get('etag') ?? e.etag,
        lastModified: updated.get('last-modified') ?? e.lastModified,
      };
      store(next2);
      stats.revalidated++;
      const stored = entries.get(key) ?? next2;
      return serve(stored, ctx.stream);
    }
    stats.misses++;
    if (res instanceof Response) {
      const entry = toEntry(req, key, res, received);
      if (entry !== undefined) store(entry);
      else if (res.status < 500) remove(key);
    }
    // A streamed response is passed on untouched and not stored (the cache does not read bodies it was not given whole).
    return res;
  };
  const out = fn as ResponseCacheInterceptor;
  out.stats = () => ({ ...stats, entries: entries.size, bytes });
  out.clear = () => {
    entries.clear();
    bytes = 0;
  };
  return out;
}
