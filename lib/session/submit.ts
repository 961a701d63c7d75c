// One native submit: a request's URL and options → the engine's form, then a pending entry the
// Dispatcher settles. The plain (fast) path of every request, and the end of the interceptor chain.
import { invalidOption, UvfetchError } from '../core/errors.js';
import { findHeader, flattenHeaders, normalizeMethod } from '../core/headers.js';
import type { BodyInit } from '../core/types.js';
import { basicAuth, type NativeProxy, type ProxyConfig, proxyConfig, proxyFor } from '../net/proxy.js';
import type { NativeEngine } from '../native/binding.js';
import { codeOf, nativeError } from '../native/errors.js';
import { Override, SubmitFlag, submit } from '../native/wire.js';
import { kResend, type SendHook, sendHook } from '../observability/send-hook.js';
import { channels, tracingActive } from '../observability/tracing.js';
import { hasRedirectOptions, publicHref, type RedirectPolicy, redirectPolicy } from '../policies/redirect.js';
import { mergeProfileHeaders } from '../profiles/profiles.js';
import { httpContext, TlsProfile } from '../tls/profile.js';
import { pumpBody, requestBody } from './body.js';
import type { Dispatcher, Pending } from './dispatcher.js';
import { checkRequestOptions, hasOverrides, requestOverrides, type Timeouts } from './options.js';
import type { Response, StreamResponse } from './response.js';
import type { RequestOptions } from './types.js';

type AnyResponse = Response | StreamResponse;

/** What a submit needs of its Session. */
export interface SubmitContext {
  readonly engine: NativeEngine;
  readonly dispatcher: Dispatcher;
  readonly timeouts: Timeouts;
  readonly proxy: ProxyConfig | null;
  /** The session's redirect policy; undefined for 'manual'. */
  readonly redirect: RedirectPolicy | undefined;
  /** The base a request's redirect options apply over. */
  readonly redirectBase: RedirectPolicy;
  closed(): boolean;
  /** The session's TLS profile (its `tls` option, else a default one). */
  tls(): TlsProfile;
  /** Offer h2 by ALPN on https (the session's `http2`). */
  http2: boolean;
  /** The browser profile's default headers (flat, in order), or null. */
  readonly defaultHeaders: readonly string[] | null;
}

let nextId = 1;

/** A URL as users pass it (ERR_INVALID_URL, ERR_UNSUPPORTED_PROTOCOL). */
export function parseUrl(input: string | URL): URL {
  let url: URL;
  try {
    url = typeof input === 'string' ? new URL(input) : input instanceof URL ? input : new URL(String(input));
  } catch (cause) {
    throw new UvfetchError('ERR_INVALID_URL', `invalid URL: ${String(input)}`, { cause });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UvfetchError('ERR_UNSUPPORTED_PROTOCOL', `unsupported URL scheme ${url.protocol} (http: and https: only)`, { url: url.href });
  }
  return url;
}

