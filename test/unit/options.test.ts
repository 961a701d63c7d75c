// Option validation (lib/core/options.ts, lib/session/options.ts): defaults, ranges, the engine's
// form of a request's overrides. No sockets (the addon is loaded, no engine is made).
import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMEOUTS, DEFAULTS } from '../../lib/core/defaults.js';
import { UvfetchError } from '../../lib/core/errors.js';
import { boolOpt, checkKeys, intOpt } from '../../lib/core/options.js';
import { Override } from '../../lib/native/wire.js';
import { hasOverrides, normalizeHost, ratioOpt, requestOverrides, sessionOptions, timeouts } from '../../lib/session/options.js';

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UvfetchError);
    expect((e as UvfetchError).code).toBe('ERR_INVALID_OPTION');
    return (e as UvfetchError).reason;
  }
  return undefined;
}

describe('core validators', () => {
  it('intOpt: default when undefined, range inclusive, integers only', () => {
    expect(intOpt(undefined, 'n', 7, 1, 10)).toBe(7);
    expect(intOpt(1, 'n', 7, 1, 10)).toBe(1);
    expect(intOpt(10, 'n', 7, 1, 10)).toBe(10);
    for (const bad of [0, 11, 1.5, '3', Number.NaN, null]) expect(reasonOf(() => intOpt(bad, 'n', 7, 1, 10))).toBe('n');
  });
  it('boolOpt and checkKeys', () => {
    expect(boolOpt(undefined, 'b', true)).toBe(true);
    expect(boolOpt(false, 'b', true)).toBe(false);
    expect(reasonOf(() => boolOpt(1, 'b', true))).toBe('b');
    expect(reasonOf(() => checkKeys({ a: 1, zz: 2 }, new Set(['a']), 'x.'))).toBe('x.zz');
    expect(reasonOf(() => checkKeys({ a: 1 }, new Set(['a'])))).toBeUndefined();
  });
});

describe('sessionOptions', () => {
  it('no options: every engine field at its one default', () => {
    const v = sessionOptions({});
    expect(v.engine).toMatchObject({
      connections: DEFAULTS.connections,
      connectionsPerHost: DEFAULTS.connectionsPerHost,
      keepAliveTimeout: DEFAULTS.keepAliveTimeout,
      connectTimeout: DEFAULT_TIMEOUTS.connect,
      tlsTimeout: DEFAULT_TIMEOUTS.tls,
      headersTimeout: DEFAULT_TIMEOUTS.headers,
      bodyTimeout: DEFAULT_TIMEOUTS.body,
      totalTimeout: 0,
      maxHeaderSize: 65536,
      maxHeaderCount: 200,
      maxBodySize: 64 * 1024 * 1024,
      decompress: true,
      maxDecompressionRatio: 100,
      noDelay: true,
      tcpKeepAlive: 0,
    });
    expect(v.engine.userAgent).toMatch(/^uvfetch\/\d+\.\d+\.\d+/);
    expect(v.timeouts).toEqual(DEFAULT_TIMEOUTS);
  });

  it('given values reach the engine options', () => {
    const v = sessionOptions({
      connections: 10,
      connectionsPerHost: 2,
      timeout: { connect: 5, total: 9 },
      noDelay: false,
      tcpKeepAlive: 1000,
      localAddress: '127.0.0.1',
      userAgent: '',
      maxDecompressionRatio: 0,
    });
    expect(v.engine).toMatchObject({ connections: 10, connectionsPerHost: 2, connectTimeout: 5, totalTimeout: 9, headersTimeout: 30_000 });
    expect(v.engine).toMatchObject({ noDelay: false, tcpKeepAlive: 1000, localAddress: '127.0.0.1', maxDecompressionRatio: 0 });
    expect(v.engine.userAgent).toBeUndefined(); // '' sends none
  });

  it('connections: "auto" derives a budget from the descriptor limit', () => {
    const v = sessionOptions({ connections: 'auto', fdReserve: 10 });
    expect(v.engine.connections).toBeGreaterThanOrEqual(1);
  });

  it.each([
    [{ connections: 0 }, 'connections'],
    [{ connectionsPerHost: 1.5 }, 'connectionsPerHost'],
    [{ fdReserve: 5 }, 'fdReserve'],
    [{ timeout: { connect: -1 } }, 'timeout.connect'],
    [{ timeout: { nope: 1 } }, 'timeout.nope'],
    [{ timeout: 5 }, 'timeout'],
    [{ maxHeaderSize: 63 }, 'maxHeaderSize'],
    [{ maxDecompressionRatio: 0.5 }, 'maxDecompressionRatio'],
    [{ noDelay: 'yes' }, 'noDelay'],
    [{ localAddress: 'localhost' }, 'localAddress'],
    [{ userAgent: 'bad\nagent' }, 'userAgent'],
    [{ unknown: 1 }, 'unknown'],
    [{ dns: { ttl: -1 } }, 'dns.ttl'],
  ])('rejects %j naming %s', (o, name) => {
    expect(reasonOf(() => sessionOptions(o as never))).toBe(name);
  });
});

describe('request overrides', () => {
  it('only some options are per-request overrides', () => {
    expect(hasOverrides({})).toBe(false);
    expect(hasOverrides({ method: 'POST', headers: {} })).toBe(false);
    expect(hasOverrides({ maxBodySize: 1 })).toBe(true);
    expect(hasOverrides({ timeout: {} })).toBe(true);
  });

  it('fills the named slots; NaN leaves a limit to the session', () => {
    const session = timeouts({ connect: 1, tls: 2, headers: 3, body: 4, total: 5 }, 'timeout', DEFAULT_TIMEOUTS);
    const v = requestOverrides({ timeout: { headers: 30 }, maxBodySize: 100, decompress: false }, session);
    expect(v[Override.ConnectTimeout]).toBe(1);
    expect(v[Override.TlsTimeout]).toBe(2);
    expect(v[Override.HeadersTimeout]).toBe(30);
    expect(v[Override.BodyTimeout]).toBe(4);
    expect(v[Override.TotalTimeout]).toBe(5);
    expect(v[Override.MaxBodySize]).toBe(100);
    expect(v[Override.Decompress]).toBe(0);
    expect(v[Override.MaxHeaderSize]).toBeNaN();
    expect(v[Override.MaxHeaderCount]).toBeNaN();
    expect(v[Override.MaxDecompressionRatio]).toBeNaN();
  });

  it('validates like the session does', () => {
    expect(reasonOf(() => requestOverrides({ maxHeaderCount: 0 }, DEFAULT_TIMEOUTS))).toBe('maxHeaderCount');
    expect(reasonOf(() => requestOverrides({ timeout: { total: 2 ** 31 } }, DEFAULT_TIMEOUTS))).toBe('timeout.total');
    expect(reasonOf(() => ratioOpt(-1, 100))).toBe('maxDecompressionRatio');
  });
});

describe('normalizeHost', () => {
  it('IP literals as given (brackets dropped), names in punycode, invalid names empty', () => {
    expect(normalizeHost('[::1]')).toBe('::1');
    expect(normalizeHost('127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeHost('bücher.example')).toBe('xn--bcher-kva.example');
    expect(normalizeHost('a b')).toBe('');
  });
});
