// Large bodies both ways over HTTP/2, checked by SHA-256 at both ends: 8 MiB down from nghttpd, h2o,
// nginx and node:http2 (request() and stream()), 4 MiB up (Buffer, async iterable, explicit
// content-length) to nghttpd --echo-upload, h2o's /echo and node:http2, uploads bigger than a small
// server window (the client must respect it: a violation is a FLOW_CONTROL_ERROR), and many
// transfers both ways at once on one connection.

import { describe, expect, it } from 'vitest';
import { h2Kit, patternBytes, peerMissing, sha256, startH2o, startNghttpd, startNginxH2, startNodeH2 } from '../helpers/h2-servers.js';
import { within } from '../helpers/http-servers.js';

const kit = h2Kit();
const MiB = 1024 * 1024;
const DOWN = patternBytes(8 * MiB, 11);
const DOWN_SHA = sha256(DOWN);
const UP = patternBytes(4 * MiB, 12);
const UP_SHA = sha256(UP);

async function* chunks(b: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) {
    yield b.subarray(i, i + size);
    if ((i / size) % 16 === 0) await new Promise((r) => setImmediate(r));
  }
}

describe('8 MiB down', () => {
  it.skipIf(peerMissing('nghttpd'))('from nghttpd: request() and stream() give the same bytes', async () => {
    const srv = kit.track(await startNghttpd({ tls: kit.fx.server, files: { 'big.bin': DOWN } }));
    const s = kit.session();
    const r = await within(s.request(srv.url('/big.bin')), 30_000, 'download');
    expect(r.info.httpVersion).toBe('2');
    expect(r.body.length).toBe(DOWN.length);
    expect(sha256(r.body)).toBe(DOWN_SHA);
    const st = await s.stream(srv.url('/big.bin'));
    expect(st.info.httpVersion).toBe('2');
    expect(sha256(await within(st.buffer(), 30_000, 'stream download'))).toBe(DOWN_SHA);
  });

  it.skipIf(peerMissing('h2o'))('from h2o', async () => {
    const srv = kit.track(await startH2o({ tls: kit.fx.server, files: { 'big.bin': DOWN } }));
    const r = await within(kit.session().request(srv.url('/big.bin')), 30_000, 'download');
    expect(r.info.httpVersion).toBe('2');
    expect(sha256(r.body)).toBe(DOWN_SHA);
  });

  it.skipIf(peerMissing('nginx'))('from nginx', async () => {
    const srv = kit.track(await startNginxH2({ tls: kit.fx.server, files: { 'big.bin': DOWN } }));
    const r = await within(kit.session().request(srv.url('/big.bin')), 30_000, 'download');
    expect(r.info.httpVersion).toBe('2');
    expect(r.headers.get('content-length')).toBe(String(DOWN.length));
    expect(sha256(r.body)).toBe(DOWN_SHA);
  });

  it('from node:http2, written under its flow control', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const r = await within(kit.session().request(srv.url(`/bytes/${8 * MiB}/11`)), 30_000, 'download');
    expect(sha256(r.body)).toBe(DOWN_SHA);
    expect(srv.streams[0]!.bytesOut).toBe(8 * MiB);
  });
});

