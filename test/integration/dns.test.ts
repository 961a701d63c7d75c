// The session's DNS cache, observed through a counting dns.lookup and session.dns / stats().dns:
// coalescing, TTLs (default, resolver-supplied, clamped), negative caching with the right code,
// LRU bound, stale-while-revalidate, clear(), IP literals, overrides, closing with lookups out.
// Every server is on 127.0.0.1 and started here; names are fake and resolved by the test.
import { afterEach, describe, expect, it } from 'vitest';
import type { DnsAddress, DnsLookupFunction } from '../../lib/index.js';
import { Cleanup, rejection, sessionFactory, sleep, startHttpServer, thrown, within } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const session = sessionFactory(cleanup);

/** A dns.lookup that records its calls and answers with `answer(host, callNumber)`. */
function counting(answer: (host: string, n: number) => readonly DnsAddress[] | Promise<readonly DnsAddress[]>, delayMs = 0) {
  const calls: Array<{ host: string; family: number }> = [];
  const lookup: DnsLookupFunction = async (host, family) => {
    calls.push({ host, family });
    const n = calls.length;
    if (delayMs > 0) await sleep(delayMs);
    return answer(host, n);
  };
  return { calls, lookup };
}

const LOCAL: DnsAddress[] = [{ address: '127.0.0.1', family: 4 }];

describe('coalescing', () => {
  it('10,000 concurrent requests to a fresh host cause exactly 1 resolver call', async () => {
    const srv = await startHttpServer((_req, res) => res.end('ok'));
    const { calls, lookup } = counting(() => LOCAL, 30);
    const s = session({ dns: { lookup } });
    const all = await within(Promise.all(Array.from({ length: 10_000 }, () => s.request(`http://fresh.test:${srv.port}/`))), 60_000, '10,000 requests');
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(calls).toEqual([{ host: 'fresh.test', family: 0 }]);
    const st = s.stats().dns;
    expect(st.lookups).toBe(1);
    expect(st.misses).toBeGreaterThan(1); // the connections that waited for the one lookup
    expect(st.coalesced).toBe(st.misses - 1);
    expect(st.inFlight).toBe(0);
    expect(st.entries).toBe(1);
  });

  it('10,000 concurrent session.dns.lookup() calls cause exactly 1 resolver call', async () => {
    const { calls, lookup } = counting(() => [{ address: '127.0.0.1' }, { address: '::1' }], 30);
    const s = session({ dns: { lookup } });
    const all = await Promise.all(Array.from({ length: 10_000 }, () => s.dns.lookup('many.test')));
    expect(calls.length).toBe(1);
    expect(all.every((a) => a.length === 2)).toBe(true);
    const st = s.stats().dns;
    expect(st).toMatchObject({ queries: 10_000, misses: 10_000, coalesced: 9_999, lookups: 1, hits: 0 });
    // Answers rotate across the host's addresses (each waiter starts one further).
    expect(all[0]![0]!.address).not.toBe(all[1]![0]!.address);
    await s.dns.lookup('many.test');
    expect(s.stats().dns.hits).toBe(1);
  });
});

describe('TTL', () => {
  it('an answer is cached for dns.ttl, then looked up again', async () => {
    const { calls, lookup } = counting(() => LOCAL);
    const s = session({ dns: { lookup, ttl: 300 } });
    await s.dns.lookup('ttl.test');
    await s.dns.lookup('ttl.test');
    expect(calls.length).toBe(1);
    await sleep(350);
    await s.dns.lookup('ttl.test');
    expect(calls.length).toBe(2);
    expect(s.stats().dns).toMatchObject({ hits: 1, misses: 2, lookups: 2 });
  });

  it("a resolver's own TTL wins over dns.ttl and is clamped by minTtl / maxTtl", async () => {
    const { calls, lookup } = counting((host) => [{ address: '127.0.0.1', ttl: host === 'short.test' ? 50 : 60_000 }]);
    const s = session({ dns: { lookup, ttl: 60_000, minTtl: 300, maxTtl: 600 } });
    await s.dns.lookup('short.test'); // ttl 50 → clamped up to 300
    await s.dns.lookup('long.test'); // ttl 60 s → clamped down to 600
    await sleep(150);
    await s.dns.lookup('short.test');
    await s.dns.lookup('long.test');
    expect(calls.length).toBe(2); // both still fresh at 150 ms
    await sleep(250);
    await s.dns.lookup('short.test'); // 400 ms: past 300
    await s.dns.lookup('long.test'); // still under 600
    expect(calls.map((c) => c.host)).toEqual(['short.test', 'long.test', 'short.test']);
    await sleep(300);
    await s.dns.lookup('long.test'); // 700 ms: past 600
    expect(calls.length).toBe(4);
  });

  it('a request after expiry resolves again and connects to the new address', async () => {
    const srv = await startHttpServer((req, res) => res.end(req.socket.localAddress));
    const srv2 = await startHttpServer((req, res) => res.end(req.socket.localAddress), { host: '127.0.0.2' });
    const port = srv.port;
    const { calls, lookup } = counting((_h, n) => [{ address: n === 1 ? '127.0.0.1' : '127.0.0.2' }]);
    const s = session({ dns: { lookup, ttl: 100 }, keepAliveTimeout: 0 });
    const url = (p: number) => `http://move.test:${p}/`;
    expect(await (await s.request(url(port), { headers: { connection: 'close' } })).text()).toBe('127.0.0.1');
    await sleep(150);
    // Nothing listens on 127.0.0.1 at srv2's port: only the new answer (127.0.0.2) can succeed.
    expect(await (await s.request(url(srv2.port), { headers: { connection: 'close' } })).text()).toBe('127.0.0.2');
    expect(calls.length).toBe(2);
  });
});

