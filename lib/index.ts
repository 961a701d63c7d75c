export { Session, VERSION, type SessionDns, type ResolvedAddress } from './session.js';
export { Response, StreamResponse, type ResponseInfo } from './response.js';
export { ResponseHeaders } from './headers.js';
export { UvfetchError, type ErrorCode } from './errors.js';
export { limits, type FdLimit } from './limits.js';
export type { FetchManyOptions, FetchManyRequest, FetchManyResult } from './fetch-many.js';
export { channels, type Timings, type TlsHandshakeMessage } from './tracing.js';
export { TlsProfile, type TlsOptions, type TlsVerifyOptions, type TlsInfo, type TlsFingerprint, type TlsVersion, type PeerCertificateSummary } from './tls.js';
export type {
  SessionOptions,
  RequestOptions,
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
