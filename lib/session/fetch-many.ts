// fetchMany: bounded bulk fetching over one Session.
//
// The input is pulled lazily and never more than `concurrency` items ahead of what the consumer
// has taken: an item counts from the moment it is pulled until its result has been handed out by
// next(), whether it is in flight, parked behind a saturated origin (perHost), or completed and
// waiting (for the consumer, or for an earlier item in ordered mode). That single window bounds
// everything: requests in flight, parked items and buffered results are all ≤ concurrency, and
// no per-item state survives the hand-out of its result, so memory is flat for any input length.

import { invalidOption, UvfetchError } from '../core/errors.js';
import { intIn } from '../core/options.js';
import type { Response, StreamResponse } from './response.js';
import type { RequestOptions } from './types.js';

export interface FetchManyOptions {
  /** Most items pulled from the input whose result has not been taken yet (so also the most
   * requests in flight). Integer from 1 to 1 000 000. */
  concurrency: number;
  /** Most requests in flight to one origin (`new URL(url).origin`). Default: no per-origin cap
   * (the Session's `connectionsPerHost` still applies). */
  perHost?: number;
  /** Yield results in input order. Default false (completion order). */
  ordered?: boolean;
  /**
   * Use `session.stream()`: results carry StreamResponses. Default false (`session.request()`,
   * buffered bodies).
   *
   * **Each StreamResponse body must be consumed or destroyed** (`res.body.destroy()`): an
   * unread body keeps its connection busy. A streamed request leaves the `perHost` count when
   * its response head arrives and the `concurrency` window when its result is taken: bodies
   * being read are not limited by fetchMany. Streamed results that fetchMany drops itself
   * (after the consumer stopped iterating) are destroyed by fetchMany.
   */
  stream?: boolean;
}

/** One input item: a URL, or a URL with the options of that one request. */
export type FetchManyRequest = string | URL | ({ url: string | URL } & RequestOptions);

/** Exactly one per input item. `request` is the input item itself; `index` its position (from 0). */
export type FetchManyResult<R> =
  | { index: number; request: FetchManyRequest; response: R; error?: undefined }
  | { index: number; request: FetchManyRequest; error: unknown; response?: undefined };

type AnyResponse = Response | StreamResponse;
type Result = FetchManyResult<AnyResponse>;
/** What fetchMany needs of a Session (structural: this module does not depend on session.ts). */
export interface Fetcher {
  request(url: string | URL, options?: RequestOptions): Promise<Response>;
  stream(url: string | URL, options?: RequestOptions): Promise<StreamResponse>;
}

const OPTION_KEYS = new Set(['concurrency', 'perHost', 'ordered', 'stream']);
const MAX_CONCURRENCY = 1_000_000;

const intOption = (v: unknown, name: string, max: number): number => intIn(v, name, 1, max);

/** A small FIFO with amortised O(1) shift and no per-element allocation. */
class Queue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(v: T): void {
    this.#items.push(v);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const v = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return v;
  }

  clear(): T[] {
    const rest = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return rest;
  }
}

interface Item {
  index: number;
  request: FetchManyRequest;
  url: string | URL;
  opts: RequestOptions | undefined;
  host: HostState | undefined;
}

interface HostState {
  origin: string;
  active: number;
  parked: Queue<Item>;
}

interface Waiter {
  resolve: (r: IteratorResult<Result, undefined>) => void;
  reject: (e: unknown) => void;
}

const DONE: IteratorResult<Result, undefined> = Object.freeze({ done: true, value: undefined });

class FetchManyIterator implements AsyncIterableIterator<Result> {
  readonly #session: Fetcher;
  readonly #input: Iterable<FetchManyRequest> | AsyncIterable<FetchManyRequest>;
  readonly #concurrency: number;
  readonly #perHost: number; // 0 = no per-origin cap
  readonly #ordered: boolean;
  readonly #stream: boolean;

  #src: Iterator<FetchManyRequest> | AsyncIterator<FetchManyRequest> | undefined;
  #srcAsync = false;
  #started = false;
  #pulling: Promise<void> | undefined; // an async pull in progress
  #inputDone = false;
  #inputFailed = false;
  #inputError: unknown;