/** One native submit; `follow`: a 3xx may be followed (false at the end of the interceptor chain). */
export function submitRequest(
  s: SubmitContext,
  input: string | URL,
  options: RequestOptions | undefined,
  stream: boolean,
  follow: boolean,
): Promise<AnyResponse> {
  if (s.closed()) {
    return Promise.reject(new UvfetchError('ERR_SESSION_CLOSED', 'session is closed'));
  }
  const url = parseUrl(input);
  const https = url.protocol === 'https:';
  let profile: TlsProfile | undefined;
  let proxyCfg = s.proxy;
  let method = 'GET';
  let headers: string[] | null = null;
  let body: BodyInit | null | undefined;
  let signal: AbortSignal | undefined;
  let overrides: Float64Array | null = null;
  let wantTimings = false;
  let redirect = follow ? s.redirect : undefined;
  if (options !== undefined) {
    checkRequestOptions(options);
    if (options.method !== undefined) {
      if (typeof options.method !== 'string') throw invalidOption('method', 'expected a string');
      method = normalizeMethod(options.method);
    }
    if (options.headers !== undefined && options.headers !== null) headers = flattenHeaders(options.headers, []);
    body = options.body;
    signal = options.signal;
    if (options.timings !== undefined) {
      if (typeof options.timings !== 'boolean') throw invalidOption('timings', 'expected a boolean');
      wantTimings = options.timings;
    }
    if (options.tls !== undefined) profile = TlsProfile.from(options.tls);
    if (options.proxy !== undefined) proxyCfg = proxyConfig(options.proxy, 'proxy') ?? null;
    if (follow && hasRedirectOptions(options)) {
      const r = redirectPolicy(options, s.redirectBase);
      redirect = r.mode === 'manual' ? undefined : r;
    }
    if (hasOverrides(options)) overrides = requestOverrides(options, s.timeouts);
  }
  if (s.defaultHeaders !== null) headers = mergeProfileHeaders(s.defaultHeaders, headers);
  if (url.username !== '' || url.password !== '') {
    headers ??= [];
    if (findHeader(headers, 'authorization') === undefined) {
      const cred = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      headers.push('authorization', `Basic ${Buffer.from(cred, 'utf8').toString('base64')}`);
    }
  }

  // Instrumentation (uvfetch/otel): told of each send, may add trace-context headers.
  const hook = sendHook();
  let token: unknown;
  if (hook !== undefined) {
    headers ??= [];
    const resend = options === undefined ? 0 : ((options as { [kResend]?: number })[kResend] ?? 0);
    token = hook.start(method, url, headers, resend);
  }

  const traced = tracingActive();
  const b = requestBody(body, headers);
  let flags = b.flags | (stream ? SubmitFlag.StreamResponse : 0);
  if (traced || wantTimings) flags |= SubmitFlag.Timings;

  const id = nextId;
  nextId = nextId >= 0x7fffffff ? 1 : nextId + 1;
  // Credentials never travel into res.url or error messages (they end up in logs).
  const href = publicHref(url);
  const host = url.hostname.charCodeAt(0) === 91 /* [ */ ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? (https ? 443 : 80) : Number(url.port);
  if (https) profile ??= s.tls();
  let target = url.pathname + url.search;
  let px: NativeProxy | null = null;
  if (proxyCfg !== null) {
    px = proxyFor(proxyCfg, url, https);
    if (px !== null && px[0] === 1 && !https) {
      // Plain http through an HTTP proxy: absolute-form target, credentials for the proxy.
      target = `http://${url.host}${target}`;
      if (px[3] !== '' || px[4] !== '') {
        headers ??= [];
        if (findHeader(headers, 'proxy-authorization') === undefined) headers.push('proxy-authorization', basicAuth(px[3], px[4]));
      }
    }
  }
  if (signal?.aborted) {
    const err = new UvfetchError('ERR_ABORTED', 'request aborted', { cause: signal.reason, url: href, method });
    hook?.end(token, undefined, err);
    return Promise.reject(err);
  }
  const engine = s.engine;
  const rc = submit(engine, {
    id,
    host,
    port,
    tls: https ? httpContext(profile!, s.http2) : false,
    method,
    target,
    headers,
    body: b.payload,
    flags,
    streamedLength: b.streamedLength,
    overrides,
    proxy: px,
  });
  if (rc !== 0) {
    const err = nativeError(rc, engine.lastError(), 0, href, method);
    hook?.end(token, undefined, err);
    if (codeOf(rc) === 'ERR_SESSION_CLOSED') return Promise.reject(err);
    throw err;
  }
  const d = s.dispatcher;
  const total = overrides !== null ? overrides[Override.TotalTimeout]! : s.timeouts.total;
  const promise = new Promise<AnyResponse>((resolve, reject) => {
    const p: Pending = {
      id,
      url: href,
      method,
      stream,
      resolve,
      reject,
      signal,
      onAbort: undefined,
      readable: undefined,
      drain: undefined,
      done: false,
      traced,
      timings: undefined,
      status: 0,
      // Not the URL object itself: kept until the response, it would outlive the young generation.
      input: href === url.href ? undefined : url,
      options,
      redirect,
      start: redirect !== undefined && total > 0 ? performance.now() : 0,
    };
    d.pending.set(id, p);
    if (traced && channels.requestStart.hasSubscribers) channels.requestStart.publish({ id, method, url: href });
    if (signal !== undefined) {
      p.onAbort = () => d.fail(p, new UvfetchError('ERR_ABORTED', 'request aborted', { cause: signal.reason, url: href, method }));
      signal.addEventListener('abort', p.onAbort, { once: true });
    }
    if (b.iterable !== undefined) void pumpBody(engine, d, p, b.iterable, b.streamedLength);
  });
  return hook === undefined ? promise : reported(hook, token, promise);
}

function reported(hook: SendHook, token: unknown, p: Promise<AnyResponse>): Promise<AnyResponse> {
  return p.then(
    (res) => {
      hook.end(token, { status: res.status, httpVersion: res.info.httpVersion }, undefined);
      return res;
    },
    (err: unknown) => {
      hook.end(token, undefined, err);
      throw err;
    },
  );
}
