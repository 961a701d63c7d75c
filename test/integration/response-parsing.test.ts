// Strict HTTP/1.1 response parsing, end to end: a raw loopback server sends exact bytes and the
// tests check what uvfetch makes of them.
//
// Every malformed response must fail with its precise code and reason, and the socket it arrived
// on must be destroyed, never reused: after each failure a second request goes out, and the server
// must see it on a NEW connection (the bad connection is kept open by the server, so a buggy client
// could have reused it). Well-formed edge cases must be delivered exactly, and reused or not as the
// framing allows.

import { describe, expect, it } from 'vitest';
import type { RequestOptions, SessionOptions } from '../../lib/index.js';
import { okResponse, serveEach, waitFor, type RawConn, type RawServer, rawServerKit } from '../helpers/raw-server.js';

const { session, server, failure } = rawServerKit();

const FINE = okResponse('fine');

/**
 * A server whose connections answer `/ok` with a good response and anything else with `bad`
 * (then stay open, so a client that wrongly kept the socket could reuse it).
 */
async function badThenGoodServer(bad: string | Buffer): Promise<RawServer> {
  return server((c) =>
    serveEach(c, async (req, conn) => {
      await conn.write(req.target === '/ok' ? FINE : bad);
    }),
  );
}

interface Expectation {
  code: string;
  reason: string;
}

/** The bad response fails as expected; the next request runs on a new connection and succeeds. */
async function expectRejectedAndDiscarded(
  bad: string | Buffer,
  want: Expectation,
  opts: { request?: RequestOptions; session?: SessionOptions } = {},
): Promise<void> {
  const srv = await badThenGoodServer(bad);
  const s = session(opts.session);
  const err = await failure(s.request(srv.url('/bad'), opts.request));
  expect({ code: err.code, reason: err.reason }).toEqual(want);
  const res = await s.request(srv.url('/ok'));
  expect(res.status).toBe(200);
  expect(res.body.toString()).toBe('fine');
  expect(res.info.reused).toBe(false);
  expect(srv.connectionCount).toBe(2);
  expect(srv.conns[1]!.requests.map((r) => r.target)).toEqual(['/ok']);
  // The client closed the poisoned connection itself.
  expect(await waitFor(() => srv.conns[0]!.clientEnded)).toBe(true);
  expect(s.stats().requests.retried).toBe(0);
}

const BAD = 'ERR_BAD_RESPONSE';
const TOO_LARGE = 'ERR_HEADERS_TOO_LARGE';
const chunked = (body: string) => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}`;
const withHeader = (line: string, body = 'hello') => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${line}\r\n\r\n${body}`;

