// MockSession: a Session whose requests to registered origins are answered by interceptions, on
// the interceptor chain as its innermost link (below redirects, retries, rate limits, cookies, so
// those behave as in production). Requests nothing matches fail with ERR_MOCK_NOT_MATCHED unless
// their host was allowed with enableNetConnect().
import { type ErrorCode, invalidOption, UvfetchError } from '../core/errors.js';
import type { BodyInit } from '../core/types.js';
import { UvfetchAgent } from '../fetch/agent.js';
import { publicHref } from '../policies/redirect.js';
import { abortableSleep, kTransport } from '../session/interceptors.js';
import { createResponse } from '../session/response.js';
import { Session } from '../session/session.js';
import type { AnyResponse, InterceptedRequest, Interceptor, SessionOptions } from '../session/types.js';

/** A matcher of a string: equal to it, a RegExp it matches, or a predicate. */
export type StringMatcher = string | RegExp | ((value: string) => boolean);

/** What an interception matches. Unset members match anything (method: GET). */
export interface InterceptOptions {
  /** 'https://api.test' (scheme, host and port; a path is ignored). */
  origin: string | URL;
  /** The path with its query ('/users?id=1'); a string must be equal, a RegExp match. */
  path: StringMatcher;
  /** Default 'GET'; matched case-insensitively. */
  method?: string;
  /** Each named request header (any case) must match; a missing header is ''. */
  headers?: Record<string, StringMatcher>;
  /** The request body as UTF-8; an object matches a JSON body deep-equal to it. */
  body?: StringMatcher | Record<string, unknown> | unknown[];
}

/** A reply: body a string, bytes, or any other value (sent as JSON). */
export type ReplyBody = string | Uint8Array | ArrayBuffer | Record<string, unknown> | unknown[] | null | undefined;

/** What a reply function gets. */
export interface MockedRequest {
  url: string;
  method: string;
  headers: Headers;
  /** The request body as UTF-8 ('' without one). */
  body: string;
}

type Answer =
  | {
      kind: 'reply';
      status: number | ((req: MockedRequest) => { status: number; body?: ReplyBody; headers?: Record<string, string | string[]> });
      body: ReplyBody;
      headers: Record<string, string | string[]> | undefined;
    }
  | { kind: 'error'; code: ErrorCode; message: string | undefined };

/** One registered interception: what it matches, its answer, how often it may answer. */
export class Interception {
  readonly #options: InterceptOptions;
  readonly #origin: string;
  readonly #method: string;
  #answer: Answer | undefined;
  #delay = 0;
  #times = 1;
  #persist = false;
  /** Requests this interception answered. */
  calls = 0;

  /** @internal */
  constructor(options: InterceptOptions) {
    if (options === null || typeof options !== 'object') throw invalidOption('intercept', 'expected an object');
    let origin: string;
    try {
      origin = new URL(String(options.origin)).origin;
    } catch (cause) {
      throw new UvfetchError('ERR_INVALID_URL', `invalid origin: ${String(options.origin)}`, { cause });
    }
    if (origin === 'null') throw new UvfetchError('ERR_INVALID_URL', `invalid origin: ${String(options.origin)}`);
    if (!isMatcher(options.path)) throw invalidOption('path', 'expected a string, a RegExp or a function');
    if (options.method !== undefined && typeof options.method !== 'string') throw invalidOption('method', 'expected a string');
    this.#options = options;
    this.#origin = origin;
    this.#method = (options.method ?? 'GET').toUpperCase();
  }

  /** Answers with `status`, `body` (string, bytes, or JSON) and `headers`; or computes them from the request. */
  reply(
    status: number | ((req: MockedRequest) => { status: number; body?: ReplyBody; headers?: Record<string, string | string[]> }),
    body?: ReplyBody,
    headers?: Record<string, string | string[]>,
  ): this {
    if (typeof status !== 'function' && (!Number.isInteger(status) || status < 100 || status > 999))
      throw invalidOption('status', 'expected an integer 100-999');
    this.#answer = { kind: 'reply', status, body, headers };
    return this;
  }

