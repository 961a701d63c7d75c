// Ready-made interceptors (built on the chain of lib/session/interceptors.ts).
export { type BearerTokenInterceptor, type BearerTokenOptions, bearerToken } from './bearer.js';
export { type ResponseCacheInterceptor, type ResponseCacheOptions, type ResponseCacheStats, responseCache } from './cache.js';
export { type LogEntry, type LoggingOptions, loggingInterceptor } from './logging.js';
export { CREDENTIAL_HEADERS, REDACTED, redactHeaders, redactUrl } from './redact.js';
