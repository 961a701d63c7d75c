// The ready-made interceptors in isolation: each is called with a request object and a `next`
// that records what it was asked and answers with createResponse() (no engine, no network).
import { describe, expect, it } from 'vitest';
import {
  type AnyResponse,
  bearerToken,
  createResponse,
  type InterceptedRequest,
  type InterceptorContext,
  type LogEntry,
  loggingInterceptor,
  redactUrl,
  responseCache,
} from '../../lib/index.js';

const BUF: InterceptorContext = { stream: false };

function req(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): InterceptedRequest {
  return { url, method: init.method ?? 'GET', headers: new Headers(init.headers), body: init.body };
}

/** A `next` answering from `answer(req, n)`, recording each request. */
function fakeNext(answer: (r: InterceptedRequest, n: number) => AnyResponse) {
  const seen: InterceptedRequest[] = [];
  const next = async (r: InterceptedRequest) => {
    seen.push(r);
    return answer(r, seen.length);
  };
  return { seen, next };
}

describe('redactUrl', () => {
  it('replaces userinfo and leaves other URLs alone', () => {
    expect(redactUrl('https://u:p@h.test:8443/a?b=1')).toBe('https://[REDACTED]@h.test:8443/a?b=1');
    expect(redactUrl('https://h.test/a')).toBe('https://h.test/a');
    expect(redactUrl('not a url')).toBe('not a url');
  });
});

describe('loggingInterceptor', () => {
  it('headers: false logs no headers; errors are logged and rethrown', async () => {
    const entries: LogEntry[] = [];
    const log = loggingInterceptor({ log: (e) => entries.push(e), headers: false });
    await log(req('http://h.test/'), async () => createResponse(204), BUF);
    expect(entries.map((e) => [e.type, e.headers])).toEqual([
      ['request', undefined],
      ['response', undefined],
    ]);
    const err = new TypeError('bad');
    await expect(
      log(
        req('http://h.test/'),
        async () => {
          throw err;
        },
        BUF,
      ),
    ).rejects.toBe(err);
    expect(entries.at(-1)).toMatchObject({ type: 'error', error: { code: 'TypeError', message: 'bad' } });
  });
  it('rejects bad options', () => {
    expect(() => loggingInterceptor({ log: 1 as never })).toThrow(/log/);
    expect(() => loggingInterceptor({ redactHeaders: 'x' as never })).toThrow(/redactHeaders/);
  });
});

describe('bearerToken', () => {
  it('leaves requests with their own Authorization, and other origins, alone', async () => {
    const auth = bearerToken({ token: 't', refresh: () => 'u', origins: ['https://api.test'] });
    const { seen, next } = fakeNext(() => createResponse(200));
    await auth(req('https://api.test/x', { headers: { authorization: 'Basic abc' } }), next, BUF);
    await auth(req('https://other.test/x'), next, BUF);
    await auth(req('https://api.test/y'), next, BUF);
    expect(seen.map((r) => r.headers.get('authorization'))).toEqual(['Basic abc', null, 'Bearer t']);
  });
  it('gets the first token from refresh(); a failing refresh rejects the request', async () => {
    let n = 0;
    const auth = bearerToken({
      refresh: async () => {
        if (++n === 2) throw new Error('idp down');
        return `t${n}`;
      },
    });
    const { next } = fakeNext((r) => createResponse(r.headers.get('authorization') === 'Bearer t3' ? 200 : 401));
    await expect(auth(req('https://api.test/'), next, BUF)).rejects.toThrow('idp down');
    expect(auth.token).toBe('t1');
    expect((await auth(req('https://api.test/'), next, BUF)).status).toBe(200);
    expect(auth.token).toBe('t3');
  });
  it('does not resend a streamed body', async () => {
    const auth = bearerToken({ token: 'old', refresh: () => 'new' });
    const { seen, next } = fakeNext(() => createResponse(401));
    const r: InterceptedRequest = { ...req('https://api.test/', { method: 'POST' }), body: (async function* () {})() };
    expect((await auth(r, next, BUF)).status).toBe(401);
    expect(seen.length).toBe(1);
  });
});

