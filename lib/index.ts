// The package entry: exports only. The layers below, bottom up (imports point downward only; see
// the README's "How it is built" and .dependency-cruiser.cjs):
//   core/ → native/ → net/, tls/, policies/ → observability/ → session/ → raw/, fetch/, interceptors/
export { UvfetchError, type ErrorCode } from './core/errors.js';
export { ResponseHeaders } from './core/headers.js';
export type { BodyInit, DnsAddress, DnsLookupFunction, DnsOptions, DnsStats, HeadersInit, LimitOptions, TimeoutOptions } from './core/types.js';
export { limits, type FdLimit } from './net/limits.js';
export { channels, type Timings, type TlsHandshakeMessage } from './observability/tracing.js';
export type { CookieJar } from './policies/cookies.js';
export type { RateLimitBucketOptions, RateLimitOptions, RateLimitStats } from './policies/rate-limit.js';
export type { RedirectHop } from './policies/redirect.js';
export type { RetryBackoffOptions, RetryOptions } from './policies/retry.js';
export { type ConnectOptions, connect, RawSocket } from './raw/raw-socket.js';
export { type PoolKey, SocketPool, type SocketPoolOptions, type SocketPoolStats } from './raw/socket-pool.js';
export type { FetchManyOptions, FetchManyRequest, FetchManyResult } from './session/fetch-many.js';
export { type CreateResponseOptions, createResponse, type HttpVersion, Response, type ResponseInfo, StreamResponse } from './session/response.js';
export { type ResolvedAddress, Session, type SessionDns, VERSION } from './session/session.js';
export type {
  AnyResponse,
  InterceptedRequest,
  Interceptor,
  InterceptorContext,
  InterceptorNext,
  PolicyOptions,
  RequestOptions,
  SessionOptions,
  SessionStats,
} from './session/types.js';
export {
  bearerToken,
  type BearerTokenInterceptor,
  type BearerTokenOptions,
  loggingInterceptor,
  type LogEntry,
  type LoggingOptions,
  redactUrl,
  responseCache,
  type ResponseCacheInterceptor,
  type ResponseCacheOptions,
  type ResponseCacheStats,
} from './interceptors/index.js';
export { TlsProfile } from './tls/profile.js';
export { profiles } from './profiles/profiles.js';
export type {
  BrowserProfile,
  BrowserProfileData,
  BrowserProfilePatch,
  H2Profile,
  H2Setting,
  Http1Profile,
  ImpersonateOption,
  ProfileSources,
  ProfileTargets,
} from './profiles/types.js';
export { type ProfileDifference, type ProfileFingerprint, profileFingerprint } from './session/profile-fingerprint.js';
export type { PeerCertificateSummary, TlsFingerprint, TlsInfo, TlsOptions, TlsVerifyOptions, TlsVersion } from './tls/types.js';
export {
  fetch,
  UvfetchAgent,
  type UvfetchRequestInit,
  type UvfetchResponse,
  type UvfetchFetchOptions,
  type FetchResponseDetails,
  type UvfetchDispatchOptions,
  type UvfetchDispatchHandler,
  type UvfetchDispatchController,
} from './fetch/index.js';
// The fleet worker: importing this loads no Redis client (ioredis is loaded when a worker starts).
export { runWorker, type WorkerOptions, type WorkerSummary, type RedisClient, type FetchRecord } from './fleet/index.js';
