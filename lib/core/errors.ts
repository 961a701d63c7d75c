// The error type and its codes. Pure: no addon is loaded here (the native index → code mapping
// lives in lib/native/errors.ts), so every validating module can import it cheaply.

/** Every error code uvfetch can produce. Stable: matched by users, documented in the README. */
export type ErrorCode =
  | 'ERR_INVALID_OPTION'
  | 'ERR_INVALID_URL'
  | 'ERR_UNSUPPORTED_PROTOCOL'
  | 'ERR_INVALID_METHOD'
  | 'ERR_INVALID_HEADER'
  | 'ERR_INVALID_BODY'
  | 'ERR_BAD_RESPONSE'
  | 'ERR_HEADERS_TOO_LARGE'
  | 'ERR_BODY_TOO_LARGE'
  | 'ERR_CONNECT_TIMEOUT'
  | 'ERR_HEADERS_TIMEOUT'
  | 'ERR_BODY_TIMEOUT'
  | 'ERR_TIMEOUT'
  | 'ERR_ABORTED'
  | 'ERR_SESSION_CLOSED'
  | 'ERR_CONNECTION_REFUSED'
  | 'ERR_CONNECTION_RESET'
  | 'ERR_SOCKET_CLOSED'
  | 'ERR_CONNECT'
  | 'ERR_DNS_NOT_FOUND'
  | 'ERR_DNS_TEMPORARY'
  | 'ERR_DNS'
  | 'ERR_FD_EXHAUSTED'
  | 'ERR_FD_LIMIT'
  | 'ERR_DECOMPRESSION'
  | 'ERR_DECOMPRESSION_BOMB'
  | 'ERR_PROXY'
  | 'ERR_TLS_CONFIG'
  | 'ERR_TLS_HANDSHAKE'
  | 'ERR_TLS_HANDSHAKE_TIMEOUT'
  | 'ERR_TLS_CERT_UNTRUSTED'
  | 'ERR_TLS_CERT_EXPIRED'
  | 'ERR_TLS_CERT_NOT_YET_VALID'
  | 'ERR_TLS_HOSTNAME_MISMATCH'
  | 'ERR_TLS_CERT_INVALID'
  | 'ERR_TLS_ALPN'
  | 'ERR_TLS'
  | 'ERR_SOCKET'
  | 'ERR_HTTP2_PROTOCOL'
  | 'ERR_HTTP2_STREAM_RESET'
  | 'ERR_HTTP2_GOAWAY'
  | 'ERR_HTTP2_UNAVAILABLE'
  | 'ERR_INTERNAL'
  // Raised in JS only (the redirect policy), never by the engine: no native index.
  | 'ERR_REDIRECT'
  | 'ERR_TOO_MANY_REDIRECTS'
  | 'ERR_REDIRECT_BODY'
  // Raised by SocketPool (lib/raw/socket-pool.ts) only.
  | 'ERR_POOL_CLOSED'
  // Raised by MockSession (lib/testing/) only: no interception matched and the network is off.
  | 'ERR_MOCK_NOT_MATCHED';

export interface UvfetchErrorOptions {
  cause?: unknown;
  /** Precise reason from the engine, e.g. "bare CR" for ERR_BAD_RESPONSE. */
  reason?: string;
  /** errno-style name of the system error behind it, e.g. "ECONNREFUSED". */
  syscode?: string;
  /** ERR_PROXY: the proxy's answer — HTTP status of a refused CONNECT (e.g. 407), or the SOCKS5 reply code. */
  proxyStatus?: number;
  /** HTTP/2 errors: the error code of the RST_STREAM or GOAWAY involved (RFC 9113 §7, e.g. 8 = CANCEL). */
  h2Code?: number;
  url?: string;
  method?: string;
}

/** RFC 9113 §7 error code names, by code. */
export const H2_ERROR_NAMES: readonly string[] = Object.freeze([
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
]);

/** The one error class uvfetch throws or rejects with. Match on `code`, never on `message`. */
export class UvfetchError extends Error {
  readonly code: ErrorCode;
  readonly reason?: string;
  readonly syscode?: string;
  readonly proxyStatus?: number;
  readonly h2Code?: number;
  /** `h2Code`'s name ('CANCEL', 'PROTOCOL_ERROR', ...). */
  readonly h2CodeName?: string;
  readonly url?: string;
  readonly method?: string;

  constructor(code: ErrorCode, message: string, opts: UvfetchErrorOptions = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'UvfetchError';
    this.code = code;
    if (opts.reason !== undefined) this.reason = opts.reason;
    if (opts.syscode !== undefined) this.syscode = opts.syscode;
    if (opts.proxyStatus !== undefined) this.proxyStatus = opts.proxyStatus;
    if (opts.h2Code !== undefined) {
      this.h2Code = opts.h2Code;
      this.h2CodeName = H2_ERROR_NAMES[opts.h2Code] ?? `0x${opts.h2Code.toString(16)}`;
    }
    if (opts.url !== undefined) this.url = opts.url;
    if (opts.method !== undefined) this.method = opts.method;
  }
}

/** ERR_INVALID_OPTION naming the option (also in `reason`, for programs). */
export function invalidOption(name: string, why: string): UvfetchError {
  return new UvfetchError('ERR_INVALID_OPTION', `invalid option ${name}: ${why}`, { reason: name });
}
