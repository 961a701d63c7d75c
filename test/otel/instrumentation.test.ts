// uvfetch/otel with the OpenTelemetry SDK's in-memory exporters against a real local server:
// one CLIENT span per send (retries and redirects included, with http.request.resend_count), the
// conventions' attributes, W3C traceparent in the request, the duration histogram and the
// open-connections counter.
import { propagation } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Session } from 'uvfetch';
import { UvfetchInstrumentation } from 'uvfetch/otel';
import { Cleanup, closedPort, rejection, startHttpServer } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
const meterProvider = new MeterProvider({ readers: [reader] });
let inst: UvfetchInstrumentation;

beforeAll(() => {
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  inst = new UvfetchInstrumentation({ tracerProvider, meterProvider }).enable();
});
afterAll(async () => {
  inst.disable();
  propagation.disable();
  await meterProvider.shutdown();
});
afterEach(async () => {
  spans.reset();
  await cleanup.run();
});

function session(opts?: ConstructorParameters<typeof Session>[0]): Session {
  const s = new Session(opts);
  cleanup.add(() => s.destroy());
  return s;
}

async function server() {
  let flaky = 0;
  return startHttpServer((req, res) => {
    if (req.url === '/redirect') {
      res.writeHead(302, { location: '/flaky' });
      res.end();
      return;
    }
    if (req.url === '/flaky' && ++flaky === 1) {
      res.writeHead(503);
      res.end();
      return;
    }
    if (req.url === '/missing') {
      res.writeHead(404);
      res.end();
      return;
    }
    res.end(req.headers.traceparent ?? '');
  });
}

describe('UvfetchInstrumentation', () => {
  it('one CLIENT span per request with the HTTP client attributes; traceparent sent', async () => {
    const srv = await server();
    const s = session();
    const url = srv.url('/ok?q=1').replace('http://', 'http://user:secret@');
    const res = await s.request(url);
    const traceparent = res.body.toString();
    const [span] = spans.getFinishedSpans();
    expect(spans.getFinishedSpans().length).toBe(1);
    expect(span!.name).toBe('GET');
    expect(span!.kind).toBe(2); // SpanKind.CLIENT
    expect(span!.attributes).toMatchObject({
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
      'server.port': srv.port,
      'url.full': `http://REDACTED:REDACTED@127.0.0.1:${srv.port}/ok?q=1`,
      'http.response.status_code': 200,
      'network.protocol.version': '1.1',
    });
    expect(span!.attributes['error.type']).toBeUndefined();
    expect(span!.attributes['http.request.resend_count']).toBeUndefined();
    expect(traceparent).toBe(`00-${span!.spanContext().traceId}-${span!.spanContext().spanId}-01`);
  });

  it('a redirect and a retry are spans of their own, with http.request.resend_count', async () => {
    const srv = await server();
    const s = session({ retry: { attempts: 2, backoff: { base: 1, max: 2, jitter: 0 } } });
    const res = await s.request(srv.url('/redirect'));
    expect(res.status).toBe(200);
    const got = spans
      .getFinishedSpans()
      .map((sp) => [sp.attributes['url.full'], sp.attributes['http.response.status_code'], sp.attributes['http.request.resend_count']]);
    expect(got).toEqual([
      [srv.url('/redirect'), 302, undefined],
      [srv.url('/flaky'), 503, 1],
      [srv.url('/flaky'), 200, 2],
    ]);
    const failed = spans.getFinishedSpans()[1]!;
    expect(failed.attributes['error.type']).toBe('503');
    expect(failed.status.code).toBe(2); // SpanStatusCode.ERROR
  });

  it('fetch() hops are counted the same way; 404 sets error.type and status', async () => {
    const srv = await server();
    const s = session({ retry: { attempts: 2, backoff: { base: 1, max: 2, jitter: 0 } } });
    await (await s.fetch(srv.url('/redirect'))).text();
    await (await s.fetch(srv.url('/missing'))).arrayBuffer();
    const got = spans.getFinishedSpans().map((sp) => [sp.attributes['http.response.status_code'], sp.attributes['http.request.resend_count'] ?? 0]);
    expect(got).toEqual([
      [302, 0],
      [503, 1],
      [200, 2],
      [404, 0],
    ]);
    expect(spans.getFinishedSpans()[3]!.attributes['error.type']).toBe('404');
  });

  it('a failed send: error.type is the UvfetchError code, status ERROR, exception recorded', async () => {
    const s = session();
    const port = await closedPort();
    const err = await rejection(s.request(`http://127.0.0.1:${port}/`));
    const [span] = spans.getFinishedSpans();
    expect(span!.attributes['error.type']).toBe(err.code);
    expect(span!.attributes['http.response.status_code']).toBeUndefined();
    expect(span!.status.code).toBe(2);
    expect(span!.events.some((e) => e.name === 'exception')).toBe(true);
  });

  it('metrics: http.client.request.duration (s, the advised buckets) and http.client.open_connections', async () => {
    const srv = await server();
    const s = session();
    inst.observe(s);
    await s.request(srv.url('/ok'));
    await s.request(srv.url('/missing'));
    await reader.forceFlush();
    const all = metricExporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((sm) => sm.metrics));
    const duration = all.filter((m) => m.descriptor.name === 'http.client.request.duration').at(-1)!;
    expect(duration.descriptor.unit).toBe('s');
    const points = duration.dataPoints as Array<{
      attributes: Record<string, unknown>;
      value: { count: number; sum: number; buckets: { boundaries: number[] } };
    }>;
    const ok = points.find((p) => p.attributes['http.response.status_code'] === 200 && p.attributes['server.port'] === srv.port)!;
    expect(ok.value.count).toBe(1);
    expect(ok.value.sum).toBeGreaterThan(0);
    expect(ok.value.sum).toBeLessThan(10);
    expect(ok.value.buckets.boundaries).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);
    const notFound = points.find((p) => p.attributes['http.response.status_code'] === 404 && p.attributes['server.port'] === srv.port)!;
    expect(notFound.attributes['error.type']).toBe('404');
    const open = all.filter((m) => m.descriptor.name === 'http.client.open_connections').at(-1)!;
    const idle = (open.dataPoints as Array<{ attributes: Record<string, unknown>; value: number }>).find(
      (p) => p.attributes['http.connection.state'] === 'idle',
    )!;
    expect(idle.value).toBe(1);
  });

  it('disable(): no spans, no headers added', async () => {
    const srv = await server();
    const s = session();
    inst.disable();
    try {
      const res = await s.request(srv.url('/ok'));
      expect(res.body.toString()).toBe('');
      expect(spans.getFinishedSpans().length).toBe(0);
    } finally {
      inst.enable();
    }
  });
});