describe('responseCache (RFC 9111 subset)', () => {
  const url = 'http://h.test/r';
  it('stores with max-age, honours request no-cache / max-age / no-store / only-if-cached', async () => {
    const cache = responseCache();
    const { seen, next } = fakeNext((_r, n) => createResponse(200, `v${n}`, { 'cache-control': 'max-age=100' }));
    expect(await (await cache(req(url), next, BUF)).text()).toBe('v1');
    expect(await (await cache(req(url), next, BUF)).text()).toBe('v1');
    expect(await (await cache(req(url, { headers: { 'cache-control': 'no-cache' } }), next, BUF)).text()).toBe('v2');
    expect(await (await cache(req(url, { headers: { 'cache-control': 'no-store' } }), next, BUF)).text()).toBe('v3');
    expect(await (await cache(req(url), next, BUF)).text()).toBe('v2');
    expect(await (await cache(req(url, { headers: { 'cache-control': 'max-age=0' } }), next, BUF)).text()).toBe('v4');
    expect((await cache(req('http://h.test/none', { headers: { 'cache-control': 'only-if-cached' } }), next, BUF)).status).toBe(504);
    expect(seen.length).toBe(4);
  });
  it('does not store no-store, Set-Cookie, Vary: *, uncacheable statuses, or responses without freshness or validator', async () => {
    const cache = responseCache();
    const answers = [
      createResponse(200, 'a', { 'cache-control': 'no-store, max-age=100' }),
      createResponse(200, 'b', { 'cache-control': 'max-age=100', 'set-cookie': 'x=y' }),
      createResponse(200, 'c', { 'cache-control': 'max-age=100', vary: '*' }),
      createResponse(500, 'd', { 'cache-control': 'max-age=100' }),
      createResponse(200, 'e'),
    ];
    const { next } = fakeNext((_r, n) => answers[n - 1]!);
    for (let i = 0; i < answers.length; i++) await cache(req(url), next, BUF);
    expect(cache.stats()).toMatchObject({ stored: 0, entries: 0 });
  });
  it('Vary: a different value of the varied header is a miss', async () => {
    const cache = responseCache();
    const { seen, next } = fakeNext((r) =>
      createResponse(200, r.headers.get('accept-language') ?? '', { 'cache-control': 'max-age=100', vary: 'Accept-Language' }),
    );
    const en = () => req(url, { headers: { 'accept-language': 'en' } });
    await cache(en(), next, BUF);
    expect(await (await cache(en(), next, BUF)).text()).toBe('en');
    expect(await (await cache(req(url, { headers: { 'accept-language': 'de' } }), next, BUF)).text()).toBe('de');
    expect(seen.length).toBe(2);
  });
  it('Expires − Date gives the lifetime; a past Expires is stale at once', async () => {
    const cache = responseCache();
    const now = Date.now();
    const { seen, next } = fakeNext((r) =>
      createResponse(200, 'x', {
        date: new Date(now).toUTCString(),
        expires: new Date(r.url.endsWith('past') ? now - 1000 : now + 100_000).toUTCString(),
        'last-modified': new Date(now - 5000).toUTCString(),
      }),
    );
    await cache(req('http://h.test/future'), next, BUF);
    await cache(req('http://h.test/future'), next, BUF);
    await cache(req('http://h.test/past'), next, BUF);
    await cache(req('http://h.test/past'), next, BUF);
    expect(seen.map((r) => new URL(r.url).pathname)).toEqual(['/future', '/past', '/past']);
    // The stale one was revalidated with If-Modified-Since.
    expect(seen[2]!.headers.get('if-modified-since')).toBe(new Date(now - 5000).toUTCString());
  });
  it('a 304 updates the stored headers; an unsafe method invalidates; Authorization bypasses', async () => {
    const cache = responseCache();
    let n = 0;
    const { seen, next } = fakeNext((r) => {
      n++;
      if (r.method === 'POST') return createResponse(201);
      if (r.headers.get('if-none-match') === '"e"') return createResponse(304, null, { etag: '"e"', 'x-rev': String(n), 'cache-control': 'max-age=0' });
      return createResponse(200, 'body', { etag: '"e"', 'cache-control': 'max-age=0' });
    });
    await cache(req(url), next, BUF);
    const rev = await cache(req(url), next, BUF);
    expect(rev.status).toBe(200);
    expect(rev.headers.get('x-rev')).toBe('2');
    expect(await rev.text()).toBe('body');
    await cache(req(url, { method: 'POST', body: 'x' }), next, BUF);
    expect(cache.stats().entries).toBe(0);
    await cache(req(url, { headers: { authorization: 'Bearer x' } }), next, BUF);
    expect(cache.stats().entries).toBe(0);
    expect(seen.length).toBe(4);
  });
  it('is bounded: entries, bytes and entry size (least recently used go first)', async () => {
    const cache = responseCache({ maxEntries: 2, maxBytes: 10, maxEntrySize: 6 });
    const { next } = fakeNext((r) => createResponse(200, new URL(r.url).pathname.slice(1), { 'cache-control': 'max-age=100' }));
    await cache(req('http://h.test/aaaa'), next, BUF);
    await cache(req('http://h.test/bbbb'), next, BUF);
    await cache(req('http://h.test/aaaa'), next, BUF); // a is now the most recent
    await cache(req('http://h.test/cccc'), next, BUF); // evicts b
    expect(cache.stats()).toMatchObject({ entries: 2, bytes: 8 });
    await cache(req('http://h.test/toolong'), next, BUF); // 7 bytes > maxEntrySize
    expect(cache.stats().entries).toBe(2);
    const before = cache.stats().hits;
    await cache(req('http://h.test/aaaa'), next, BUF);
    expect(cache.stats().hits).toBe(before + 1);
    cache.clear();
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });
});
