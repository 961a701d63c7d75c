export { Session, VERSION, type SessionDns, type ResolvedAddress } from './session.js';
export { Response, StreamResponse, type ResponseInfo } from './response.js';
export { ResponseHeaders } from './headers.js';
export { UvfetchError, type ErrorCode } from './errors.js';
export type { RedirectHop } from './redirect.js';
export type { RetryOptions, RetryBackoffOptions } from './retry.js';
export type { RateLimitOptions, RateLimitBucketOptions, RateLimitStats } from './rate-limit.js';
export type { CookieJar } from './cookies.js';
export { limits, type FdLimit } from './limits.js';
export { connect, RawSocket, type ConnectOptions } from './raw-socket.js';
export { SocketPool, type SocketPoolOptions, type SocketPoolStats, type PoolKey } from './socket-pool.js';
export type { FetchManyOptions, FetchManyRequest, FetchManyResult } from './fetch-many.js';
export { channels, type Timings, type TlsHandshakeMessage } from './tracing.js';
export { TlsProfile, type TlsOptions, type TlsVerifyOptions, type TlsInfo, type TlsFingerprint, type TlsVersion, type PeerCertificateSummary } from './tls.js';
export type {
  SessionOptions,
  RequestOptions,
  PolicyOptions,
  TimeoutOptions,
  LimitOptions,
  HeadersInit,
  BodyInit,
  SessionStats,
  DnsOptions,
  DnsAddress,
  DnsLookupFunction,
  DnsStats,
} from './types.js';
// The fleet worker: importing this loads no Redis client (ioredis is loaded when a worker starts).
export { runWorker, type WorkerOptions, type WorkerSummary } from './fleet/worker.js';
export type { RedisClient } from './fleet/redis.js';
export type { FetchRecord } from './fleet/records.js';
