// HTTP/2 multiplexing against real peers: requests to one origin share one connection (counted at
// the server: nghttpd's connection ids, h2o's and nginx's access-log connection serials, node:http2
// sessions); a second connection opens only when every open one is full (h2.maxStreamsPerConnection,
// the server's SETTINGS_MAX_CONCURRENT_STREAMS); connectionsPerHost still bounds connections;
// stats() shows h2 connections and streams.

import { describe, expect, it } from 'vitest';
import { h2Kit, peerMissing, startH2o, startNghttpd, startNginxH2, startNodeH2 } from '../helpers/h2-servers.js';
import { waitFor, within } from '../helpers/http-servers.js';

const kit = h2Kit();

describe('100 requests at once → one connection', () => {
  it('node:http2: one session carries all 100 streams; stats() shows 1 h2 connection and the streams in flight', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session();
    const all = Promise.all(Array.from({ length: 100 }, (_, i) => s.request(srv.url(`/delay/300?i=${i}`))));
    await waitFor(() => srv.activeStreams >= 50, 10_000, '50 streams open at the server');
    const mid = s.stats();
    expect(mid.connections.http2).toBe(1);
    expect(mid.connections.streams).toBeGreaterThanOrEqual(50);
    const res = await within(all, 20_000, '100 requests');
    expect(res.every((r) => r.status === 200 && r.body.toString() === 'ok')).toBe(true);
    expect(res.every((r) => r.info.httpVersion === '2')).toBe(true);
    expect(srv.sessionCount).toBe(1);
    expect(srv.streams).toHaveLength(100);
    expect(srv.maxConcurrentPerSession).toBeGreaterThanOrEqual(50);
    const after = s.stats();
    expect(after.connections.http2).toBe(1);
    expect(after.connections.streams).toBe(0);
    expect(after.connections.created).toBe(1);
  });

  it.skipIf(peerMissing('nghttpd'))('nghttpd: one connection id, 100 HEADERS frames on it', async () => {
    const srv = kit.track(await startNghttpd({ tls: kit.fx.server }));
    const s = kit.session();
    const res = await within(Promise.all(Array.from({ length: 100 }, () => s.request(srv.url('/index.html')))), 20_000, '100 requests');
    expect(res.every((r) => r.status === 200 && r.body.toString() === 'hello from nghttpd\n' && r.info.httpVersion === '2')).toBe(true);
    const log = await srv.log((l) => l.frames.filter((f) => f.dir === 'recv' && f.type === 'HEADERS').length >= 100);
    expect(log.conns).toHaveLength(1);
    expect(log.frames.filter((f) => f.dir === 'recv' && f.type === 'HEADERS')).toHaveLength(100);
  });

  it.skipIf(peerMissing('h2o'))('h2o: one connection id in the access log for 100 requests', async () => {
    const srv = kit.track(await startH2o({ tls: kit.fx.server }));
    const s = kit.session();
    const res = await within(Promise.all(Array.from({ length: 100 }, () => s.request(srv.url('/index.html')))), 20_000, '100 requests');
    expect(res.every((r) => r.status === 200 && r.info.httpVersion === '2')).toBe(true);
    const log = await srv.requests(100);
    expect(log).toHaveLength(100);
    expect(new Set(log.map((r) => r.conn)).size).toBe(1);
    expect(new Set(log.map((r) => r.protocol))).toEqual(new Set(['HTTP/2']));
  });

  it.skipIf(peerMissing('nginx'))('nginx http2: one connection serial in the access log for 100 requests', async () => {
    const srv = kit.track(await startNginxH2({ tls: kit.fx.server }));
    const s = kit.session();
    const res = await within(Promise.all(Array.from({ length: 100 }, () => s.request(srv.url('/ok')))), 20_000, '100 requests');
    expect(res.every((r) => r.status === 200 && r.body.toString() === 'ok\n' && r.info.httpVersion === '2')).toBe(true);
    const log = await srv.requests(100);
    expect(log).toHaveLength(100);
    expect(new Set(log.map((r) => r.conn)).size).toBe(1);
    expect(new Set(log.map((r) => r.protocol))).toEqual(new Set(['HTTP/2.0']));
  });

  it('sequential requests keep using the one connection', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session();
    for (let i = 0; i < 10; i++) {
      const r = await s.request(srv.url(`/seq/${i}`));
      expect(r.body.toString()).toBe(`ok GET /seq/${i}`);
    }
    expect(srv.sessionCount).toBe(1);
    expect(srv.streams.map((x) => x.id)).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
  });
});

