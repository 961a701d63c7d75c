// Crawl benchmark: many HTTPS origins, a bounded number of requests in flight, against a real
// nginx (one worker) that recycles connections and sends TLS 1.3 session tickets — the workload
// uvfetch exists for. Each origin has its own loopback address (127.0.1.x, mapped by each
// client's own DNS path), all served by one certificate from a test CA.
//
//   node bench/crawl.mjs [--requests 30000] [--origins 100] [--inflight 256] [--per-host 8]
//                        [--connections 256,1024] [--clients uvfetch,undici] [--rounds 1]
//                        [--tickets 2] [--keepalive-requests 100] [--json]
//
// Printed per client: requests/s, connections the server accepted during the run, connections
// that carried at least one request ("used", from nginx's access log), connections that never did
// ("unused"), resumed TLS handshakes (of the used ones), idle connections uvfetch closed to make
// room for another origin under its total limit (stats().connections.evicted), and errors. uvfetch runs once per
// `--connections` value (its total connection limit); undici's Agent has no total limit.
// CRAWL_UVFETCH_HTTP2=0 runs uvfetch with `http2: false` (it offers h2 by ALPN by default; this
// nginx answers http/1.1 either way).
//
// Needs nginx (Debian: nginx-light or nginx), openssl, the compiled TypeScript (dist/) and the
// addon. The server is pinned to the last CPU and each client to CPU 0 when taskset exists.

import { execFileSync, spawn, fork } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect } from 'node:net';

const CHILD = '--crawl-bench-child';

function fail(msg) {
  process.stderr.write(`bench:crawl: ${msg}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// The crawl itself: a deterministic mix of origins (a crawl frontier interleaves hosts).

function* crawlUrls(n, origins, port) {
  let x = 2463534242; // xorshift32: the same order for every client
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const h = x % origins;
    yield `https://h${h}.crawl.test:${port}/page/${i}`;
  }
}

function hostMap(origins) {
  const m = {};
  for (let h = 0; h < origins; h++) m[`h${h}.crawl.test`] = `127.0.1.${h + 1}`;
  return m;
}

