// A ready-made interceptor: sends `Authorization: Bearer <token>` and, when the server answers
// 401, gets a new token (one refresh at a time however many requests got the 401) and sends the
// request once more with it.
import { invalidOption } from '../core/errors.js';
import { replayable } from '../policies/redirect.js';
import { discard } from '../session/interceptors.js';
import type { Interceptor } from '../session/types.js';

export interface BearerTokenOptions {
  /** Gets a (new) token: called for the first request and after a 401. Concurrent callers share one call. */
  refresh: () => string | Promise<string>;
  /** A token to start with (else the first request calls refresh()). */
  token?: string;
  /** Only requests to these origins ('https://api.example.com') get the token. Default: every origin. */
  origins?: readonly string[];
  /** The auth scheme. Default 'Bearer'. */
  scheme?: string;
}

/** The interceptor, and the token it holds. */
export interface BearerTokenInterceptor extends Interceptor {
  /** The current token (undefined before the first one). */
  readonly token: string | undefined;
}

/**
 * Adds the token to requests that have no Authorization header of their own; on a 401, refreshes
 * it (single-flight) and sends the request once more. A request whose body cannot be sent again
 * (a stream) gets the 401 as its answer. A refresh that fails rejects the request with its error.
 */
export function bearerToken(options: BearerTokenOptions): BearerTokenInterceptor {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'expected an object');
  if (typeof options.refresh !== 'function') throw invalidOption('refresh', 'expected a function');
  if (options.token !== undefined && typeof options.token !== 'string') throw invalidOption('token', 'expected a string');
  if (options.origins !== undefined && !Array.isArray(options.origins)) throw invalidOption('origins', 'expected an array of origins');
  const origins = options.origins === undefined ? undefined : new Set(options.origins.map((o) => new URL(o).origin));
  const scheme = options.scheme ?? 'Bearer';
  let token = options.token;
  let pending: Promise<string> | undefined;
  const refresh = (): Promise<string> => {
    pending ??= Promise.resolve()
      .then(() => options.refresh())
      .then(
        (t) => {
          if (typeof t !== 'string' || t === '') throw invalidOption('refresh', 'expected it to resolve with a non-empty string');
          token = t;
          pending = undefined;
          return t;
        },
        (err) => {
          pending = undefined;
          throw err;
        },
      );
    return pending;
  };
  const fn: Interceptor = async (req, next) => {
    if (req.headers.has('authorization') || (origins !== undefined && !origins.has(new URL(req.url).origin))) return next(req);
    const used = token ?? (await (pending ?? refresh()));
    const first = { ...req, headers: new Headers(req.headers) };
    first.headers.set('authorization', `${scheme} ${used}`);
    const res = await next(first);
    if (res.status !== 401 || !replayable(req.body)) return res;
    await discard(res);
    // Another request may have refreshed already: then its token is the new one.
    const fresh = token !== undefined && token !== used ? token : await (pending ?? refresh());
    const again = { ...req, headers: new Headers(req.headers) };
    again.headers.set('authorization', `${scheme} ${fresh}`);
    return next(again);
  };
  Object.defineProperty(fn, 'token', { get: () => token, enumerable: true });
  return fn as BearerTokenInterceptor;
}
