// fetch() on a Session: WHATWG fetch semantics as Node's global fetch has them (Request/Headers
// normalization, body extraction, redirect modes with 303 → GET and cross-origin credential
// stripping, AbortSignal, TypeError('fetch failed') with the UvfetchError as `cause`), sent
// through the session's native engine with session.stream(). Every hop is one native request;
// redirects are decided here with the project's redirect policy (lib/redirect.ts).

import { kResend } from '../observability/send-hook.js';
import type { Session } from '../session/session.js';
import type { StreamResponse } from '../session/response.js';
import { UvfetchError, invalidOption, type ErrorCode } from '../core/errors.js';
import { nextHop, publicHref, redirectPolicy, isRedirectStatus, type Hop, type RedirectHop, type RedirectPolicy } from '../policies/redirect.js';
import type { RequestOptions } from '../session/types.js';
import { extractBody, type ExtractedBody } from './body.js';
import { makeResponse } from './response.js';
import type { UvfetchRequestInit, UvfetchResponse } from '../session/fetch-types.js';

/** Members passed to session.stream() unchanged (it validates them). */
const FORWARDED = ['timeout', 'tls', 'proxy', 'decompress', 'maxDecompressionRatio', 'maxHeaderSize', 'maxHeaderCount', 'timings', 'retry'] as const;

/** fetch's defaults: 20 redirects, downgrades allowed (the Fetch standard refuses neither). */
const FETCH_REDIRECT: RedirectPolicy = Object.freeze({ mode: 'follow', max: 20, strip: new Set<string>(), allowDowngrade: true });

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const NORMALIZED_METHODS: Record<string, string> = { delete: 'DELETE', get: 'GET', head: 'HEAD', options: 'OPTIONS', post: 'POST', put: 'PUT' };
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
/** Engine errors about the request itself: fetch rejects those with a TypeError of that message. */
const INPUT_CODES = new Set<ErrorCode>(['ERR_INVALID_HEADER', 'ERR_INVALID_METHOD', 'ERR_INVALID_URL']);
const NO_INIT: UvfetchRequestInit = Object.freeze({});
const NO_HOPS: readonly RedirectHop[] = Object.freeze([]);
/** Stand-in body for the redirect policy: it only needs to know that a body exists and can be resent. */
const RESENDABLE = new Uint8Array(0);

/** The parts of a Request fetch() reads (a global Request, or one of another undici build). */
interface RequestLike {
  url: string;
  method: string;
  headers: Headers;
  signal: AbortSignal | null;
  redirect: RequestRedirect;
  body: ReadableStream<Uint8Array> | null;
  arrayBuffer(): Promise<ArrayBuffer>;
}

function isRequestLike(x: unknown): x is RequestLike {
  if (x instanceof Request) return true;
  if (typeof x !== 'object' || x === null || x instanceof URL) return false;
  const r = x as Partial<RequestLike>;
  return typeof r.url === 'string' && typeof r.method === 'string' && typeof r.headers === 'object' && typeof r.arrayBuffer === 'function';
}

function parseUrl(s: string): URL {
  try {
    return new URL(s);
  } catch (cause) {
    throw new TypeError(`Failed to parse URL from ${s}`, { cause });
  }
}

/** TypeError('fetch failed') with the UvfetchError as its cause, as Node's fetch reports network errors. */
export function fetchFailed(cause: unknown): TypeError {
  return new TypeError('fetch failed', { cause });
}

/** What a failed request rejects with, fetch's way. */
function failure(err: unknown, signal: AbortSignal | null | undefined): unknown {
  if (err instanceof UvfetchError) {
    if (err.code === 'ERR_ABORTED' && signal?.aborted) return signal.reason;
    if (err.code === 'ERR_INVALID_OPTION') return err;
    if (INPUT_CODES.has(err.code)) return new TypeError(err.message, { cause: err });
    return fetchFailed(err);
  }
  if (err instanceof TypeError) return err;
  return fetchFailed(err);
}

