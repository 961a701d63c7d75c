// How connections use a host's addresses: rotation for new connections, failover to the next
// address on a refused connect, Happy Eyeballs (IPv6 first, IPv4 raced after the delay; a v6
// listener whose backlog is full black-holes the SYN, deterministically, on loopback), the
// 'records' resolver against a DNS server started here, and the default system resolver.
// Every address is 127.0.0.1, 127.0.0.2 or ::1; every server is started by the test.
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, rejection, sessionFactory, sleep, waitFor, within } from '../helpers/http-servers.js';
import { connect } from '../../lib/index.js';
import { startDnsServer } from '../helpers/dns-server.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const session = sessionFactory(cleanup);

interface Named {
  port: number;
  hits: number;
  connections: number;
}

/** node:http on host:port (port 0 = any) answering with its own address; Connection: close. */
async function serve(host: string, port = 0): Promise<Named> {
  const s: Named = { port: 0, hits: 0, connections: 0 };
  const server = http.createServer((req, res) => {
    s.hits++;
    res.setHeader('connection', 'close');
    res.end(req.socket.localAddress);
  });
  server.on('connection', (sock) => {
    s.connections++;
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  s.port = (server.address() as net.AddressInfo).port;
  cleanup.add(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return s;
}

/** Two servers on the same port: 127.0.0.1 and `other` (retries until a port is free on both). */
async function pair(other: string): Promise<[Named, Named]> {
  for (let i = 0; i < 20; i++) {
    const a = await serve('127.0.0.1');
    try {
      return [a, await serve(other, a.port)];
    } catch {
      // taken on the other address: try another port
    }
  }
  throw new Error('no common port');
}

/**
 * A listener on [::1]:port that never accepts (its process is blocked) with a full backlog:
 * further SYNs are dropped, so connecting there hangs. Returns the port.
 */
async function blackHole6(port = 0): Promise<number> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('net').createServer(() => {});
       s.on('error', (e) => { process.stdout.write('ERR\\n'); process.exit(1); });
       s.listen({ host: '::1', port: ${port}, backlog: 1 }, () => {
         process.stdout.write(s.address().port + '\\n');
         setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000), 50);
       });`,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  cleanup.add(() => child.kill('SIGKILL'));
  const line = await within(new Promise<string>((r) => child.stdout!.once('data', (d) => r(String(d).trim()))), 5_000, 'black hole');
  if (line === 'ERR') throw new Error('port taken');
  const p = Number(line);
  await sleep(150); // its loop is blocked from here on
  // Fill the accept queue (backlog 1 holds 2 on Linux); these are never accepted.
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const c = net.connect({ host: '::1', port: p });
    c.on('error', () => {});
    fillers.push(c);
    await within(new Promise((r) => c.once('connect', r)), 2_000, 'filling the backlog');
  }
  cleanup.add(() => fillers.forEach((c) => c.destroy()));
  // Check: one more connect must hang.
  const probe = net.connect({ host: '::1', port: p });
  probe.on('error', () => {});
  const got = await Promise.race([new Promise((r) => probe.once('connect', () => r('connected'))), sleep(300).then(() => 'hang')]);
  probe.destroy();
  if (got !== 'hang') throw new Error('the black hole accepted a connection');
  return p;
}

/** An HTTP server on 127.0.0.1 and a black hole on [::1], same port. */
async function dualWithBlackHole6(): Promise<Named> {
  for (let i = 0; i < 20; i++) {
    const v4 = await serve('127.0.0.1');
    try {
      await blackHole6(v4.port);
      return v4;
    } catch {
      // port taken on ::1
    }
  }
  throw new Error('no common port');
}

describe('address rotation and failover', () => {
  it('new connections rotate across a name’s addresses (override with two loopback addresses)', async () => {
    const [a, b] = await pair('127.0.0.2');
    const s = session({ dns: { overrides: { 'two.test': ['127.0.0.1', '127.0.0.2'] } } });
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push(await (await s.request(`http://two.test:${a.port}/`)).text());
    expect(seen).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.1', '127.0.0.2', '127.0.0.1', '127.0.0.2']);
    expect([a.hits, b.hits]).toEqual([3, 3]);
  });

  it('rotation also applies to cached resolver answers', async () => {
    const [a, b] = await pair('127.0.0.2');
    let calls = 0;
    const s = session({
      dns: {
        lookup: async () => {
          calls++;
          return [{ address: '127.0.0.1' }, { address: '127.0.0.2' }];
        },
      },
    });
    for (let i = 0; i < 4; i++) await s.request(`http://cached.test:${a.port}/`);
    expect(calls).toBe(1);
    expect([a.hits, b.hits]).toEqual([2, 2]);
  });

  it('a refused address fails over to the next one', async () => {
    const a = await serve('127.0.0.1'); // nothing on 127.0.0.2 at this port: refused
    const s = session({ dns: { overrides: { 'half.test': ['127.0.0.2', '127.0.0.1'] } } });
    const res = await s.request(`http://half.test:${a.port}/`);
    expect(await res.text()).toBe('127.0.0.1');
    expect(s.stats().connections.created).toBe(1);
  });

  it('every address refusing fails with ERR_CONNECTION_REFUSED', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const s = session({ dns: { overrides: { 'none.test': ['127.0.0.2', '127.0.0.1', '::1'] } } });
    const e = await rejection(s.request(`http://none.test:${port}/`));
    expect(e.code).toBe('ERR_CONNECTION_REFUSED');
  });
});

