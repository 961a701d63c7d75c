// The workload of `npm run test:leaks` (scripts/leak-check.sh): every native path that allocates —
// keep-alive and new connections, errors, aborts, streams, chunked and gzip bodies, TLS with
// resumption, a SOCKS5 tunnel, DNS through the cache — then close, collect, and ask LeakSanitizer.
// Loopback servers only; bounded.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const { Session } = await import('../dist/index.js');
const require = createRequire(import.meta.url);
const binding = require(process.env.UVFETCH_ADDON);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uvf-leak-'));
const ossl = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: 'ignore' });
fs.writeFileSync(path.join(dir, 'ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=leak CA');
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
for (const s of [plain, secure, socks]) await new Promise((r) => s.listen(0, '127.0.0.1', r));
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
await session.close();
for (const s of [plain, secure, socks]) {
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