  /** Pulled from the input, result not handed out yet. Never above #concurrency. */
  #outstanding = 0;
  #nextIndex = 0;
  readonly #ready = new Queue<Result>();
  // Ordered mode: completed results by index % concurrency, and the next index to release.
  #ring: (Result | undefined)[] | undefined;
  #nextOrdered = 0;
  readonly #hosts = new Map<string, HostState>();
  readonly #waiters = new Queue<Waiter>();

  #closed = false; // the consumer called return(): results from now on are dropped
  #finished = false; // the iterator has reported done (or its terminal error)
  #pumping = false;
  #again = false;

  constructor(
    session: Fetcher,
    input: Iterable<FetchManyRequest> | AsyncIterable<FetchManyRequest>,
    c: number,
    perHost: number,
    ordered: boolean,
    stream: boolean,
  ) {
    this.#session = session;
    this.#input = input;
    this.#concurrency = c;
    this.#perHost = perHost;
    this.#ordered = ordered;
    this.#stream = stream;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Result, undefined>> {
    if (this.#finished) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      if (!this.#started) this.#start();
      this.#pump();
    });
  }

  /**
   * Stops the batch (what `break` out of `for await` calls): no more input is pulled and the
   * input iterator's own return() is called; results not yet handed out are dropped (streamed
   * bodies destroyed). Requests already in flight are not waited for: they finish in the
   * background and their results are dropped.
   */
  async return(): Promise<IteratorResult<Result, undefined>> {
    if (this.#finished) return DONE;
    this.#closed = true;
    this.#finished = true;
    for (const w of this.#waiters.clear()) w.resolve(DONE);
    for (const r of this.#ready.clear()) this.#drop(r);
    if (this.#ring !== undefined) {
      for (const r of this.#ring) if (r !== undefined) this.#drop(r);
      this.#ring = undefined;
    }
    for (const h of this.#hosts.values()) h.parked.clear();
    this.#hosts.clear();
    if (this.#pulling !== undefined) await this.#pulling; // never rejects
    const src = this.#src;
    if (src !== undefined && !this.#inputDone) {
      this.#inputDone = true;
      if (typeof src.return === 'function') await src.return();
    }
    return DONE;
  }

  #start(): void {
    this.#started = true;
    if (this.#ordered) this.#ring = new Array<Result | undefined>(this.#concurrency).fill(undefined);
    try {
      const input = this.#input as Partial<AsyncIterable<FetchManyRequest> & Iterable<FetchManyRequest>>;
      const asyncIt = input[Symbol.asyncIterator];
      if (typeof asyncIt === 'function') {
        this.#srcAsync = true;
        this.#src = asyncIt.call(input);
      } else {
        this.#src = input[Symbol.iterator]!();
      }
      if (this.#src === null || typeof this.#src !== 'object' || typeof this.#src.next !== 'function') {
        throw new TypeError('fetchMany: the input iterator has no next() method');
      }
    } catch (err) {
      this.#failInput(err);
    }
  }

  #failInput(err: unknown): void {
    this.#inputDone = true;
    this.#inputFailed = true;
    this.#inputError = err;
  }

  /** Moves results to waiters, pulls input while the window has room, detects the end. Re-entrancy safe. */
  #pump(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        while (this.#waiters.length > 0 && this.#ready.length > 0) {
          const r = this.#ready.shift()!;
          this.#outstanding--;
          this.#waiters.shift()!.resolve({ done: false, value: r });
        }
        if (this.#closed) return;
        if (!this.#inputDone && this.#pulling === undefined && this.#outstanding < this.#concurrency) {
          this.#pullOne();
          this.#again = true;
        }
      } while (this.#again);
      if (this.#inputDone && this.#outstanding === 0 && this.#pulling === undefined && this.#waiters.length > 0) {
        // Everything pulled has been handed out: the end, or the input's own error.
        this.#finished = true;
        const waiters = this.#waiters.clear();
        let i = 0;
        if (this.#inputFailed) {
          const err = this.#inputError;
          this.#inputError = undefined;
          waiters[i++]!.reject(err);
        }
        for (; i < waiters.length; i++) waiters[i]!.resolve(DONE);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #pullOne(): void {
    const src = this.#src!;
    if (!this.#srcAsync) {
      let r: IteratorResult<FetchManyRequest>;
      try {
        r = (src as Iterator<FetchManyRequest>).next();
        if (r === null || typeof r !== 'object') throw new TypeError('fetchMany: the input iterator returned a non-object');
      } catch (err) {
        this.#failInput(err);
        return;
      }
      this.#onPulled(r);
      return;
    }
    let p: PromiseLike<IteratorResult<FetchManyRequest>>;
    try {
      p = (src as AsyncIterator<FetchManyRequest>).next();
    } catch (err) {
      this.#failInput(err);
      return;
    }
    this.#pulling = Promise.resolve(p).then(
      (r) => {
        this.#pulling = undefined;
        if (this.#closed) return; // return() owns the input now
        if (r === null || typeof r !== 'object') this.#failInput(new TypeError('fetchMany: the input iterator returned a non-object'));
        else this.#onPulled(r);
        this.#pump();
      },
      (err: unknown) => {
        this.#pulling = undefined;
        if (this.#closed) return;
        this.#failInput(err);
        this.#pump();
      },
    );
  }

  #onPulled(r: IteratorResult<FetchManyRequest>): void {
    if (r.done) {
      this.#inputDone = true;
      return;
    }
    const request = r.value;
    const index = this.#nextIndex++;
    this.#outstanding++;
    let url: string | URL;
    let opts: RequestOptions | undefined;
    if (typeof request === 'string' || request instanceof URL) {
      url = request;
    } else if (request !== null && typeof request === 'object' && 'url' in request) {
      const { url: u, ...rest } = request;
      url = u;
      opts = rest;
    } else {
      this.#deliver(
        index,
        request,
        undefined,
        new UvfetchError('ERR_INVALID_URL', `fetchMany: input item ${index} is not a URL string, a URL or an object with a url`),
      );
      return;
    }
    const item: Item = { index, request, url, opts, host: undefined };
    if (this.#perHost > 0) {
      let origin: string;
      try {
        origin = typeof url === 'string' ? new URL(url).origin : url instanceof URL ? url.origin : new URL(String(url)).origin;
      } catch (cause) {
        this.#deliver(index, request, undefined, new UvfetchError('ERR_INVALID_URL', `invalid URL: ${String(url)}`, { cause }));
        return;
      }
      let h = this.#hosts.get(origin);
      if (h === undefined) {
        h = { origin, active: 0, parked: new Queue<Item>() };
        this.#hosts.set(origin, h);
      }
      item.host = h;
      if (h.active >= this.#perHost) {
        h.parked.push(item);
        return;
      }
      h.active++;
      if (!this.#launch(item)) this.#release(h);
      return;
    }
    this.#launch(item);
  }

  /** Sends the request; false when it failed synchronously (its error result is delivered). */
  #launch(item: Item): boolean {
    let p: Promise<AnyResponse>;
    try {
      p = this.#stream ? this.#session.stream(item.url, item.opts) : this.#session.request(item.url, item.opts);
    } catch (err) {
      // Invalid URL, options or headers throw synchronously: an error result like any other.
      this.#deliver(item.index, item.request, undefined, err);
      return false;
    }
    p.then(
      (res) => this.#settled(item, res, undefined),
      (err: unknown) => this.#settled(item, undefined, err),
    );
    return true;
  }

  /** Frees a per-origin slot and starts parked items of that origin (a loop: no recursion). */
  #release(h: HostState): void {
    h.active--;
    while (h.active < this.#perHost) {
      const next = h.parked.shift();
      if (next === undefined) break;
      h.active++;
      if (!this.#launch(next)) h.active--;
    }
    if (h.active === 0 && h.parked.length === 0) this.#hosts.delete(h.origin);
  }

  #settled(item: Item, response: AnyResponse | undefined, error: unknown): void {
    if (item.host !== undefined && !this.#closed) this.#release(item.host);
    this.#deliver(item.index, item.request, response, error);
  }

  #deliver(index: number, request: FetchManyRequest, response: AnyResponse | undefined, error: unknown): void {
    const r: Result = response !== undefined ? { index, request, response } : { index, request, error };
    if (this.#closed) {
      this.#drop(r);
      return;
    }
    if (this.#ring === undefined) {
      this.#ready.push(r);
    } else {
      const ring = this.#ring;
      const c = this.#concurrency;
      ring[index % c] = r;
      for (let k = this.#nextOrdered % c, x = ring[k]; x !== undefined; k = this.#nextOrdered % c, x = ring[k]) {
        ring[k] = undefined;
        this.#ready.push(x);
        this.#nextOrdered++;
      }
    }
    this.#pump();
  }

  #drop(r: Result): void {
    if (this.#stream && r.response !== undefined) (r.response as StreamResponse).body.destroy();
  }
}

/**
 * Fetches many URLs over one session with bounded concurrency, yielding exactly one
 * `{ index, request, response }` or `{ index, request, error }` per input item — a failing
 * item (including one with an invalid URL, or one that is not a string, URL or `{ url }`
 * object) never stops the batch.
 *
 * The input is pulled lazily, never more than `concurrency` items ahead of the results the
 * consumer has taken, so an endless generator works and memory stays flat. With
 * `ordered: true` results come in input order; a slow early item then holds the window (no
 * more input is pulled until it completes). `perHost` caps requests in flight per origin:
 * items for a saturated origin are parked (within the same window) while other origins proceed.
 * An error thrown by the input iterator is rethrown from the result iterator after the results
 * of every item pulled before it have been yielded. Breaking out of `for await` stops pulling
 * input; requests in flight then finish in the background and their results are dropped.
 *
 * With `stream: true` results carry StreamResponses: **each body must be consumed or destroyed**.
 *
 * Options are validated synchronously (UvfetchError ERR_INVALID_OPTION, `reason` = the option).
 * Nothing is pulled or sent before the first next().
 */
export function fetchMany(
  session: Fetcher,
  input: Iterable<FetchManyRequest> | AsyncIterable<FetchManyRequest>,
  options: FetchManyOptions & { stream: true },
): AsyncIterableIterator<FetchManyResult<StreamResponse>>;
export function fetchMany(
  session: Fetcher,
  input: Iterable<FetchManyRequest> | AsyncIterable<FetchManyRequest>,
  options: FetchManyOptions & { stream?: false },
): AsyncIterableIterator<FetchManyResult<Response>>;
export function fetchMany(
  session: Fetcher,
  input: Iterable<FetchManyRequest> | AsyncIterable<FetchManyRequest>,
  options: FetchManyOptions,
): AsyncIterableIterator<FetchManyResult<Response | StreamResponse>>;
export function fetchMany(
  session: Fetcher,
  input: Iterable<FetchManyRequest> | AsyncIterable<FetchManyRequest>,
  options: FetchManyOptions,
): AsyncIterableIterator<FetchManyResult<Response | StreamResponse>> {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'expected an object');
  for (const k of Object.keys(options)) if (!OPTION_KEYS.has(k)) throw invalidOption(k, 'unknown option');
  const concurrency = intOption(options.concurrency, 'concurrency', MAX_CONCURRENCY);
  const perHost = options.perHost === undefined ? 0 : intOption(options.perHost, 'perHost', MAX_CONCURRENCY);
  if (options.ordered !== undefined && typeof options.ordered !== 'boolean') throw invalidOption('ordered', 'expected a boolean');
  if (options.stream !== undefined && typeof options.stream !== 'boolean') throw invalidOption('stream', 'expected a boolean');
  const inp = input as unknown as Record<symbol, unknown> | null;
  if (inp === null || typeof inp !== 'object' || (typeof inp[Symbol.asyncIterator] !== 'function' && typeof inp[Symbol.iterator] !== 'function')) {
    // Strings are refused too: iterating one would fetch its characters.
    throw invalidOption('input', 'expected an iterable or async iterable of requests');
  }
  if (session === null || typeof session !== 'object' || typeof session.request !== 'function' || typeof session.stream !== 'function') {
    throw invalidOption('session', 'expected a Session');
  }
  return new FetchManyIterator(session, input, concurrency, perHost, options.ordered ?? false, options.stream ?? false);
}