describe('negative caching', () => {
  it('caches a failure for negativeTtl with its original code', async () => {
    const { calls, lookup } = counting(() => {
      throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
    });
    const s = session({ dns: { lookup, negativeTtl: 500 } });
    const e1 = await rejection(s.request('http://missing.test/'));
    expect(e1.code).toBe('ERR_DNS_NOT_FOUND');
    const e2 = await rejection(s.request('http://missing.test/'));
    expect(e2.code).toBe('ERR_DNS_NOT_FOUND');
    expect((await rejection(s.dns.lookup('missing.test'))).code).toBe('ERR_DNS_NOT_FOUND');
    expect(calls.length).toBe(1);
    expect(s.stats().dns).toMatchObject({ negativeHits: 2, errors: 1, lookups: 1 });
    await sleep(550);
    expect((await rejection(s.request('http://missing.test/'))).code).toBe('ERR_DNS_NOT_FOUND');
    expect(calls.length).toBe(2);
  });

  it('maps resolver errors to ERR_DNS_TEMPORARY / ERR_DNS and keeps them apart per name', async () => {
    const { calls, lookup } = counting((host) => {
      if (host === 'again.test') throw Object.assign(new Error('try later'), { code: 'EAI_AGAIN' });
      if (host === 'empty.test') return [];
      throw new Error('broken resolver');
    });
    const s = session({ dns: { lookup } });
    expect((await rejection(s.request('http://again.test/'))).code).toBe('ERR_DNS_TEMPORARY');
    expect((await rejection(s.request('http://again.test/'))).code).toBe('ERR_DNS_TEMPORARY');
    expect((await rejection(s.request('http://broken.test/'))).code).toBe('ERR_DNS');
    expect((await rejection(s.request('http://empty.test/'))).code).toBe('ERR_DNS_NOT_FOUND');
    expect(calls.map((c) => c.host)).toEqual(['again.test', 'broken.test', 'empty.test']);
  });

  it('negativeTtl: 0 does not cache failures', async () => {
    const { calls, lookup } = counting(() => []);
    const s = session({ dns: { lookup, negativeTtl: 0 } });
    await rejection(s.dns.lookup('x.test'));
    await rejection(s.dns.lookup('x.test'));
    expect(calls.length).toBe(2);
  });

  it('every queued request of a failing name fails with the code (one lookup)', async () => {
    const { calls, lookup } = counting(() => [], 20);
    const s = session({ dns: { lookup }, connectionsPerHost: 4 });
    const errs = await Promise.all(Array.from({ length: 50 }, () => rejection(s.request('http://gone.test/'))));
    expect(errs.every((e) => e.code === 'ERR_DNS_NOT_FOUND')).toBe(true);
    expect(calls.length).toBe(1);
  });
});

describe('bounds', () => {
  it('maxEntries keeps the most recently used names (LRU)', async () => {
    const { calls, lookup } = counting(() => LOCAL);
    const s = session({ dns: { lookup, maxEntries: 3 } });
    for (const h of ['a.test', 'b.test', 'c.test']) await s.dns.lookup(h);
    await s.dns.lookup('a.test'); // a is now the most recent: b is the oldest
    await s.dns.lookup('d.test'); // evicts b
    expect(s.stats().dns).toMatchObject({ entries: 3, evictions: 1 });
    await s.dns.lookup('a.test');
    await s.dns.lookup('c.test');
    expect(calls.length).toBe(4);
    await s.dns.lookup('b.test'); // evicted: resolved again
    expect(calls.map((c) => c.host)).toEqual(['a.test', 'b.test', 'c.test', 'd.test', 'b.test']);
  });

  it('maxInFlight caps concurrent resolver calls; the rest wait their turn', async () => {
    let out = 0;
    let maxOut = 0;
    const lookup: DnsLookupFunction = async () => {
      maxOut = Math.max(maxOut, ++out);
      await sleep(150);
      out--;
      return LOCAL;
    };
    const s = session({ dns: { lookup, maxInFlight: 2 } });
    const names = Array.from({ length: 8 }, (_, i) => `n${i}.test`);
    const p = Promise.all(names.map((h) => s.dns.lookup(h)));
    await sleep(5);
    expect(s.stats().dns).toMatchObject({ inFlight: 2, queued: 6 });
    await p;
    expect(maxOut).toBe(2);
  });
});

