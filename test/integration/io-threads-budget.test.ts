// Session({ ioThreads: N > 1 }) shares one `connections` budget across its I/O threads and the
// main-loop engine of its raw sockets (native/core/pool/shared_budget.h): never more sockets than
// the budget, whichever threads the origins hash to; a key blocked on the total is served when
// another thread's connection frees up (closing an idle keep-alive socket there for it, by the
// pool's rules: a warm one only for a key with no connection of its own, else once it is cold);
// raw sockets and HTTP connections take slots of the same budget; stats() is one process-wide view.
import { afterEach, describe, expect, it } from 'vitest';
import type { Session } from '../../lib/index.js';
import { connect } from '../../lib/index.js';
import { Cleanup, type HttpTestServer, sessionFactory, sleep, startHttpServer, startNetServer, waitFor, within } from '../helpers/http-servers.js';

const cleanup = new Cleanup();
const session = sessionFactory(cleanup);
afterEach(() => cleanup.run());

/** Counts requests in flight across every server a test starts (the server-side view). */
class InFlight {
  now = 0;
  max = 0;
  enter(): () => void {
    this.now++;
    this.max = Math.max(this.max, this.now);
    let done = false;
    return () => {
      if (!done) {
        done = true;
        this.now--;
      }
    };
  }
}

function server(delayMs: number | ((url: string) => number), flight?: InFlight): Promise<HttpTestServer> {
  return startHttpServer((req, res) => {
    const leave = flight?.enter();
    res.on('close', () => leave?.());
    const d = typeof delayMs === 'number' ? delayMs : delayMs(req.url ?? '');
    setTimeout(() => {
      leave?.();
      res.end(`ok ${req.url}`);
    }, d);
  });
}

/** The I/O thread each origin runs on (deterministic for a thread count: a hash of the pool key). */
async function threadOf(servers: HttpTestServer[], ioThreads: number): Promise<number[]> {
  const probe = session({ ioThreads });
  await Promise.all(servers.map((s) => probe.request(s.url('/probe'))));
  const per = probe.stats({ perOrigin: true }).connections.perOrigin!;
  const out = servers.map((s) => per.find((o) => o.origin === `http://127.0.0.1:${s.port}`)?.thread ?? -1);
  await probe.close();
  for (const t of out) expect(t).toBeGreaterThanOrEqual(0);
  return out;
}

/** Starts servers until `perThread` of them run on each of 2 threads (bounded); returns [thread 0's, thread 1's]. */
async function serversOnBothThreads(perThread: number, delay: number | ((url: string) => number), flight?: InFlight) {
  const on: HttpTestServer[][] = [[], []];
  for (let tries = 0; tries < 40 && (on[0]!.length < perThread || on[1]!.length < perThread); tries++) {
    const s = await server(delay, flight);
    const [t] = await threadOf([s], 2);
    if (on[t!]!.length < perThread) on[t!]!.push(s);
  }
  expect(on[0]!.length).toBe(perThread);
  expect(on[1]!.length).toBe(perThread);
  // The probes' sockets are gone; what the tests count starts from here.
  for (const srv of [...on[0]!, ...on[1]!]) {
    await waitFor(() => srv.open === 0, 5_000, 'probe sockets closed');
    base.set(srv, { connections: srv.connections, closed: srv.closed });
  }
  return on as [HttpTestServer[], HttpTestServer[]];
}

const base = new Map<HttpTestServer, { connections: number; closed: number }>();
/** Sockets a server accepted since the probes. */
const accepted = (srv: HttpTestServer) => srv.connections - (base.get(srv)?.connections ?? 0);
/** Sockets of ours the server saw close since the probes. */
const closedAt = (srv: HttpTestServer) => srv.closed - (base.get(srv)?.closed ?? 0);

/** Samples stats().connections.open (and raw.open) every few ms until stop(); returns the highest. */
function sampleOpen(s: Session) {
  let max = 0;
  let maxWithRaw = 0;
  const t = setInterval(() => {
    const st = s.stats();
    max = Math.max(max, st.connections.open);
    maxWithRaw = Math.max(maxWithRaw, st.connections.open + st.raw.open);
  }, 3);
  return {
    stop() {
      clearInterval(t);
      return { max, maxWithRaw };
    },
  };
}

