// The workload of `npm run test:leaks` (scripts/leak-check.sh): every native path that allocates —
// keep-alive and new connections, errors, aborts, streams, chunked and gzip bodies, TLS with
// resumption, a SOCKS5 tunnel, DNS through the cache, raw sockets (TCP and TLS, zero-copy read
// blocks, the socket budget, SocketPool) — then close, collect, and ask LeakSanitizer.
// Loopback servers only; bounded.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const { Session, connect, SocketPool } = await import('../dist/index.js');
const require = createRequire(import.meta.url);
const binding = require(process.env.UVFETCH_ADDON);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uvf-leak-'));
const ossl = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: 'ignore' });
fs.writeFileSync(path.join(dir, 'ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
ossl(
  'req',
  '-x509',
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:P-256',
  '-nodes',
  '-keyout',
  'ca.key',
  '-out',
  'ca.pem',
  '-days',
  '2',
  '-subj',
  '/CN=leak CA',
);
ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=localhost');
ossl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext');
const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8');

const gz = zlib.gzipSync(Buffer.alloc(100_000, 'x'));
const handler = (req, res) => {
  if (req.url === '/close') res.setHeader('connection', 'close');
  if (req.url === '/gzip') return res.writeHead(200, { 'content-encoding': 'gzip' }).end(gz);
  if (req.url === '/chunked') {
    res.write('a'.repeat(1000));
    return setImmediate(() => res.end('b'.repeat(1000)));
  }
  if (req.url === '/slow') return setTimeout(() => res.end('late'), 200);
  res.end('ok');
};
const plain = http.createServer(handler);
const secure = https.createServer({ key: read('srv.key'), cert: read('srv.pem') }, handler);
// A minimal SOCKS5 proxy (no auth).
const socks = net.createServer((c) => {
  c.once('data', () => {
    c.write(Buffer.from([5, 0]));
    c.once('data', (d) => {
      const port = d.readUInt16BE(d.length - 2);
      const up = net.connect(port, '127.0.0.1', () => {
        c.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
        up.pipe(c);
        c.pipe(up);
      });
      up.on('error', () => c.destroy());
      c.on('error', () => up.destroy());
    });
  });
});
const echo = net.createServer({ allowHalfOpen: true }, (c) => {
  c.on('error', () => {});
  c.pipe(c);
});
const tlsEcho = tls.createServer({ key: read('srv.key'), cert: read('srv.pem'), allowHalfOpen: true }, (c) => {
  c.on('error', () => {});
  c.pipe(c);
});
for (const s of [plain, secure, socks, echo, tlsEcho]) await new Promise((r) => s.listen(0, '127.0.0.1', r));
const E = echo.address().port;
const T = tlsEcho.address().port;
const P = plain.address().port;
const S = secure.address().port;
const X = socks.address().port;

const session = new Session({ connectionsPerHost: 8, tls: { ca: read('ca.pem') }, dns: { overrides: { 'leak.test': ['127.0.0.1'] } } });
const ignore = () => {};
for (let round = 0; round < 15; round++) {
  const jobs = [];
  for (let i = 0; i < 40; i++) {
    const p = ['/', '/close', '/gzip', '/chunked'][i % 4];
    jobs.push(session.request(`http://leak.test:${P}${p}`).catch(ignore));
    jobs.push(session.request(`https://localhost:${S}${p}`).catch(ignore));
  }
  jobs.push(session.request(`http://127.0.0.1:${P}/`, { proxy: `socks5://127.0.0.1:${X}` }).catch(ignore));
  jobs.push(session.request(`https://localhost:${S}/`, { proxy: `socks5://127.0.0.1:${X}` }).catch(ignore));
  jobs.push(session.request('http://127.0.0.1:1/').catch(ignore)); // refused
  jobs.push(session.request(`http://127.0.0.1:${P}/slow`, { timeout: { headers: 20 } }).catch(ignore)); // timeout
  const ac = new AbortController();
  jobs.push(session.request(`https://localhost:${S}/slow`, { signal: ac.signal }).catch(ignore));
  setTimeout(() => ac.abort(), 5);
  const st = await session.stream(`http://127.0.0.1:${P}/chunked`);
  for await (const _ of st.body) break; // abandon a stream half-read
  await Promise.all(jobs);
}

// Raw sockets: small and bulk echoes (reads of 16 KiB+ are handed over as engine blocks), TLS,
// half-close, a socket dropped with unread data, destroy mid-stream, refused and aborted
// connects, connects waiting for room under `connections`, a SocketPool.
const rawSession = new Session({ connections: 4, tls: { ca: read('ca.pem') } });
const big = Buffer.alloc(512 * 1024, 0x61);
let rawEchoed = 0;
const drain = (s) =>
  new Promise((r) => {
    s.on('data', (d) => (rawEchoed += d.length));
    s.once('close', r);
  });
for (let round = 0; round < 5; round++) {
  const jobs = [];
  for (let i = 0; i < 6; i++) {
    const useTls = i % 2 === 1;
    jobs.push(
      connect({ host: '127.0.0.1', port: useTls ? T : E, session: rawSession, ...(useTls ? { tls: true, servername: 'localhost' } : {}) })
        .then(async (s) => {
          s.on('error', ignore);
          const done = drain(s);
          s.write('ping');
          if (i < 4)
            s.end(big); // half-close after a bulk write; the echo comes back, then the end
          else setTimeout(() => s.destroy(), 5); // destroyed mid-stream
          await done;
        })
        .catch(ignore),
    );
  }
  // Read nothing: its buffered chunks (engine blocks among them) are collected with it.
  jobs.push(
    connect({ host: '127.0.0.1', port: E, session: rawSession })
      .then((s) => {
        s.on('error', ignore);
        s.write(big);
        setTimeout(() => s.destroy(), 20);
      })
      .catch(ignore),
  );
  jobs.push(connect({ host: '127.0.0.1', port: 1, session: rawSession }).catch(ignore)); // refused
  const ac = new AbortController();
  jobs.push(
    connect({ host: '127.0.0.1', port: E, session: rawSession, signal: ac.signal })
      .then((s) => s.destroy())
      .catch(ignore),
  );
  ac.abort();
  const pool = new SocketPool({ connect: { host: '127.0.0.1', port: E, session: rawSession }, max: 2 });
  for (let i = 0; i < 4; i++) {
    jobs.push(
      pool
        .acquire()
        .then((s) => {
          s.write('x');
          setTimeout(() => pool.release(s), 2);
        })
        .catch(ignore),
    );
  }
  await Promise.all(jobs);
  await pool.close({ force: true });
}
await rawSession.close();
// The raw part must really have run: 4 half-closed sockets per round echo 'ping' + 512 KiB.
if (rawEchoed < 5 * 4 * big.length) {
  console.log(`leak-check: the raw socket workload did not run (${rawEchoed} bytes echoed)`);
  process.exit(1);
}
await session.close();
for (const s of [plain, secure, socks, echo, tlsEcho]) {
  s.closeAllConnections?.();
  await new Promise((r) => s.close(r));
}
fs.rmSync(dir, { recursive: true, force: true });
for (let i = 0; i < 5; i++) {
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 50));
}
const leaked = binding.leakCheck ? binding.leakCheck(process.env.UVF_LEAK_SELFTEST === '1') : -1;
console.log(`leak-check: done (LeakSanitizer ${leaked === -1 ? 'unavailable' : leaked ? 'reported leaks' : 'found no leaks'})`);
