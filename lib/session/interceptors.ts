// Interceptors: the one path every request takes when it needs JS between the caller and the
// native submit. An interceptor is `async (req, next, ctx) => response`; the chain is
//
//   [the session's interceptors, first = outermost] → redirect → retry → rate limit → cookies
//     → [a transport, e.g. MockSession's] → one native submit (no redirect following)
//
// The built-in policies (rules in lib/policies/) are interceptors of this chain, made here. A
// session with none of them configured and no interceptors of its own sends on the plain path
// (submit.ts) and never builds a request object; a 3xx to follow enters the chain below the
// redirect interceptor from the Dispatcher (followFrom()).

import { invalidOption, UvfetchError } from '../core/errors.js';
import { forEachHeader, headerPairs, normalizeMethod } from '../core/headers.js';
import type { HeadersInit } from '../core/types.js';
import { type CookieJarLike, cookieJarOption, storeJarCookies, withJarCookies } from '../policies/cookies.js';
import { kResend } from '../observability/send-hook.js';
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
import { Response, StreamResponse } from './response.js';
import type { AnyResponse, InterceptedRequest, Interceptor, InterceptorContext, InterceptorNext, RequestOptions, SessionOptions } from './types.js';

export type { AnyResponse, InterceptedRequest, Interceptor, InterceptorContext, InterceptorNext };

/** @internal The innermost interceptor, below the built-in policies (MockSession's transport). Symbol-keyed SessionOptions member. */
export const kTransport: unique symbol = Symbol('uvfetch.transport');

/** One native submit (no redirect following), the chain's end. */
export type Terminal = (req: InterceptedRequest, stream: boolean) => Promise<AnyResponse>;

export interface SessionPolicies {
  readonly redirect: RedirectPolicy;
  readonly retry: RetryPolicy | undefined;
  readonly limiter: RateLimiter | undefined;
  readonly jar: CookieJarLike | undefined;
  /** Every request needs the chain (retry, rate limit or cookies configured on the session). */
  readonly slow: boolean;
}

export function sessionPolicies(o: SessionOptions): SessionPolicies {
  const redirect = redirectPolicy(o, DEFAULT_REDIRECT);
  const retry = retryPolicy(o.retry, undefined);
  const limiter = RateLimiter.from(o.rateLimit);
  const jar = cookieJarOption(o.cookies);
  return { redirect, retry, limiter, jar, slow: retry !== undefined || limiter !== undefined || jar !== undefined };
}

/** The `interceptors` option: an array of functions (copied). */
export function interceptorsOption(v: unknown): Interceptor[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalidOption('interceptors', 'expected an array of functions');
  for (const f of v) if (typeof f !== 'function') throw invalidOption('interceptors', 'expected an array of functions');
  return [...v] as Interceptor[];
}

/** `h` as a global Headers (ERR_INVALID_HEADER for what Headers refuses). */
export function toHeaders(h: HeadersInit | Headers | undefined | null): Headers {
  if (h instanceof Headers) return new Headers(h);
  const out = new Headers();
  if (h === undefined || h === null) return out;
  forEachHeader(h, (n, v) => {
    try {
      out.append(n, v);
    } catch (cause) {
      throw new UvfetchError('ERR_INVALID_HEADER', `invalid header ${JSON.stringify(n)}`, { cause, reason: 'headers' });
    }
  });
  return out;
}

/** The request object of a call: `url` (validated by the caller) and its options. */
export function interceptedRequest(url: URL, options: RequestOptions | undefined): InterceptedRequest {
  const o = options ?? {};
  const { method: m, headers, body, ...rest } = o;
  let method = 'GET';
  if (m !== undefined) {
    if (typeof m !== 'string') throw invalidOption('method', 'expected a string');
    method = normalizeMethod(m);
  }
  return { ...rest, url: url.href, method, headers: toHeaders(headers), body };
}

/** The session's chain: its interceptors, the built-in policies, the transport. */
export function buildChain(user: readonly Interceptor[], p: SessionPolicies, totalTimeout: number, transport: Interceptor | undefined): Interceptor[] {
  return [...user, ...policyChain(p, totalTimeout, transport)];
}

