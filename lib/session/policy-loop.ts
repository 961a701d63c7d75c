// The request loop behind redirects, retries, rate limits and cookies (their rules: lib/policies/).
// A Session sends a request through it only when one of those needs JS between two native submits;
// otherwise the request takes the plain path (and a 3xx to follow enters here from the Dispatcher,
// see runFrom()).
//
// One run: [rate-limit token → jar cookies → native submit (no redirect following) → store cookies
// → AIMD feedback → retry?]* per hop, then the redirect decision, until a final response.

import { invalidOption, UvfetchError } from '../core/errors.js';
import { headerPairs, normalizeMethod } from '../core/headers.js';
import { type CookieJarLike, cookieJarOption, storeJarCookies, withJarCookies } from '../policies/cookies.js';
import { RateLimiter } from '../policies/rate-limit.js';
import {
  DEFAULT_REDIRECT,
  type Hop,
  isRedirectStatus,
  nextHop,
  publicHref,
  type RedirectHop,
  type RedirectPolicy,
  redirectPolicy,
  replayable,
} from '../policies/redirect.js';
import { backoffDelay, type RetryPolicy, retryAfterMs, retryPolicy } from '../policies/retry.js';
import { type Response, StreamResponse } from './response.js';
import type { RequestOptions, SessionOptions } from './types.js';

type AnyResponse = Response | StreamResponse;

export interface SessionPolicies {
  readonly redirect: RedirectPolicy;
  readonly retry: RetryPolicy | undefined;
  readonly limiter: RateLimiter | undefined;
  readonly jar: CookieJarLike | undefined;
  /** Every request needs the loop (retry, rate limit or cookies configured on the session). */
  readonly slow: boolean;
}

export function sessionPolicies(o: SessionOptions): SessionPolicies {
  const redirect = redirectPolicy(o, DEFAULT_REDIRECT);
  const retry = retryPolicy(o.retry, undefined);
  const limiter = RateLimiter.from(o.rateLimit);
  const jar = cookieJarOption(o.cookies);
  return { redirect, retry, limiter, jar, slow: retry !== undefined || limiter !== undefined || jar !== undefined };
}

/** What the loop needs of its Session. */
export interface PolicyContext {
  readonly policies: SessionPolicies;
  /** The session's default timeout.total (0 = none). */
  readonly totalTimeout: number;
  /** One native submit that does not follow redirects. */
  send(url: URL, options: RequestOptions, stream: boolean): Promise<AnyResponse>;
}

/** A request ready for the loop: validated, headers as pairs, policies resolved. */
export interface Prepared {
  hop: Hop;
  /** The caller's options minus the ones set per hop (method, headers, body) and the policy keys. */
  base: RequestOptions;
  redirect: RedirectPolicy;
  retry: RetryPolicy | undefined;
  signal: AbortSignal | undefined;
  /** timeout.total of this request (0 = none). */
  total: number;
}

/** Validates the policy options of one request (synchronously) and splits the rest off. */
export function prepare(ctx: PolicyContext, url: URL, options: RequestOptions | undefined, redirect?: RedirectPolicy): Prepared {
  const o = options ?? {};
  const { method: m, headers, body, redirect: _r, maxRedirects: _m, redirectStripHeaders: _s, allowDowngrade: _a, retry, ...base } = o;
  let method = 'GET';
  if (m !== undefined) {
    if (typeof m !== 'string') throw invalidOption('method', 'expected a string');
    method = normalizeMethod(m);
  }
  const t = o.timeout?.total;
  return {
    hop: { url, method, headers: headerPairs(headers), body },
    base,
    redirect: redirect ?? redirectPolicy(o, ctx.policies.redirect),
    retry: retryPolicy(retry, ctx.policies.retry),
    signal: o.signal,
    total: typeof t === 'number' ? t : ctx.totalTimeout,
  };
}

/** Runs a prepared request to its final response. */
export function run(ctx: PolicyContext, r: Prepared, stream: boolean): Promise<AnyResponse> {
  return loop(ctx, r, stream, undefined, performance.now());
}

/**
 * Continues a request that took the plain path and got a 3xx to follow (`res`), started at
 * `start` (performance.now(); 0 when it had no total timeout).
 */
export function runFrom(ctx: PolicyContext, r: Prepared, stream: boolean, res: AnyResponse, start: number): Promise<AnyResponse> {
  return loop(ctx, r, stream, res, start === 0 ? performance.now() : start);
}