describe('a second connection only when every open one is full', () => {
  it('h2.maxStreamsPerConnection 5, 20 slow requests at once → exactly 4 connections, never more than 5 streams on one', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session({ h2: { maxStreamsPerConnection: 5 } });
    const res = await within(Promise.all(Array.from({ length: 20 }, (_, i) => s.request(srv.url(`/delay/1500?i=${i}`)))), 20_000, '20 requests');
    expect(res.every((r) => r.status === 200)).toBe(true);
    expect(srv.maxConcurrentPerSession).toBeLessThanOrEqual(5);
    expect(srv.sessionCount).toBe(4);
  });

  it('the server SETTINGS_MAX_CONCURRENT_STREAMS (10) is honoured: 30 requests all succeed, ≤ 10 streams per connection, ≤ 3 connections', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server, settings: { maxConcurrentStreams: 10 } }));
    const s = kit.session();
    const res = await within(Promise.all(Array.from({ length: 30 }, (_, i) => s.request(srv.url(`/delay/300?i=${i}`)))), 20_000, '30 requests');
    expect(res.every((r) => r.status === 200)).toBe(true);
    expect(srv.maxConcurrentPerSession).toBeLessThanOrEqual(10);
    expect(srv.sessionCount).toBeGreaterThanOrEqual(1);
    expect(srv.sessionCount).toBeLessThanOrEqual(3);
    // No stream was refused by the server for exceeding its limit.
    expect(srv.streams.filter((x) => x.rstCode !== undefined && x.rstCode !== 0)).toEqual([]);
  });

  it('connectionsPerHost 1 with 5 streams per connection: 20 requests queue on the one connection', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session({ connectionsPerHost: 1, h2: { maxStreamsPerConnection: 5 } });
    const res = await within(Promise.all(Array.from({ length: 20 }, (_, i) => s.request(srv.url(`/delay/100?i=${i}`)))), 20_000, '20 requests');
    expect(res.every((r) => r.status === 200)).toBe(true);
    expect(srv.sessionCount).toBe(1);
    expect(srv.maxConcurrentPerSession).toBeLessThanOrEqual(5);
    expect(srv.streams).toHaveLength(20);
  });
});

describe('fetchMany over HTTP/2', () => {
  it.skipIf(peerMissing('h2o'))('300 URLs at concurrency 100 against h2o: every result ok, one connection', async () => {
    const srv = kit.track(
      await startH2o({ tls: kit.fx.server, files: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`f${i}.txt`, `file ${i}\n`])) }),
    );
    const s = kit.session();
    const urls = Array.from({ length: 300 }, (_, i) => srv.url(`/f${i % 30}.txt`));
    const seen = new Map<number, string>();
    await within(
      (async () => {
        for await (const r of s.fetchMany(urls, { concurrency: 100 })) {
          if (r.error) throw r.error;
          const res = r.response!;
          expect(res.info.httpVersion).toBe('2');
          seen.set(r.index, res.body.toString());
        }
      })(),
      30_000,
      'fetchMany',
    );
    expect(seen.size).toBe(300);
    for (const [i, body] of seen) expect(body).toBe(`file ${i % 30}\n`);
    const log = await srv.requests(300);
    expect(new Set(log.map((r) => r.conn)).size).toBe(1);
  });
});
