// The types of session.fetch() (implemented in lib/fetch/, above this layer): its `init` and its
// result. Here so that Session can declare the method without importing the fetch layer.

import type { TimeoutOptions, Timings } from '../core/types.js';
import type { RedirectHop } from '../policies/redirect.js';
import type { RetryOptions } from '../policies/retry.js';
import type { TlsProfile } from '../tls/profile.js';
import type { TlsInfo, TlsOptions } from '../tls/types.js';
import type { ResponseInfo } from './response.js';

/** uvfetch's own members of `init` (each one what the same-named request option of Session is). */
export interface UvfetchFetchOptions {
  /** Per-phase timeouts, ms: `{ connect, tls, headers, body, total }` (`total` spans every redirect hop). */
  timeout?: TimeoutOptions;
  /** TLS profile for https (a TlsProfile, or its options). */
  tls?: TlsProfile | TlsOptions;
  /** Proxy for this request: 'http://…', 'socks5://…', 'env', or null (direct). */
  proxy?: string | URL | 'env' | null;
  /** Send Accept-Encoding and decode gzip/deflate/br (zstd) natively. Default: the session's (true). */
  decompress?: boolean;
  maxDecompressionRatio?: number;
  maxHeaderSize?: number;
  maxHeaderCount?: number;
  /** Largest response body, decoded bytes: reading past it fails with ERR_BODY_TOO_LARGE. Default: no limit (like fetch). */
  maxBodySize?: number;
  /** Measure phase timings (`res.uvfetch.timings`). */
  timings?: boolean;
  /** The session's retry policy for this request (`true`, `false` or RetryOptions). */
  retry?: RetryOptions | boolean;
  /** Redirects followed before failing (fetch's own limit: 20). */
  maxRedirects?: number;
  /** Follow https → http redirects. Default true (as fetch does); false refuses them. */
  allowDowngrade?: boolean;
  /** More headers removed on a cross-origin redirect (always removed: Authorization, Cookie, Proxy-Authorization, Host). */
  redirectStripHeaders?: readonly string[];
}

/** fetch()'s `init`: a RequestInit plus uvfetch's options. */
export type UvfetchRequestInit = RequestInit & UvfetchFetchOptions & { duplex?: 'half' };

/** A fetch() response: a global Response, with what uvfetch knows about it in `uvfetch`. */
export type UvfetchResponse = Response & { readonly uvfetch: FetchResponseDetails };

/** What uvfetch knows about a fetch() response beyond the standard (`res.uvfetch`). */
export interface FetchResponseDetails {
  /** HTTP version, connection reuse, the engine's transparent retry. */
  info: ResponseInfo;
  /** https: what the handshake negotiated (version, cipher, ALPN, peer certificate, JA3/JA4). */
  tls: TlsInfo | undefined;
  /** Phase timings of the last hop, with `timings: true` (or while tracing). */
  timings: Timings | undefined;
  /** The redirects followed (empty when none). */
  redirects: readonly RedirectHop[];
}

/** session.fetch()'s implementation, registered by lib/fetch when the package entry loads it. */
export type FetchImpl = (session: unknown, input: unknown, init?: UvfetchRequestInit) => Promise<UvfetchResponse>;
let impl: FetchImpl | undefined;
export function registerFetch(fn: FetchImpl): void {
  impl = fn;
}
export function fetchImpl(): FetchImpl | undefined {
  return impl;
}