async function runInflight(urls, inflight, fetchOne) {
  let ok = 0;
  let errors = 0;
  const codes = {};
  const it = urls[Symbol.iterator]();
  async function lane() {
    for (;;) {
      const next = it.next();
      if (next.done) return;
      try {
        await fetchOne(next.value);
        ok++;
      } catch (e) {
        errors++;
        const c = e?.code ?? e?.cause?.code ?? e?.name ?? 'error';
        codes[c] = (codes[c] ?? 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: inflight }, lane));
  return { ok, errors, codes };
}

async function child(cfg) {
  const ca = readFileSync(cfg.caFile, 'utf8');
  const hosts = hostMap(cfg.origins);
  const urls = crawlUrls(cfg.requests, cfg.origins, cfg.port);
  let stats = null;
  let run;
  let close = async () => {};
  if (cfg.client === 'uvfetch') {
    const { Session } = await import(new URL('../dist/index.js', import.meta.url));
    const session = new Session({
      connections: cfg.connections,
      connectionsPerHost: cfg.perHost,
      tls: { ca },
      dns: { overrides: hosts },
      ...(process.env.CRAWL_UVFETCH_HTTP2 === '0' ? { http2: false } : {}),
    });
    run = () =>
      runInflight(urls, cfg.inflight, async (u) => {
        const res = await session.request(u);
        if (res.status !== 200) throw Object.assign(new Error('status'), { code: `HTTP_${res.status}` });
      });
    close = async () => {
      const s = session.stats();
      stats = { created: s.connections.created, reused: s.connections.reused, evicted: s.connections.evicted, tlsResumed: s.tls.resumed };
      await session.close();
    };
  } else if (cfg.client === 'undici') {
    const { Agent, request } = await import('undici');
    const dns = await import('node:dns');
    const agent = new Agent({
      connections: cfg.perHost,
      pipelining: 1,
      connect: {
        ca,
        lookup(hostname, opts, cb) {
          const a = hosts[hostname];
          if (a === undefined) return dns.lookup(hostname, opts, cb);
          if (opts?.all) cb(null, [{ address: a, family: 4 }]);
          else cb(null, a, 4);
        },
      },
    });
    run = () =>
      runInflight(urls, cfg.inflight, async (u) => {
        const res = await request(u, { dispatcher: agent });
        await res.body.arrayBuffer();
        if (res.statusCode !== 200) throw Object.assign(new Error('status'), { code: `HTTP_${res.statusCode}` });
      });
    close = () => agent.close();
  } else {
    throw new Error(`unknown client ${cfg.client}`);
  }
  const t0 = process.hrtime.bigint();
  const r = await run();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await close();
  process.send({ ...r, secs, stats });
}

// ---------------------------------------------------------------------------------------------
// The server: nginx, one worker, one listen socket per origin address.

function makeCertificate(dir) {
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const cnf = join(dir, 'ext.cnf');
  writeFileSync(cnf, 'subjectAltName=DNS:*.crawl.test\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key');
  run(
    'req',
    '-new',
    '-x509',
    '-key',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=uvfetch crawl bench CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'server.key');
  run('req', '-new', '-key', 'server.key', '-out', 'server.csr', '-subj', '/CN=crawl.test');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', cnf);
}

function freePort() {
  return new Promise((resolve, reject) => {
    import('node:net').then(({ createServer }) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.1.1', () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
  });
}

function nginxConfig(dir, o) {
  const listens = [];
  for (let h = 0; h < o.origins; h++) listens.push(`    listen 127.0.1.${h + 1}:${o.port} ssl;`);
  return `worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; multi_accept on; }
worker_rlimit_nofile 16384;
http {
  log_format crawl '$connection $ssl_session_reused';
  access_log ${dir}/access.log crawl buffer=256k;
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp;
  fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp;
  scgi_temp_path ${dir}/tmp;
  keepalive_requests ${o.keepaliveRequests};
  keepalive_timeout 30s;
  server {
${listens.join('\n')}
    server_name *.crawl.test;
    ssl_certificate ${dir}/server.pem;
    ssl_certificate_key ${dir}/server.key;
    ssl_protocols TLSv1.3;
    ssl_session_tickets on;
    ssl_session_cache off;
    ssl_conf_command NumTickets ${o.tickets};
    location / { default_type text/plain; return 200 "crawled\\n"; }
  }
  server {
    listen 127.0.0.1:${o.statusPort};
    location = /status { stub_status; access_log off; }
  }
}
`;
}

async function startNginx(o) {
  const dir = mkdtempSync(join(tmpdir(), 'uvfetch-crawl-'));
  execFileSync('mkdir', ['-p', join(dir, 'tmp')]);
  makeCertificate(dir);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(dir, o));
  const cpus = availableParallelism();
  const hasTaskset = existsSync('/usr/bin/taskset');
  const cmd = hasTaskset && cpus > 1 ? 'taskset' : 'nginx';
  const args = hasTaskset && cpus > 1 ? ['-c', String(cpus - 1), 'nginx', '-c', conf, '-p', dir] : ['-c', conf, '-p', dir];
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  for (let i = 0; i < 100; i++) {
    if (await canConnect(o.statusPort)) return { dir, proc };
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error(`nginx did not start: ${stderr || readFileSync(join(dir, 'error.log'), 'utf8')}`);
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function accepted(statusPort) {
  const res = await fetch(`http://127.0.0.1:${statusPort}/status`);
  const text = await res.text();
  const m = /\n\s*(\d+)\s+(\d+)\s+(\d+)/.exec(text);
  if (!m) throw new Error(`unexpected stub_status: ${text}`);
  return Number(m[1]);
}

/** Flushes nginx's buffered access log (USR1 reopens the logs) and reads what this run added. */
async function logSince(dir, offset) {
  const log = join(dir, 'access.log');
  execFileSync('kill', ['-USR1', String(readFileSync(join(dir, 'nginx.pid'), 'utf8').trim())]);
  await new Promise((r) => setTimeout(r, 300));
  const size = statSync(log).size;
  const text = readFileSync(log, 'utf8').slice(offset);
  return { size, text };
}

function summarize(text) {
  const used = new Map();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [conn, reused] = line.split(' ');
    if (!used.has(conn)) used.set(conn, reused === 'r');
  }
  let resumed = 0;
  for (const r of used.values()) if (r) resumed++;
  return { used: used.size, resumed };
}

function runClient(cfg) {
  return new Promise((resolve, reject) => {
    const cpus = availableParallelism();
    const file = fileURLToPath(import.meta.url);
    const hasTaskset = existsSync('/usr/bin/taskset') && cpus > 1;
    const p = hasTaskset
      ? spawn('taskset', ['-c', '0', process.execPath, file, CHILD, JSON.stringify(cfg)], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
      : fork(file, [CHILD, JSON.stringify(cfg)]);
    let result = null;
    p.on('message', (m) => (result = m));
    p.on('exit', (code) => (result ? resolve(result) : reject(new Error(`${cfg.client} child exited with ${code}`))));
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string' },
      origins: { type: 'string' },
      inflight: { type: 'string' },
      'per-host': { type: 'string' },
      connections: { type: 'string' },
      clients: { type: 'string' },
      rounds: { type: 'string' },
      tickets: { type: 'string' },
      'keepalive-requests': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const int = (name, def, min, max = Infinity) => {
    const v = values[name];
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be an integer from ${min} to ${max}, got '${v}'`);
    return n;
  };
  const o = {
    requests: int('requests', 30_000, 1),
    origins: int('origins', 100, 1, 250),
    inflight: int('inflight', 256, 1),
    perHost: int('per-host', 8, 1),
    rounds: int('rounds', 1, 1),
    tickets: int('tickets', 2, 0, 10),
    keepaliveRequests: int('keepalive-requests', 100, 1),
  };
  const conns = (values.connections ?? '256,1024').split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) fail(`--connections takes integers, got '${s}'`);
    return n;
  });
  const clients = (values.clients ?? 'uvfetch,undici').split(',');
  for (const c of clients) if (c !== 'uvfetch' && c !== 'undici') fail(`unknown client '${c}'`);
  o.port = await freePort();
  o.statusPort = await freePort();
  const server = await startNginx(o);
  const runs = [];
  for (const c of clients) {
    if (c === 'uvfetch') for (const n of conns) runs.push({ client: 'uvfetch', connections: n, label: `uvfetch (connections ${n})` });
    else runs.push({ client: c, label: 'undici Agent' });
  }
  const results = new Map();
  let logOffset = 0;
  try {
    for (let round = 0; round < o.rounds; round++) {
      for (const r of runs) {
        const before = await accepted(o.statusPort);
        const res = await runClient({ ...o, ...r, caFile: join(server.dir, 'ca.pem') });
        await new Promise((x) => setTimeout(x, 200));
        const after = await accepted(o.statusPort);
        const log = await logSince(server.dir, logOffset);
        logOffset = log.size;
        const s = summarize(log.text);
        const opened = after - before - 1; // the stub_status request's own connection
        const row = {
          client: r.label,
          rps: res.ok / res.secs,
          ok: res.ok,
          errors: res.errors,
          errorCodes: res.codes,
          opened,
          used: s.used,
          unused: Math.max(0, opened - s.used),
          unusedPct: opened > 0 ? (100 * Math.max(0, opened - s.used)) / opened : 0,
          resumed: s.resumed,
          clientStats: res.stats,
        };
        if (!results.has(r.label)) results.set(r.label, []);
        results.get(r.label).push(row);
      }
    }
  } finally {
    server.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    rmSync(server.dir, { recursive: true, force: true });
  }
  const med = (rows) => [...rows].sort((a, b) => a.rps - b.rps)[Math.floor(rows.length / 2)];
  const table = [...results.values()].map(med);
  const undici = table.find((r) => r.client === 'undici Agent');
  for (const r of table) r.ratioToUndici = undici ? r.rps / undici.rps : null;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ config: o, results: table }, null, 2)}\n`);
    return;
  }
  console.log(
    `crawl: ${o.requests} requests over ${o.origins} https origins, ${o.inflight} in flight, ${o.perHost} per host; ` +
      `nginx 1 worker, TLS 1.3, ${o.tickets} ticket(s), keepalive_requests ${o.keepaliveRequests}` +
      (o.rounds > 1 ? ` (median of ${o.rounds} rounds)` : ''),
  );
  const pad = (s, n) => String(s).padStart(n);
  console.log(
    `${'client'.padEnd(28)}${pad('req/s', 10)}${pad('× undici', 10)}${pad('opened', 8)}${pad('used', 7)}${pad('unused', 14)}${pad('resumed', 9)}${pad('evicted', 9)}${pad('errors', 8)}`,
  );
  for (const r of table) {
    console.log(
      `${r.client.padEnd(28)}${pad(Math.round(r.rps), 10)}${pad(r.ratioToUndici ? r.ratioToUndici.toFixed(2) : '-', 10)}` +
        `${pad(r.opened, 8)}${pad(r.used, 7)}${pad(`${r.unused} (${r.unusedPct.toFixed(1)}%)`, 14)}${pad(r.resumed, 9)}` +
        `${pad(r.clientStats?.evicted ?? '-', 9)}${pad(r.errors, 8)}` +
        (r.errors ? `  ${JSON.stringify(r.errorCodes)}` : ''),
    );
  }
}

if (process.argv[2] === CHILD) {
  child(JSON.parse(process.argv[3])).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => fail(e.stack ?? String(e)));
}