describe('ioThreads: one connections budget across threads', () => {
  it('2 threads, connections: 8, six origins on both threads: never more than 8 sockets, every request completes', async () => {
    const flight = new InFlight();
    const [t0, t1] = await serversOnBothThreads(3, 40, flight);
    const servers = [...t0, ...t1];
    const s = session({ ioThreads: 2, connections: 8, connectionsPerHost: 8 });
    const sampler = sampleOpen(s);
    const jobs = [];
    for (let i = 0; i < 12; i++) {
      for (const [k, srv] of servers.entries()) {
        jobs.push(s.request(srv.url(`/${k}/${i}`)).then((r) => [r.status, r.body.toString(), `ok /${k}/${i}`]));
      }
    }
    const results = await within(Promise.all(jobs), 30_000, '72 requests');
    const { max } = sampler.stop();
    for (const [status, body, want] of results) {
      expect(status).toBe(200);
      expect(body).toBe(want);
    }
    // Each thread alone would have let 8 origins' worth through: 16 at once over both.
    expect(flight.max).toBeLessThanOrEqual(8);
    expect(flight.max).toBeGreaterThanOrEqual(6); // the budget is used, not starved
    expect(max).toBeLessThanOrEqual(8);
    const st = s.stats();
    expect(st.requests).toMatchObject({ completed: 72, failed: 0, inFlight: 0 });
    expect(st.connections.open).toBeLessThanOrEqual(8);
    // Server side: at most 8 sockets of ours open at once (a closed one may be seen a moment late).
    let serverOpen = 0;
    for (const srv of servers) serverOpen += srv.open;
    expect(serverOpen).toBeLessThanOrEqual(8);
  });

  it('a key blocked on the total is served when a connection on the other thread frees (its idle socket closed for it)', async () => {
    const [[a], [b]] = await serversOnBothThreads(1, (url) => (url.startsWith('/slow') ? 400 : 5));
    const s = session({ ioThreads: 2, connections: 2 });
    const sampler = sampleOpen(s);
    const t = Date.now();
    const slow = [s.request(a!.url('/slow1')), s.request(a!.url('/slow2'))];
    await waitFor(() => accepted(a!) === 2, 5_000, 'two sockets to a');
    // b (the other thread) has no connection and the budget is full: it waits for a's.
    const bDone = s.request(b!.url('/x')).then(() => Date.now() - t);
    await sleep(100);
    expect(accepted(b!)).toBe(0);
    expect(s.stats().requests.queued).toBe(1);
    for (const r of await Promise.all(slow)) expect(r.status).toBe(200);
    const bAt = await within(bDone, 10_000, "b's request");
    expect(bAt).toBeGreaterThanOrEqual(350);
    // a's sockets went idle (warm, used): b, with nothing of its own, had one of them closed.
    await waitFor(() => closedAt(a!) >= 1, 5_000, "one of a's sockets closed for b");
    expect(accepted(b!)).toBe(1);
    expect(sampler.stop().max).toBeLessThanOrEqual(2);
  });

  it('a key with a connection of its own waits for an idle socket on the other thread to turn cold', async () => {
    const [[a], [b]] = await serversOnBothThreads(1, (url) => (url.startsWith('/slow') ? 3_000 : 5));
    const s = session({ ioThreads: 2, connections: 2 });
    await s.request(a!.url('/first')); // a's socket is idle from now (warm)
    const idleFrom = Date.now();
    const bSlow = s.request(b!.url('/slow'));
    await waitFor(() => accepted(b!) === 1, 5_000, 'b connected');
    const second = s.request(b!.url('/second')).then(() => Date.now() - idleFrom);
    // b has a (busy) connection of its own: a's warm socket is spared until it turns cold (1 s).
    await sleep(400);
    expect(closedAt(a!)).toBe(0);
    expect(accepted(b!)).toBe(1);
    const at = await within(second, 10_000, "b's second request");
    expect(at).toBeGreaterThanOrEqual(900);
    expect(at).toBeLessThan(2_900); // before b's own slow request could have freed its socket
    expect(closedAt(a!)).toBe(1);
    expect(accepted(b!)).toBe(2);
    expect((await bSlow).status).toBe(200);
  });

  it('raw sockets (main loop) and HTTP (I/O threads) share the budget; raw sockets count once in stats()', async () => {
    const echo = await startNetServer((sock) => {
      sock.on('error', () => {});
      sock.pipe(sock);
    });
    const [[a], [b]] = await serversOnBothThreads(1, 5);
    const s = session({ ioThreads: 2, connections: 3 });
    const raws = await Promise.all([0, 1, 2].map(() => within(connect({ host: '127.0.0.1', port: echo.port, session: s }), 5_000, 'raw connect')));
    cleanup.add(() => raws.forEach((r) => r.destroy()));
    let st = s.stats();
    expect(st.raw.open).toBe(3);
    expect(st.connections.open).toBe(0);
    // The whole budget is held by raw sockets: HTTP on either thread waits.
    let aDone = false;
    const ra = s.request(a!.url('/a')).then((r) => ((aDone = true), r));
    const rb = s.request(b!.url('/b'));
    await sleep(200);
    expect(aDone).toBe(false);
    expect(accepted(a!) + accepted(b!)).toBe(0);
    raws[0]!.destroy();
    raws[1]!.destroy();
    expect((await within(ra, 5_000, 'a after a raw socket closed')).status).toBe(200);
    expect((await within(rb, 5_000, 'b after a raw socket closed')).status).toBe(200);
    st = s.stats();
    expect(st.raw.open).toBe(1);
    expect(st.connections.open + st.raw.open).toBeLessThanOrEqual(3);
    // Now HTTP holds two idle keep-alive sockets and a raw one the third: another raw connect
    // has an idle HTTP socket on an I/O thread closed for it.
    const more = await within(connect({ host: '127.0.0.1', port: echo.port, session: s }), 5_000, 'raw connect over idle HTTP');
    cleanup.add(() => more.destroy());
    await waitFor(() => closedAt(a!) + closedAt(b!) === 1, 5_000, 'one idle HTTP socket closed for the raw connect');
    st = s.stats();
    expect(st.raw.open).toBe(2);
    expect(st.connections.open).toBe(1);
  });
});

