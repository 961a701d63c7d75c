// Request and response bodies: every body type with exact bytes and framing on the wire, content
// length checks, large uploads and downloads (sha256-exact), maxBodySize, streaming download
// backpressure (bounded memory, the server's writes block) and early destroy of a stream body.

import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import type * as http from 'node:http';
import { StreamResponse, UvfetchError } from '../../lib/index.js';
import { Cleanup, rejection, sleep, startHttpServer, startNetServer, waitFor, within, sessionFactory } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const session = sessionFactory(cleanup);

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

/** A node:http server echoing what it received: method, framing headers, body length and hash. */
async function echoServer() {
  const srv = await startHttpServer(
    (req, res, ctx) => {
      const body = srv.requests[ctx.index - 1]!.body!;
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          cl: req.headers['content-length'] ?? null,
          te: req.headers['transfer-encoding'] ?? null,
          length: body.length,
          sha: sha256(body),
        }),
      );
    },
    { collectBody: true },
  );
  return srv;
}

type Echo = { cl: string | null; te: string | null; length: number; sha: string };

describe('request bodies', () => {
  it('Buffer: exact bytes with content-length', async () => {
    const srv = await echoServer();
    const s = session();
    const body = Buffer.from([0, 1, 2, 255, 13, 10, 0, 128]);
    const echo = await (await s.request(srv.url('/'), { method: 'POST', body })).json<Echo>();
    expect(echo).toEqual({ cl: '8', te: null, length: 8, sha: sha256(body) });
    expect(srv.requests[0]!.body!.equals(body)).toBe(true);
  });

  it('string: UTF-8 encoded, content-length is the byte length', async () => {
    const srv = await echoServer();
    const s = session();
    const text = 'héllo wörld € 😀 \u0000 end';
    const bytes = Buffer.from(text, 'utf8');
    expect(bytes.length).not.toBe(text.length);
    const echo = await (await s.request(srv.url('/'), { method: 'POST', body: text })).json<Echo>();
    expect(echo).toEqual({ cl: String(bytes.length), te: null, length: bytes.length, sha: sha256(bytes) });
    expect(srv.requests[0]!.body!.toString('utf8')).toBe(text);
  });

  it('empty string and empty Buffer send content-length: 0', async () => {
    const srv = await echoServer();
    const s = session();
    const a = await (await s.request(srv.url('/'), { method: 'POST', body: '' })).json<Echo>();
    const b = await (await s.request(srv.url('/'), { method: 'PUT', body: Buffer.alloc(0) })).json<Echo>();
    expect(a).toMatchObject({ cl: '0', te: null, length: 0 });
    expect(b).toMatchObject({ cl: '0', te: null, length: 0 });
  });

  it('Uint8Array view with an offset: only the viewed bytes are sent', async () => {
    const srv = await echoServer();
    const s = session();
    const backing = new Uint8Array(100).map((_, i) => i);
    const view = backing.subarray(10, 30);
    const echo = await (await s.request(srv.url('/'), { method: 'POST', body: view })).json<Echo>();
    expect(echo).toEqual({ cl: '20', te: null, length: 20, sha: sha256(view) });
    expect([...srv.requests[0]!.body!]).toEqual([...view]);
  });

  it('ArrayBuffer: all of its bytes', async () => {
    const srv = await echoServer();
    const s = session();
    const ab = new ArrayBuffer(33);
    new Uint8Array(ab).fill(7);
    const echo = await (await s.request(srv.url('/'), { method: 'POST', body: ab })).json<Echo>();
    expect(echo).toEqual({ cl: '33', te: null, length: 33, sha: sha256(new Uint8Array(ab)) });
  });

  it('sync iterable of Buffers and strings: chunked, exact bytes', async () => {
    const srv = await echoServer();
    const s = session();
    const parts = [Buffer.from('abc'), 'dé', new Uint8Array([0, 1]), '', 'end'];
    const expected = Buffer.concat([Buffer.from('abc'), Buffer.from('dé'), Buffer.from([0, 1]), Buffer.from('end')]);
    const echo = await (await s.request(srv.url('/'), { method: 'POST', body: parts })).json<Echo>();
    expect(echo).toEqual({ cl: null, te: 'chunked', length: expected.length, sha: sha256(expected) });
  });

  it('async generator: chunked transfer-encoding on the wire, exact bytes', async () => {
    // A raw server, to see the framing bytes themselves.
    let raw = Buffer.alloc(0);
    const srv = await startNetServer((sock) => {
      sock.on('data', (d: Buffer) => {
        raw = Buffer.concat([raw, d]);
        if (raw.includes('\r\n0\r\n\r\n')) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    const s = session();
    async function* gen() {
      yield 'hello ';
      await sleep(5);
      yield Buffer.from('wörld');
      yield new Uint8Array(0);
      yield 'x'.repeat(300);
    }
    const res = await within(s.request(srv.url('/up'), { method: 'POST', body: gen() }), 5000, 'upload');
    expect(await res.text()).toBe('ok');
    const text = raw.toString('latin1');
    const headEnd = text.indexOf('\r\n\r\n');
    const head = text.slice(0, headEnd).toLowerCase();
    expect(head).toContain('\r\ntransfer-encoding: chunked');
    expect(head).not.toContain('content-length');
    const body = raw.subarray(headEnd + 4);
    // Decode the chunked framing strictly.
    const decoded: Buffer[] = [];
    let pos = 0;
    for (let guard = 0; guard < 100; guard++) {
      const eol = body.indexOf('\r\n', pos);
      const size = parseInt(body.subarray(pos, eol).toString('latin1'), 16);
      expect(Number.isNaN(size)).toBe(false);
      pos = eol + 2;
      if (size === 0) {
        expect(body.subarray(pos).toString('latin1')).toBe('\r\n');
        break;
      }
      decoded.push(body.subarray(pos, pos + size));
      pos += size;
      expect(body.subarray(pos, pos + 2).toString('latin1')).toBe('\r\n');
      pos += 2;
    }
    expect(Buffer.concat(decoded).toString('utf8')).toBe(`hello wörld${'x'.repeat(300)}`);
    // No zero-size chunk before the end (an empty yield must not terminate the body).
    expect(decoded.every((c) => c.length > 0)).toBe(true);
  });

  it('async iterable with a content-length header: sent with that length, not chunked', async () => {
    const srv = await echoServer();
    const s = session();
    const data = randomBytes(10_000);
    async function* gen() {
      for (let i = 0; i < data.length; i += 1000) yield data.subarray(i, i + 1000);
    }
    const echo = await (await s.request(srv.url('/'), { method: 'PUT', body: gen(), headers: { 'Content-Length': String(data.length) } })).json<Echo>();
    expect(echo).toEqual({ cl: '10000', te: null, length: 10_000, sha: sha256(data) });
  });

  it('streamed body longer or shorter than its content-length → ERR_INVALID_BODY; the socket is not reused', async () => {
    const srv = await echoServer();
    const s = session();
    await s.request(srv.url('/warm'));
    async function* longer() {
      yield 'abcdef';
      yield 'ghij';
    }
    const e1 = await rejection(s.request(srv.url('/'), { method: 'POST', body: longer(), headers: { 'content-length': '8' } }));
    expect(e1).toBeInstanceOf(UvfetchError);
    expect(e1.code).toBe('ERR_INVALID_BODY');
    await within(srv.socketClosed(1), 3000, 'socket 1 closed');

    async function* shorter() {
      yield 'abc';
    }
    const e2 = await rejection(s.request(srv.url('/'), { method: 'POST', body: shorter(), headers: { 'content-length': '8' } }));
    expect(e2.code).toBe('ERR_INVALID_BODY');
    // The server may have seen the heads, but never a complete body.
    await waitFor(() => srv.open === 0, 3000, 'sockets closed');
    expect(srv.requests[0]!.url).toBe('/warm');
    expect(srv.requests.slice(1).every((r) => r.body === undefined)).toBe(true);
    const ok = await s.request(srv.url('/after'));
    expect(ok.status).toBe(200);
    expect(ok.info.reused).toBe(false);
  });

  it('invalid chunks and a throwing iterator → ERR_INVALID_BODY (with the cause)', async () => {
    const srv = await echoServer();
    const s = session();
    const e1 = await rejection(s.request(srv.url('/'), { method: 'POST', body: [Buffer.from('a'), 42 as unknown as string] }));
    expect(e1.code).toBe('ERR_INVALID_BODY');
    const boom = new Error('producer failed');
    async function* bad() {
      yield 'a';
      throw boom;
    }
    const e2 = await rejection(s.request(srv.url('/'), { method: 'POST', body: bad() }));
    expect(e2.code).toBe('ERR_INVALID_BODY');
    expect(e2.cause).toBe(boom);
    // Any head that went out is followed by a closed socket, never by a terminated body.
    await waitFor(() => srv.open === 0, 3000, 'sockets closed');
    expect(srv.requests.every((r) => r.body === undefined)).toBe(true);
  });

  it('an unsupported body type throws ERR_INVALID_BODY synchronously', async () => {
    const s = session();
    let err: unknown;
    try {
      s.request('http://127.0.0.1:1/', { method: 'POST', body: 42 as unknown as string });
    } catch (e) {
      err = e;
    }
    expect((err as UvfetchError).code).toBe('ERR_INVALID_BODY');
  });

  it('5 MiB upload: as a Buffer and as an async generator, byte-exact', async () => {
    const srv = await echoServer();
    const s = session();
    const data = randomBytes(5 * MiB);
    const a = await (await within(s.request(srv.url('/'), { method: 'POST', body: data }), 20_000, 'buffer upload')).json<Echo>();
    expect(a).toEqual({ cl: String(data.length), te: null, length: data.length, sha: sha256(data) });
    async function* gen() {
      for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024);
    }
    const b = await (await within(s.request(srv.url('/'), { method: 'POST', body: gen() }), 20_000, 'streamed upload')).json<Echo>();
    expect(b).toEqual({ cl: null, te: 'chunked', length: data.length, sha: sha256(data) });
    expect(s.stats().bytes.out).toBeGreaterThan(2 * data.length);
  });

  // Regression: streamed request bodies had no real backpressure (the whole iterable was pulled
  // into libuv's write queue while the server did not read: 256 MiB → +260 MiB RSS).
  it('a streamed upload follows the server: the producer is not drained ahead of a server that stops reading', async () => {
    const total = 48 * MiB;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let produced = 0;
    let serverGot = 0;
    let resumeServer: () => void = () => {};
    const srv = await startHttpServer((req, res) => {
      req.pause();
      resumeServer = () => {
        req.on('data', (d: Buffer) => (serverGot += d.length));
        req.on('end', () => res.end(String(serverGot)));
        req.resume();
      };
    });
    const s = session();
    async function* gen() {
      while (produced < total) {
        produced += chunk.length;
        yield chunk;
      }
    }
    const p = s.request(srv.url('/'), { method: 'POST', body: gen() });
    p.catch(() => {});
    await waitFor(() => srv.requests.length === 1, 5000, 'request head');
    await sleep(500);
    const producedWhilePaused = produced;
    // Kernel socket buffers absorb some; the rest must wait for the server.
    expect(producedWhilePaused).toBeLessThan(40 * MiB);
    resumeServer();
    const res = await within(p, 30_000, 'upload');
    expect(await res.text()).toBe(String(total));
    expect(produced).toBe(total);
  });
});

describe('response bodies', () => {
  it('20 MiB download, byte-exact (buffered and streamed)', async () => {
    const data = randomBytes(20 * MiB);
    const srv = await startHttpServer((req, res) => {
      if (req.url === '/chunked') {
        res.setHeader('transfer-encoding', 'chunked');
        for (let i = 0; i < data.length; i += 1 * MiB) res.write(data.subarray(i, i + 1 * MiB));
        res.end();
      } else {
        res.setHeader('content-length', String(data.length));
        res.end(data);
      }
    });
    const s = session();
    const a = await within(s.request(srv.url('/len')), 20_000, 'buffered download');
    expect(a.body.length).toBe(data.length);
    expect(sha256(a.body)).toBe(sha256(data));
    const b = await within(s.request(srv.url('/chunked')), 20_000, 'chunked download');
    expect(b.headers.get('transfer-encoding')).toBe('chunked');
    expect(sha256(b.body)).toBe(sha256(data));
    const c = await within(s.stream(srv.url('/len')), 20_000, 'stream head');
    expect(c).toBeInstanceOf(StreamResponse);
    const hash = createHash('sha256');
    let n = 0;
    for await (const part of c.body) {
      hash.update(part as Buffer);
      n += (part as Buffer).length;
    }
    expect(n).toBe(data.length);
    expect(hash.digest('hex')).toBe(sha256(data));
    expect(srv.connections).toBe(1);
  });

  it('chunked trailers reach res.trailers (request() at once, stream() after the end), count against maxHeaderSize, and never leak into the next response', async () => {
    const srv = await startHttpServer((req, res) => {
      if (req.url === '/plain') {
        res.end('plain');
        return;
      }
      res.writeHead(200, { 'transfer-encoding': 'chunked', trailer: 'x-checksum' });
      res.write('ab');
      res.write('cd');
      res.addTrailers({ 'x-checksum': 'e2fc714c', 'x-big': req.url === '/big' ? 'v'.repeat(3000) : 'small' });
      res.end();
    });
    const s = session();
    const r = await s.request(srv.url('/t'));
    expect(r.body.toString()).toBe('abcd');
    expect(r.trailers?.get('x-checksum')).toBe('e2fc714c');
    expect(r.trailers?.get('x-big')).toBe('small');
    expect(r.headers.get('x-checksum')).toBeNull();
    const st = await s.stream(srv.url('/t'));
    expect((await st.buffer()).toString()).toBe('abcd');
    expect(st.trailers?.get('x-checksum')).toBe('e2fc714c');
    // The same keep-alive connection, a response without trailers: none carried over.
    const p = await s.request(srv.url('/plain'));
    expect(p.trailers).toBeUndefined();
    expect(srv.connections).toBe(1);
    const small = session({ maxHeaderSize: 2048 });
    const err = await rejection(small.request(srv.url('/big')));
    expect(err).toBeInstanceOf(UvfetchError);
    expect(err.code).toBe('ERR_HEADERS_TOO_LARGE');
  });

  it('a body delimited by connection close (no length, no chunked) is read to the end', async () => {
    const srv = await startNetServer((sock) => {
      sock.once('data', () => {
        sock.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
        sock.write('part1-');
        setTimeout(() => sock.end('part2'), 30);
      });
    });
    const s = session();
    const res = await within(s.request(srv.url('/')), 5000, 'until-close body');
    expect(await res.text()).toBe('part1-part2');
  });

  it('maxBodySize: exceeded by Content-Length → ERR_BODY_TOO_LARGE before reading; exactly at the limit is fine', async () => {
    const srv = await startHttpServer((req, res) => {
      const n = Number(req.url!.slice(1));
      res.setHeader('content-length', String(n));
      res.end(Buffer.alloc(n, 1));
    });
    const s = session({ maxBodySize: 1000 });
    const ok = await s.request(srv.url('/1000'));
    expect(ok.body.length).toBe(1000);
    const err = await rejection(s.request(srv.url('/1001')));
    expect(err).toBeInstanceOf(UvfetchError);
    expect(err.code).toBe('ERR_BODY_TOO_LARGE');
    // Per-request override, both ways.
    const big = await s.request(srv.url('/5000'), { maxBodySize: 5000 });
    expect(big.body.length).toBe(5000);
    const err2 = await rejection(s.request(srv.url('/500'), { maxBodySize: 100 }));
    expect(err2.code).toBe('ERR_BODY_TOO_LARGE');
    // stream() is not bounded by maxBodySize.
    const st = await s.stream(srv.url('/5000'));
    expect((await st.buffer()).length).toBe(5000);
  });

  it('maxBodySize: exceeded by chunked growth → ERR_BODY_TOO_LARGE, and the socket is closed', async () => {
    const srv = await startHttpServer((_req, res) => {
      res.setHeader('transfer-encoding', 'chunked');
      let sent = 0;
      const tick = () => {
        if (res.destroyed || sent >= 64 * 1024) return res.end();
        res.write(Buffer.alloc(1024, 2));
        sent += 1024;
        setImmediate(tick);
      };
      tick();
    });
    const s = session({ maxBodySize: 10_000 });
    const err = await rejection(s.request(srv.url('/')));
    expect(err.code).toBe('ERR_BODY_TOO_LARGE');
    await within(srv.socketClosed(1), 3000, 'socket closed');
    expect(s.stats().requests.failed).toBe(1);
  });

  it('maxBodySize: a close-delimited body that grows past the limit → ERR_BODY_TOO_LARGE', async () => {
    const srv = await startNetServer((sock) => {
      sock.once('data', () => {
        sock.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
        sock.end(Buffer.alloc(5000, 3));
      });
    });
    const s = session({ maxBodySize: 4096 });
    const err = await rejection(s.request(srv.url('/')));
    expect(err.code).toBe('ERR_BODY_TOO_LARGE');
  });

  it('a stream read in bursts buffers a bounded amount per turn (the per-turn read cap lets the pause land)', async () => {
    // A raw server writing as fast as the socket takes it; the consumer drains the Readable
    // every 5 ms (so the TCP window grows large) and records how much was buffered each time.
    const block = Buffer.alloc(256 * 1024, 0x61);
    const total = 512 * MiB;
    const srv = await startNetServer((sock) => {
      sock.on('error', () => {});
      sock.once('data', () => {
        sock.write(`HTTP/1.1 200 OK\r\ncontent-length: ${total}\r\n\r\n`);
        let sent = 0;
        const pump = () => {
          while (sent < total) {
            sent += block.length;
            if (!sock.write(block)) {
              sock.once('drain', pump);
              return;
            }
          }
        };
        pump();
      });
    });
    const s = session();
    const res = await s.stream(srv.url('/bursts'));
    res.body.on('readable', () => {});
    let maxBuffered = 0;
    let read = 0;
    for (let i = 0; i < 100; i++) {
      await sleep(5);
      maxBuffered = Math.max(maxBuffered, res.body.readableLength);
      let c: Buffer | null;
      while ((c = res.body.read() as Buffer | null) !== null) read += c.length;
    }
    // The Readable's high-water mark is 64 KiB; one loop turn adds at most the per-turn cap
    // (256 KiB) before reading stops. Without the cap one poll phase reads up to 32 x 64 KiB.
    expect(read).toBeGreaterThan(1 * MiB);
    expect(maxBuffered).toBeLessThanOrEqual(64 * 1024 + 256 * 1024);
    res.body.destroy();
  });

  it('streaming download backpressure: a fast 50 MiB server, a slow reader, bounded memory, blocked writes', async () => {
    const total = 50 * MiB;
    const block = Buffer.alloc(64 * 1024, 0x5a);
    let written = 0;
    let blockedWrites = 0;
    let serverDone = false;
    const srv = await startHttpServer((_req, res: http.ServerResponse) => {
      res.setHeader('content-length', String(total));
      const pump = () => {
        while (written < total) {
          written += block.length;
          if (!res.write(block)) {
            blockedWrites++;
            res.once('drain', pump);
            return;
          }
        }
        serverDone = true;
        res.end();
      };
      pump();
    });
    const s = session();
    const base = process.memoryUsage();
    let peakRss = base.rss;
    let peakAb = base.arrayBuffers;
    let maxAhead = 0;
    let read = 0;
    const sample = () => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakAb = Math.max(peakAb, m.arrayBuffers);
      maxAhead = Math.max(maxAhead, written - read);
    };
    const sampler = setInterval(sample, 10);
    cleanup.add(() => clearInterval(sampler));
    const res = await s.stream(srv.url('/fifty'));
    const body = res.body;
    // Slow phase (~1.5 s): one pushed chunk (≤ 64 KiB) every 25 ms, about 2.5 MiB/s.
    const slowUntil = Date.now() + 1500;
    let atSlowEnd: { written: number; read: number; serverDone: boolean; blockedWrites: number } | undefined;
    await within(
      new Promise<void>((resolve, reject) => {
        body.on('data', (c: Buffer) => {
          read += c.length;
          if (Date.now() < slowUntil) {
            body.pause();
            setTimeout(() => body.resume(), 25);
          } else if (atSlowEnd === undefined) {
            sample();
            atSlowEnd = { written, read, serverDone, blockedWrites };
          }
        });
        body.on('end', () => resolve());
        body.on('error', reject);
      }),
      50_000,
      'the 50 MiB stream',
    );
    clearInterval(sampler);
    expect(atSlowEnd).toBeDefined();
    // While the reader was slow the server could not finish: its writes blocked.
    expect(atSlowEnd!.serverDone).toBe(false);
    expect(atSlowEnd!.blockedWrites).toBeGreaterThan(0);
    expect(atSlowEnd!.written).toBeLessThan(total);
    expect(atSlowEnd!.read).toBeLessThan(16 * MiB);
    // What the server wrote beyond what we consumed sits in kernel buffers plus a bounded read-ahead.
    expect(maxAhead).toBeLessThan(40 * MiB);
    expect(peakRss - base.rss).toBeLessThan(32 * MiB);
    expect(peakAb - base.arrayBuffers).toBeLessThan(32 * MiB);
    // Then everything arrives, byte-exact in count.
    expect(read).toBe(total);
    expect(serverDone).toBe(true);
  }, 60_000);

  it('destroying a stream body early aborts the request and the server sees the socket closed', async () => {
    const srv = await startHttpServer((req, res) => {
      if (req.url === '/small') return res.end('small');
      res.setHeader('content-length', String(100 * MiB));
      const block = Buffer.alloc(64 * 1024);
      const pump = () => {
        while (!res.destroyed && res.write(block));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const s = session();
    const res = await s.stream(srv.url('/big'));
    const first = await res.body[Symbol.asyncIterator]().next();
    expect(first.done).toBe(false);
    res.body.destroy();
    await within(srv.socketClosed(1), 3000, 'server seeing the socket closed');
    await waitFor(() => s.stats().requests.inFlight === 0, 2000, 'request settled');
    expect(s.stats().requests.failed + s.stats().requests.completed).toBe(1);
    const next = await s.request(srv.url('/small'));
    expect(await next.text()).toBe('small');
    expect(next.info.reused).toBe(false);
    expect(srv.connections).toBe(2);
  });

  it('destroying a stream body right at the head (before reading) also closes the socket', async () => {
    const srv = await startHttpServer((_req, res) => {
      res.setHeader('content-length', '1000000');
      res.write(Buffer.alloc(1000));
    });
    const s = session();
    const res = await s.stream(srv.url('/'));
    res.body.destroy();
    await within(srv.socketClosed(1), 3000, 'socket closed');
  });

  it('stream(): text(), json(), chunked bodies, and buffer(limit)', async () => {
    const srv = await startHttpServer((req, res) => {
      if (req.url === '/json') return res.end('{"k":[1,2]}');
      res.setHeader('transfer-encoding', 'chunked');
      res.write('ab');
      setTimeout(() => res.end('cd'), 20);
    });
    const s = session();
    expect(await (await s.stream(srv.url('/t'))).text()).toBe('abcd');
    expect(await (await s.stream(srv.url('/json'))).json()).toEqual({ k: [1, 2] });
    const r = await s.stream(srv.url('/t'));
    const err = await rejection(r.buffer(3));
    expect(err.code).toBe('ERR_BODY_TOO_LARGE');
    expect(r.body.destroyed).toBe(true);
  });

  it('a stream response completing normally leaves the socket reusable', async () => {
    const srv = await startHttpServer((_req, res) => res.end('x'.repeat(200_000)));
    const s = session();
    const a = await s.stream(srv.url('/'));
    expect((await a.buffer()).length).toBe(200_000);
    const b = await s.request(srv.url('/'));
    expect(b.info.reused).toBe(true);
    expect(srv.connections).toBe(1);
  });
});