describe('stale-while-revalidate', () => {
  it('serves an expired answer at once within staleTtl while one refresh runs', async () => {
    // The refreshed answer carries a long TTL of its own, so it is fresh when checked.
    const { calls, lookup } = counting((_h, n) => [n === 1 ? { address: '127.0.0.1' } : { address: '127.0.0.2', ttl: 60_000 }], 0);
    let slow = false;
    const s = session({
      dns: {
        ttl: 100,
        staleTtl: 5_000,
        lookup: async (h, f) => {
          if (slow) await sleep(200);
          return lookup(h, f);
        },
      },
    });
    expect((await s.dns.lookup('swr.test'))[0]!.address).toBe('127.0.0.1');
    await sleep(150);
    slow = true;
    const t0 = Date.now();
    const stale = await Promise.all([s.dns.lookup('swr.test'), s.dns.lookup('swr.test')]);
    expect(Date.now() - t0).toBeLessThan(150); // not waiting for the 200 ms refresh
    expect(stale.map((a) => a[0]!.address)).toEqual(['127.0.0.1', '127.0.0.1']);
    expect(s.stats().dns.staleHits).toBe(2);
    await sleep(300);
    expect(calls.length).toBe(2); // one background refresh for both stale answers
    expect((await s.dns.lookup('swr.test'))[0]!.address).toBe('127.0.0.2');
    expect(s.stats().dns.hits).toBe(1);
  });

  it('without staleTtl an expired answer waits for the resolver', async () => {
    const { calls, lookup } = counting(() => LOCAL, 100);
    const s = session({ dns: { lookup, ttl: 50 } });
    await s.dns.lookup('nostale.test');
    await sleep(80);
    const t0 = Date.now();
    await s.dns.lookup('nostale.test');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    expect(calls.length).toBe(2);
  });
});

describe('static answers', () => {
  it('IP literals (v4 and bracketed v6) never reach the resolver', async () => {
    const srv = await startHttpServer((_req, res) => res.end('v4'));
    const srv6 = await startHttpServer((_req, res) => res.end('v6'), { host: '::1' });
    const { calls, lookup } = counting(() => LOCAL);
    const s = session({ dns: { lookup } });
    expect(await (await s.request(srv.url('/'))).text()).toBe('v4');
    expect(await (await s.request(`http://[::1]:${srv6.port}/`)).text()).toBe('v6');
    expect(await s.dns.lookup('[::1]')).toEqual([{ address: '::1', family: 6 }]);
    expect(await s.dns.lookup('127.0.0.1')).toEqual([{ address: '127.0.0.1', family: 4 }]);
    expect(calls.length).toBe(0);
    expect(s.stats().dns).toMatchObject({ static: 4, lookups: 0, entries: 0 });
  });

  it('overrides answer "host" and "host:port" without a lookup; host:port wins', async () => {
    const a = await startHttpServer((_req, res) => res.end('a'));
    const b = await startHttpServer((_req, res) => res.end('b'), { host: '127.0.0.2' });
    const { calls, lookup } = counting(() => []);
    const s = session({
      dns: { lookup, overrides: { 'pinned.test': ['127.0.0.1'], [`pinned.test:${b.port}`]: '127.0.0.2', 'Upper.Test': '127.0.0.1' } },
    });
    expect(await (await s.request(`http://pinned.test:${a.port}/`)).text()).toBe('a');
    expect(await (await s.request(`http://pinned.test:${b.port}/`)).text()).toBe('b');
    expect(await (await s.request(`http://upper.test:${a.port}/`)).text()).toBe('a');
    expect(await s.dns.lookup('pinned.test')).toEqual([{ address: '127.0.0.1', family: 4 }]);
    s.dns.clear(); // overrides stay
    expect(await s.dns.lookup('PINNED.test')).toEqual([{ address: '127.0.0.1', family: 4 }]);
    expect(calls.length).toBe(0);
  });
});

