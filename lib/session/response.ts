// The response objects a request resolves with.
import { Readable } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { UvfetchError } from '../core/errors.js';
import { ResponseHeaders, statusTextOf } from '../core/headers.js';
import type { Timings } from '../core/types.js';
import type { RedirectHop } from '../policies/redirect.js';
import type { TlsInfo } from '../tls/types.js';

/** A response's protocol version (`res.info.httpVersion`). */
export type HttpVersion = '1.0' | '1.1' | '2';

/** The version string of an HTTP major.minor pair as the engine reports it. */
export function httpVersionOf(major: number, minor: number): HttpVersion {
  if (major === 2) return '2';
  return minor === 0 ? '1.0' : '1.1';
}

const NO_REDIRECTS: readonly RedirectHop[] = Object.freeze([]);

/** Facts about how a response was obtained. */
export interface ResponseInfo {
  /** The protocol version of the response: '1.0', '1.1' or '2'. */
  httpVersion: HttpVersion;
  /**
   * 0 for HTTP/1.0, 1 for HTTP/1.1.
   * @deprecated Use `httpVersion`; this minor number cannot tell HTTP/2 apart.
   */
  httpVersionMinor: number;
  /** Served on a kept-alive connection. */
  reused: boolean;
  /** 2 when the engine retried once, transparently, after a stale keep-alive socket failed before
   * any byte (this connection-level retry is separate from the `retry` option: see `res.attempts`). */
  attempts: number;
  /** The browser profile's name when the session impersonates one (`impersonate`), else undefined. */
  impersonate: string | undefined;
  /**
   * HTTP/2 only: what this connection actually sent, in the Akamai fingerprint format
   * `SETTINGS|WINDOW_UPDATE|PRIORITY|pseudo-header order` (e.g. `1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p`).
   * Undefined on HTTP/1.
   */
  h2Fingerprint?: string | undefined;
}

abstract class BaseResponse {
  readonly status: number;
  readonly url: string;
  readonly info: ResponseInfo;
  /** Phase timings, when measured (`timings: true`, or while tracing). */
  timings: Timings | undefined;
  /** https: what the connection's handshake negotiated, its peer certificate and JA3/JA4. */
  tls: TlsInfo | undefined;
  /**
   * Trailer fields sent after the body (HTTP/2, or a chunked HTTP/1.1 body), or undefined when none came. A `stream()`
   * response has them once its body has been read to the end.
   */
  trailers: ResponseHeaders | undefined;
  /** The redirects followed to get here, in order (empty when none). */
  redirects: readonly RedirectHop[];
  /** Requests the `retry` option made for this URL (1 = no retry; each may itself include the
   * engine's stale-socket retry, counted in `info.attempts`). */
  attempts: number;
  readonly #rawHead: string;
  #headers: ResponseHeaders | undefined;

