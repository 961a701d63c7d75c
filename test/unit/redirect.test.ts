// Redirect rules (lib/policies/redirect.ts): which hop follows a 3xx. Pure: no sockets.
import { describe, expect, it } from 'vitest';
import { UvfetchError } from '../../lib/core/errors.js';
import { DEFAULT_REDIRECT, type Hop, isRedirectStatus, nextHop, publicHref, redirectPolicy, replayable } from '../../lib/policies/redirect.js';

const hop = (url: string, method = 'GET', headers: Array<[string, string]> = [], body?: Hop['body']): Hop => ({ url: new URL(url), method, headers, body });

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof UvfetchError ? e.code : 'not a UvfetchError';
  }
  return undefined;
}

describe('isRedirectStatus', () => {
  it('301, 302, 303, 307, 308 only', () => {
    const yes = [];
    for (let s = 100; s < 600; s++) if (isRedirectStatus(s)) yes.push(s);
    expect(yes).toEqual([301, 302, 303, 307, 308]);
  });
});

describe('nextHop', () => {
  const follow = DEFAULT_REDIRECT;

  it('resolves a relative Location and drops the fragment', () => {
    const n = nextHop(follow, hop('http://a.test/x/y?q=1'), 302, '../z#frag', 0)!;
    expect(n.url.href).toBe('http://a.test/z');
    expect(n.method).toBe('GET');
  });

  it('303 turns anything but GET/HEAD into GET and drops the body and its headers', () => {
    const h = hop(
      'http://a.test/',
      'PUT',
      [
        ['content-type', 'text/plain'],
        ['content-length', '3'],
        ['transfer-encoding', 'chunked'],
        ['x-keep', '1'],
      ],
      'abc',
    );
    const n = nextHop(follow, h, 303, '/next', 0)!;
    expect(n.method).toBe('GET');
    expect(n.body).toBeUndefined();
    expect(n.headers).toEqual([['x-keep', '1']]);
    expect(nextHop(follow, hop('http://a.test/', 'HEAD'), 303, '/n', 0)!.method).toBe('HEAD');
  });

  it('301/302 turn POST into GET; 307/308 keep method and body', () => {
    expect(nextHop(follow, hop('http://a.test/', 'POST', [], 'b'), 301, '/n', 0)!.method).toBe('GET');
    expect(nextHop(follow, hop('http://a.test/', 'POST', [], 'b'), 302, '/n', 0)!.method).toBe('GET');
    expect(nextHop(follow, hop('http://a.test/', 'PUT', [], 'b'), 302, '/n', 0)!.method).toBe('PUT');
    const n = nextHop(follow, hop('http://a.test/', 'POST', [['content-type', 'x']], 'body'), 307, '/n', 0)!;
    expect(n.method).toBe('POST');
    expect(n.body).toBe('body');
    expect(n.headers).toEqual([['content-type', 'x']]);
  });

  it('a kept streamed body cannot be replayed: ERR_REDIRECT_BODY', () => {
    const stream = (async function* () {
      yield 'x';
    })();
    expect(code(() => nextHop(follow, hop('http://a.test/', 'POST', [], stream), 308, '/n', 0))).toBe('ERR_REDIRECT_BODY');
    // ...but a 303 drops the body, so it is followed.
    expect(nextHop(follow, hop('http://a.test/', 'POST', [], stream), 303, '/n', 0)!.body).toBeUndefined();
  });

  it('a cross-origin hop strips credentials, cookies, Host and the configured headers', () => {
    const p = redirectPolicy({ redirectStripHeaders: ['X-Secret'] }, follow);
    const h = hop('http://user:pw@a.test/', 'GET', [
      ['Authorization', 'a'],
      ['Cookie', 'c'],
      ['Proxy-Authorization', 'p'],
      ['Host', 'h'],
      ['x-secret', 's'],
      ['accept', '*/*'],
    ]);
    const n = nextHop(p, h, 302, 'http://b.test/', 0)!;
    expect(n.headers).toEqual([['accept', '*/*']]);
    expect(n.url.username).toBe('');
    // Same origin: all headers and the URL's credentials stay.
    const same = nextHop(p, h, 302, '/other', 0)!;
    expect(same.headers).toHaveLength(6);
    expect(same.url.username).toBe('user');
    // A port change is an origin change too.
    expect(nextHop(p, h, 302, 'http://a.test:8080/', 0)!.headers).toEqual([['accept', '*/*']]);
  });

  it('refuses https → http unless allowDowngrade', () => {
    expect(code(() => nextHop(follow, hop('https://a.test/'), 302, 'http://a.test/', 0))).toBe('ERR_REDIRECT');
    const p = redirectPolicy({ allowDowngrade: true }, follow);
    expect(nextHop(p, hop('https://a.test/'), 302, 'http://a.test/', 0)!.url.protocol).toBe('http:');
  });

  it('counts: the hop after max followed throws ERR_TOO_MANY_REDIRECTS', () => {
    const p = redirectPolicy({ maxRedirects: 2 }, follow);
    expect(nextHop(p, hop('http://a.test/'), 302, '/n', 1)).not.toBeNull();
    expect(code(() => nextHop(p, hop('http://a.test/'), 302, '/n', 2))).toBe('ERR_TOO_MANY_REDIRECTS');
  });

  it("other schemes, and mode 'error', throw ERR_REDIRECT; no or bad Location returns the 3xx", () => {
    expect(code(() => nextHop(follow, hop('http://a.test/'), 302, 'ftp://a.test/', 0))).toBe('ERR_REDIRECT');
    expect(code(() => nextHop(redirectPolicy({ redirect: 'error' }, follow), hop('http://a.test/'), 302, '/n', 0))).toBe('ERR_REDIRECT');
    expect(nextHop(follow, hop('http://a.test/'), 302, null, 0)).toBeNull();
    expect(nextHop(follow, hop('http://a.test/'), 302, 'http://[bad', 0)).toBeNull();
  });
});