  /** Fails the request with a UvfetchError of `code` (as the engine would: e.g. ERR_CONNECTION_RESET, ERR_TIMEOUT). */
  replyWithError(code: ErrorCode, message?: string): this {
    if (typeof code !== 'string' || !code.startsWith('ERR_')) throw invalidOption('code', 'expected a UvfetchError code');
    this.#answer = { kind: 'error', code, message };
    return this;
  }

  /** Answers after `ms` (an abort signal ends the wait with ERR_ABORTED). */
  delay(ms: number): this {
    if (!Number.isFinite(ms) || ms < 0) throw invalidOption('delay', 'expected a non-negative number');
    this.#delay = ms;
    return this;
  }

  /** Answers `n` requests (default 1). */
  times(n: number): this {
    if (!Number.isInteger(n) || n < 1) throw invalidOption('times', 'expected a positive integer');
    this.#times = n;
    return this;
  }

  /** Answers every matching request, never pending. */
  persist(): this {
    this.#persist = true;
    return this;
  }

  /** @internal Still expected to answer (not persistent and called fewer than `times`). */
  get pending(): boolean {
    return !this.#persist && this.calls < this.#times;
  }

  /** @internal May answer one more request. */
  get available(): boolean {
    return this.#persist || this.calls < this.#times;
  }

  /** @internal */
  describe(): string {
    const o = this.#options;
    const extra = [o.headers !== undefined ? 'headers' : '', o.body !== undefined ? 'body' : ''].filter((x) => x !== '');
    return `${this.#method} ${this.#origin}${String(o.path)}${extra.length > 0 ? ` (matching ${extra.join(', ')})` : ''}: called ${this.calls} of ${this.#times} time(s)`;
  }

  /** @internal */
  matches(url: URL, method: string, headers: Headers, body: () => string): boolean {
    const o = this.#options;
    if (url.origin !== this.#origin || method.toUpperCase() !== this.#method) return false;
    if (!matchString(o.path, url.pathname + url.search)) return false;
    if (o.headers !== undefined) {
      for (const [name, m] of Object.entries(o.headers)) if (!matchString(m, headers.get(name) ?? '')) return false;
    }
    if (o.body !== undefined) {
      const b = body();
      if (isMatcher(o.body)) return matchString(o.body, b);
      try {
        return deepEqual(JSON.parse(b), o.body);
      } catch {
        return false;
      }
    }
    return true;
  }

  /** @internal */
  async answer(req: MockedRequest, stream: boolean, signal: AbortSignal | undefined, href: string): Promise<AnyResponse> {
    const a = this.#answer;
    if (this.#delay > 0) await abortableSleep(this.#delay, signal, href, req.method);
    if (a === undefined) throw new UvfetchError('ERR_INTERNAL', `interception ${this.describe()} has no reply() or replyWithError()`);
    if (a.kind === 'error') {
      throw new UvfetchError(a.code, a.message ?? `${a.code} (mocked)`, { url: href, method: req.method, reason: 'mocked' });
    }
    const r = typeof a.status === 'function' ? a.status(req) : { status: a.status, body: a.body, headers: a.headers };
    return createResponse(r.status, r.body, r.headers, { url: href, stream });
  }
}

function isMatcher(m: unknown): m is StringMatcher {
  return typeof m === 'string' || m instanceof RegExp || typeof m === 'function';
}

function matchString(m: StringMatcher, v: string): boolean {
  if (typeof m === 'string') return m === v;
  if (m instanceof RegExp) {
    m.lastIndex = 0;
    return m.test(v);
  }
  return m(v) === true;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** A request body as a string (an iterable one is consumed: it could not be sent twice anyway). */
async function bodyText(body: BodyInit | null | undefined): Promise<string> {
  if (body === undefined || body === null) return '';
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (body instanceof ArrayBuffer) return Buffer.from(body).toString('utf8');
  const parts: Buffer[] = [];
  for await (const c of body as AsyncIterable<string | Uint8Array>) parts.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c));
  return Buffer.concat(parts).toString('utf8');
}

type HostMatcher = string | RegExp | ((host: string) => boolean);

/** The interceptions and the net-connect rule, shared by a MockSession and its agents. */
class Registry {
  readonly interceptions: Interception[] = [];
  /** null: network off; [] with all = true: every host. */
  allowed: HostMatcher[] | null = null;
  all = false;

