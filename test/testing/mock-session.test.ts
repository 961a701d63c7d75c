// MockSession ('uvfetch/testing'): interceptions answer requests on the interceptor chain's
// innermost link, so redirects, retries, cookies and the session's interceptors apply; the network
// is off unless enabled (checked against a real local server).
import { afterEach, describe, expect, it } from 'vitest';
import { type Interceptor, StreamResponse, UvfetchError } from 'uvfetch';
import { MockSession } from 'uvfetch/testing';
import { Cleanup, rejection, startHttpServer } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
function mock(opts?: ConstructorParameters<typeof MockSession>[0]): MockSession {
  const m = new MockSession(opts);
  cleanup.add(() => m.destroy());
  return m;
}
const API = 'https://api.test';

describe('MockSession', () => {
  it('replies with a string, bytes or JSON, with headers', async () => {
    const m = mock();
    m.intercept({ origin: API, path: '/s' }).reply(200, 'text', { 'x-a': '1' });
    m.intercept({ origin: API, path: '/b' }).reply(201, new Uint8Array([1, 2, 3]));
    m.intercept({ origin: API, path: '/j', method: 'post' }).reply(200, { ok: true });
    const s = await m.request(`${API}/s`);
    expect([s.status, await s.text(), s.headers.get('x-a'), s.url]).toEqual([200, 'text', '1', `${API}/s`]);
    const b = await m.request(`${API}/b`);
    expect([b.status, [...b.body]]).toEqual([201, [1, 2, 3]]);
    const j = await m.request(`${API}/j`, { method: 'POST', body: '{}' });
    expect(j.headers.get('content-type')).toBe('application/json');
    expect(await j.json()).toEqual({ ok: true });
    m.assertNoPendingInterceptors();
  });

  it('matches method, path (string, RegExp), headers and body (string or JSON object)', async () => {
    const m = mock();
    m.intercept({ origin: API, path: /^\/u\/\d+$/, method: 'PUT', headers: { 'x-key': 'k' }, body: { name: 'n' } }).reply(204);
    const miss = await rejection(m.request(`${API}/u/1`, { method: 'PUT', headers: { 'x-key': 'k' }, body: '{"name":"other"}' }));
    expect(miss.code).toBe('ERR_MOCK_NOT_MATCHED');
    const hit = await m.request(`${API}/u/1`, { method: 'PUT', headers: { 'X-Key': 'k' }, body: '{"name":"n"}' });
    expect(hit.status).toBe(204);
  });

  it('network off by default: ERR_MOCK_NOT_MATCHED naming the request; enableNetConnect lets a host through', async () => {
    const srv = await startHttpServer((_req, res) => res.end('real'));
    const m = mock();
    const err = await rejection(m.request(srv.url('/x')));
    expect(err).toBeInstanceOf(UvfetchError);
    expect(err.code).toBe('ERR_MOCK_NOT_MATCHED');
    expect(err.message).toContain(`GET ${srv.url('/x')}`);
    expect(srv.requests.length).toBe(0);
    m.enableNetConnect(`127.0.0.1:${srv.port}`);
    expect(await (await m.request(srv.url('/x'))).text()).toBe('real');
    m.disableNetConnect();
    expect((await rejection(m.request(srv.url('/x')))).code).toBe('ERR_MOCK_NOT_MATCHED');
  });

  it('times(n), persist() and assertNoPendingInterceptors() naming what was not called', async () => {
    const m = mock();
    m.intercept({ origin: API, path: '/twice' }).reply(200, 'a').times(2);
    m.intercept({ origin: API, path: '/always' }).reply(200, 'p').persist();
    m.intercept({ origin: API, path: '/never', method: 'DELETE' }).reply(200);
    await m.request(`${API}/twice`);
    for (let i = 0; i < 3; i++) await m.request(`${API}/always`);
    expect(() => m.assertNoPendingInterceptors()).toThrow(
      /GET https:\/\/api\.test\/twice: called 1 of 2[\s\S]*DELETE https:\/\/api\.test\/never: called 0 of 1/,
    );
    await m.request(`${API}/twice`);
    expect((await rejection(m.request(`${API}/twice`))).code).toBe('ERR_MOCK_NOT_MATCHED');
    expect(m.pendingInterceptors()).toEqual(['DELETE https://api.test/never: called 0 of 1 time(s)']);
  });

  it('replyWithError gives a real UvfetchError that the retry policy retries', async () => {
    const m = mock({ retry: { attempts: 3, backoff: { base: 1, max: 2, jitter: 0 } } });
    m.intercept({ origin: API, path: '/flaky' }).replyWithError('ERR_CONNECTION_RESET');
    m.intercept({ origin: API, path: '/flaky' }).reply(503);
    m.intercept({ origin: API, path: '/flaky' }).reply(200, 'third time');
    const res = await m.request(`${API}/flaky`);
    expect([res.status, await res.text(), res.attempts]).toEqual([200, 'third time', 3]);
    m.intercept({ origin: API, path: '/down' }).replyWithError('ERR_TIMEOUT').times(3);
    const err = await rejection(m.request(`${API}/down`));
    expect(err).toBeInstanceOf(UvfetchError);
    expect([err.code, err.url, err.method]).toEqual(['ERR_TIMEOUT', `${API}/down`, 'GET']);
  });

  it('redirects are followed and cookies kept, as in production', async () => {
    const m = mock({ cookies: true });
    m.intercept({ origin: API, path: '/login', method: 'POST' }).reply(303, '', { location: '/home', 'set-cookie': 'sid=1; Path=/' });
    m.intercept({ origin: API, path: '/home', headers: { cookie: 'sid=1' } }).reply(200, 'welcome');
    const res = await m.request(`${API}/login`, { method: 'POST', body: 'u=p' });
    expect([res.status, await res.text()]).toEqual([200, 'welcome']);
    expect(res.redirects).toEqual([{ url: `${API}/login`, method: 'POST', status: 303, location: `${API}/home` }]);
  });

  it('delay(ms) delays the answer; an abort ends the wait', async () => {
    const m = mock();
    m.intercept({ origin: API, path: '/slow' }).reply(200).delay(150);
    const t0 = performance.now();
    await m.request(`${API}/slow`);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    m.intercept({ origin: API, path: '/slow' }).reply(200).delay(10_000);
    const err = await rejection(m.request(`${API}/slow`, { signal: AbortSignal.timeout(50) }));
    expect(err.code).toBe('ERR_ABORTED');
  });

  it('stream(), fetch(), fetchMany and the session interceptors', async () => {
    const seen: string[] = [];
    const spy: Interceptor = async (req, next) => {
      seen.push(`${req.method} ${req.url}`);
      return next(req);
    };
    const m = mock({ interceptors: [spy] });
    m.intercept({ origin: API, path: '/data' }).reply(200, { n: 1 }).persist();
    const st = await m.stream(`${API}/data`);
    expect(st).toBeInstanceOf(StreamResponse);
    expect(await st.json()).toEqual({ n: 1 });
    const fr = await m.fetch(`${API}/data`);
    expect(fr.headers.get('content-type')).toBe('application/json');
    expect(await fr.json()).toEqual({ n: 1 });
    for await (const r of m.fetchMany([{ url: `${API}/data` }, { url: `${API}/nope` }], { concurrency: 2 })) {
      if (r.index === 0) expect(r.response?.status).toBe(200);
      else expect((r.error as UvfetchError).code).toBe('ERR_MOCK_NOT_MATCHED');
    }
    expect(seen).toEqual([`GET ${API}/data`, `GET ${API}/data`, `GET ${API}/data`, `GET ${API}/nope`]);
  });

  it('agent(): a UvfetchAgent answered by the same interceptions (global fetch with dispatcher)', async () => {
    const m = mock();
    m.intercept({ origin: API, path: '/via-agent', method: 'POST', body: 'hello' }).reply(202, 'accepted', { 'x-r': 'y' });
    const agent = m.agent();
    cleanup.add(() => agent.destroy());
    const res = await fetch(`${API}/via-agent`, { method: 'POST', body: 'hello', dispatcher: agent } as RequestInit);
    expect([res.status, res.headers.get('x-r'), await res.text()]).toEqual([202, 'y', 'accepted']);
    await expect(fetch(`${API}/other`, { dispatcher: agent } as RequestInit)).rejects.toThrow();
    m.assertNoPendingInterceptors();
  });

  it('bad input is a typed error', () => {
    const m = mock();
    expect(() => m.intercept({ origin: 'not a url', path: '/' })).toThrow(UvfetchError);
    expect(() => m.intercept({ origin: API, path: 1 as never })).toThrow(/path/);
    expect(() => m.intercept({ origin: API, path: '/' }).reply(42)).toThrow(/status/);
    expect(() => m.intercept({ origin: API, path: '/' }).times(0)).toThrow(/times/);
  });
});