/** What a failed body read rejects with: the signal's reason, or TypeError('terminated') as Node's fetch. */
function bodyFailure(err: unknown, signal: AbortSignal | null | undefined): unknown {
  if (err instanceof UvfetchError && err.code === 'ERR_ABORTED' && signal?.aborted) return signal.reason;
  return new TypeError('terminated', { cause: err });
}

function normalizeMethod(m: unknown): string {
  const s = String(m);
  if (!TOKEN.test(s)) throw new TypeError(`'${s}' is not a valid HTTP method.`);
  const upper = s.toUpperCase();
  if (FORBIDDEN_METHODS.has(upper)) throw new TypeError(`'${s}' HTTP method is unsupported.`);
  return NORMALIZED_METHODS[s.toLowerCase()] ?? s;
}

const STRAY = 1000;
const STRAY_BYTES = 64 * 1024;

/**
 * Gets rid of a response that is not the answer (a followed or refused redirect): its body is
 * read to the end when small and quick, so the socket goes back to the pool, else destroyed.
 */
function discard(res: StreamResponse): void {
  const body = res.body;
  if (body.readableEnded || body.destroyed) return;
  let n = 0;
  const stop = () => {
    clearTimeout(t);
    body.destroy();
  };
  const t = setTimeout(stop, STRAY);
  body.on('data', (c: Buffer) => {
    n += c.length;
    if (n > STRAY_BYTES) stop();
  });
  body.once('close', () => clearTimeout(t));
  body.once('end', () => clearTimeout(t));
  body.on('error', () => clearTimeout(t));
}

/**
 * Node's own fetch as it was when uvfetch loaded (so `globalThis.fetch = uvfetch.fetch` cannot
 * loop), taken only when first needed: on Node 20 reading `globalThis.fetch` loads Node's fetch
 * implementation (~10 ms, ~4 MiB), which `import 'uvfetch'` must not cost. Node 20 defines it as
 * a lazy accessor whose getter also redefines the global, so when the global was replaced since
 * (e.g. by uvfetch's fetch) the replacement is put back after the getter ran.
 */
const fetchAtLoad = Object.getOwnPropertyDescriptor(globalThis, 'fetch');
let nodeFetchCache: typeof globalThis.fetch | undefined;
function nodeFetch(): typeof globalThis.fetch | undefined {
  if (nodeFetchCache !== undefined || fetchAtLoad === undefined) return nodeFetchCache;
  if (fetchAtLoad.get === undefined) {
    nodeFetchCache = fetchAtLoad.value as typeof globalThis.fetch | undefined;
    return nodeFetchCache;
  }
  const now = Object.getOwnPropertyDescriptor(globalThis, 'fetch');
  nodeFetchCache = fetchAtLoad.get.call(globalThis) as typeof globalThis.fetch;
  if (now !== undefined && now.get !== fetchAtLoad.get) Object.defineProperty(globalThis, 'fetch', now);
  return nodeFetchCache;
}

/** `session.fetch(input, init)` and the module-level `fetch()`. */
export function sessionFetch(session: Session, input: unknown, init?: UvfetchRequestInit): Promise<UvfetchResponse> {
  return fetchImpl(session, input, init);
}

/**
 * An invalid request is reported with the platform's own TypeError (its wording changes across
 * Node versions): the Request constructor is asked to build it, and what it throws is thrown.
 * Only on this failure path; `mine` is the answer if the platform would accept it.
 */
function platformError(input: unknown, init: UvfetchRequestInit, mine: TypeError): unknown {
  try {
    new Request(input as RequestInfo, init as RequestInit);
  } catch (err) {
    if (err instanceof TypeError) return err;
  }
  return mine;
}