/** The built-in part: redirect, retry, rate limit, cookies, transport. */
export function policyChain(p: SessionPolicies, totalTimeout: number, transport: Interceptor | undefined): Interceptor[] {
  const chain: Interceptor[] = [redirectInterceptor(p.redirect, totalTimeout), retryInterceptor(p.retry, totalTimeout)];
  if (p.limiter !== undefined) chain.push(rateLimitInterceptor(p.limiter, totalTimeout));
  if (p.jar !== undefined) chain.push(cookieInterceptor(p.jar));
  if (transport !== undefined) chain.push(transport);
  return chain;
}

/** Runs `req` through `chain[i..]` and then `terminal`. */
export function dispatch(chain: readonly Interceptor[], i: number, req: InterceptedRequest, ctx: InterceptorContext, terminal: Terminal): Promise<AnyResponse> {
  if (i >= chain.length) {
    try {
      return terminal(req, ctx.stream);
    } catch (err) {
      return Promise.reject(err);
    }
  }
  const next: InterceptorNext = (r) => {
    if (r === null || typeof r !== 'object' || typeof r.url !== 'string' || !(r.headers instanceof Headers)) {
      return Promise.reject(invalidOption('next(req)', 'expected a request object with url (string) and headers (a Headers)'));
    }
    return dispatch(chain, i + 1, r, ctx, terminal);
  };
  try {
    return Promise.resolve(chain[i]!(req, next, ctx));
  } catch (err) {
    return Promise.reject(err);
  }
}

/** What an interceptor chain resolved with, in the form the caller asked for. */
export async function settle(res: unknown, stream: boolean): Promise<AnyResponse> {
  if (stream) {
    if (res instanceof StreamResponse) return res;
    if (res instanceof Response) return res.toStream();
  } else {
    if (res instanceof Response) return res;
    if (res instanceof StreamResponse) return res.toBuffered();
  }
  throw new UvfetchError('ERR_INTERNAL', 'an interceptor resolved with something that is not a uvfetch Response or StreamResponse', { reason: 'interceptor' });
}

function deadlineOf(req: InterceptedRequest, sessionTotal: number, start: number): number {
  const t = req.timeout?.total;
  const total = typeof t === 'number' ? t : sessionTotal;
  return total > 0 ? start + total : Infinity;
}

/** `req` with timeout.total set to what is left before `deadline` (ERR_TIMEOUT when nothing is). */
function withDeadline(req: InterceptedRequest, deadline: number): InterceptedRequest {
  if (deadline === Infinity) return req;
  const left = Math.ceil(deadline - performance.now());
  if (left <= 0) throw new UvfetchError('ERR_TIMEOUT', 'total timeout passed', { url: publicHref(new URL(req.url)), method: req.method });
  return { ...req, timeout: { ...req.timeout, total: left } };
}

function resendOf(req: InterceptedRequest): number {
  return (req as { [kResend]?: number })[kResend] ?? 0;
}

// ---- redirect ----

function redirectInterceptor(base: RedirectPolicy, totalTimeout: number): Interceptor {
  return (req, next) => {
    const policy = redirectPolicy(req, base);
    if (policy.mode === 'manual') return next(req);
    return follow(policy, req, next, undefined, deadlineOf(req, totalTimeout, performance.now()));
  };
}

/**
 * Continues a request that took the plain path and got a 3xx to follow (`res`), with the
 * request's redirect `policy`, the rest of the chain below the redirect interceptor as `next`,
 * started at `start` (performance.now(); 0 when it had no total timeout).
 */
export function followFrom(
  policy: RedirectPolicy,
  req: InterceptedRequest,
  res: AnyResponse,
  next: InterceptorNext,
  totalTimeout: number,
  start: number,
): Promise<AnyResponse> {
  return follow(policy, req, next, res, deadlineOf(req, totalTimeout, start === 0 ? performance.now() : start));
}