async function loop(ctx: PolicyContext, r: Prepared, stream: boolean, first: AnyResponse | undefined, start: number): Promise<AnyResponse> {
  const deadline = r.total > 0 ? start + r.total : Infinity;
  let hop = r.hop;
  let res = first;
  let attempts = 1;
  const hops: RedirectHop[] = [];
  for (;;) {
    if (res === undefined) [res, attempts] = await attempt(ctx, r, hop, stream, deadline);
    if (r.redirect.mode !== 'manual' && isRedirectStatus(res.status)) {
      let next: Hop | null;
      try {
        next = nextHop(r.redirect, hop, res.status, res.headers.get('location'), hops.length);
      } catch (err) {
        void discard(res);
        throw err;
      }
      if (next !== null) {
        hops.push({ url: publicHref(hop.url), method: hop.method, status: res.status, location: publicHref(next.url) });
        await discard(res);
        hop = next;
        res = undefined;
        continue;
      }
    }
    if (hops.length > 0) res.redirects = hops;
    res.attempts = attempts;
    return res;
  }
}

/** One hop with its retries: [token, cookies, submit, store, feedback]* → [response, attempts]. */
async function attempt(ctx: PolicyContext, r: Prepared, hop: Hop, stream: boolean, deadline: number): Promise<[AnyResponse, number]> {
  const { limiter, jar } = ctx.policies;
  const retry = r.retry;
  const canRetry = retry !== undefined && retry.attempts > 1 && retry.methods.has(hop.method) && replayable(hop.body);
  const href = publicHref(hop.url);
  const origin = hop.url.origin;
  for (let n = 1; ; n++) {
    if (limiter !== undefined) {
      const wait = limiter.acquire(origin, r.signal, deadline, href, hop.method);
      if (wait !== undefined) await wait;
    }
    const headers = jar !== undefined ? await withJarCookies(jar, hop.url, hop.headers) : hop.headers;
    const opts: RequestOptions = { ...r.base, method: hop.method, headers, body: hop.body };
    if (deadline !== Infinity) {
      const left = Math.ceil(deadline - performance.now());
      if (left <= 0) throw new UvfetchError('ERR_TIMEOUT', 'total timeout passed', { url: href, method: hop.method });
      opts.timeout = { ...r.base.timeout, total: left };
    }
    let res: AnyResponse;
    try {
      res = await ctx.send(hop.url, opts, stream);
    } catch (err) {
      if (canRetry && n < retry.attempts && err instanceof UvfetchError && retry.errorCodes.has(err.code)) {
        const d = backoffDelay(retry, n);
        if (performance.now() + d < deadline) {
          await sleep(d, r.signal, href, hop.method);
          continue;
        }
      }
      throw err;
    }
    limiter?.feedback(origin, res.status);
    if (jar !== undefined) {
      const sc = res.headers.getSetCookie();
      if (sc.length > 0) await storeJarCookies(jar, hop.url, sc);
    }
    if (canRetry && n < retry.attempts && retry.statuses.has(res.status)) {
      let d = backoffDelay(retry, n);
      let giveUp = false;
      if (retry.respectRetryAfter) {
        const ra = retryAfterMs(res.headers.get('retry-after'));
        if (ra !== undefined) {
          if (ra > retry.maxRetryAfter) giveUp = true;
          else d = ra;
        }
      }
      // A wait that would end past the total timeout is not started: the response is the answer.
      if (!giveUp && performance.now() + d < deadline) {
        await discard(res);
        await sleep(d, r.signal, href, hop.method);
        continue;
      }
    }
    return [res, n];
  }
}

function sleep(ms: number, signal: AbortSignal | undefined, url: string, method: string): Promise<void> {
  const aborted = () => new UvfetchError('ERR_ABORTED', 'request aborted', { cause: signal!.reason, url, method });
  if (signal?.aborted) return Promise.reject(aborted());
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(aborted());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

const DRAIN_LIMIT = 64 * 1024;
const DRAIN_TIME = 1000;

/**
 * Gets rid of a response that is not the answer (a followed 3xx, a retried 503). A buffered one
 * is done already; a streamed body is read to its end when it is small and quick, so its socket
 * goes back to the pool, else destroyed (which aborts the request: the socket is closed).
 */
function discard(res: AnyResponse): Promise<void> {
  if (!(res instanceof StreamResponse)) return Promise.resolve();
  const body = res.body;
  if (body.destroyed || body.readableEnded) return Promise.resolve();
  return new Promise<void>((resolve) => {
    let n = 0;
    const done = () => {
      clearTimeout(t);
      body.off('data', onData);
      resolve();
    };
    const stop = () => {
      body.destroy();
      done();
    };
    const onData = (c: Buffer) => {
      n += c.length;
      if (n > DRAIN_LIMIT) stop();
    };
    const t = setTimeout(stop, DRAIN_TIME);
    body.on('data', onData);
    body.once('end', done);
    body.once('close', done);
    body.once('error', done);
  });
}
