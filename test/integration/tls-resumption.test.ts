// TLS session resumption against a real `openssl s_server` (Debian package openssl), which
// closes the connection after each response (-www answers HTTP/1.0), so every request makes a
// new TLS connection. The server's own status page says whether it resumed ("Reused, …" or
// "New, …"); uvfetch's res.tls.resumed and stats().tls must agree with it.
//
// TLS 1.2 sessions (ids or tickets) stay reusable for every later connection; TLS 1.3 tickets are
// single-use (RFC 8446 §C.4) and replaced by the tickets each handshake brings.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, closedPort, sessionFactory, sleep } from '../helpers/http-servers.js';
import { tlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.js';

const cleanup = new Cleanup();
const session = sessionFactory(cleanup);
afterEach(() => cleanup.run());

let fx: TlsFixtures;
let dir: string;
beforeAll(async () => {
  fx = await tlsFixtures();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uvfetch-resume-'));
  fs.writeFileSync(path.join(dir, 'cert.pem'), fx.server.cert);
  fs.writeFileSync(path.join(dir, 'key.pem'), fx.server.key);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Starts `openssl s_server -www` with `args` on a free loopback port; stopped by cleanup. */
async function sServer(args: string[]): Promise<number> {
  const port = await closedPort();
  const proc: ChildProcess = spawn(
    'openssl',
    ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', path.join(dir, 'cert.pem'), '-key', path.join(dir, 'key.pem'), '-www', '-quiet', ...args],
    { stdio: ['pipe', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  cleanup.add(() => {
    proc.kill('SIGKILL');
  });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return port;
    if (proc.exitCode !== null) break;
    await sleep(50);
  }
  throw new Error(`openssl s_server did not start: ${stderr}`);
}

/** What the server's status page says of the session: 'r' (Reused) or '.' (New). */
function serverSaw(page: string): string {
  if (/^Reused, /m.test(page)) return 'r';
  if (/^New, /m.test(page)) return '.';
  throw new Error(`no session line in the s_server page:\n${page.slice(0, 400)}`);
}

async function fiveInSequence(port: number, version: 'TLSv1.2' | 'TLSv1.3') {
  const s = session({ tls: { ca: fx.caPem } });
  let client = '';
  let server = '';
  for (let i = 0; i < 5; i++) {
    const res = await s.request(`https://localhost:${port}/`);
    expect(res.status).toBe(200);
    expect(res.tls!.protocol).toBe(version);
    client += res.tls!.resumed ? 'r' : '.';
    server += serverSaw(await res.text());
  }
  return { client, server, stats: s.stats() };
}

describe('TLS session resumption (openssl s_server)', () => {
  it('TLS 1.2 with session tickets: every reconnection resumes (.rrrr)', async () => {
    const port = await sServer(['-tls1_2']);
    const r = await fiveInSequence(port, 'TLSv1.2');
    expect(r.client).toBe('.rrrr');
    expect(r.server).toBe('.rrrr');
    expect(r.stats.tls).toEqual({ handshakes: 5, resumed: 4, failures: 0 });
    expect(r.stats.connections.created).toBe(5);
  });

  it('TLS 1.2 with session ids only (-no_ticket): every reconnection resumes (.rrrr)', async () => {
    const port = await sServer(['-tls1_2', '-no_ticket']);
    const r = await fiveInSequence(port, 'TLSv1.2');
    expect(r.client).toBe('.rrrr');
    expect(r.server).toBe('.rrrr');
    expect(r.stats.tls.resumed).toBe(4);
  });

  it('TLS 1.3 tickets: every reconnection resumes with a fresh ticket (.rrrr)', async () => {
    const port = await sServer(['-tls1_3', '-num_tickets', '1']);
    const r = await fiveInSequence(port, 'TLSv1.3');
    expect(r.client).toBe('.rrrr');
    expect(r.server).toBe('.rrrr');
    expect(r.stats.tls.resumed).toBe(4);
  });

  it('a TLS 1.2 session serves two connections opened at once; a TLS 1.3 ticket only one', async () => {
    const p12 = await sServer(['-tls1_2']);
    const p13 = await sServer(['-tls1_3', '-num_tickets', '1']);
    for (const [port, both] of [
      [p12, true],
      [p13, false],
    ] as const) {
      const s = session({ tls: { ca: fx.caPem }, connectionsPerHost: 2 });
      const first = await s.request(`https://localhost:${port}/`);
      expect(first.tls!.resumed).toBe(false);
      await first.text();
      // s_server serves one connection at a time; the second waits in its backlog.
      const pair = await Promise.all([s.request(`https://localhost:${port}/`), s.request(`https://localhost:${port}/`)]);
      const resumed = pair.map((r) => r.tls!.resumed);
      const saw = await Promise.all(pair.map(async (r) => serverSaw(await r.text())));
      expect(saw.map((c) => c === 'r')).toEqual(resumed);
      expect(resumed.filter(Boolean).length).toBe(both ? 2 : 1);
      expect(s.stats().connections.created).toBe(3);
    }
  });
});