describe('session.dns', () => {
  it('clear(host) and clear() forget cached answers', async () => {
    const { calls, lookup } = counting(() => LOCAL);
    const s = session({ dns: { lookup } });
    await s.dns.lookup('one.test');
    await s.dns.lookup('two.test');
    s.dns.clear('ONE.test');
    await s.dns.lookup('one.test');
    await s.dns.lookup('two.test');
    expect(calls.map((c) => c.host)).toEqual(['one.test', 'two.test', 'one.test']);
    s.dns.clear();
    expect(s.stats().dns.entries).toBe(0);
    await s.dns.lookup('two.test');
    expect(calls.length).toBe(4);
  });

  it('family 4 / 6 filters answers and is passed to the resolver', async () => {
    const { calls, lookup } = counting(() => [{ address: '::1' }, { address: '127.0.0.1' }]);
    const s = session({ dns: { lookup } });
    expect(await s.dns.lookup('fam.test', 4)).toEqual([{ address: '127.0.0.1', family: 4 }]);
    expect(await s.dns.lookup('fam.test', 6)).toEqual([{ address: '::1', family: 6 }]);
    expect(calls).toEqual([
      { host: 'fam.test', family: 4 },
      { host: 'fam.test', family: 6 },
    ]);
    const srv = await startHttpServer((req, res) => res.end(req.socket.localAddress));
    const s4 = session({ dns: { lookup, family: 4 } });
    expect(await (await s4.request(`http://fam.test:${srv.port}/`)).text()).toBe('127.0.0.1');
    expect(calls.at(-1)).toEqual({ host: 'fam.test', family: 4 });
  });

  it('a lookup that never answers is bounded by the connect timeout (ERR_DNS_TEMPORARY)', async () => {
    const s = session({ dns: { lookup: () => new Promise<DnsAddress[]>(() => {}) }, timeout: { connect: 150 } });
    const e = await rejection(s.dns.lookup('hang.test'), 5_000);
    expect(e.code).toBe('ERR_DNS_TEMPORARY');
  });

  it('closing with lookups outstanding: pending requests and dns.lookup() settle, a late answer is ignored', async () => {
    let release: ((a: DnsAddress[]) => void) | undefined;
    const s = session({ dns: { lookup: () => new Promise<DnsAddress[]>((r) => (release = r)) } });
    const req = rejection(s.request('http://late.test/'));
    const q = rejection(s.dns.lookup('late2.test'));
    await sleep(20);
    expect(release).toBeDefined();
    await within(s.destroy(), 5_000, 'destroy');
    expect((await req).code).toBe('ERR_SESSION_CLOSED');
    expect((await q).code).toBe('ERR_SESSION_CLOSED');
    release!(LOCAL); // after close: must not crash
    await sleep(20);
    expect((await rejection(s.dns.lookup('x.test'))).code).toBe('ERR_SESSION_CLOSED');
  });

  it('graceful close with a system lookup in flight resolves', async () => {
    const s = session();
    const q = s.dns.lookup('localhost').catch((e) => e);
    await within(s.close(), 10_000, 'close');
    const r = await q;
    expect(Array.isArray(r) || r.code === 'ERR_SESSION_CLOSED').toBe(true);
  });
});

describe('validation', () => {
  const cases: Array<[string, unknown, string]> = [
    ['dns not an object', 5, 'dns'],
    ['unknown key', { tll: 5 }, 'dns.tll'],
    ['negative ttl', { ttl: -1 }, 'dns.ttl'],
    ['minTtl > maxTtl', { minTtl: 10, maxTtl: 5 }, 'dns.minTtl'],
    ['family', { family: 5 }, 'dns.family'],
    ['resolver', { resolver: 'magic' }, 'dns.resolver'],
    ['lookup not a function', { lookup: 'x' }, 'dns.lookup'],
    ['lookup with resolver', { lookup: () => [], resolver: 'records' }, 'dns.resolver'],
    ['servers without records', { servers: ['127.0.0.1'] }, 'dns.servers'],
    ['bad server', { resolver: 'records', servers: ['not a server'] }, 'dns.servers'],
    ['override not an IP', { overrides: { 'a.test': ['a.test'] } }, 'dns.overrides'],
    ['override empty', { overrides: { 'a.test': [] } }, 'dns.overrides'],
    ['override bad key', { overrides: { 'a b:1': ['127.0.0.1'] } }, 'dns.overrides'],
    ['happyEyeballsDelay', { happyEyeballsDelay: 1.5 }, 'dns.happyEyeballsDelay'],
  ];
  for (const [name, dns, reason] of cases) {
    it(`rejects ${name}`, () => {
      const e = thrown(() => session({ dns } as never));
      expect(e.code).toBe('ERR_INVALID_OPTION');
      expect(e.reason).toBe(reason);
    });
  }

  it('session.dns.lookup rejects a bad family or host', async () => {
    const s = session();
    expect((await rejection(s.dns.lookup('a.test', 5 as never))).code).toBe('ERR_INVALID_OPTION');
    expect((await rejection(s.dns.lookup('bad host'))).code).toBe('ERR_INVALID_URL');
  });
});
