// Cookies: the opt-in jar stores Set-Cookie and sends cookies on later requests and redirects as
// its (RFC 6265) rules say — per host name, so the tests use names (dns.overrides to 127.0.0.1):
// a.test and b.test are different sites, sub.a.test a sub-domain. The caller's own Cookie header is
// merged (it wins on a name clash) and stripped on cross-origin hops.

import { CookieJar } from 'tough-cookie';
import { afterEach, describe, expect, it } from 'vitest';
import { Session } from '../../lib/index.js';
import { Cleanup, sessionFactory, startHttpServer, thrown, type HttpTestServer } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const session = sessionFactory(cleanup);
const dns = { overrides: { 'a.test': ['127.0.0.1'], 'b.test': ['127.0.0.1'], 'sub.a.test': ['127.0.0.1'] } };

/**
 * `/set?c=<Set-Cookie>` sets that cookie; `/go?to=<url>&c=<Set-Cookie>` redirects (302), setting
 * the cookie if given; anything else answers with the Cookie header it received.
 */
async function cookieServer(): Promise<HttpTestServer> {
  return startHttpServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    const set = u.searchParams.getAll('c');
    if (set.length > 0) res.setHeader('set-cookie', set);
    if (u.pathname === '/go') {
      res.writeHead(302, { location: u.searchParams.get('to')! });
      res.end();
      return;
    }
    res.end(req.headers.cookie ?? '');
  });
}

const enc = encodeURIComponent;

describe('cookies: true', () => {
  it('stores Set-Cookie and sends the cookies on later requests', async () => {
    const srv = await cookieServer();
    const s = session({ cookies: true, dns });
    const base = `http://a.test:${srv.port}`;
    await s.request(`${base}/set?c=${enc('sid=abc; Path=/')}&c=${enc('theme=dark')}`);
    expect((await s.request(`${base}/echo`)).body.toString()).toBe('sid=abc; theme=dark');
    // stream() too.
    const st = await s.stream(`${base}/set?c=${enc('more=1; Path=/')}`);
    await st.text();
    expect((await s.request(`${base}/echo`)).body.toString()).toBe('sid=abc; theme=dark; more=1');
  });

  it('follows the jar rules: path, expiry, host', async () => {
    const srv = await cookieServer();
    const s = session({ cookies: true, dns });
    const a = `http://a.test:${srv.port}`;
    await s.request(`${a}/set?c=${enc('api=1; Path=/api')}&c=${enc('gone=1; Max-Age=0')}`);
    expect((await s.request(`${a}/api/x`)).body.toString()).toBe('api=1');
    expect((await s.request(`${a}/other`)).body.toString()).toBe('');
    expect((await s.request(`http://b.test:${srv.port}/api/x`)).body.toString()).toBe('');
  });

  it('without the option nothing is stored or sent', async () => {
    const srv = await cookieServer();
    const s = session({ dns });
    await s.request(`http://a.test:${srv.port}/set?c=sid%3D1`);
    expect((await s.request(`http://a.test:${srv.port}/echo`)).body.toString()).toBe('');
  });
});

describe('redirects', () => {
  it('a cookie set by the 3xx itself is sent to a same-origin target', async () => {
    const srv = await cookieServer();
    const s = session({ cookies: true, dns });
    const a = `http://a.test:${srv.port}`;
    const res = await s.request(`${a}/go?to=/home&c=${enc('session=1; Path=/')}`);
    expect(res.body.toString()).toBe('session=1');
    expect(res.redirects).toHaveLength(1);
  });

  it('cross-origin: host-only jar cookies and the caller Cookie header stay behind', async () => {
    const srv = await cookieServer();
    const s = session({ cookies: true, dns });
    const a = `http://a.test:${srv.port}`;
    await s.request(`${a}/set?c=${enc('sid=a-only')}`);
    const res = await s.request(`${a}/go?to=${enc(`http://b.test:${srv.port}/echo`)}`, { headers: { cookie: 'mine=1' } });
    expect(res.url).toBe(`http://b.test:${srv.port}/echo`);
    expect(res.body.toString()).toBe('');
    expect(srv.requests.at(-1)!.headers.cookie).toBeUndefined();
  });

  it("cross-origin where the jar's rules allow it: a Domain cookie reaches the sub-domain", async () => {
    const srv = await cookieServer();
    const s = session({ cookies: true, dns });
    const a = `http://a.test:${srv.port}`;
    await s.request(`${a}/set?c=${enc('wide=1; Domain=a.test; Path=/')}&c=${enc('narrow=1; Path=/')}`);
    const res = await s.request(`${a}/go?to=${enc(`http://sub.a.test:${srv.port}/echo`)}`, { headers: { cookie: 'mine=1' } });
    expect(res.body.toString()).toBe('wide=1');
  });
});

describe('merging with a Cookie header of the caller', () => {
  it('the caller’s cookies come first and win on a name clash', async () => {
    const srv = await cookieServer();
    const s = session({ cookies: true, dns });
    const a = `http://a.test:${srv.port}`;
    await s.request(`${a}/set?c=${enc('a=jar')}&c=${enc('b=2')}`);
    expect((await s.request(`${a}/echo`, { headers: { Cookie: 'a=user; c=3' } })).body.toString()).toBe('a=user; c=3; b=2');
    // Several Cookie fields of the caller are joined into one.
    expect(
      (
        await s.request(`${a}/echo`, {
          headers: [
            ['cookie', 'x=1'],
            ['cookie', 'b=mine'],
          ],
        })
      ).body.toString(),
    ).toBe('x=1; b=mine; a=jar');
    expect(srv.requests.at(-1)!.rawHeaders.filter((h) => h.toLowerCase() === 'cookie')).toHaveLength(1);
  });
});

describe('a CookieJar of your own', () => {
  it('is used as given: pre-seeded cookies are sent, received ones land in it', async () => {
    const srv = await cookieServer();
    const jar = new CookieJar();
    const a = `http://a.test:${srv.port}`;
    await jar.setCookie('pre=1', `${a}/`);
    const s = session({ cookies: jar, dns });
    expect((await s.request(`${a}/set?c=${enc('got=2')}`)).body.toString()).toBe('pre=1');
    expect(await jar.getCookieString(`${a}/`)).toBe('pre=1; got=2');
    // Shared by two sessions.
    const s2 = session({ cookies: jar, dns });
    expect((await s2.request(`${a}/echo`)).body.toString()).toBe('pre=1; got=2');
  });
});

describe('options', () => {
  it('are validated; cookies is a session option', () => {
    for (const v of ['yes', 1, {}, null]) {
      const e = thrown(() => new Session({ cookies: v } as never));
      expect(e.code).toBe('ERR_INVALID_OPTION');
      expect(e.reason).toBe('cookies');
    }
    const e = thrown(() => session().request('http://127.0.0.1:1/', { cookies: true } as never));
    expect(e.code).toBe('ERR_INVALID_OPTION');
    expect(e.reason).toBe('cookies');
  });

  it('cookies: false is the same as leaving it out', async () => {
    const srv = await cookieServer();
    const s = session({ cookies: false, dns });
    await s.request(`http://a.test:${srv.port}/set?c=sid%3D1`);
    expect((await s.request(`http://a.test:${srv.port}/echo`)).body.toString()).toBe('');
  });
});