  netAllowed(url: URL): boolean {
    if (this.all) return true;
    if (this.allowed === null) return false;
    return this.allowed.some((m) => (typeof m === 'string' ? m === url.host || m === url.hostname : m instanceof RegExp ? m.test(url.host) : m(url.host)));
  }

  readonly transport: Interceptor = async (req: InterceptedRequest, next, ctx) => {
    const url = new URL(req.url);
    let text: string | undefined;
    let mocked: MockedRequest | undefined;
    const candidates = this.interceptions.filter((i) => i.available);
    if (candidates.length > 0) {
      text = await bodyText(req.body);
      for (const i of candidates) {
        if (!i.available) continue;
        if (i.matches(url, req.method, req.headers, () => text!)) {
          i.calls++;
          mocked = { url: req.url, method: req.method, headers: req.headers, body: text };
          return i.answer(mocked, ctx.stream, req.signal, publicHref(url));
        }
      }
    }
    if (this.netAllowed(url)) return next(text === undefined ? req : { ...req, body: text });
    throw new UvfetchError(
      'ERR_MOCK_NOT_MATCHED',
      `uvfetch/testing: no interception matches ${req.method} ${publicHref(url)} and the network is off for ${url.host}`,
      {
        url: publicHref(url),
        method: req.method,
      },
    );
  };
}

/**
 * A Session for tests: `intercept({ origin, path, method })` registers an answer; requests that
 * nothing matches fail with ERR_MOCK_NOT_MATCHED (`enableNetConnect()` lets some through). The
 * session's interceptors and its redirect, retry, rate-limit and cookie policies apply as usual.
 */
export class MockSession extends Session {
  readonly #registry: Registry;

  constructor(options: SessionOptions = {}) {
    const registry = new Registry();
    super({ ...options, [kTransport]: registry.transport } as SessionOptions);
    this.#registry = registry;
  }

  /** Registers an interception (matched in the order registered). Chain `.reply()`, `.times()`, … */
  intercept(options: InterceptOptions): Interception {
    const i = new Interception(options);
    this.#registry.interceptions.push(i);
    return i;
  }

  /** Lets requests that nothing matches reach these hosts ('host', 'host:port', a RegExp or predicate on host:port); no argument: every host. */
  enableNetConnect(hosts?: HostMatcher | readonly HostMatcher[]): this {
    const r = this.#registry;
    if (hosts === undefined) {
      r.all = true;
      return this;
    }
    const list = Array.isArray(hosts) ? hosts : [hosts as HostMatcher];
    for (const h of list)
      if (!(typeof h === 'string' || h instanceof RegExp || typeof h === 'function')) throw invalidOption('hosts', 'expected strings, RegExps or functions');
    r.allowed = [...(r.allowed ?? []), ...list];
    return this;
  }

  /** Turns the network off again (the default). */
  disableNetConnect(): this {
    this.#registry.allowed = null;
    this.#registry.all = false;
    return this;
  }

  /** Descriptions of the interceptions still expecting calls. */
  pendingInterceptors(): string[] {
    return this.#registry.interceptions.filter((i) => i.pending).map((i) => i.describe());
  }

  /** Throws an Error naming every interception that was not called (as often as `times()` said). */
  assertNoPendingInterceptors(): void {
    const p = this.pendingInterceptors();
    if (p.length > 0) throw new Error(`${p.length} interception(s) not called:\n  ${p.join('\n  ')}`);
  }

  /** Forgets every interception. */
  cleanAll(): this {
    this.#registry.interceptions.length = 0;
    return this;
  }

  /** A UvfetchAgent (undici dispatcher) answered by this mock's interceptions (and its net-connect rule). Close it when done. */
  agent(options: SessionOptions = {}): UvfetchAgent {
    return new UvfetchAgent({ ...options, [kTransport]: this.#registry.transport } as SessionOptions);
  }
}