describe('Happy Eyeballs', () => {
  it('IPv6 first: with both families up, the connection goes to ::1 even when IPv4 is listed first', async () => {
    const [v4, v6] = await pair('::1');
    const s = session({ dns: { overrides: { 'both.test': ['127.0.0.1', '::1'] } } });
    expect(await (await s.request(`http://both.test:${v4.port}/`)).text()).toBe('::1');
    expect([v4.connections, v6.connections]).toEqual([0, 1]);
  });

  it('IPv6 black-holed: IPv4 is raced after happyEyeballsDelay and wins; the loser is closed', async () => {
    const v4 = await dualWithBlackHole6();
    const s = session({ dns: { overrides: { 'dual.test': ['127.0.0.1', '::1'] }, happyEyeballsDelay: 200 }, timeout: { connect: 5_000 } });
    const t0 = Date.now();
    const res = await s.request(`http://dual.test:${v4.port}/`);
    const took = Date.now() - t0;
    expect(await res.text()).toBe('127.0.0.1');
    expect(took).toBeGreaterThanOrEqual(190); // IPv6 was tried first, for the delay
    expect(took).toBeLessThan(2_000); // and not until the connect timeout
    expect(v4.connections).toBe(1);
    await sleep(50);
    const c = s.stats().connections;
    expect(c.connecting).toBe(0);
    expect(c.open).toBe(0); // Connection: close; the racing v6 attempt is gone too
  });

  it('the delay is honoured: a shorter delay connects sooner', async () => {
    const v4 = await dualWithBlackHole6();
    const s = session({ dns: { overrides: { 'quick.test': ['::1', '127.0.0.1'] }, happyEyeballsDelay: 30 } });
    const t0 = Date.now();
    await s.request(`http://quick.test:${v4.port}/`);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(25);
    expect(took).toBeLessThan(1_000); // far from the 10 s connect timeout the black hole would take
  });

  it('a racing attempt that is refused is closed; the next address of the other family races after another delay', async () => {
    const v4 = await dualWithBlackHole6(); // 127.0.0.2 refuses at this port
    const s = session({ dns: { overrides: { 'three.test': ['::1', '127.0.0.2', '127.0.0.1'] }, happyEyeballsDelay: 100 } });
    const t0 = Date.now();
    expect(await (await s.request(`http://three.test:${v4.port}/`)).text()).toBe('127.0.0.1');
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(190); // ::1 hangs; 127.0.0.2 raced at 100 ms and refused; 127.0.0.1 at ~200 ms
    expect(took).toBeLessThan(2_000);
  });

  it('every raced attempt failing ends in the connect timeout (no leak, close is prompt)', async () => {
    const p = await blackHole6(); // nothing listens on 127.0.0.1 at this port
    const s = session({ dns: { overrides: { 'lost.test': ['::1', '127.0.0.1'] }, happyEyeballsDelay: 50 }, timeout: { connect: 300 } });
    const e = await rejection(s.request(`http://lost.test:${p}/`));
    expect(e.code).toBe('ERR_CONNECT_TIMEOUT');
    await within(s.close(), 2_000, 'close');
  });

  it('happyEyeballsDelay: 0 tries one address at a time: a black-holed IPv6 then runs into the connect timeout', async () => {
    const v4 = await dualWithBlackHole6();
    const s = session({ dns: { overrides: { 'seq.test': ['127.0.0.1', '::1'] }, happyEyeballsDelay: 0 }, timeout: { connect: 300 } });
    const e = await rejection(s.request(`http://seq.test:${v4.port}/`));
    expect(e.code).toBe('ERR_CONNECT_TIMEOUT');
    expect(v4.connections).toBe(0);
  });

  it('family: 4 never tries IPv6', async () => {
    const v4 = await dualWithBlackHole6();
    const s = session({ dns: { overrides: { 'four.test': ['::1', '127.0.0.1'] }, family: 4, happyEyeballsDelay: 0 } });
    const t0 = Date.now();
    expect(await (await s.request(`http://four.test:${v4.port}/`)).text()).toBe('127.0.0.1');
    expect(Date.now() - t0).toBeLessThan(1_000); // no wait on the black-holed ::1 (the delay, or the 10 s timeout)
  });

  it('a black-holed IPv6 with only IPv6 addresses fails with the connect timeout, promptly closed', async () => {
    const p = await blackHole6();
    const s = session({ dns: { overrides: { 'six.test': ['::1'] } }, timeout: { connect: 200 } });
    const e = await rejection(s.request(`http://six.test:${p}/`));
    expect(e.code).toBe('ERR_CONNECT_TIMEOUT');
    await within(s.close(), 2_000, 'close');
  });
});

