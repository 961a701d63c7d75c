// The 'uvfetch/otel' entry: UvfetchInstrumentation, OpenTelemetry traces and metrics for uvfetch.
// It is the only module that loads @opentelemetry/api (an optional peer dependency); nothing else
// in uvfetch imports this one.
//
// One CLIENT span per physical send (each retry and each redirect hop is its own span, with
// http.request.resend_count on the resends), per the OpenTelemetry HTTP client semantic
// conventions; the W3C trace context of that span is added to the request's headers; the
// duration histogram http.client.request.duration is recorded as each span ends; the open
// connections of the sessions you observe() are reported as http.client.open_connections.
import {
  type Attributes,
  context,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableResult,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { UvfetchError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { type SendHook, type SendResult, setSendHook, sendHook } from '../observability/send-hook.js';
import type { Session } from '../session/session.js';

export interface UvfetchInstrumentationOptions {
  /** Default: the global one (trace.getTracerProvider()). */
  tracerProvider?: TracerProvider;
  /** Default: the global one (metrics.getMeterProvider()). */
  meterProvider?: MeterProvider;
  /** Add the trace context (W3C traceparent, with the global propagator) to request headers. Default true. */
  propagate?: boolean;
  /** Methods reported as themselves; any other is reported as `_OTHER` (with http.request.method_original). Default: RFC 9110's and PATCH. */
  knownMethods?: readonly string[];
}

const KNOWN = ['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE'];
/** The conventions' advised buckets for http.client.request.duration (seconds). */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

interface Token {
  span: Span;
  start: number;
  attrs: Attributes;
}

const headerSetter = {
  set(carrier: string[], key: string, value: string) {
    for (let i = 0; i < carrier.length; i += 2) if (carrier[i]!.toLowerCase() === key) return; // the caller's own wins
    carrier.push(key, value);
  },
};

/** `url.full` with credentials replaced as the conventions say (REDACTED:REDACTED). */
export function urlFull(url: URL): string {
  if (url.username === '' && url.password === '') return url.href;
  const u = new URL(url.href);
  u.username = 'REDACTED';
  u.password = 'REDACTED';
  return u.href;
}

/**
 * OpenTelemetry for every uvfetch request of this process: `new UvfetchInstrumentation().enable()`.
 * One instrumentation is enabled at a time (enabling another replaces it).
 */
export class UvfetchInstrumentation {
  readonly #tracer: Tracer;
  readonly #meter: Meter;
  readonly #duration: Histogram;
  readonly #propagate: boolean;
  readonly #known: ReadonlySet<string>;
  readonly #sessions = new Set<WeakRef<Session>>();
  readonly #hook: SendHook;

  constructor(options: UvfetchInstrumentationOptions = {}) {
    this.#tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer('uvfetch', VERSION);
    this.#meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter('uvfetch', VERSION);
    this.#propagate = options.propagate !== false;
    this.#known = new Set(options.knownMethods ?? KNOWN);
    this.#duration = this.#meter.createHistogram('http.client.request.duration', {
      unit: 's',
      description: 'Duration of HTTP client requests.',
      advice: { explicitBucketBoundaries: BUCKETS },
    });
    const open = this.#meter.createObservableUpDownCounter('http.client.open_connections', {
      unit: '{connection}',
      description: 'Number of outbound HTTP connections that are currently active or idle on the client.',
    });
    open.addCallback((r) => this.#observe(r));
    this.#hook = { start: (m, u, h, n) => this.#start(m, u, h, n), end: (t, r, e) => this.#end(t as Token, r, e) };
  }

  /** Starts reporting (installs the hook every send goes through). Returns this. */
  enable(): this {
    setSendHook(this.#hook);
    return this;
  }

  /** Stops reporting; sends in flight still end their spans. */
  disable(): void {
    if (sendHook() === this.#hook) setSendHook(undefined);
  }

  get enabled(): boolean {
    return sendHook() === this.#hook;
  }

  /** Reports this session's connections in http.client.open_connections (until it is closed or collected). Returns this. */
  observe(session: Session): this {
    this.#sessions.add(new WeakRef(session));
    return this;
  }

  #observe(r: ObservableResult): void {
    let active = 0;
    let idle = 0;
    for (const ref of this.#sessions) {
      const s = ref.deref();
      if (s === undefined || s.closed) {
        this.#sessions.delete(ref);
        continue;
      }
      const c = s.stats().connections;
      active += c.open - c.idle;
      idle += c.idle;
    }
    r.observe(active, { 'http.connection.state': 'active' });
    r.observe(idle, { 'http.connection.state': 'idle' });
  }

  #start(method: string, url: URL, headers: string[], resend: number): Token {
    const known = this.#known.has(method);
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const attrs: Attributes = {
      'http.request.method': known ? method : '_OTHER',
      'server.address': host,
      'server.port': port,
      'url.full': urlFull(url),
      'url.scheme': url.protocol.slice(0, -1),
    };
    if (!known) attrs['http.request.method_original'] = method;
    if (resend > 0) attrs['http.request.resend_count'] = resend;
    const parent = context.active();
    const span = this.#tracer.startSpan(known ? method : 'HTTP', { kind: SpanKind.CLIENT, attributes: attrs }, parent);
    // A sampled-out span (not recording) still carries its context on, as the W3C flags say.
    if (this.#propagate && trace.isSpanContextValid(span.spanContext())) propagation.inject(trace.setSpan(parent, span), headers, headerSetter);
    return { span, start: performance.now(), attrs };
  }

  #end(t: Token, result: SendResult | undefined, error: unknown): void {
    const span = t.span;
    const m: Attributes = {
      'http.request.method': t.attrs['http.request.method'],
      'server.address': t.attrs['server.address'],
      'server.port': t.attrs['server.port'],
      'url.scheme': t.attrs['url.scheme'],
    };
    if (result !== undefined) {
      span.setAttribute('http.response.status_code', result.status);
      span.setAttribute('network.protocol.version', result.httpVersion);
      m['http.response.status_code'] = result.status;
      m['network.protocol.version'] = result.httpVersion;
      if (result.status >= 400) {
        span.setAttribute('error.type', String(result.status));
        span.setStatus({ code: SpanStatusCode.ERROR });
        m['error.type'] = String(result.status);
      }
    } else {
      // error.type: the UvfetchError's code (ERR_TIMEOUT, ERR_CONNECTION_REFUSED, …; see the README), else _OTHER.
      const type = error instanceof UvfetchError ? error.code : '_OTHER';
      span.setAttribute('error.type', type);
      if (error instanceof Error) span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : undefined });
      m['error.type'] = type;
    }
    span.end();
    this.#duration.record((performance.now() - t.start) / 1000, m);
  }
}
