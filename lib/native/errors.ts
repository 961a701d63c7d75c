// The native side's error indices (native/core errors, listed by the binding) → UvfetchError.
import { getSystemErrorName } from 'node:util';
import { type ErrorCode, UvfetchError } from '../core/errors.js';
import { binding } from './binding.js';

const codes = binding.errorCodes as ErrorCode[];
const messages = binding.errorMessages;

const uvNames = new Map<number, string | undefined>();
/** errno name ("ECONNREFUSED") of a negative libuv status, cached. */
function sysName(errno: number): string | undefined {
  if (errno === 0) return undefined;
  if (uvNames.has(errno)) return uvNames.get(errno);
  let n: string | undefined;
  try {
    n = getSystemErrorName(errno);
  } catch {
    n = undefined;
  }
  uvNames.set(errno, n);
  return n;
}

/** Builds the JS error for a native error record. */
export function nativeError(index: number, detail: string, errno: number, url?: string, method?: string): UvfetchError {
  const code = codes[index] ?? 'ERR_INTERNAL';
  const base = messages[index] ?? 'internal error';
  const msg = detail && detail !== base ? `${base}: ${detail}` : base;
  if (code === 'ERR_PROXY') {
    // The engine passes the proxy's status (not an errno) for proxy refusals.
    return new UvfetchError(code, msg, { reason: detail || undefined, proxyStatus: errno > 0 ? errno : undefined, url, method });
  }
  if (code.startsWith('ERR_HTTP2_')) {
    // The engine passes the HTTP/2 error code (RST_STREAM / GOAWAY), not an errno.
    return new UvfetchError(code, msg, { reason: detail || undefined, h2Code: errno >>> 0, url, method });
  }
  return new UvfetchError(code, msg, { reason: detail || undefined, syscode: sysName(errno), url, method });
}

/** The native index of a code (for answers sent back to the engine). */
export function indexOf(code: ErrorCode): number {
  return codes.indexOf(code);
}

export function codeOf(index: number): ErrorCode {
  return codes[index] ?? 'ERR_INTERNAL';
}
