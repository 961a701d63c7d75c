// Shared by `uvfetch fetch` (batch.ts) and the Redis workers (worker.ts): how an input line
// becomes a request, and how a response or an error becomes one JSON result record.

import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { UvfetchError } from '../core/errors.js';
import type { Response } from '../session/response.js';
import type { RequestOptions } from '../session/types.js';
import type { Timings } from '../observability/tracing.js';

/** Fields a JSON request line may carry besides `url` (everything else is ERR_INVALID_OPTION). */
const LINE_KEYS = new Set(['url', 'method', 'headers', 'body', 'timeout', 'redirect', 'maxRedirects', 'maxBodySize', 'decompress']);

/** One input line, parsed: a request to send, or the error result it becomes. */
export type ParsedLine =
  | { kind: 'request'; url: string; options: RequestOptions | undefined }
  | { kind: 'error'; url: string; error: UvfetchError }
  | { kind: 'skip' };

/**
 * Parses one input line: a URL, or a JSON object `{ "url": ..., "method"?, "headers"?, "body"?,
 * "timeout"?, "redirect"?, "maxRedirects"?, "maxBodySize"?, "decompress"? }`. Blank lines and
 * lines starting with `#` are skipped; anything else that is not a usable request becomes an
 * error (ERR_INVALID_URL, ERR_UNSUPPORTED_PROTOCOL or ERR_INVALID_OPTION), never a silent skip.
 */
export function parseLine(raw: string): ParsedLine {
  const line = raw.trim();
  if (line === '' || line.startsWith('#')) return { kind: 'skip' };
  if (line.startsWith('{')) return parseJsonRequest(line);
  return checkUrl(line, undefined);
}

/** A JSON request object (a line, or a stream entry's `request` field). */
export function parseJsonRequest(text: string): ParsedLine {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (cause) {
    return {
      kind: 'error',
      url: text,
      error: new UvfetchError('ERR_INVALID_URL', `not a URL and not a valid JSON request: ${(cause as Error).message}`, { reason: 'bad JSON', cause }),
    };
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    return {
      kind: 'error',
      url: text,
      error: new UvfetchError('ERR_INVALID_URL', 'a JSON request must be an object with a "url"', { reason: 'not an object' }),
    };
  }
  const o = obj as Record<string, unknown>;
  if (typeof o.url !== 'string') {
    return { kind: 'error', url: text, error: new UvfetchError('ERR_INVALID_URL', 'a JSON request must have a string "url"', { reason: 'no url' }) };
  }
  for (const k of Object.keys(o)) {
    if (!LINE_KEYS.has(k)) {
      return { kind: 'error', url: o.url, error: new UvfetchError('ERR_INVALID_OPTION', `unknown field "${k}" in a JSON request`, { reason: k }) };
    }
  }
  const { url, ...rest } = o;
  return checkUrl(url as string, Object.keys(rest).length > 0 ? (rest as RequestOptions) : undefined);
}

function checkUrl(url: string, options: RequestOptions | undefined): ParsedLine {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    return { kind: 'error', url, error: new UvfetchError('ERR_INVALID_URL', `invalid URL: ${url}`, { cause, url }) };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return { kind: 'error', url, error: new UvfetchError('ERR_UNSUPPORTED_PROTOCOL', `unsupported protocol ${u.protocol} (http: and https: only)`, { url }) };
  }
  return { kind: 'request', url, options };
}