describe('raw sockets: the same dialing', () => {
  it('IPv6 black-holed: a raw connect races IPv4 after happyEyeballsDelay and wins; the loser is closed', async () => {
    const v4 = await dualWithBlackHole6();
    const s = session({ dns: { overrides: { 'rawdual.test': ['127.0.0.1', '::1'] }, happyEyeballsDelay: 200 } });
    const t0 = Date.now();
    const sock = await within(connect({ host: 'rawdual.test', port: v4.port, session: s, timeout: 5_000 }), 5_000, 'raw connect');
    const took = Date.now() - t0;
    expect(sock.remoteAddress).toBe('127.0.0.1');
    expect(took).toBeGreaterThanOrEqual(190); // IPv6 first, for the delay
    expect(took).toBeLessThan(2_000); // not the connect timeout
    sock.destroy();
    await new Promise((r) => sock.once('close', r));
    expect(s.stats().raw.open).toBe(0); // the losing IPv6 attempt is closed too
    await within(s.close(), 2_000, 'close');
  });

  it('a refused address fails over to the next one; every attempt failing ends in the connect timeout', async () => {
    const a = await serve('127.0.0.1'); // nothing on 127.0.0.2 at this port: refused
    const s = session({ dns: { overrides: { 'rawhalf.test': ['127.0.0.2', '127.0.0.1'] } } });
    const sock = await within(connect({ host: 'rawhalf.test', port: a.port, session: s }), 5_000, 'raw connect');
    expect(sock.remoteAddress).toBe('127.0.0.1');
    sock.destroy();
    const p = await blackHole6(); // nothing listens on 127.0.0.1 at this port
    const s2 = session({ dns: { overrides: { 'rawlost.test': ['::1', '127.0.0.1'] }, happyEyeballsDelay: 50 } });
    const e = await rejection(connect({ host: 'rawlost.test', port: p, session: s2, timeout: 300 }));
    expect(e.code).toBe('ERR_CONNECT_TIMEOUT');
    await waitFor(() => s2.stats().raw.open === 0, 2_000, 'both attempts closed');
    await within(s2.close(), 2_000, 'close');
  });

  it('aborting a raw connect while the race is on closes both attempts', async () => {
    const p = await blackHole6();
    const s = session({ dns: { overrides: { 'rawabort.test': ['::1', '127.0.0.1'] }, happyEyeballsDelay: 30 } });
    const ac = new AbortController();
    const pending = connect({ host: 'rawabort.test', port: p, session: s, signal: ac.signal, timeout: 5_000 });
    await sleep(100); // ::1 hangs; 127.0.0.1 refused at ~30 ms; no address left to race
    ac.abort();
    const e = await rejection(pending);
    expect(e.code).toBe('ERR_ABORTED');
    await within(s.close(), 2_000, 'close');
    expect(s.stats().raw.open).toBe(0);
  });
});

