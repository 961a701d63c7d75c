// The response objects a request resolves with.
import type { Readable } from 'node:stream';
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
  /** The protocol version of the response: '1.0', '1.1' (or '2' once HTTP/2 is spoken). */
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
}

abstract class BaseResponse {
  readonly status: number;
  readonly url: string;
  readonly info: ResponseInfo;
  /** Phase timings, when measured (`timings: true`, or while tracing). */
  timings: Timings | undefined;
  /** https: what the connection's handshake negotiated, its peer certificate and JA3/JA4. */
  tls: TlsInfo | undefined;
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
}
