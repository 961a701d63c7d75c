// Input validation: every invalid Session option is named in err.reason; invalid request options,
// URLs, methods and headers throw synchronously, and nothing reaches the network (a counting
// server sees no connection at all).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Session, UvfetchError, type SessionOptions } from '../../lib/index.js';
import { Cleanup, sleep, startHttpServer, thrown, type HttpTestServer, sessionFactory } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const session = sessionFactory(cleanup);

function optionError(fn: () => unknown): UvfetchError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(UvfetchError);
  expect(err.code).toBe('ERR_INVALID_OPTION');
  return err as UvfetchError;
}

describe('session options', () => {
  const bad: Array<[string, unknown, string]> = [
    ['unknown key', { bogus: 1 }, 'bogus'],
    ['unknown key (typo)', { keepAliveTimeOut: 1000 }, 'keepAliveTimeOut'],
    ['connections 0', { connections: 0 }, 'connections'],
    ['connections negative', { connections: -1 }, 'connections'],
    ['connections fractional', { connections: 1.5 }, 'connections'],
    ['connections string', { connections: '10' }, 'connections'],
    ['connections NaN', { connections: NaN }, 'connections'],
    ['connections Infinity', { connections: Infinity }, 'connections'],
    ['connectionsPerHost 0', { connectionsPerHost: 0 }, 'connectionsPerHost'],
    ['connectionsPerHost string', { connectionsPerHost: '2' }, 'connectionsPerHost'],
    ['keepAliveTimeout negative', { keepAliveTimeout: -1 }, 'keepAliveTimeout'],
    ['keepAliveTimeout too large', { keepAliveTimeout: 2 ** 31 }, 'keepAliveTimeout'],
    ['timeout not an object', { timeout: 5000 }, 'timeout'],
    ['timeout null', { timeout: null }, 'timeout'],
    ['timeout unknown key', { timeout: { read: 1 } }, 'timeout.read'],
    ['timeout.connect negative', { timeout: { connect: -1 } }, 'timeout.connect'],
    ['timeout.headers fractional', { timeout: { headers: 0.5 } }, 'timeout.headers'],
    ['timeout.body string', { timeout: { body: '1' } }, 'timeout.body'],
    ['timeout.total too large', { timeout: { total: 2 ** 31 } }, 'timeout.total'],
    ['maxHeaderSize too small', { maxHeaderSize: 10 }, 'maxHeaderSize'],
    ['maxHeaderCount 0', { maxHeaderCount: 0 }, 'maxHeaderCount'],
    ['maxBodySize negative', { maxBodySize: -1 }, 'maxBodySize'],
    ['maxBodySize unsafe', { maxBodySize: 2 ** 53 }, 'maxBodySize'],
    ['noDelay string', { noDelay: 'yes' }, 'noDelay'],
    ['tcpKeepAlive negative', { tcpKeepAlive: -5 }, 'tcpKeepAlive'],
    ['tcpKeepAlive true', { tcpKeepAlive: true }, 'tcpKeepAlive'],
    ['localAddress hostname', { localAddress: 'localhost' }, 'localAddress'],
    ['localAddress garbage', { localAddress: '999.1.1.1' }, 'localAddress'],
    ['localAddress number', { localAddress: 2130706433 }, 'localAddress'],
    ['userAgent with LF', { userAgent: 'a\nb' }, 'userAgent'],
    ['userAgent with CR', { userAgent: 'a\rInjected: 1' }, 'userAgent'],
    ['userAgent with NUL', { userAgent: 'a\0' }, 'userAgent'],
    ['userAgent beyond Latin-1', { userAgent: 'ua \u010A x' }, 'userAgent'],
    ['userAgent number', { userAgent: 42 }, 'userAgent'],
  ];
  for (const [name, opts, reason] of bad) {
    it(`${name} → ERR_INVALID_OPTION, reason ${reason}`, () => {
      const err = optionError(() => new Session(opts as never));
      expect(err.reason).toBe(reason);
      expect(err.message).toContain(reason);
    });
  }

  it('non-object options → reason "options"', () => {
    expect(optionError(() => new Session(null as never)).reason).toBe('options');
    expect(optionError(() => new Session('fast' as never)).reason).toBe('options');
  });

  it('valid boundary values are accepted', () => {
    const ok: SessionOptions[] = [
      { connections: 1, connectionsPerHost: 1 },
      { keepAliveTimeout: 0, timeout: { connect: 0, headers: 0, body: 0, total: 0 } },
      { keepAliveTimeout: 2 ** 31 - 1, timeout: { total: 2 ** 31 - 1 } },
      { maxHeaderSize: 64, maxHeaderCount: 1, maxBodySize: 0 },
      { maxBodySize: Number.MAX_SAFE_INTEGER },
      { noDelay: false, tcpKeepAlive: false },
      { tcpKeepAlive: 0 },
      { tcpKeepAlive: 30_000 },
      { localAddress: '127.0.0.1' },
      { localAddress: '::1' },
      { userAgent: '' },
      { userAgent: 'caf\u00e9/1.0\t(x)' },
      { timeout: {} },
      {},
    ];
    for (const o of ok) session(o);
    session();
  });
});