describe('4 MiB up', () => {
  it.skipIf(peerMissing('nghttpd'))('to nghttpd --echo-upload: the echo has the same digest; the server logged content-length', async () => {
    const srv = kit.track(await startNghttpd({ tls: kit.fx.server }));
    const s = kit.session();
    const r = await within(s.request(srv.url('/upload'), { method: 'POST', body: UP }), 30_000, 'upload');
    expect(r.status).toBe(200);
    expect(sha256(r.body)).toBe(UP_SHA);
    const log = await srv.log((l) => l.headers.size > 0);
    const fields = [...log.headers.values()][0]!;
    expect(fields).toContainEqual(['content-length', String(UP.length)]);
  });

  it.skipIf(peerMissing('h2o'))('to h2o /echo, as a Buffer and as an async iterable', async () => {
    const srv = kit.track(await startH2o({ tls: kit.fx.server }));
    const s = kit.session();
    const a = await within(s.request(srv.url('/echo'), { method: 'POST', body: UP }), 30_000, 'buffer upload');
    expect(sha256(a.body)).toBe(UP_SHA);
    const b = await within(s.request(srv.url('/echo'), { method: 'PUT', body: chunks(UP, 100_000) }), 30_000, 'iterable upload');
    expect(sha256(b.body)).toBe(UP_SHA);
    const log = await srv.requests(2);
    expect(log.map((x) => [x.method, x.protocol])).toEqual([
      ['POST', 'HTTP/2'],
      ['PUT', 'HTTP/2'],
    ]);
  });

  it('to node:http2 with a 16 KiB stream window: Buffer, async iterable, explicit content-length', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server, settings: { initialWindowSize: 16384 } }));
    const s = kit.session();
    const digest = async (body: Parameters<typeof s.request>[1]) => {
      const r = await within(s.request(srv.url('/sha256'), body), 30_000, 'upload');
      expect(r.status).toBe(200);
      return JSON.parse(r.body.toString()) as { bytes: number; sha256: string };
    };
    expect(await digest({ method: 'POST', body: UP })).toEqual({ bytes: UP.length, sha256: UP_SHA });
    expect(await digest({ method: 'POST', body: chunks(UP, 65536) })).toEqual({ bytes: UP.length, sha256: UP_SHA });
    expect(await digest({ method: 'POST', body: chunks(UP, 1000), headers: { 'content-length': String(UP.length) } })).toEqual({
      bytes: UP.length,
      sha256: UP_SHA,
    });
    expect(srv.streams[0]!.headers['content-length']).toBe(String(UP.length));
    expect(srv.streams[2]!.headers['content-length']).toBe(String(UP.length));
    // The server never had to reset a stream or the connection for a window violation.
    expect(srv.sessionCount).toBe(1);
    expect(srv.streams.every((x) => x.rstCode === 0 || x.rstCode === undefined)).toBe(true);
  });

  it('an empty body and a one-byte body', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session();
    const e = JSON.parse((await s.request(srv.url('/sha256'), { method: 'POST', body: '' })).body.toString());
    expect(e.bytes).toBe(0);
    const one = JSON.parse((await s.request(srv.url('/sha256'), { method: 'POST', body: 'x' })).body.toString());
    expect(one).toEqual({ bytes: 1, sha256: sha256(Buffer.from('x')) });
  });
});

describe('both ways at once', () => {
  it('10 uploads of 1 MiB and 10 downloads of 2 MiB in parallel on one connection', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session();
    const ups = Array.from({ length: 10 }, (_, i) => patternBytes(MiB, 100 + i));
    const up = ups.map((b) => s.request(srv.url('/echo'), { method: 'POST', body: b }));
    const down = Array.from({ length: 10 }, (_, i) => s.request(srv.url(`/bytes/${2 * MiB}/${200 + i}`)));
    const [u, d] = await within(Promise.all([Promise.all(up), Promise.all(down)]), 60_000, 'parallel transfers');
    u.forEach((r, i) => expect(sha256(r.body)).toBe(sha256(ups[i]!)));
    d.forEach((r, i) => expect(sha256(r.body)).toBe(sha256(patternBytes(2 * MiB, 200 + i))));
    expect(srv.sessionCount).toBe(1);
  });
});

describe('trailers', () => {
  it('are delivered: res.trailers after request(), and on a stream() response once its body has ended', async () => {
    const srv = kit.track(await startNodeH2({ tls: kit.fx.server }));
    const s = kit.session();
    const r = await within(s.request(srv.url('/trailers')), 10_000, 'request');
    expect(r.body.toString()).toBe('ok');
    expect(r.trailers?.get('x-checksum')).toBe('abc');
    expect(r.headers.get('x-checksum')).toBeNull();
    // A stream() response has them once its body has been read to the end (sooner when they
    // arrived with the head: no assertion before the end).
    const st = await s.stream(srv.url('/trailers'));
    expect((await within(st.buffer(), 10_000, 'stream')).toString()).toBe('ok');
    expect(st.trailers?.get('x-checksum')).toBe('abc');
    const plain = await s.request(srv.url('/echo'), { method: 'POST', body: 'x' });
    expect(plain.trailers).toBeUndefined();
  });
});