describe('redirectPolicy', () => {
  it('no redirect options: the base itself', () => {
    expect(redirectPolicy({}, DEFAULT_REDIRECT)).toBe(DEFAULT_REDIRECT);
  });
  it('fields replace the base, strip lists add up (lower-cased)', () => {
    const s = redirectPolicy({ maxRedirects: 3, redirectStripHeaders: ['X-A'] }, DEFAULT_REDIRECT);
    const r = redirectPolicy({ redirect: 'manual', redirectStripHeaders: ['x-b'] }, s);
    expect(r.mode).toBe('manual');
    expect(r.max).toBe(3);
    expect([...r.strip].sort()).toEqual(['x-a', 'x-b']);
  });
  it.each([
    [{ redirect: 'sometimes' }, 'redirect'],
    [{ maxRedirects: -1 }, 'maxRedirects'],
    [{ maxRedirects: 1001 }, 'maxRedirects'],
    [{ redirectStripHeaders: 'x' }, 'redirectStripHeaders'],
    [{ redirectStripHeaders: ['bad name'] }, 'redirectStripHeaders'],
    [{ allowDowngrade: 1 }, 'allowDowngrade'],
  ])('rejects %j', (o, name) => {
    try {
      redirectPolicy(o as never, DEFAULT_REDIRECT);
      expect.unreachable();
    } catch (e) {
      expect((e as UvfetchError).code).toBe('ERR_INVALID_OPTION');
      expect((e as UvfetchError).reason).toBe(name);
    }
  });
});

describe('helpers', () => {
  it('publicHref removes user:password only', () => {
    expect(publicHref(new URL('http://u:p@a.test:81/x?y'))).toBe('http://a.test:81/x?y');
    expect(publicHref(new URL('http://a.test/x#f'))).toBe('http://a.test/x#f');
  });
  it('replayable: buffers and strings yes, iterators no', () => {
    expect(replayable(undefined)).toBe(true);
    expect(replayable('s')).toBe(true);
    expect(replayable(new Uint8Array(1))).toBe(true);
    expect(replayable(new ArrayBuffer(1))).toBe(true);
    expect(replayable(['a', 'b'])).toBe(true);
    expect(replayable(new Set(['a']))).toBe(false);
  });
});
