// Token-bucket rate limits per origin (and optionally across all origins), with an optional AIMD
// mode. Requests wait here, in JS, before they are submitted: a queued request holds no socket
// and no pool slot. One timer serves every waiting origin.

import { invalidOption, UvfetchError } from '../core/errors.js';

export interface RateLimitBucketOptions {
  /** Requests per second (may be fractional, e.g. 0.5 = one every 2 s). */
  rps: number;
  /** Requests allowed at once after an idle period (bucket size). Default 1 (evenly spaced). */
  burst?: number;
}

export interface RateLimitOptions {
  /** A bucket per origin (scheme + host + port). */
  perHost?: RateLimitBucketOptions;
  /** One bucket shared by all origins (a request needs a token from both). */
  global?: RateLimitBucketOptions;
  /** AIMD on the per-origin rate: halve it on a 429 or 503 (at most once per token interval),
   * and add `perHost.rps / 20` per other response, up to `perHost.rps`. Needs `perHost`. */
  adaptive?: boolean;
}

/** `session.stats().rateLimit`. */
export interface RateLimitStats {
  /** Requests waiting for a token, all origins. */
  queued: number;
  /** Origins with state: current rate (lower than maxRps after AIMD decreases), tokens, waiting requests. */
  hosts: Array<{ origin: string; rps: number; maxRps: number; tokens: number; queued: number }>;
  global?: { rps: number; tokens: number };
}

interface Bucket {
  rate: number; // tokens per ms
  burst: number;
  tokens: number;
  last: number;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  cancel: () => void; // removes the abort listener and deadline timer
}

interface HostState {
  origin: string;
  bucket: Bucket;
  maxRate: number; // tokens per ms
  lastDecrease: number;
  queue: Waiter[];
}

const KEYS = new Set(['perHost', 'global', 'adaptive']);
const BUCKET_KEYS = new Set(['rps', 'burst']);
const PRUNE_ABOVE = 1024; // idle origins kept before pruning full, idle buckets
const EPS = 1e-9;

function bucketOpt(v: unknown, name: string): { rps: number; burst: number } {
  if (v === null || typeof v !== 'object') throw invalidOption(name, 'expected { rps, burst? }');
  for (const k of Object.keys(v)) if (!BUCKET_KEYS.has(k)) throw invalidOption(`${name}.${k}`, 'unknown option');
  const { rps, burst } = v as RateLimitBucketOptions;
  if (typeof rps !== 'number' || !Number.isFinite(rps) || rps <= 0 || rps > 1e9) throw invalidOption(`${name}.rps`, 'expected a positive number');
  if (burst !== undefined && (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1 || burst > 1e9)) {
    throw invalidOption(`${name}.burst`, 'expected an integer ≥ 1');
  }
  return { rps, burst: burst ?? 1 };
}

function fill(b: Bucket, now: number): void {
  if (now > b.last) {
    b.tokens = Math.min(b.burst, b.tokens + (now - b.last) * b.rate);
    b.last = now;
  }
}

function untilToken(b: Bucket): number {
  return b.tokens >= 1 - EPS ? 0 : (1 - b.tokens) / b.rate;
}

export class RateLimiter {
  readonly #perHost: { rps: number; burst: number } | undefined;
  readonly #global: Bucket | undefined;
  readonly #adaptive: boolean;
  readonly #hosts = new Map<string, HostState>();
  /** Origins with waiters, in the order they started waiting (served round-robin). */
  readonly #waiting = new Set<HostState>();
  #timer: NodeJS.Timeout | undefined;
  #queued = 0;

  static from(v: unknown): RateLimiter | undefined {
    if (v === undefined || v === false) return undefined;
    if (v === null || typeof v !== 'object') throw invalidOption('rateLimit', 'expected an object');
    for (const k of Object.keys(v)) if (!KEYS.has(k)) throw invalidOption(`rateLimit.${k}`, 'unknown option');
    const o = v as RateLimitOptions;
    const perHost = o.perHost === undefined ? undefined : bucketOpt(o.perHost, 'rateLimit.perHost');
    const global = o.global === undefined ? undefined : bucketOpt(o.global, 'rateLimit.global');
    if (perHost === undefined && global === undefined) throw invalidOption('rateLimit', 'expected perHost and/or global');
    if (o.adaptive !== undefined && typeof o.adaptive !== 'boolean') throw invalidOption('rateLimit.adaptive', 'expected a boolean');
    if (o.adaptive === true && perHost === undefined) throw invalidOption('rateLimit.adaptive', 'needs rateLimit.perHost');
    return new RateLimiter(perHost, global, o.adaptive === true);
  }

  private constructor(perHost: { rps: number; burst: number } | undefined, global: { rps: number; burst: number } | undefined, adaptive: boolean) {
    this.#perHost = perHost;
    const now = performance.now();
    this.#global = global === undefined ? undefined : { rate: global.rps / 1000, burst: global.burst, tokens: global.burst, last: now };
    this.#adaptive = adaptive;
  }

