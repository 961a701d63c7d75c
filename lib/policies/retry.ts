// Retry policy: option parsing, the backoff delay (CSPRNG jitter) and Retry-After. The loop that
// uses them lives in lib/session/interceptors.ts.

import { randomInt } from 'node:crypto';
import { invalidOption } from '../core/errors.js';
import { normalizeMethod } from '../core/headers.js';
import { intIn as int } from '../core/options.js';

export interface RetryBackoffOptions {
  /** Delay before the first retry (ms); doubled for each further one. Default 100. */
  base?: number;
  /** Largest delay (ms). Default 10 000. */
  max?: number;
  /** Fraction of each delay drawn at random (0 = exact exponential, 1 = "full jitter"). Default 0.5. */
  jitter?: number;
}

export interface RetryOptions {
  /** Attempts in all, the first included. Default 3 (retries are off when `retry` is not given). */
  attempts?: number;
  /** Methods retried. Default the idempotent ones: GET, HEAD, PUT, DELETE, OPTIONS, TRACE. */
  methods?: readonly string[];
  /** Response statuses retried. Default 429, 502, 503, 504. */
  statuses?: readonly number[];
  /** Error codes retried. Default: connection-level failures (see the README). */
  errorCodes?: readonly string[];
  backoff?: RetryBackoffOptions;
  /** Wait as long as a Retry-After header (seconds or HTTP date) says. Default true. */
  respectRetryAfter?: boolean;
  /** A Retry-After longer than this (ms) is not waited for: the response is returned. Default 60 000. */
  maxRetryAfter?: number;
}

export interface RetryPolicy {
  readonly attempts: number;
  readonly methods: ReadonlySet<string>;
  readonly statuses: ReadonlySet<number>;
  readonly errorCodes: ReadonlySet<string>;
  readonly base: number;
  readonly max: number;
  readonly jitter: number;
  readonly respectRetryAfter: boolean;
  readonly maxRetryAfter: number;
}

const KEYS = new Set(['attempts', 'methods', 'statuses', 'errorCodes', 'backoff', 'respectRetryAfter', 'maxRetryAfter']);
const BACKOFF_KEYS = new Set(['base', 'max', 'jitter']);
const MAX_DELAY = 2 ** 31 - 1;

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  attempts: 3,
  methods: new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']),
  statuses: new Set([429, 502, 503, 504]),
  // Failures where the server most likely did not process the request, or a transient DNS answer.
  errorCodes: new Set([
    'ERR_CONNECTION_REFUSED',
    'ERR_CONNECTION_RESET',
    'ERR_SOCKET_CLOSED',
    'ERR_CONNECT',
    'ERR_CONNECT_TIMEOUT',
    'ERR_HEADERS_TIMEOUT',
    'ERR_DNS_TEMPORARY',
    'ERR_SOCKET',
  ]),
  base: 100,
  max: 10_000,
  jitter: 0.5,
  respectRetryAfter: true,
  maxRetryAfter: 60_000,
});

function bool(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw invalidOption(name, 'expected a boolean');
  return v;
}

function list<T>(v: unknown, name: string, check: (x: unknown) => x is T, map: (x: T) => T = (x) => x): Set<T> {
  if (!Array.isArray(v)) throw invalidOption(name, 'expected an array');
  const s = new Set<T>();
  for (const x of v) {
    if (!check(x)) throw invalidOption(name, `unexpected entry ${JSON.stringify(x)}`);
    s.add(map(x));
  }
  return s;
}

const isStatus = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 100 && x <= 599;
const isMethod = (x: unknown): x is string => typeof x === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(x);
const isCode = (x: unknown): x is string => typeof x === 'string' && /^ERR_[A-Z0-9_]+$/.test(x);

/**
 * The retry policy for option value `v` over `base` (the session's, or undefined): `false` turns
 * retries off, `true` means the defaults, an object's fields replace the base's one by one.
 */
export function retryPolicy(v: unknown, base: RetryPolicy | undefined, name = 'retry'): RetryPolicy | undefined {
  if (v === undefined) return base;
  if (v === false) return undefined;
  const b = base ?? DEFAULT_RETRY;
  if (v === true) return b;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalidOption(name, 'expected an object or a boolean');
  for (const k of Object.keys(v)) if (!KEYS.has(k)) throw invalidOption(`${name}.${k}`, 'unknown option');
  const o = v as RetryOptions;
  let base_ = b.base;
  let max = b.max;
  let jitter = b.jitter;
  if (o.backoff !== undefined) {
    const bo = o.backoff;
    if (bo === null || typeof bo !== 'object') throw invalidOption(`${name}.backoff`, 'expected an object');
    for (const k of Object.keys(bo)) if (!BACKOFF_KEYS.has(k)) throw invalidOption(`${name}.backoff.${k}`, 'unknown option');
    if (bo.base !== undefined) base_ = int(bo.base, `${name}.backoff.base`, 0, MAX_DELAY);
    if (bo.max !== undefined) max = int(bo.max, `${name}.backoff.max`, 0, MAX_DELAY);
    if (bo.jitter !== undefined) {
      if (typeof bo.jitter !== 'number' || !(bo.jitter >= 0 && bo.jitter <= 1)) throw invalidOption(`${name}.backoff.jitter`, 'expected a number from 0 to 1');
      jitter = bo.jitter;
    }
  }
  return {
    attempts: o.attempts === undefined ? b.attempts : int(o.attempts, `${name}.attempts`, 1, 1000),
    methods: o.methods === undefined ? b.methods : list(o.methods, `${name}.methods`, isMethod, normalizeMethod),
    statuses: o.statuses === undefined ? b.statuses : list(o.statuses, `${name}.statuses`, isStatus),
    errorCodes: o.errorCodes === undefined ? b.errorCodes : list(o.errorCodes, `${name}.errorCodes`, isCode),
    base: base_,
    max,
    jitter,
    respectRetryAfter: o.respectRetryAfter === undefined ? b.respectRetryAfter : bool(o.respectRetryAfter, `${name}.respectRetryAfter`),
    maxRetryAfter: o.maxRetryAfter === undefined ? b.maxRetryAfter : int(o.maxRetryAfter, `${name}.maxRetryAfter`, 0, MAX_DELAY),
  };
}

/**
 * Delay before retry number `retry` (1 = the first retry): min(max, base·2^(retry−1)), of which
 * the `jitter` fraction is drawn uniformly with a CSPRNG (predictable jitter lets a peer time its
 * answers to the herd).
 */
export function backoffDelay(p: RetryPolicy, retry: number): number {
  const d = Math.min(p.max, p.base * 2 ** Math.min(retry - 1, 40));
  if (p.jitter === 0 || d === 0) return d;
  const r = randomInt(0, 2 ** 32) / 2 ** 32; // [0, 1)
  return Math.round(d * (1 - p.jitter * r));
}

/** Retry-After as a delay in ms from `now` (delta-seconds or an HTTP date); undefined if absent or invalid. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, Number.MAX_SAFE_INTEGER);
  const t = Date.parse(v);
  if (Number.isNaN(t) || !/[a-z]/i.test(v)) return undefined; // a date has a day or month name
  return Math.max(0, t - now);
}
