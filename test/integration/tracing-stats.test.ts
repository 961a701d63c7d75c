// diagnostics_channel tracing (each channel and its payload), native timings, and the stats an
// operator polls: status classes, requests/s windows, reuse ratio, per-origin breakdown,
// event-loop delay, checked against what the test server saw.
import { afterEach, describe, expect, it } from 'vitest';
import diagnostics_channel from 'node:diagnostics_channel';
import http from 'node:http';
import { Session, UvfetchError } from '../../lib/index.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(handler: http.RequestListener): Promise<{ url: string; requests: () => number }> {
  let n = 0;
  const srv = http.createServer((req, res) => {
    n++;
    handler(req, res);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, requests: () => n };
}

function session(opts: ConstructorParameters<typeof Session>[0] = {}): Session {
  const s = new Session(opts);
  cleanups.push(() => s.close());
  return s;
}

function record(names: string[]): { events: Array<{ name: string; msg: any }>; stop: () => void } {
  const events: Array<{ name: string; msg: any }> = [];
  const subs = names.map((name) => {
    const fn = (msg: unknown) => events.push({ name, msg });
    diagnostics_channel.subscribe(`uvfetch:${name}`, fn);
    return () => diagnostics_channel.unsubscribe(`uvfetch:${name}`, fn);
  });
  const stop = () => subs.forEach((u) => u());
  cleanups.push(stop);
  return { events, stop };
}

const ALL = ['request:start', 'request:headers', 'request:end', 'request:error', 'connection:create', 'connection:reuse', 'dns:lookup'];