  /**
   * Takes a token for `origin`: undefined when one was free at once (nothing to await), else a
   * promise that resolves in FIFO order per origin, or rejects with ERR_ABORTED / ERR_TIMEOUT
   * (`deadline`, a performance.now() time) while waiting.
   */
  acquire(origin: string, signal: AbortSignal | undefined, deadline: number, url: string, method: string): Promise<void> | undefined {
    const now = performance.now();
    const h = this.#host(origin, now);
    const g = this.#global;
    if (g !== undefined) fill(g, now);
    // At once only when nobody waits before it: its origin's queue, and (sharing the global
    // bucket) any origin's.
    if (h.queue.length === 0 && h.bucket.tokens >= 1 - EPS && (g === undefined || (g.tokens >= 1 - EPS && this.#waiting.size === 0))) {
      h.bucket.tokens -= 1;
      if (g !== undefined) g.tokens -= 1;
      return undefined;
    }
    if (signal?.aborted) return Promise.reject(new UvfetchError('ERR_ABORTED', 'request aborted', { cause: signal.reason, url, method }));
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const w: Waiter = {
        resolve,
        reject,
        cancel: () => {
          if (timer !== undefined) clearTimeout(timer);
          if (onAbort !== undefined) signal!.removeEventListener('abort', onAbort);
        },
      };
      const drop = (err: UvfetchError): void => {
        const i = h.queue.indexOf(w);
        if (i < 0) return;
        h.queue.splice(i, 1);
        this.#queued--;
        if (h.queue.length === 0) this.#waiting.delete(h);
        w.cancel();
        reject(err);
        this.#schedule();
      };
      if (signal !== undefined) {
        onAbort = () => drop(new UvfetchError('ERR_ABORTED', 'request aborted', { cause: signal.reason, url, method }));
        signal.addEventListener('abort', onAbort, { once: true });
      }
      if (deadline !== Infinity) {
        timer = setTimeout(
          () => drop(new UvfetchError('ERR_TIMEOUT', 'total timeout passed while waiting for the rate limit', { reason: 'rate limit', url, method })),
          Math.max(0, Math.ceil(deadline - now)),
        );
      }
      h.queue.push(w);
      this.#queued++;
      this.#waiting.add(h);
      this.#schedule();
    });
  }

  /** AIMD feedback from a response of `origin` (adaptive mode only). */
  feedback(origin: string, status: number): void {
    if (!this.#adaptive) return;
    const h = this.#hosts.get(origin);
    if (h === undefined) return;
    const b = h.bucket;
    const now = performance.now();
    fill(b, now);
    if (status === 429 || status === 503) {
      // Responses to requests already in flight arrive together: one decrease per token interval.
      if (now - h.lastDecrease < Math.max(100, 1 / b.rate)) return;
      h.lastDecrease = now;
      b.rate = Math.max(h.maxRate / 64, b.rate / 2);
    } else if (b.rate < h.maxRate) {
      b.rate = Math.min(h.maxRate, b.rate + h.maxRate / 20);
    } else {
      return;
    }
    if (this.#waiting.has(h)) this.#schedule();
  }

  stats(): RateLimitStats {
    const now = performance.now();
    const hosts: RateLimitStats['hosts'] = [];
    for (const h of this.#hosts.values()) {
      fill(h.bucket, now);
      hosts.push({ origin: h.origin, rps: h.bucket.rate * 1000, maxRps: h.maxRate * 1000, tokens: h.bucket.tokens, queued: h.queue.length });
    }
    const g = this.#global;
    if (g !== undefined) fill(g, now);
    return { queued: this.#queued, hosts, ...(g !== undefined ? { global: { rps: g.rate * 1000, tokens: g.tokens } } : {}) };
  }

  /** Rejects every waiting request (session destroyed). */
  clear(err: () => UvfetchError): void {
    for (const h of this.#waiting) {
      for (const w of h.queue.splice(0)) {
        w.cancel();
        w.reject(err());
      }
    }
    this.#waiting.clear();
    this.#queued = 0;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #host(origin: string, now: number): HostState {
    let h = this.#hosts.get(origin);
    if (h !== undefined) return h;
    if (this.#hosts.size >= PRUNE_ABOVE) this.#prune(now);
    const p = this.#perHost;
    // Without perHost an origin's own bucket never limits: infinite rate, always full.
    const rate = p === undefined ? Infinity : p.rps / 1000;
    const burst = p === undefined ? Infinity : p.burst;
    h = { origin, bucket: { rate, burst, tokens: burst, last: now }, maxRate: rate, lastDecrease: -Infinity, queue: [] };
    this.#hosts.set(origin, h);
    return h;
  }

  /** Forgets origins that are idle, full and at their full rate (they would be created the same). */
  #prune(now: number): void {
    for (const [k, h] of this.#hosts) {
      if (h.queue.length !== 0 || h.bucket.rate !== h.maxRate) continue;
      fill(h.bucket, now);
      if (h.bucket.tokens >= h.bucket.burst) this.#hosts.delete(k);
    }
  }

  /** Hands out every token available now (round-robin over origins), then sleeps until the next. */
  #schedule(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const now = performance.now();
    const g = this.#global;
    if (g !== undefined) fill(g, now);
    let progress = true;
    while (progress && this.#waiting.size > 0) {
      progress = false;
      for (const h of this.#waiting) {
        if (g !== undefined && g.tokens < 1 - EPS) break;
        fill(h.bucket, now);
        if (h.bucket.tokens < 1 - EPS) continue;
        h.bucket.tokens -= 1;
        if (g !== undefined) g.tokens -= 1;
        const w = h.queue.shift()!;
        this.#queued--;
        if (h.queue.length === 0) this.#waiting.delete(h);
        else {
          // Round-robin: this origin goes to the back of the line.
          this.#waiting.delete(h);
          this.#waiting.add(h);
        }
        w.cancel();
        w.resolve();
        progress = true;
      }
    }
    if (this.#waiting.size === 0) return;
    let wait = Infinity;
    for (const h of this.#waiting) wait = Math.min(wait, untilToken(h.bucket));
    if (g !== undefined) wait = Math.max(wait, untilToken(g));
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#schedule();
      },
      Math.max(1, Math.ceil(wait)),
    );
  }
}