  constructor(status: number, url: string, rawHead: string, info: ResponseInfo) {
    this.status = status;
    this.url = url;
    this.#rawHead = rawHead;
    this.info = info;
    this.timings = undefined;
    this.tls = undefined;
    this.trailers = undefined;
    this.redirects = NO_REDIRECTS;
    this.attempts = 1;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get statusText(): string {
    return statusTextOf(this.#rawHead);
  }

  get headers(): ResponseHeaders {
    return (this.#headers ??= new ResponseHeaders(this.#rawHead));
  }

  /** The head as received (status line and header lines). */
  protected get rawHead(): string {
    return this.#rawHead;
  }

  /** Copies what is not part of the constructor (timings, tls, redirects, attempts) onto `to`. */
  protected copyTo<T extends BaseResponse>(to: T): T {
    to.timings = this.timings;
    to.tls = this.tls;
    to.redirects = this.redirects;
    to.attempts = this.attempts;
    return to;
  }
}

/** A complete response: `body` is a Buffer holding the whole (bounded by maxBodySize) body. */
export class Response extends BaseResponse {
  readonly body: Buffer;

  constructor(status: number, url: string, rawHead: string, info: ResponseInfo, body: Buffer) {
    super(status, url, rawHead, info);
    this.body = body;
  }

  async text(): Promise<string> {
    return this.body.toString('utf8');
  }

  async json<T = unknown>(): Promise<T> {
    return JSON.parse(this.body.toString('utf8')) as T;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = this.body;
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  /** The same response as a StreamResponse whose body yields this one's bytes. */
  toStream(): StreamResponse {
    const b = this.body;
    return this.copyTo(new StreamResponse(this.status, this.url, this.rawHead, this.info, Readable.from(b.length > 0 ? [b] : [])));
  }
}

/**
 * A streamed response: `body` is a Readable (async-iterable) whose backpressure reaches the
 * socket: while it is full, uvfetch stops reading from the server.
 */
export class StreamResponse extends BaseResponse {
  readonly body: Readable;

  constructor(status: number, url: string, rawHead: string, info: ResponseInfo, body: Readable) {
    super(status, url, rawHead, info);
    this.body = body;
  }

  /** Reads the rest of the body into one Buffer (no size limit beyond the one given). */
  async buffer(limit = Number.MAX_SAFE_INTEGER): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of this.body) {
      n += (chunk as Buffer).length;
      if (n > limit) {
        this.body.destroy();
        throw new UvfetchError('ERR_BODY_TOO_LARGE', `response body exceeds ${limit} bytes`, { url: this.url });
      }
      parts.push(chunk as Buffer);
    }
    return Buffer.concat(parts, n);
  }

  async text(): Promise<string> {
    return (await this.buffer()).toString('utf8');
  }

  async json<T = unknown>(): Promise<T> {
    return JSON.parse((await this.buffer()).toString('utf8')) as T;
  }

  /** Reads the body (up to `limit` bytes) and resolves with the same response as a buffered Response. */
  async toBuffered(limit?: number): Promise<Response> {
    const body = await this.buffer(limit);
    return this.copyTo(new Response(this.status, this.url, this.rawHead, this.info, body));
  }
}

const SYNTHETIC_INFO: ResponseInfo = Object.freeze({ httpVersion: '1.1', httpVersionMinor: 1, reused: false, attempts: 1, impersonate: undefined });

/** What createResponse() takes besides status, body and headers. */
export interface CreateResponseOptions {
  /** res.url. Default ''. */
  url?: string;
  /** A StreamResponse (its body a Readable of the bytes) instead of a Response. Default false. */
  stream?: boolean;
  /** The status line's reason. Default the standard one for the status. */
  statusText?: string;
}

/**
 * A response made in JS (by an interceptor, a cache, MockSession): `body` a string (UTF-8),
 * bytes, or any other value sent as JSON (with content-type: application/json unless given).
 * Headers are validated as the engine would (ERR_INVALID_HEADER).
 */
export function createResponse(
  status: number,
  body?: string | Uint8Array | ArrayBuffer | object | null,
  headers?: Record<string, string | readonly string[]> | Iterable<readonly [string, string]> | Headers,
  options: CreateResponseOptions = {},
): Response | StreamResponse {
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new UvfetchError('ERR_INVALID_OPTION', `invalid status ${String(status)}`, { reason: 'status' });
  }
  let bytes: Buffer;
  let json = false;
  if (body === undefined || body === null) bytes = Buffer.alloc(0);
  else if (typeof body === 'string') bytes = Buffer.from(body, 'utf8');
  else if (body instanceof Uint8Array) bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  else if (body instanceof ArrayBuffer) bytes = Buffer.from(body);
  else {
    bytes = Buffer.from(JSON.stringify(body), 'utf8');
    json = true;
  }
  const lines: string[] = [];
  let hasType = false;
  let hasLength = false;
  const add = (n: string, v: string) => {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(n) || /[\r\n\0]/.test(v)) {
      throw new UvfetchError('ERR_INVALID_HEADER', `invalid header ${JSON.stringify(n)}`, { reason: 'headers' });
    }
    const l = n.toLowerCase();
    if (l === 'content-type') hasType = true;
    else if (l === 'content-length') hasLength = true;
    lines.push(`${n}: ${v.trim()}`);
  };
  if (headers instanceof Headers) {
    for (const [n, v] of headers) if (n !== 'set-cookie') add(n, v);
    for (const v of headers.getSetCookie()) add('set-cookie', v);
  } else if (headers !== undefined && headers !== null) {
    if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
      for (const [n, v] of headers as Iterable<readonly [string, string]>) add(String(n), String(v));
    } else {
      for (const [n, v] of Object.entries(headers as Record<string, string | readonly string[]>)) {
        if (Array.isArray(v)) for (const x of v) add(n, String(x));
        else if (v !== undefined) add(n, String(v));
      }
    }
  }
  if (json && !hasType) lines.push('content-type: application/json');
  if (!hasLength) lines.push(`content-length: ${bytes.length}`);
  const reason = options.statusText ?? STATUS_CODES[status] ?? '';
  const rawHead = `HTTP/1.1 ${status} ${reason}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
  const url = options.url ?? '';
  if (options.stream === true) return new StreamResponse(status, url, rawHead, SYNTHETIC_INFO, Readable.from(bytes.length > 0 ? [bytes] : []));
  return new Response(status, url, rawHead, SYNTHETIC_INFO, bytes);
}