describe("resolver: 'records'", () => {
  it('queries A records from the configured server and honours their TTL', async () => {
    const dns = await startDnsServer();
    cleanup.add(() => dns.close());
    const srv = await serve('127.0.0.1');
    dns.records.set('rec.test', [{ address: '127.0.0.1', ttl: 1 }]);
    const s = session({ dns: { resolver: 'records', servers: [`127.0.0.1:${dns.port}`], ttl: 60_000 } });
    expect(await (await s.request(`http://rec.test:${srv.port}/`)).text()).toBe('127.0.0.1');
    expect(await (await s.request(`http://rec.test:${srv.port}/`)).text()).toBe('127.0.0.1'); // new connection, cached name
    expect(dns.aQueries('rec.test')).toBe(1);
    await sleep(1_100); // the record's TTL (1 s), not dns.ttl (60 s)
    dns.records.set('rec.test', [{ address: '127.0.0.2', ttl: 1 }]);
    expect(await s.dns.lookup('rec.test')).toEqual([{ address: '127.0.0.2', family: 4 }]);
    expect(dns.aQueries('rec.test')).toBe(2);
  });

  it('clamps record TTLs with maxTtl and reports NXDOMAIN as ERR_DNS_NOT_FOUND', async () => {
    const dns = await startDnsServer();
    cleanup.add(() => dns.close());
    dns.records.set('long.test', [{ address: '127.0.0.1', ttl: 3600 }]);
    const s = session({ dns: { resolver: 'records', servers: [`127.0.0.1:${dns.port}`], maxTtl: 150 } });
    await s.dns.lookup('long.test');
    await s.dns.lookup('long.test');
    expect(dns.aQueries('long.test')).toBe(1);
    await sleep(200);
    await s.dns.lookup('long.test');
    expect(dns.aQueries('long.test')).toBe(2);
    const e = await rejection(s.request('http://nx.test/'));
    expect(e.code).toBe('ERR_DNS_NOT_FOUND');
    expect(await s.dns.lookup('long.test', 4)).toEqual([{ address: '127.0.0.1', family: 4 }]);
  });
});

describe("resolver: 'system' (default)", () => {
  it('resolves localhost through getaddrinfo, once', async () => {
    const srv = await serve('127.0.0.1');
    const s = session();
    const addrs = await s.dns.lookup('localhost');
    expect(addrs.length).toBeGreaterThan(0);
    for (const a of addrs) expect(['127.0.0.1', '::1']).toContain(a.address);
    expect(await (await s.request(`http://localhost:${srv.port}/`)).text()).toBe('127.0.0.1');
    expect(await (await s.request(`http://LOCALHOST:${srv.port}/`)).text()).toBe('127.0.0.1');
    expect(s.stats().dns).toMatchObject({ lookups: 1, misses: 1, hits: 2 });
  });
});