describe('ioThreads: one DNS cache across threads', () => {
  it('a name resolved by one thread is a cache hit on the other, for requests and session.dns.lookup(); dns.clear() clears it for both', async () => {
    const name = 'shared.example.test';
    let calls = 0;
    const lookup = async () => {
      calls++;
      return [{ address: '127.0.0.1', family: 4 as const }];
    };
    // Two servers whose origins (same name, two ports) run on different threads.
    const on: HttpTestServer[][] = [[], []];
    for (let tries = 0; tries < 40 && (on[0]!.length === 0 || on[1]!.length === 0); tries++) {
      const srv = await server(5);
      const probe = session({ ioThreads: 2, dns: { lookup } });
      await probe.request(`http://${name}:${srv.port}/probe`);
      const t = probe.stats({ perOrigin: true }).connections.perOrigin!.find((o) => o.origin === `http://${name}:${srv.port}`)!.thread!;
      await probe.close();
      if (on[t]!.length === 0) on[t]!.push(srv);
    }
    const [a, b] = [on[0]![0]!, on[1]![0]!];
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    calls = 0;
    const s = session({ ioThreads: 2, dns: { lookup } });
    expect((await s.request(`http://${name}:${a.port}/x`)).body.toString()).toBe('ok /x'); // thread 0 resolves
    expect(calls).toBe(1);
    // thread 1: a hit (and no socket kept, so the request after the clear must connect again)
    expect((await s.request(`http://${name}:${b.port}/y`, { headers: { connection: 'close' } })).body.toString()).toBe('ok /y');
    expect(calls).toBe(1);
    expect(await s.dns.lookup(name)).toEqual([{ address: '127.0.0.1', family: 4 }]);
    expect(calls).toBe(1);
    let st = s.stats().dns;
    expect(st.entries).toBe(1); // one shared entry, not one per thread
    expect(st.lookups).toBe(1);
    expect(st.hits).toBeGreaterThanOrEqual(2);
    // A cleared name is resolved again, whichever thread asks first, and then cached for both.
    s.dns.clear(name);
    expect(s.stats().dns.entries).toBe(0);
    expect((await s.request(`http://${name}:${b.port}/z`)).status).toBe(200);
    expect(calls).toBe(2);
    await s.dns.lookup(name);
    expect(calls).toBe(2);
    st = s.stats().dns;
    expect(st.lookups).toBe(2);
  });
});