async function fetchImpl(session: Session, input: unknown, init: UvfetchRequestInit | undefined): Promise<UvfetchResponse> {
  const i: UvfetchRequestInit = init ?? NO_INIT;
  if (typeof i !== 'object' || i === null) throw new TypeError("Failed to execute 'fetch': init must be an object");
  let url: URL;
  let req: RequestLike | undefined;
  try {
    if (typeof input === 'string') {
      url = parseUrl(input);
    } else if (input instanceof URL) {
      url = input;
    } else if (isRequestLike(input)) {
      req = input;
      url = parseUrl(req.url);
    } else {
      url = parseUrl(String(input));
    }
  } catch (err) {
    throw platformError(input, i, err as TypeError);
  }
  if (url.username !== '' || url.password !== '') {
    throw platformError(
      input,
      i,
      new TypeError(`Request cannot be constructed from a URL that includes credentials: ${String(input instanceof URL ? input.href : (req?.url ?? input))}`),
    );
  }
  const protocol = url.protocol;
  if (protocol !== 'http:' && protocol !== 'https:') {
    // data: and blob: URLs involve no network: Node's own fetch answers them.
    if (protocol === 'data:' || protocol === 'blob:') {
      const platform = nodeFetch();
      if (platform !== undefined) return (await platform(input as RequestInfo, i)) as UvfetchResponse;
    }
    throw fetchFailed(new UvfetchError('ERR_UNSUPPORTED_PROTOCOL', `unsupported URL scheme ${protocol} (http: and https: only)`, { url: url.href }));
  }

  let method: string;
  let signal: AbortSignal | null;
  let mode: RequestRedirect;
  try {
    method = i.method !== undefined ? normalizeMethod(i.method) : req !== undefined ? req.method : 'GET';
    signal = i.signal !== undefined ? i.signal : (req?.signal ?? null);
    if (signal !== null && !(signal instanceof AbortSignal)) throw new TypeError("Failed to construct 'Request': member signal is not of type AbortSignal.");
    mode = i.redirect ?? req?.redirect ?? 'follow';
    if (mode !== 'follow' && mode !== 'manual' && mode !== 'error') {
      throw new TypeError(`Failed to construct 'Request': '${String(mode)}' is not a valid value for redirect.`);
    }
    if (i.duplex !== undefined && i.duplex !== 'half')
      throw new TypeError(`Failed to construct 'Request': '${String(i.duplex)}' is not a valid value for duplex.`);
  } catch (err) {
    throw err instanceof TypeError ? platformError(input, i, err) : err;
  }
  if ((i as Record<string, unknown>).impersonate !== undefined) {
    throw invalidOption('impersonate', 'not supported per request: set it on the Session (new Session({ impersonate }), then session.fetch())');
  }

  // Headers, normalized as a Headers object would (validated, lower-cased, combined).
  let headers: Array<[string, string]> = [];
  const hsrc = i.headers !== undefined ? new Headers(i.headers) : req?.headers;
  if (hsrc !== undefined) for (const [n, v] of hsrc) headers.push([n, v]);

  // Body.
  let body: ExtractedBody | null;
  if (i.body !== undefined) {
    try {
      body = await extractBody(i.body, i.duplex);
    } catch (err) {
      throw err instanceof TypeError ? platformError(input, i, err) : err;
    }
  } else if (req !== undefined && req.body !== null) {
    // A Request's body is read whole: its length is then known (sent with content-length) and it
    // can be resent on a 307/308, as Node's fetch does for Requests made from a string or bytes.
    body = { bytes: new Uint8Array(await req.arrayBuffer()), chunks: undefined, replayable: true, length: -1, type: null };
  } else {
    body = null;
  }
  if (body !== null && (method === 'GET' || method === 'HEAD')) throw platformError(input, i, new TypeError('Request with GET/HEAD method cannot have body.'));
  if (body !== null) {
    if (body.type !== null && !headers.some(([n]) => n === 'content-type')) headers.push(['content-type', body.type]);
    // A known length is the body's own, whatever a content-length header said; an unknown one
    // (a stream) keeps the header, if any, and must then match it.
    if (body.length >= 0 || body.bytes !== undefined) headers = headers.filter(([n]) => n !== 'content-length');
    if (body.bytes === undefined && body.length >= 0) headers.push(['content-length', String(body.length)]);
  } else {
    headers = headers.filter(([n]) => n !== 'content-length');
    // The engine sends content-length: 0 for a bodiless POST, PUT, PATCH; Node's fetch also for these.
    if (method === 'PROPFIND' || method === 'PROPPATCH' || method === 'QUERY') headers.push(['content-length', '0']);
  }
  if (!headers.some(([n]) => n === 'accept')) headers.push(['accept', '*/*']);

  // uvfetch's options.
  const base: RequestOptions = { redirect: 'manual' };
  for (const k of FORWARDED) {
    const v = i[k];
    if (v !== undefined) (base as Record<string, unknown>)[k] = v;
  }
  if (signal !== null) base.signal = signal;
  const policy = redirectPolicy(i, FETCH_REDIRECT);
  let maxBodySize = Infinity;
  if (i.maxBodySize !== undefined) {
    if (typeof i.maxBodySize !== 'number' || !Number.isInteger(i.maxBodySize) || i.maxBodySize < 0)
      throw invalidOption('maxBodySize', 'expected a non-negative integer');
    maxBodySize = i.maxBodySize;
  }
  const total = typeof i.timeout?.total === 'number' ? i.timeout.total : 0;
  const deadline = total > 0 ? performance.now() + total : Infinity;

  if (signal?.aborted) throw signal.reason;

  let hop: Hop = { url, method, headers, body: body === null ? undefined : RESENDABLE };
  let hops: RedirectHop[] | undefined;
  // Node's fetch: a response is 'cors' once a redirect has left the first URL's origin.
  let tainted = false;
  // Sends so far (each hop's retries included): instrumentation's http.request.resend_count.
  let sent = 0;
  for (;;) {
    const opts: RequestOptions = { ...base, method: hop.method, headers: hop.headers };
    if (sent > 0) (opts as { [kResend]?: number })[kResend] = sent;
    if (hop.body !== undefined && body !== null) opts.body = body.bytes ?? body.chunks!();
    if (deadline !== Infinity && hops !== undefined) {
      const left = Math.ceil(deadline - performance.now());
      if (left <= 0) throw fetchFailed(new UvfetchError('ERR_TIMEOUT', 'total timeout passed', { url: publicHref(hop.url), method: hop.method }));
      opts.timeout = { ...i.timeout, total: left };
    }
    let res: StreamResponse;
    try {
      res = await session.stream(hop.url, opts);
    } catch (err) {
      throw failure(err, signal);
    }
    const status = res.status;
    if (mode !== 'manual' && isRedirectStatus(status)) {
      const from = publicHref(hop.url);
      if (mode === 'error') {
        discard(res);
        throw fetchFailed(
          new UvfetchError('ERR_REDIRECT', `unexpected redirect (${status}) with redirect: 'error'`, { reason: 'redirect', url: from, method: hop.method }),
        );
      }
      const location = res.headers.get('location');
      if (location !== null) {
        let next: Hop | null;
        try {
          try {
            new URL(location, hop.url);
          } catch (cause) {
            throw new UvfetchError('ERR_REDIRECT', `invalid Location: ${location}`, { reason: 'invalid location', url: from, method: hop.method, cause });
          }
          if (status !== 303 && hop.body !== undefined && body !== null && !body.replayable) {
            throw new UvfetchError('ERR_REDIRECT_BODY', `redirect (${status}) would resend a streamed body, which cannot be sent again`, {
              url: from,
              method: hop.method,
            });
          }
          next = nextHop(policy, hop, status, location, hops?.length ?? 0);
        } catch (err) {
          discard(res);
          throw fetchFailed(err);
        }
        if (next !== null) {
          (hops ??= []).push({ url: from, method: hop.method, status, location: publicHref(next.url) });
          if (!tainted && next.url.origin !== url.origin) tainted = true;
          discard(res);
          if (signal?.aborted) throw signal.reason;
          sent += res.attempts;
          hop = next;
          continue;
        }
      }
    }
    let href = hop.url.href;
    if (hop.url.hash !== '') href = href.slice(0, href.length - hop.url.hash.length);
    return makeResponse({
      status,
      statusText: res.statusText,
      rawHead: res.headers.rawHead,
      body: res.body,
      head: hop.method === 'HEAD',
      url: href,
      redirected: hops !== undefined,
      type: tainted ? 'cors' : 'basic',
      details: { info: res.info, tls: res.tls, timings: res.timings, redirects: hops ?? NO_HOPS },
      bodyOptions: { mapError: (e) => bodyFailure(e, signal), maxBodySize, url: href },
    }) as UvfetchResponse;
  }
}
