// A ready-made interceptor: one log entry per request and one per response or error, with
// credentials redacted. It reads no body (a streamed response passes through untouched).
import { invalidOption, UvfetchError } from '../core/errors.js';
import type { Interceptor } from '../session/types.js';
import { CREDENTIAL_HEADERS, redactHeaders, redactUrl } from './redact.js';

/** One log entry (`type` says which). Header values of credential headers are '[REDACTED]'. */
export interface LogEntry {
  type: 'request' | 'response' | 'error';
  /** Numbers this request's entries (per interceptor). */
  id: number;
  method: string;
  /** The URL with user:password replaced by '[REDACTED]'. */
  url: string;
  /** request: the request headers; response: the response headers (with `headers: true`, the default). */
  headers?: Record<string, string | string[]>;
  /** response: the status. */
  status?: number;
  /** response / error: ms since the request entry. */
  durationMs?: number;
  /** error: the error's code (a UvfetchError's, else its name) and message. */
  error?: { code: string; message: string };
}

export interface LoggingOptions {
  /** Receives each entry. Default: one JSON line per entry on stderr. */
  log?: (entry: LogEntry) => void;
  /** More header names to redact (any case), besides Authorization, Proxy-Authorization, Cookie, Set-Cookie. */
  redactHeaders?: readonly string[];
  /** Log headers. Default true. */
  headers?: boolean;
}

const stderrLog = (e: LogEntry) => {
  process.stderr.write(`${JSON.stringify(e)}\n`);
};

/** An interceptor that logs each request and its response or error, credentials redacted. */
export function loggingInterceptor(options: LoggingOptions = {}): Interceptor {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'expected an object');
  const log = options.log ?? stderrLog;
  if (typeof log !== 'function') throw invalidOption('log', 'expected a function');
  const extra = options.redactHeaders ?? [];
  if (!Array.isArray(extra) || extra.some((x) => typeof x !== 'string')) throw invalidOption('redactHeaders', 'expected an array of strings');
  const redact = new Set([...CREDENTIAL_HEADERS, ...extra.map((x) => x.toLowerCase())]);
  const withHeaders = options.headers !== false;
  let ids = 0;
  return async (req, next) => {
    const id = ++ids;
    const url = redactUrl(req.url);
    const method = req.method;
    const start = performance.now();
    log({ type: 'request', id, method, url, ...(withHeaders ? { headers: redactHeaders(req.headers, redact) } : {}) });
    try {
      const res = await next(req);
      const durationMs = performance.now() - start;
      log({ type: 'response', id, method, url, status: res.status, durationMs, ...(withHeaders ? { headers: redactHeaders(res.headers, redact) } : {}) });
      return res;
    } catch (err) {
      const durationMs = performance.now() - start;
      const code = err instanceof UvfetchError ? err.code : err instanceof Error ? err.name : 'Error';
      const message = err instanceof Error ? err.message : String(err);
      log({ type: 'error', id, method, url, durationMs, error: { code, message } });
      throw err;
    }
  };
}