async function follow(
  policy: RedirectPolicy,
  req: InterceptedRequest,
  next: InterceptorNext,
  first: AnyResponse | undefined,
  deadline: number,
): Promise<AnyResponse> {
  let cur = req;
  let res = first;
  const hops: RedirectHop[] = [];
  // Sends made for this call so far (instrumentation's http.request.resend_count).
  let sent = resendOf(req);
  for (;;) {
    if (res === undefined) res = await next(withDeadline(cur, deadline));
    if (isRedirectStatus(res.status)) {
      const hop: Hop = { url: new URL(cur.url), method: cur.method, headers: headerPairs(cur.headers), body: cur.body };
      let to: Hop | null;
      try {
        to = nextHop(policy, hop, res.status, res.headers.get('location'), hops.length);
      } catch (err) {
        void discard(res);
        throw err;
      }
      if (to !== null) {
        hops.push({ url: publicHref(hop.url), method: hop.method, status: res.status, location: publicHref(to.url) });
        await discard(res);
        sent += res.attempts;
        cur = { ...cur, url: to.url.href, method: to.method, headers: toHeaders(to.headers), body: to.body, [kResend]: sent } as InterceptedRequest;
        res = undefined;
        continue;
      }
    }
    if (hops.length > 0) res.redirects = hops;
    return res;
  }
}

// ---- retry ----

function retryInterceptor(base: RetryPolicy | undefined, totalTimeout: number): Interceptor {
  return async (req, next) => {
    const retry = req.retry === undefined ? base : retryPolicy(req.retry, base);
    if (retry === undefined || retry.attempts <= 1 || !retry.methods.has(req.method) || !replayable(req.body)) return next(req);
    const deadline = deadlineOf(req, totalTimeout, performance.now());
    const sent0 = resendOf(req);
    let href: string | undefined;
    for (let n = 1; ; n++) {
      let res: AnyResponse;
      try {
        const r = withDeadline(req, deadline);
        res = await next(n === 1 ? r : ({ ...r, [kResend]: sent0 + n - 1 } as InterceptedRequest));
      } catch (err) {
        if (n < retry.attempts && err instanceof UvfetchError && retry.errorCodes.has(err.code)) {
          const d = backoffDelay(retry, n);
          if (performance.now() + d < deadline) {
            await abortableSleep(d, req.signal, (href ??= publicHref(new URL(req.url))), req.method);
            continue;
          }
        }
        throw err;
      }
      if (n < retry.attempts && retry.statuses.has(res.status)) {
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
          await abortableSleep(d, req.signal, (href ??= publicHref(new URL(req.url))), req.method);
          continue;
        }
      }
      res.attempts = n;
      return res;
    }
  };
}

// ---- rate limit ----

function rateLimitInterceptor(limiter: RateLimiter, totalTimeout: number): Interceptor {
  return async (req, next) => {
    const url = new URL(req.url);
    const origin = url.origin;
    const wait = limiter.acquire(origin, req.signal, deadlineOf(req, totalTimeout, performance.now()), publicHref(url), req.method);
    if (wait !== undefined) await wait;
    const res = await next(req);
    limiter.feedback(origin, res.status);
    return res;
  };
}

// ---- cookies ----

function cookieInterceptor(jar: CookieJarLike): Interceptor {
  return async (req, next) => {
    const url = new URL(req.url);
    const pairs = await withJarCookies(jar, url, headerPairs(req.headers));
    const res = await next({ ...req, headers: toHeaders(pairs) });
    const sc = res.headers.getSetCookie();
    if (sc.length > 0) await storeJarCookies(jar, url, sc);
    return res;
  };
}

/** Waits `ms`, or rejects with ERR_ABORTED (cause: the signal's reason) when `signal` aborts first. */
export function abortableSleep(ms: number, signal: AbortSignal | undefined, url: string, method: string): Promise<void> {
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
 * Gets rid of a response that is not the answer (a followed 3xx, a retried 503, a 401 answered
 * again). A buffered one is done already; a streamed body is read to its end when it is small
 * and quick, so its socket goes back to the pool, else destroyed (which closes the socket).
 */
export function discard(res: AnyResponse): Promise<void> {
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