// [name, exact response bytes, reason]; all ERR_BAD_RESPONSE unless given.
const malformed: [string, string, string, string?][] = [
  // --- status line
  ['HTTP/2 version', 'HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n', 'unsupported HTTP version'],
  ['HTTP/1.2 version', 'HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n', 'unsupported HTTP version'],
  ['HTTP/1.10 version', 'HTTP/1.10 200 OK\r\nContent-Length: 0\r\n\r\n', 'unsupported HTTP version'],
  ['HTTP/0.9 version', 'HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n', 'unsupported HTTP version'],
  ['lower-case protocol name', 'http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'invalid status line'],
  ['not HTTP at all', 'SSH-2.0-OpenSSH_9.6\r\n', 'invalid status line'],
  ['empty line before the status line', '\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'invalid status line'],
  ['tab after version', 'HTTP/1.1\t200 OK\r\nContent-Length: 0\r\n\r\n', 'invalid status line'],
  ['two-digit status', 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n', 'invalid status code'],
  ['four-digit status', 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n', 'invalid status code'],
  ['status 099', 'HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n', 'invalid status code'],
  ['status 600', 'HTTP/1.1 600 High\r\nContent-Length: 0\r\n\r\n', 'invalid status code'],
  ['status 999', 'HTTP/1.1 999 High\r\nContent-Length: 0\r\n\r\n', 'invalid status code'],
  ['non-digit status', 'HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n', 'invalid status code'],
  ['two spaces before status', 'HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n', 'invalid status code'],
  ['tab between status and reason', 'HTTP/1.1 200\tOK\r\nContent-Length: 0\r\n\r\n', 'invalid status code'],
  ['bare CR in reason', 'HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n', 'bare CR'],
  ['NUL in reason', 'HTTP/1.1 200 O\0K\r\nContent-Length: 0\r\n\r\n', 'invalid character in reason phrase'],
  ['DEL in reason', 'HTTP/1.1 200 O\x7fK\r\nContent-Length: 0\r\n\r\n', 'invalid character in reason phrase'],
  // --- line endings
  ['bare LF after status line', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', 'bare LF'],
  ['bare LF after a header line', 'HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n', 'bare LF'],
  ['bare LF as final empty line', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n', 'bare LF'],
  ['LF-only response', 'HTTP/1.1 200 OK\nContent-Length: 0\n\n', 'bare LF'],
  ['bare CR in header value', withHeader('X-A: a\rb'), 'bare CR'],
  ['bare CR in header name', withHeader('X-A\r: b'), 'bare CR'],
  ['bare CR ending a header line', 'HTTP/1.1 200 OK\r\nX-A: b\r\rContent-Length: 0\r\n\r\n', 'bare CR'],
  // --- header lines
  ['header line without colon', withHeader('NoColonHere'), 'header line without colon'],
  ['header line with space, no colon', withHeader('No Colon Here'), 'header line without colon'],
  ['space before colon', withHeader('X-A : b'), 'whitespace before colon'],
  ['tab before colon', withHeader('X-A\t: b'), 'whitespace before colon'],
  ['obs-fold with SP', 'HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n', 'obs-fold'],
  ['obs-fold with HTAB', 'HTTP/1.1 200 OK\r\nX-A: one\r\n\ttwo\r\nContent-Length: 0\r\n\r\n', 'obs-fold'],
  ['header line starting with SP after status', 'HTTP/1.1 200 OK\r\n X-A: b\r\nContent-Length: 0\r\n\r\n', 'obs-fold'],
  ['empty header name', withHeader(': value'), 'empty header name'],
  ['invalid char in header name', withHeader('X@Y: value'), 'invalid character in header name'],
  ['non-ASCII in header name', withHeader('X-\xe9: value'), 'invalid character in header name'],
  ['NUL in header value', withHeader('X-A: a\0b'), 'invalid character in header value'],
  ['SOH in header value', withHeader('X-A: a\x01b'), 'invalid character in header value'],
  ['ESC in header value', withHeader('X-A: \x1b[31mred'), 'invalid character in header value'],
  ['DEL in header value', withHeader('X-A: a\x7fb'), 'invalid character in header value'],
  ['NUL at the end of a long value', withHeader(`X-A: ${'v'.repeat(37)}\0`), 'invalid character in header value'],
  ['control char in Content-Length value', 'HTTP/1.1 200 OK\r\nContent-Length: 5\x0b\r\n\r\nhello', 'invalid character in header value'],
  // --- Content-Length
  ['non-digit Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n', 'invalid Content-Length'],
  ['signed Content-Length (+)', 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello', 'invalid Content-Length'],
  ['signed Content-Length (-)', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'invalid Content-Length'],
  ['hex Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello', 'invalid Content-Length'],
  ['fractional Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 5.0\r\n\r\nhello', 'invalid Content-Length'],
  ['empty Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n', 'invalid Content-Length'],
  ['space inside Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\nhello', 'invalid Content-Length'],
  ['empty list element in Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\nhello', 'invalid Content-Length'],
  ['overflowing Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n', 'Content-Length overflow'],
  ['Content-Length 2^63', 'HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n', 'Content-Length overflow'],
  ['conflicting Content-Length list', 'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello', 'conflicting Content-Length'],
  ['conflicting Content-Length lines', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', 'conflicting Content-Length'],
  ['Content-Length 5 then list 5, 6', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5, 6\r\n\r\nhello', 'conflicting Content-Length'],
  // --- Transfer-Encoding
  [
    'Content-Length then Transfer-Encoding',
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'both Content-Length and Transfer-Encoding',
  ],
  [
    'Transfer-Encoding then Content-Length',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'both Content-Length and Transfer-Encoding',
  ],
  ['TE gzip, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 'unsupported transfer-coding'],
  ['TE identity', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n', 'unsupported transfer-coding'],
  ['TE chunked, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n', 'unsupported transfer-coding'],
  [
    'two Transfer-Encoding: chunked lines',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'unsupported transfer-coding',
  ],
  ['TE chunked;q=1', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n', 'unsupported transfer-coding'],
  ['TE xchunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n', 'unsupported transfer-coding'],
  ['empty Transfer-Encoding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n', 'unsupported transfer-coding'],
  ['Transfer-Encoding in HTTP/1.0', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 'Transfer-Encoding in HTTP/1.0 response'],
  // --- chunked framing
  ['non-hex chunk size', chunked('zz\r\nhello\r\n0\r\n\r\n'), 'invalid chunk size'],
  ['0x-prefixed chunk size', chunked('0x5\r\nhello\r\n0\r\n\r\n'), 'invalid chunk size'],
  ['leading space in chunk size', chunked(' 5\r\nhello\r\n0\r\n\r\n'), 'invalid chunk size'],
  ['signed chunk size', chunked('-5\r\nhello\r\n0\r\n\r\n'), 'invalid chunk size'],
  ['empty chunk size line', chunked('\r\nhello\r\n0\r\n\r\n'), 'invalid chunk size'],
  ['trailing space without extension', chunked('5 \r\nhello\r\n0\r\n\r\n'), 'invalid chunk size'],
  ['16 hex digit chunk size', chunked('1000000000000000\r\nx\r\n0\r\n\r\n'), 'chunk size overflow'],
  ['16 digits with leading zeros', chunked('0000000000000005\r\nhello\r\n0\r\n\r\n'), 'chunk size overflow'],
  ['bare LF after chunk size', chunked('5\nhello\r\n0\r\n\r\n'), 'bare LF'],
  ['bare CR after chunk size', chunked('5\rhello\r\n0\r\n\r\n'), 'bare CR'],
  ['chunk data not followed by CRLF', chunked('5\r\nhelloX\r\n0\r\n\r\n'), 'missing CRLF after chunk data'],
  ['chunk data followed by CR only', chunked('5\r\nhello\rX0\r\n\r\n'), 'missing CRLF after chunk data'],
  ['chunk data longer than its size', chunked('3\r\nhello\r\n0\r\n\r\n'), 'missing CRLF after chunk data'],
  ['chunk extension too long', chunked(`5;${'a'.repeat(1023)}\r\nhello\r\n0\r\n\r\n`), 'chunk extension too long'],
  ['BWS-padded chunk line too long', chunked(`5${' '.repeat(1024)};a\r\nhello\r\n0\r\n\r\n`), 'chunk extension too long'],
  ['NUL in chunk extension', chunked('5;a=\0\r\nhello\r\n0\r\n\r\n'), 'invalid character in chunk extension'],
  ['bare LF in chunk extension', chunked('5;a=b\nhello\r\n0\r\n\r\n'), 'bare LF'],
  ['bare CR after last chunk', chunked('0\r\n\rX'), 'bare CR'],
  ['obs-fold in trailers', chunked('0\r\nX-T: a\r\n b\r\n\r\n'), 'obs-fold'],
  ['trailer without colon', chunked('0\r\nX-T\r\n\r\n'), 'header line without colon'],
  ['space before colon in trailer', chunked('0\r\nX-T : a\r\n\r\n'), 'whitespace before colon'],
  ['NUL in trailer value', chunked('0\r\nX-T: a\0\r\n\r\n'), 'invalid character in header value'],
  ['bare LF in trailer', chunked('0\r\nX-T: a\n\r\n'), 'bare LF'],
  ['empty trailer name', chunked('0\r\n: a\r\n\r\n'), 'empty header name'],
  // --- interim responses
  [
    '101 Switching Protocols',
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    'unexpected 101 Switching Protocols (no upgrade was requested)',
  ],
  ['11 interim responses', `${'HTTP/1.1 100 Continue\r\n\r\n'.repeat(11)}${okResponse('x')}`, 'too many 1xx interim responses'],
  ['malformed interim response', `HTTP/1.1 103 Early Hints\r\nLink </a>\r\n\r\n${okResponse('x')}`, 'header line without colon'],
  ['malformed head after a good interim', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', 'bare LF'],
];

describe('malformed responses fail with ERR_BAD_RESPONSE and the socket is never reused', () => {
  it.each(malformed)('%s', async (_name, bytes, reason, code = BAD) => {
    await expectRejectedAndDiscarded(bytes, { code, reason });
  });

  it('streamed: a bad head rejects stream() itself', async () => {
    const srv = await badThenGoodServer(withHeader('X-A : b'));
    const s = session();
    const err = await failure(s.stream(srv.url('/bad')));
    expect({ code: err.code, reason: err.reason }).toEqual({ code: BAD, reason: 'whitespace before colon' });
    const res = await s.request(srv.url('/ok'));
    expect(res.info.reused).toBe(false);
    expect(srv.connectionCount).toBe(2);
  });

  it('streamed: a bad chunk after good data errors the body stream, and the socket is not reused', async () => {
    const srv = await server((c) =>
      serveEach(c, async (req, conn) => {
        if (req.target === '/ok') return conn.write(FINE);
        await conn.write(chunked('5\r\nhello\r\n'));
        await new Promise((r) => setTimeout(r, 30));
        await conn.write('zz\r\n');
      }),
    );
    const s = session();
    const res = await s.stream(srv.url('/bad'));
    expect(res.status).toBe(200);
    const got: Buffer[] = [];
    const err = await failure(
      (async () => {
        for await (const chunk of res.body) got.push(chunk as Buffer);
      })(),
    );
    expect({ code: err.code, reason: err.reason }).toEqual({ code: BAD, reason: 'invalid chunk size' });
    expect(Buffer.concat(got).toString()).toBe('hello');
    const ok = await s.request(srv.url('/ok'));
    expect(ok.info.reused).toBe(false);
    expect(srv.connectionCount).toBe(2);
  });

  it('a bad response to the 2nd request on a kept-alive socket is not retried and closes that socket', async () => {
    let n = 0;
    const srv = await server((c) =>
      serveEach(c, async (_req, conn) => {
        n++;
        await conn.write(n === 2 ? withHeader('X-A : b') : FINE);
      }),
    );
    const s = session();
    expect((await s.request(srv.url('/1'))).body.toString()).toBe('fine');
    const err = await failure(s.request(srv.url('/2')));
    expect(err.code).toBe(BAD);
    const third = await s.request(srv.url('/3'));
    expect(third.body.toString()).toBe('fine');
    expect(third.info.reused).toBe(false);
    expect(srv.connectionCount).toBe(2);
    expect(n).toBe(3);
    expect(s.stats().requests.retried).toBe(0);
  });
});

describe('header limits', () => {
  it('a head of exactly maxHeaderSize bytes is accepted; one more byte is ERR_HEADERS_TOO_LARGE', async () => {
    const max = 1024;
    const headOf = (size: number) => {
      const base = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: \r\n\r\n';
      return `HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: ${'p'.repeat(size - base.length)}\r\n\r\n`;
    };
    expect(headOf(max).length).toBe(max);
    const srv = await server((c) =>
      serveEach(c, async (req, conn) => {
        await conn.write(req.target === '/exact' ? `${headOf(max)}ok` : req.target === '/over' ? `${headOf(max + 1)}ok` : FINE);
      }),
    );
    const s = session({ maxHeaderSize: max });
    const res = await s.request(srv.url('/exact'));
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('ok');
    expect(res.headers.get('x-pad')!.length).toBe(max - 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: \r\n\r\n'.length);
    const err = await failure(s.request(srv.url('/over')));
    expect({ code: err.code, reason: err.reason }).toEqual({ code: TOO_LARGE, reason: 'header block too large' });
    const after = await s.request(srv.url('/ok'));
    expect(after.info.reused).toBe(false);
    expect(srv.connectionCount).toBe(2);
  });

  it('the head limit counts interim responses separately (each 1xx head may be up to the limit)', async () => {
    const pad = (n: number) => 'h'.repeat(n);
    const interim = `HTTP/1.1 103 Early Hints\r\nLink: ${pad(900)}\r\n\r\n`;
    const srv = await server((c) => serveEach(c, (_r, conn) => conn.write(interim + interim + okResponse('done'))));
    const s = session({ maxHeaderSize: 1024 });
    const res = await s.request(srv.url('/'));
    expect(res.body.toString()).toBe('done');
    expect(res.headers.get('link')).toBeNull();
  });

  it('per-request maxHeaderSize overrides the session default', async () => {
    const resp = withHeader(`X-Big: ${'b'.repeat(3000)}`);
    await expectRejectedAndDiscarded(resp, { code: TOO_LARGE, reason: 'header block too large' }, { request: { maxHeaderSize: 2048 } });
    const srv = await server((c) => serveEach(c, (_r, conn) => conn.write(resp)));
    const s = session({ maxHeaderSize: 2048 });
    const res = await s.request(srv.url('/'), { maxHeaderSize: 8192 });
    expect(res.headers.get('x-big')!.length).toBe(3000);
  });

  it('exactly maxHeaderCount fields are accepted; one more is ERR_HEADERS_TOO_LARGE', async () => {
    const fields = (n: number) => Array.from({ length: n - 1 }, (_, i) => `X-H${i}: v${i}\r\n`).join('');
    const resp = (n: number) => `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n${fields(n)}\r\nok`;
    const srv = await server((c) => serveEach(c, (req, conn) => conn.write(req.target === '/exact' ? resp(5) : req.target === '/over' ? resp(6) : FINE)));
    const s = session({ maxHeaderCount: 5 });
    const res = await s.request(srv.url('/exact'));
    expect(res.headers.rawPairs().length).toBe(10);
    const err = await failure(s.request(srv.url('/over')));
    expect({ code: err.code, reason: err.reason }).toEqual({ code: TOO_LARGE, reason: 'too many headers' });
    expect((await s.request(srv.url('/ok'))).info.reused).toBe(false);
    expect(srv.connectionCount).toBe(2);
  });

  it('trailers are bounded: 200 trailer fields are accepted, 201 are ERR_HEADERS_TOO_LARGE', async () => {
    const trailers = (n: number) => Array.from({ length: n }, (_, i) => `X-T${i}: v\r\n`).join('');
    const resp = (n: number) => chunked(`2\r\nhi\r\n0\r\n${trailers(n)}\r\n`);
    const ok = await badThenGoodServer(resp(200));
    const s = session();
    const res = await s.request(ok.url('/t'));
    expect(res.body.toString()).toBe('hi');
    expect(res.headers.get('x-t0')).toBeNull();
    expect((await s.request(ok.url('/ok'))).info.reused).toBe(true);
    await expectRejectedAndDiscarded(resp(201), { code: TOO_LARGE, reason: 'too many trailers' });
  });

  it('a trailer section over 64 KiB is ERR_HEADERS_TOO_LARGE', async () => {
    const big = `X-Big: ${'t'.repeat(70 * 1024)}\r\n`;
    await expectRejectedAndDiscarded(chunked(`2\r\nhi\r\n0\r\n${big}\r\n`), { code: TOO_LARGE, reason: 'trailer section too large' });
  });

  it('the default maxHeaderCount is 200', async () => {
    const resp = (n: number) => `HTTP/1.1 200 OK\r\nContent-Length: 0\r\n${Array.from({ length: n - 1 }, (_, i) => `X-${i}: v\r\n`).join('')}\r\n`;
    const srv = await server((c) => serveEach(c, (req, conn) => conn.write(req.target === '/200' ? resp(200) : resp(201))));
    const s = session();
    expect((await s.request(srv.url('/200'))).headers.rawPairs().length).toBe(400);
    const err = await failure(s.request(srv.url('/201')));
    expect(err.code).toBe(TOO_LARGE);
    expect(err.reason).toBe('too many headers');
  });
});

// ---------------------------------------------------------------------------------------------
// Well-formed edge cases

interface GoodCase {
  name: string;
  response: string;
  method?: string;
  status: number;
  body: string;
  statusText?: string;
  headers?: Record<string, string | null>;
  /** The connection may be kept alive for the next request. */
  reusable: boolean;
  versionMinor?: number;
  /** The server half-closes after writing (needed for close-delimited bodies). */
  endAfter?: boolean;
}

const good: GoodCase[] = [
  { name: 'plain Content-Length', response: okResponse('hi'), status: 200, body: 'hi', statusText: 'OK', reusable: true, versionMinor: 1 },
  { name: 'no reason phrase, no SP', response: 'HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nhi', status: 200, body: 'hi', statusText: '', reusable: true },
  { name: 'empty reason phrase after SP', response: 'HTTP/1.1 201 \r\nContent-Length: 0\r\n\r\n', status: 201, body: '', statusText: '', reusable: true },
  {
    name: 'reason with HTAB and obs-text',
    response: 'HTTP/1.1 404 Not\tFound \xe9\r\nContent-Length: 1\r\n\r\nx',
    status: 404,
    body: 'x',
    statusText: 'Not\tFound \xe9',
    reusable: true,
  },
  { name: 'status 599 is a final status', response: 'HTTP/1.1 599 Edge\r\nContent-Length: 0\r\n\r\n', status: 599, body: '', reusable: true },
  {
    name: 'equal duplicate Content-Length lines',
    response: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello',
    status: 200,
    body: 'hello',
    reusable: true,
  },
  { name: 'equal Content-Length list', response: 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello', status: 200, body: 'hello', reusable: true },
  { name: 'Content-Length with OWS', response: 'HTTP/1.1 200 OK\r\nContent-Length: \t 5 \t\r\n\r\nhello', status: 200, body: 'hello', reusable: true },
  { name: 'Content-Length with leading zeros', response: 'HTTP/1.1 200 OK\r\nContent-Length: 0005\r\n\r\nhello', status: 200, body: 'hello', reusable: true },
  { name: 'Content-Length 0', response: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', status: 200, body: '', reusable: true },
  {
    name: 'header value with HTAB and obs-text, OWS trimmed',
    response: 'HTTP/1.1 200 OK\r\nX-A: \t a\tb \xff \t\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n',
    status: 200,
    body: '',
    headers: { 'x-a': 'a\tb \xff', 'x-empty': '' },
    reusable: true,
  },
  {
    name: 'every tchar in a header name',
    response: "HTTP/1.1 200 OK\r\n!#$%&'*+-.^_`|~09azAZ: v\r\nContent-Length: 0\r\n\r\n",
    status: 200,
    body: '',
    headers: { "!#$%&'*+-.^_`|~09azaz": 'v' },
    reusable: true,
  },
  {
    name: 'chunked with extensions, BWS, upper-case hex, leading zeros',
    response: chunked('5;name=val;x="q"\r\nhello\r\n0006 ;ext\r\n world\r\nA\r\n0123456789\r\n0\r\n\r\n'),
    status: 200,
    body: 'hello world0123456789',
    reusable: true,
  },
  {
    name: 'chunked with 15 hex digit size line of zeros (last chunk)',
    response: chunked('1\r\nx\r\n000000000000000\r\n\r\n'),
    status: 200,
    body: 'x',
    reusable: true,
  },
  {
    name: 'chunk extension of exactly 1024 bytes',
    response: chunked(`5;${'a'.repeat(1022)}\r\nhello\r\n0\r\n\r\n`),
    status: 200,
    body: 'hello',
    reusable: true,
  },
  {
    name: 'trailers are accepted and not exposed as headers',
    response: chunked('5\r\nhello\r\n0\r\nX-Trailer: yes\r\nServer-Timing: a;dur=1\r\n\r\n'),
    status: 200,
    body: 'hello',
    headers: { 'x-trailer': null, 'transfer-encoding': 'chunked' },
    reusable: true,
  },
  {
    name: 'Transfer-Encoding is case-insensitive',
    response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n',
    status: 200,
    body: 'hi',
    reusable: true,
  },
  {
    name: 'Transfer-Encoding with OWS',
    response: 'HTTP/1.1 200 OK\r\ntransfer-encoding:  chunked \t\r\n\r\n2\r\nhi\r\n0\r\n\r\n',
    status: 200,
    body: 'hi',
    reusable: true,
  },
  {
    name: 'HEAD response with Content-Length has no body',
    method: 'HEAD',
    response: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n',
    status: 200,
    body: '',
    headers: { 'content-length': '100' },
    reusable: true,
  },
  {
    name: 'HEAD response with Transfer-Encoding: chunked has no body',
    method: 'HEAD',
    response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
    status: 200,
    body: '',
    reusable: true,
  },
  { name: '204 with Content-Length has no body', response: 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n', status: 204, body: '', reusable: true },
  {
    name: '304 with Content-Length has no body',
    response: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: "x"\r\n\r\n',
    status: 304,
    body: '',
    reusable: true,
  },
  {
    name: '304 with Transfer-Encoding has no body',
    response: 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n',
    status: 304,
    body: '',
    reusable: true,
  },
  { name: '204 without any framing headers', response: 'HTTP/1.1 204 No Content\r\n\r\n', status: 204, body: '', reusable: true },
  {
    name: '100 Continue and 103 Early Hints are skipped',
    response: `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n${okResponse('final', 'X-Final: 1\r\n')}`,
    status: 200,
    body: 'final',
    headers: { link: null, 'x-final': '1' },
    reusable: true,
  },
  {
    name: '10 interim responses (the maximum) are skipped',
    response: `${'HTTP/1.1 100 Continue\r\n\r\n'.repeat(5)}${'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n'.repeat(5)}${okResponse('ten')}`,
    status: 200,
    body: 'ten',
    reusable: true,
  },
  {
    name: 'a 1xx with Content-Length has no body (the final response follows at once)',
    response: `HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n${okResponse('after')}`,
    status: 200,
    body: 'after',
    reusable: true,
  },
  {
    name: 'an unknown 1xx (199) is interim too',
    response: `HTTP/1.1 199 Whatever\r\nX-I: 1\r\n\r\n${okResponse('after')}`,
    status: 200,
    body: 'after',
    headers: { 'x-i': null },
    reusable: true,
  },
  {
    name: 'HTTP/1.0 with Content-Length, no keep-alive: not reused',
    response: 'HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nold!',
    status: 200,
    body: 'old!',
    reusable: false,
    versionMinor: 0,
  },
  {
    name: 'HTTP/1.0 with Connection: keep-alive: reused',
    response: 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nold!',
    status: 200,
    body: 'old!',
    reusable: true,
    versionMinor: 0,
  },
  {
    name: 'HTTP/1.0 with Connection: Keep-Alive in a list: reused',
    response: 'HTTP/1.0 200 OK\r\nConnection: foo, Keep-Alive\r\nContent-Length: 1\r\n\r\nx',
    status: 200,
    body: 'x',
    reusable: true,
    versionMinor: 0,
  },
  {
    name: 'HTTP/1.1 with Connection: close: not reused',
    response: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye',
    status: 200,
    body: 'bye',
    reusable: false,
  },
  {
    name: 'Connection: close in a list, mixed case',
    response: 'HTTP/1.1 200 OK\r\nConnection: keep-alive, CLOSE\r\nContent-Length: 3\r\n\r\nbye',
    status: 200,
    body: 'bye',
    reusable: false,
  },
  {
    name: 'Keep-Alive: timeout=0 means do not reuse',
    response: 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=0\r\nContent-Length: 1\r\n\r\nx',
    status: 200,
    body: 'x',
    reusable: false,
  },
  {
    name: 'Keep-Alive: timeout=5, max=100 keeps it',
    response: 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 1\r\n\r\nx',
    status: 200,
    body: 'x',
    reusable: true,
  },
  {
    name: 'close-delimited body (HTTP/1.1, no CL, no TE) completes at EOF',
    response: 'HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nuntil the end\r\n\r\nof the stream',
    status: 200,
    body: 'until the end\r\n\r\nof the stream',
    reusable: false,
    endAfter: true,
  },
  {
    name: 'close-delimited body (HTTP/1.0)',
    response: 'HTTP/1.0 200 OK\r\n\r\nold style',
    status: 200,
    body: 'old style',
    reusable: false,
    versionMinor: 0,
    endAfter: true,
  },
  {
    name: 'close-delimited empty body',
    response: 'HTTP/1.1 200 OK\r\n\r\n',
    status: 200,
    body: '',
    reusable: false,
    endAfter: true,
  },
  {
    name: 'a body holding what looks like another response is just body',
    response: okResponse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'),
    status: 200,
    body: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
    reusable: true,
  },
];

describe('well-formed responses', () => {
  it.each(good)('$name', async (g) => {
    const srv = await server((c) =>
      serveEach(c, async (req, conn) => {
        if (req.target === '/ok') return conn.write(FINE);
        if (g.endAfter) return conn.end(g.response);
        return conn.write(g.response);
      }),
    );
    const s = session();
    const res = await s.request(srv.url('/t'), { method: g.method ?? 'GET' });
    expect(res.status).toBe(g.status);
    expect(res.body.toString('latin1')).toBe(g.body);
    if (g.statusText !== undefined) expect(res.statusText).toBe(g.statusText);
    if (g.versionMinor !== undefined) expect(res.info.httpVersionMinor).toBe(g.versionMinor);
    for (const [k, v] of Object.entries(g.headers ?? {})) expect(res.headers.get(k)).toBe(v);
    expect(res.info.reused).toBe(false);
    const next = await s.request(srv.url('/ok'));
    expect(next.body.toString()).toBe('fine');
    expect(next.info.reused).toBe(g.reusable);
    expect(srv.connectionCount).toBe(g.reusable ? 1 : 2);
    if (!g.reusable) expect(await waitFor(() => srv.conns[0]!.clientEnded)).toBe(true);
  });

  it('the same well-formed responses also parse through stream()', async () => {
    const srv = await server((c) => serveEach(c, (req, conn) => conn.write(good[Number(req.target.slice(1))]!.response)));
    const s = session();
    for (const [i, g] of good.entries()) {
      if (g.endAfter) continue;
      const res = await s.stream(srv.url(`/${i}`), { method: g.method ?? 'GET' });
      expect(res.status, g.name).toBe(g.status);
      expect((await res.buffer()).toString('latin1'), g.name).toBe(g.body);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Arbitrary splitting of the response across reads

const splitCases: [string, string, string][] = [
  ['Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world', 'hello world'],
  [
    'chunked with extensions and trailers',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n5;e=1\r\nhello\r\n1 ;x\r\n \r\n5\r\nworld\r\n0\r\nX-T: t\r\n\r\n',
    'hello world',
  ],
  [
    'interim responses then chunked',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    'abc',
  ],
];

describe('responses split at any byte boundary', () => {
  it.each(splitCases)('%s: every byte written separately (setImmediate between writes)', async (_n, resp, body) => {
    const srv = await server((c) => serveEach(c, (_req, conn) => conn.writePieces(resp, 1, 'immediate')));
    const s = session();
    for (let i = 0; i < 3; i++) {
      const res = await s.request(srv.url('/'));
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe(body);
      expect(res.headers.get('x-t')).toBeNull();
    }
    expect(srv.connectionCount).toBe(1);
  });

  it.each(splitCases)('%s: split into two writes at every position, on one kept-alive connection', async (_n, resp, body) => {
    const srv = await server((c) =>
      serveEach(c, async (req, conn) => {
        const k = Number(req.target.slice(1));
        await conn.write(resp.slice(0, k));
        await new Promise((r) => setTimeout(r, 2));
        await conn.write(resp.slice(k));
      }),
    );
    const s = session();
    for (let k = 1; k < resp.length; k++) {
      const res = await s.request(srv.url(`/${k}`));
      expect(res.body.toString(), `split at ${k}`).toBe(body);
    }
    expect(srv.connectionCount).toBe(1);
  });

  it('every byte of a bad response written separately still fails with the same reason', async () => {
    const srv = await server((c: RawConn) =>
      serveEach(c, (req, conn) => (req.target === '/ok' ? conn.write(FINE) : conn.writePieces(chunked('5\r\nhello\r\n0x1\r\n'), 1, 'immediate'))),
    );
    const s = session();
    const err = await failure(s.request(srv.url('/bad')));
    expect({ code: err.code, reason: err.reason }).toEqual({ code: BAD, reason: 'invalid chunk size' });
    expect((await s.request(srv.url('/ok'))).info.reused).toBe(false);
  });
});