describe('tracing', () => {
  it('publishes start, connection:create, dns:lookup, headers and end for a new connection', async () => {
    const srv = await server((_q, r) => r.end('ok'));
    const { events } = record(ALL);
    const s = session();
    const url = `${srv.url.replace('127.0.0.1', 'localhost')}/one`;
    const res = await s.request(url);
    expect(res.status).toBe(200);
    const names = events.map((e) => e.name);
    expect(names).toEqual(['request:start', 'dns:lookup', 'connection:create', 'request:headers', 'request:end']);
    const start = events[0]!.msg;
    expect(start).toEqual({ id: expect.any(Number), method: 'GET', url });
    expect(events[1]!.msg).toEqual({ hostname: 'localhost', duration: expect.any(Number) });
    expect(events[2]!.msg).toMatchObject({ origin: new URL(url).origin, dns: expect.any(Number), connect: expect.any(Number) });
    const headers = events[3]!.msg;
    expect(headers).toMatchObject({ id: start.id, method: 'GET', url, status: 200, reused: false });
    const t = headers.timings;
    for (const k of ['queued', 'dns', 'connect', 'tls', 'ttfb', 'headers', 'total']) expect(t[k]).toBeGreaterThanOrEqual(0);
    expect(t.dns).toBeGreaterThan(0);
    expect(t.total).toBeGreaterThanOrEqual(t.queued);
    expect(t.headers).toBeGreaterThanOrEqual(t.ttfb);
    expect(events[4]!.msg).toMatchObject({ id: start.id, status: 200 });
    // While tracing, responses carry their timings too.
    expect(res.timings).toEqual(t);
  });

  it('publishes connection:reuse for a kept-alive socket, with zero dns/connect', async () => {
    const srv = await server((_q, r) => r.end('ok'));
    const s = session();
    await s.request(`${srv.url}/warm`);
    const { events } = record(ALL);
    await s.request(`${srv.url}/again`);
    expect(events.map((e) => e.name)).toEqual(['request:start', 'connection:reuse', 'request:headers', 'request:end']);
    expect(events[1]!.msg).toEqual({ origin: srv.url });
    expect(events[2]!.msg.timings).toMatchObject({ dns: 0, connect: 0 });
  });

  it('publishes request:error with the typed error, for native and JS-side failures', async () => {
    const { events } = record(['request:error']);
    const s = session();
    await expect(s.request('http://127.0.0.1:1/refused')).rejects.toMatchObject({ code: 'ERR_CONNECTION_REFUSED' });
    expect(events).toHaveLength(1);
    expect(events[0]!.msg.error).toBeInstanceOf(UvfetchError);
    expect(events[0]!.msg.error.code).toBe('ERR_CONNECTION_REFUSED');
    expect(events[0]!.msg.url).toBe('http://127.0.0.1:1/refused');
    const srv = await server(() => {
      /* never answers */
    });
    const ac = new AbortController();
    const p = s.request(`${srv.url}/slow`, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(events).toHaveLength(2);
    expect(events[1]!.msg.error.code).toBe('ERR_ABORTED');
  });

  it('stream(): headers at the head, end when the body ends', async () => {
    const srv = await server((_q, r) => {
      r.write('a');
      setTimeout(() => r.end('b'), 30);
    });
    const { events } = record(['request:headers', 'request:end']);
    const s = session();
    const res = await s.stream(`${srv.url}/s`);
    expect(events.map((e) => e.name)).toEqual(['request:headers']);
    expect(await res.text()).toBe('ab');
    expect(events.map((e) => e.name)).toEqual(['request:headers', 'request:end']);
  });

  it('without subscribers nothing is measured; timings: true measures one request', async () => {
    const srv = await server((_q, r) => r.end('ok'));
    const s = session();
    const plain = await s.request(srv.url);
    expect(plain.timings).toBeUndefined();
    const timed = await s.request(srv.url, { timings: true });
    expect(timed.timings).toMatchObject({ queued: expect.any(Number), ttfb: expect.any(Number), total: expect.any(Number) });
    expect(() => s.request(srv.url, { timings: 'yes' as unknown as boolean })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
  });
});

describe('stats', () => {
  it('status classes, reuse ratio and per-origin counts match what the servers saw', async () => {
    const a = await server((req, res) => {
      res.statusCode = req.url === '/404' ? 404 : req.url === '/503' ? 503 : 200;
      res.end();
    });
    const b = await server((_q, r) => r.end('b'));
    const s = session({ connectionsPerHost: 2 });
    const paths = ['/', '/', '/404', '/503', '/', '/404'];
    for (const p of paths) await s.request(a.url + p);
    await Promise.all([s.request(b.url), s.request(b.url)]);
    const st = s.stats({ perOrigin: true });
    expect(st.requests.byStatus).toEqual({ '1xx': 0, '2xx': 5, '3xx': 0, '4xx': 2, '5xx': 1 });
    expect(st.requests.completed).toBe(a.requests() + b.requests());
    expect(st.connections.created + st.connections.reused).toBe(8);
    expect(st.connections.reuseRatio).toBeCloseTo(st.connections.reused / 8, 10);
    const origins = Object.fromEntries(st.connections.perOrigin!.map((o) => [o.origin, o]));
    expect(origins[a.url]).toMatchObject({ open: 1, idle: 1, queued: 0 });
    expect(origins[b.url]).toMatchObject({ open: 2, idle: 2, queued: 0 });
    expect(s.stats().connections.perOrigin).toBeUndefined();
  });

  it('requests per second over 1 s and 10 s windows', async () => {
    const srv = await server((_q, r) => r.end('ok'));
    const s = session();
    const until = Date.now() + 600;
    let n = 0;
    while (Date.now() < until) {
      await s.request(srv.url);
      n++;
    }
    await new Promise((r) => setTimeout(r, 150)); // let the last slot close
    const ps = s.stats().requests.perSecond;
    // All n completions fall inside the last second (give or take the slot being written).
    expect(ps['1s']).toBeGreaterThan(n * 0.8);
    expect(ps['1s']).toBeLessThanOrEqual(n);
    expect(ps['10s']).toBeCloseTo(ps['1s'] / 10, 0);
  });

  it('event-loop delay is measured once stats() has been called', async () => {
    const s = session();
    s.stats();
    await new Promise((r) => setTimeout(r, 40)); // the monitor's first tick only sets its baseline
    const end = Date.now() + 60;
    while (Date.now() < end) {
      /* block the loop for 60 ms */
    }
    await new Promise((r) => setTimeout(r, 30));
    const el = s.stats().eventLoop;
    expect(el.max).toBeGreaterThanOrEqual(40);
    expect(el.p99).toBeGreaterThan(0);
  });
});