/** The origin a request counts against for per-host limits (undefined for an unparsable URL). */
export function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** One result: a JSON line of `uvfetch fetch --out`, and the `data` of a fleet result entry. */
export interface FetchRecord {
  /** The URL as given in the input (for a malformed line: the line itself). */
  url: string;
  /** `uvfetch fetch`: the input line number (from 1). */
  line?: number;
  /** Fleet: the input stream entry id (the de-duplication key). */
  id?: string;
  /** Fleet: the worker (consumer name) that wrote this result. */
  worker?: string;
  method: string;
  status: number | null;
  finalUrl: string | null;
  /** Lower-cased name → values in order received. */
  headers: Record<string, string[]> | null;
  timings: Timings | null;
  /** Requests made for this item (retries included); 0 when none was sent. */
  attempts: number;
  redirects: number;
  /** Decoded body length in bytes (null when there is no response). */
  bodySize: number | null;
  /** The body inline (UTF-8 text), when it is at most `inlineMax` bytes and valid UTF-8. */
  body?: string;
  /** The body inline as base64, when it is at most `inlineMax` bytes and not valid UTF-8. */
  bodyBase64?: string;
  /** With `--bodies DIR`: the file holding the body (relative to DIR). */
  bodyFile?: string;
  /** True when the body was neither inlined (too large) nor written to a file. */
  bodyOmitted?: boolean;
  /** Null on success (any HTTP status is a success at this level). */
  error: { code: string; message: string; reason?: string; syscode?: string } | null;
  /** True when the request was cut short by a shutdown (SIGINT/SIGTERM); resumed runs fetch it again. */
  aborted?: boolean;
  /** When the result was made (ms since the epoch). */
  at: number;
}

export interface BodyPolicy {
  /** Largest body put inline in the record. Default 65 536; 0 = never inline. */
  inlineMax: number;
  /** Write bodies to files in this directory instead (created if missing). */
  bodiesDir: string | undefined;
}

function errorInfo(e: unknown): FetchRecord['error'] {
  if (e instanceof UvfetchError) {
    const out: NonNullable<FetchRecord['error']> = { code: e.code, message: e.message };
    if (e.reason !== undefined) out.reason = e.reason;
    if (e.syscode !== undefined) out.syscode = e.syscode;
    return out;
  }
  const code = (e as { code?: unknown } | null)?.code;
  return {
    code: typeof code === 'string' && code !== '' ? code : 'ERR_INTERNAL',
    message: e instanceof Error ? e.message : String(e),
  };
}

export function errorRecord(url: string, method: string, error: unknown, extra: Partial<FetchRecord> = {}): FetchRecord {
  const err = errorInfo(error);
  const rec: FetchRecord = {
    url,
    ...extra,
    method,
    status: null,
    finalUrl: null,
    headers: null,
    timings: null,
    attempts: 0,
    redirects: 0,
    bodySize: null,
    error: err,
    at: Date.now(),
  };
  if (err?.code === 'ERR_ABORTED') rec.aborted = true;
  return rec;
}

/** A safe, stable file name for a body: sha256 of the item's key. */
export function bodyFileName(key: string): string {
  return `${createHash('sha256').update(key).digest('hex').slice(0, 40)}.body`;
}

/** Builds the record of a response; with `bodiesDir` the body is written (atomically) first. */
export async function responseRecord(
  url: string,
  method: string,
  res: Response,
  policy: BodyPolicy,
  bodyKey: string,
  extra: Partial<FetchRecord> = {},
): Promise<FetchRecord> {
  const body = res.body;
  const rec: FetchRecord = {
    url,
    ...extra,
    method,
    status: res.status,
    finalUrl: res.url,
    headers: res.headers.raw(),
    timings: res.timings ?? null,
    attempts: res.attempts,
    redirects: res.redirects.length,
    bodySize: body.length,
    error: null,
    at: Date.now(),
  };
  if (policy.bodiesDir !== undefined) {
    if (body.length > 0) {
      const name = bodyFileName(bodyKey);
      const file = path.join(policy.bodiesDir, name);
      const tmp = `${file}.${process.pid}.tmp`;
      await mkdir(policy.bodiesDir, { recursive: true });
      await writeFile(tmp, body);
      await rename(tmp, file);
      rec.bodyFile = name;
    }
  } else if (body.length <= policy.inlineMax) {
    if (isUtf8(body)) rec.body = body.toString('utf8');
    else rec.bodyBase64 = body.toString('base64');
  } else {
    rec.bodyOmitted = true;
  }
  return rec;
}