describe('request validation (synchronous, nothing sent)', () => {
  let srv: HttpTestServer;
  let s: Session;
  // A fresh counting server per test (the shared afterEach closes every server).
  beforeEach(async () => {
    srv = await startHttpServer((_req, res) => res.end('ok'));
  });

  /** Asserts fn throws synchronously with `code`, then that nothing at all reached the server. */
  async function rejectsSync(code: string, fn: (s: Session) => unknown): Promise<UvfetchError> {
    s = session();
    const before = srv.connections;
    const err = thrown(() => fn(s));
    expect(err).toBeInstanceOf(UvfetchError);
    expect(err.code).toBe(code);
    await sleep(30);
    expect(srv.connections).toBe(before);
    expect(s.stats().requests.started).toBe(0);
    expect(s.stats().connections.created).toBe(0);
    return err;
  }

  describe('header injection → ERR_INVALID_HEADER', () => {
    const cases: Array<[string, Record<string, string> | Array<[string, string]>]> = [
      ['CRLF in a value', { 'x-a': 'v\r\nInjected: 1' }],
      ['bare LF in a value', { 'x-a': 'v\nInjected: 1' }],
      ['bare CR in a value', { 'x-a': 'v\rx' }],
      ['CRLF CRLF request smuggling in a value', { 'x-a': 'v\r\n\r\nGET /evil HTTP/1.1\r\nHost: x' }],
      ['U+010A (would truncate to LF) in a value', { 'x-a': 'a\u010AInjected: 1' }],
      ['U+010D (would truncate to CR) in a value', { 'x-a': 'a\u010Db' }],
      ['U+0100 in a value', { 'x-a': '\u0100' }],
      ['emoji in a value', { 'x-a': '😀' }],
      ['NUL in a value', { 'x-a': 'a\0b' }],
      ['control char in a value', { 'x-a': 'a\x01b' }],
      ['DEL in a value', { 'x-a': 'a\x7fb' }],
      ['CRLF in a name', { 'x-a\r\nInjected': '1' }],
      ['LF in a name', { 'x-a\nb': '1' }],
      ['NUL in a name', { 'x-a\0': '1' }],
      ['U+010A in a name', { 'x\u010Aa': '1' }],
      ['space in a name', { 'x a': '1' }],
      ['colon in a name', { 'x:a': '1' }],
      ['empty name', { '': '1' }],
      [
        'CRLF via iterable pairs',
        [
          ['x-ok', 'fine'],
          ['x-bad', 'v\r\nEvil: 1'],
        ],
      ],
      ['transfer-encoding set by the user', { 'Transfer-Encoding': 'chunked' }],
      ['transfer-encoding (any case, any value)', { 'TRANSFER-ENCODING': 'gzip' }],
      ['upgrade', { Upgrade: 'websocket' }],
      ['connection: upgrade', { Connection: 'keep-alive, Upgrade' }],
      ['content-length on a GET without a body', { 'content-length': '5' }],
      ['non-numeric content-length', { 'content-length': '0x1' }],
      ['negative content-length', { 'content-length': '-1' }],
      [
        'duplicate content-length',
        [
          ['content-length', '0'],
          ['Content-Length', '0'],
        ],
      ],
      [
        'duplicate host',
        [
          ['host', 'a'],
          ['Host', 'b'],
        ],
      ],
    ];
    for (const [name, headers] of cases) {
      it(name, async () => {
        await rejectsSync('ERR_INVALID_HEADER', (s) => s.request(srv.url('/'), { headers }));
      });
    }

    it('the same checks apply to stream()', async () => {
      await rejectsSync('ERR_INVALID_HEADER', (s) => s.stream(srv.url('/'), { headers: { 'x-a': 'v\r\nInjected: 1' } }));
    });

    it('content-length that does not match a known-length body', async () => {
      await rejectsSync('ERR_INVALID_HEADER', (s) => s.request(srv.url('/'), { method: 'POST', body: 'abc', headers: { 'content-length': '4' } }));
      // 'é' is two UTF-8 bytes: a length counted in characters is wrong.
      await rejectsSync('ERR_INVALID_HEADER', (s) => s.request(srv.url('/'), { method: 'POST', body: 'é', headers: { 'content-length': '1' } }));
    });

    it('content-length that is not an integer, for a streamed body', async () => {
      async function* gen() {
        yield 'x';
      }
      const err = await rejectsSync('ERR_INVALID_HEADER', (s) =>
        s.request(srv.url('/'), { method: 'POST', body: gen(), headers: { 'content-length': '1.0' } }),
      );
      expect(err.reason).toBe('content-length');
    });
  });

  it('a matching content-length is accepted and sent once; Latin-1 values go out as single bytes', async () => {
    const s2 = session();
    await s2.request(srv.url('/ok'), { method: 'POST', body: 'abc', headers: { 'Content-Length': '3', 'x-latin': 'caf\u00e9' } });
    const r = srv.requests[srv.requests.length - 1]!;
    expect(r.rawHeaders.filter((h) => h.toLowerCase() === 'content-length')).toHaveLength(1);
    expect(r.headers['content-length']).toBe('3');
    // node:http decodes header bytes as Latin-1.
    expect(r.headers['x-latin']).toBe('caf\u00e9');
  });

  describe('URLs → ERR_INVALID_URL / ERR_UNSUPPORTED_PROTOCOL', () => {
    for (const url of ['not a url', '', 'http://', 'http://[::1', '//127.0.0.1/x', 'http://exa mple.com/']) {
      it(`invalid URL ${JSON.stringify(url)}`, async () => {
        const err = await rejectsSync('ERR_INVALID_URL', (s) => s.request(url));
        expect(err.cause).toBeDefined();
      });
    }
    for (const url of ['ftp://127.0.0.1/', 'ws://127.0.0.1/', 'file:///etc/passwd', 'data:text/plain,hi']) {
      it(`unsupported scheme ${url}`, async () => {
        await rejectsSync('ERR_UNSUPPORTED_PROTOCOL', (s) => s.request(url));
      });
    }
  });

  describe('methods → ERR_INVALID_METHOD', () => {
    for (const method of ['GE T', 'GET\r\nX: y', 'GET\n', '', 'B\u00c4D', 'G(ET)', 'GET\u0100', 'GET\0', 'GET/']) {
      it(`method ${JSON.stringify(method)}`, async () => {
        await rejectsSync('ERR_INVALID_METHOD', (s) => s.request(srv.url('/'), { method }));
      });
    }
  });

  describe('request options → ERR_INVALID_OPTION', () => {
    const cases: Array<[string, unknown, string]> = [
      ['unknown key', { methd: 'GET' }, 'methd'],
      ['method not a string', { method: 1 }, 'method'],
      ['headers not an object', { headers: 42 }, 'headers'],
      ['headers pair of wrong length', { headers: [['a', 'b', 'c']] }, 'headers'],
      ['signal not an AbortSignal', { signal: { aborted: false } }, 'signal'],
      ['timeout.connect negative', { timeout: { connect: -1 } }, 'timeout.connect'],
      ['timeout unknown key', { timeout: { idle: 5 } }, 'timeout.idle'],
      ['maxBodySize negative', { maxBodySize: -1 }, 'maxBodySize'],
      ['maxHeaderSize too small', { maxHeaderSize: 1 }, 'maxHeaderSize'],
      ['maxHeaderCount 0', { maxHeaderCount: 0 }, 'maxHeaderCount'],
    ];
    for (const [name, opts, reason] of cases) {
      it(`${name} → reason ${reason}`, async () => {
        const err = await rejectsSync('ERR_INVALID_OPTION', (s) => s.request(srv.url('/'), opts as never));
        expect(err.reason).toBe(reason);
      });
    }
    it('options that are not an object → reason "options"', async () => {
      const err = await rejectsSync('ERR_INVALID_OPTION', (s) => s.request(srv.url('/'), 'GET' as never));
      expect(err.reason).toBe('options');
    });
  });
});

describe('valid options take effect', () => {
  it('localAddress binds the outgoing socket', async () => {
    let remote = '';
    const srv = await startHttpServer((req, res) => {
      remote = req.socket.remoteAddress ?? '';
      res.end();
    });
    const s = session({ localAddress: '127.0.0.1' });
    await s.request(srv.url('/'));
    expect(remote).toBe('127.0.0.1');
  });

  it('per-request maxHeaderCount / maxHeaderSize are enforced', async () => {
    const srv = await startHttpServer((_req, res) => {
      for (let i = 0; i < 10; i++) res.setHeader(`x-h${i}`, 'v'.repeat(100));
      res.end();
    });
    const s = session();
    const e1 = await s.request(srv.url('/'), { maxHeaderCount: 5 }).catch((e) => e);
    expect(e1.code).toBe('ERR_HEADERS_TOO_LARGE');
    const e2 = await s.request(srv.url('/'), { maxHeaderSize: 512 }).catch((e) => e);
    expect(e2.code).toBe('ERR_HEADERS_TOO_LARGE');
    const ok = await s.request(srv.url('/'));
    expect(ok.headers.get('x-h9')).toBe('v'.repeat(100));
  });
});
