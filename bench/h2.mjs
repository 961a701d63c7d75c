// HTTP/2 benchmark: uvfetch over h2 against undici (allowH2), node:http2, h2load (the C ceiling)
// and uvfetch over HTTP/1.1, side by side in one run, against one TLS server on 127.0.0.1.
//
//   npm run bench:h2 -- [--scenario h2-c100,h2-16k-c100] [--clients LIST] [--streams 100]
//                       [--duration 2] [--warmup 0.5] [--rounds 3] [--server auto|h2o|nghttpd]
//                       [--no-pin] [--quick] [--json] [--help]
//
// Scenarios: h2-c100 (13 B bodies) and h2-16k-c100 (16 KiB bodies), --streams (100) requests in
// flight. Clients (--clients, comma-separated; default all):
//   uvfetch-h2   new Session({ http2: true, h2: { maxStreamsPerConnection: 100 }, connectionsPerHost: 1 })
//   undici-h2    undici 7 request() with new Agent({ allowH2: true, connections: 1, pipelining: 100 })
//                (undici lets one h2 connection carry `pipelining` streams; its maxConcurrentStreams
//                default is 100)
//   node-http2   one node:http2 ClientHttp2Session, session.request() per stream
//   h2load       h2load -c1 -m100 -t1 (nghttp2-client), the C ceiling
//   uvfetch-h1   new Session({ http2: false, connectionsPerHost: 100 }): 100 HTTP/1.1 connections
// Every Node client trusts the bench's own test CA (openssl, fresh per run) through an explicit
// `ca` option, reads every body fully into memory and checks status 200 and the body's length.
// Each client proves the protocol it was meant to speak: uvfetch rows check res.info.httpVersion
// on every response ('2' or '1.1'), undici-h2 the ALPN result of every socket it opened
// (diagnostics channel), node-http2 the session's ALPN. A client that did not get its protocol
// is an error row with the reason, never a number.
//
// Server: h2o (Debian: apt-get install h2o) when installed, one thread, serving two static files
// over TLS 1.3 with h2 and http/1.1 on the same port (so the HTTP/1.1 row hits the same server);
// else nghttpd (nghttp2-server, one worker), which speaks only h2, so the uvfetch-h1 row is skipped;
// nghttpd is much slower for this load (on the 2-core VM even h2load left both ends mostly idle),
// so its numbers say little about the clients: prefer h2o.
// With taskset and >= 2 cores the server is pinned to the last CPU and every client to CPU 0
// (--no-pin: not pinned; better on a machine other jobs are using, where a pinned client can only
// get what the other jobs on its core leave it).
//
// A run: per scenario, per round, each client in turn in a fresh process (h2load: its own
// process): one probe request, warm-up, then a measured window of closed-loop requests on
// --streams lanes. Client and server CPU are read from /proc/<pid>/stat over the measured window
// (for h2load, over the same wall-clock window by timer), as % of one core: a server near 100%
// was the limit, not the client. Printed per client: req/s median (min–max over rounds),
// connections opened, client and server CPU, client CPU µs per request, errors; then the issue
// #15 targets on median req/s: uvfetch h2 ÷ undici h2 (≥ 3×), ÷ node:http2 (≥ 1.5×), ÷ h2load
// (≥ 60%), uvfetch h2 ÷ uvfetch HTTP/1.1 (≥ 1×), each also per client CPU second (the ratio of
// CPU µs per request), which holds up better when other jobs share the machine.
//
// --quick: 1 round, 0.3 s measured, 0.2 s warm-up (checks that everything runs; the numbers mean
// little). Exit status: 0 every row that ran measured with no failed request; 1 a row failed (an
// error, or the wrong protocol); 2 usage error or no server. Rows whose tool is missing (h2load
// not installed, uvfetch-h1 on nghttpd) are skipped with a note and do not fail the run.
//
// Needs the compiled TypeScript (dist/) and the native addon, openssl, and h2o or nghttpd.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect as netConnect } from 'node:net';

const CHILD = '--h2-bench-child';
const SELF = fileURLToPath(import.meta.url);

const SCENARIOS = {
  'h2-c100': { path: '/small', size: 13, label: '13 B bodies' },
  'h2-16k-c100': { path: '/16k', size: 16384, label: '16 KiB bodies' },
};
const CLIENTS = ['uvfetch-h2', 'undici-h2', 'node-http2', 'h2load', 'uvfetch-h1'];
const LABELS = {
  'uvfetch-h2': 'uvfetch h2',
  'undici-h2': 'undici h2 (allowH2)',
  'node-http2': 'node:http2',
  h2load: 'h2load (C)',
  'uvfetch-h1': 'uvfetch HTTP/1.1 c100',
};
const TARGETS = [
  { name: 'uvfetch h2 / undici h2', over: 'undici-h2', min: 3, fmt: 'x' },
  { name: 'uvfetch h2 / node:http2', over: 'node-http2', min: 1.5, fmt: 'x' },
  { name: 'uvfetch h2 / h2load', over: 'h2load', min: 0.6, fmt: '%' },
  { name: 'uvfetch h2 / uvfetch HTTP/1.1', over: 'uvfetch-h1', min: 1, fmt: 'x' },
];

function fail(msg) {
  process.stderr.write(`bench:h2: ${msg}\n`);
  process.exit(2);
}

function which(cmd) {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = join(dir || '.', cmd);
    if (existsSync(p)) return p;
  }
  for (const dir of ['/usr/sbin', '/sbin', '/usr/local/sbin']) if (existsSync(join(dir, cmd))) return join(dir, cmd);
  return null;
}

// ---------------------------------------------------------------------------------------------
// Client side (a child process per client and round).

class BenchError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Sets up one client; resolves with { one(), check(), conns(), close() }. */
async function makeClient(cfg) {
  const ca = readFileSync(cfg.caFile, 'utf8');
  const url = `https://127.0.0.1:${cfg.port}${cfg.path}`;
  const expectSize = cfg.size;
  const checkBody = (status, len) => {
    if (status !== 200) throw new BenchError(`HTTP_${status}`, `status ${status}`);
    if (len !== expectSize) throw new BenchError('BODY_SIZE', `body of ${len} bytes, expected ${expectSize}`);
  };

  if (cfg.client === 'uvfetch-h2' || cfg.client === 'uvfetch-h1') {
    const { Session } = await import(new URL('../dist/index.js', import.meta.url));
    const h2 = cfg.client === 'uvfetch-h2';
    const want = h2 ? '2' : '1.1';
    let session;
    let note = null;
    if (h2) {
      try {
        session = new Session({ http2: true, h2: { maxStreamsPerConnection: cfg.streams }, connectionsPerHost: 1, tls: { ca } });
      } catch (e) {
        throw new BenchError('NO_H2', `new Session({ http2: true, h2: { maxStreamsPerConnection } }) threw ${e?.code ?? ''} ${e?.message ?? e}`);
      }
    } else {
      try {
        session = new Session({ http2: false, connectionsPerHost: cfg.streams, tls: { ca } });
      } catch (e) {
        // An engine without HTTP/2 does not know the option; it speaks HTTP/1.1 only, which every
        // response below still has to prove.
        if (e?.code !== 'ERR_INVALID_OPTION' || !/http2/.test(String(e?.message))) throw e;
        session = new Session({ connectionsPerHost: cfg.streams, tls: { ca } });
        note = 'this uvfetch has no http2 option (HTTP/1.1 only)';
      }
    }
    return {
      note,
      async one() {
        const res = await session.request(url);
        if (res.info.httpVersion !== want) throw new BenchError('WRONG_PROTOCOL', `got HTTP/${res.info.httpVersion}, expected HTTP/${want}`);
        checkBody(res.status, res.body.length);
      },
      check() {},
      conns: () => session.stats().connections.created,
      close: () => session.close(),
    };
  }

  if (cfg.client === 'undici-h2') {
    const { Agent, request } = await import('undici');
    const dc = await import('node:diagnostics_channel');
    const alpn = [];
    const onConnected = ({ socket }) => alpn.push(socket.alpnProtocol);
    dc.subscribe('undici:client:connected', onConnected);
    // maxCachedSessions 0: no TLS resumption, as in the other benches (one connection here anyway).
    const agent = new Agent({ allowH2: true, connections: 1, pipelining: cfg.streams, connect: { ca, maxCachedSessions: 0 } });
    return {
      note: null,
      async one() {
        const { statusCode, body } = await request(url, { dispatcher: agent });
        const ab = await body.arrayBuffer();
        checkBody(statusCode, ab.byteLength);
      },
      check() {
        const bad = alpn.filter((p) => p !== 'h2');
        if (alpn.length === 0 || bad.length > 0) throw new BenchError('WRONG_PROTOCOL', `undici negotiated ALPN ${JSON.stringify(alpn)}, expected h2`);
      },
      conns: () => alpn.length,
      async close() {
        await agent.close();
        dc.unsubscribe('undici:client:connected', onConnected);
      },
    };
  }

  if (cfg.client === 'node-http2') {
    const http2 = await import('node:http2');
    let opened = 0;
    const session = http2.connect(`https://127.0.0.1:${cfg.port}`, { ca, maxSessionMemory: 64 });
    opened++;
    let sessionError = null;
    session.on('error', (e) => (sessionError = e));
    await new Promise((resolve, reject) => {
      session.once('connect', resolve);
      session.once('error', reject);
    });
    const { HTTP2_HEADER_PATH, HTTP2_HEADER_STATUS } = http2.constants;
    return {
      note: null,
      one() {
        return new Promise((resolve, reject) => {
          if (sessionError) return reject(sessionError);
          const req = session.request({ [HTTP2_HEADER_PATH]: cfg.path });
          let status = 0;
          const chunks = [];
          let n = 0;
          req.on('response', (h) => (status = h[HTTP2_HEADER_STATUS]));
          req.on('data', (c) => {
            chunks.push(c);
            n += c.length;
          });
          req.on('end', () => {
            try {
              checkBody(status, Buffer.concat(chunks, n).length);
              resolve();
            } catch (e) {
              reject(e);
            }
          });
          req.on('error', reject);
          req.end();
        });
      },
      check() {
        if (session.alpnProtocol !== 'h2') throw new BenchError('WRONG_PROTOCOL', `node:http2 session ALPN ${session.alpnProtocol}`);
      },
      conns: () => opened,
      close: () => new Promise((resolve) => session.close(resolve)),
    };
  }
  throw new Error(`unknown client ${cfg.client}`);
}

async function child(cfg) {
  // Bounded: a client that hangs is killed by the parent as well; this is the child's own bound.
  const bound = setTimeout(() => process.exit(3), (cfg.warmupS + cfg.durationS + 30) * 1000);
  bound.unref();
  const send = (m) => new Promise((r) => process.send(m, r));
  let c;
  try {
    c = await makeClient(cfg);
    await c.one(); // probe: fails here when the protocol or the trust is wrong
    c.check();
  } catch (e) {
    await send({ type: 'end', error: `${e?.code ?? e?.name ?? 'error'}: ${e?.message ?? e}` });
    if (c) await c.close().catch(() => {});
    process.exit(0);
  }
  let phase = 'warmup';
  let ok = 0;
  let errors = 0;
  const codes = {};
  let lastError = null;
  async function lane() {
    while (phase !== 'stop') {
      try {
        await c.one();
        if (phase === 'measure') ok++;
      } catch (e) {
        errors++;
        const code = e?.code ?? e?.name ?? 'error';
        codes[code] = (codes[code] ?? 0) + 1;
        lastError = `${code}: ${e?.message ?? e}`;
        if (errors >= 1000) phase = 'stop'; // a client that only fails stops early
      }
    }
  }
  const lanes = Array.from({ length: cfg.streams }, lane);
  await new Promise((r) => setTimeout(r, cfg.warmupS * 1000));
  let t0 = 0n;
  let t1 = 0n;
  if (phase === 'warmup') {
    await send({ type: 'start' });
    phase = 'measure';
    t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, cfg.durationS * 1000));
  }
  let measured = ok;
  if (phase === 'measure') {
    t1 = process.hrtime.bigint();
    measured = ok;
    phase = 'stop';
  }
  await send({ type: 'stop' });
  await Promise.all(lanes);
  let error = null;
  try {
    c.check();
  } catch (e) {
    error = `${e.code}: ${e.message}`;
  }
  const conns = c.conns();
  await c.close();
  const secs = t1 > t0 ? Number(t1 - t0) / 1e9 : 0;
  await send({ type: 'end', ok: measured, secs, rps: secs > 0 ? measured / secs : 0, errors, codes, lastError, conns, note: c.note, error });
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux); null elsewhere.

const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of every thread of `pid`, in clock ticks. */
function procTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}

function sampler(pids) {
  return { at: process.hrtime.bigint(), ticks: pids.map(procTicks) };
}

/** % of one core per pid between two samples. */
function cpuShare(a, b) {
  const secs = Number(b.at - a.at) / 1e9;
  return a.ticks.map((t, i) => (t === null || b.ticks[i] === null || secs <= 0 ? null : (100 * (b.ticks[i] - t)) / CLK_TCK / secs));
}

// ---------------------------------------------------------------------------------------------
// Pinning.

const CPUS = availableParallelism();
let TASKSET = CPUS > 1 ? which('taskset') : null;
const pinned = (cpu, cmd, args) => (TASKSET ? [TASKSET, ['-c', String(cpu), cmd, ...args]] : [cmd, args]);

// ---------------------------------------------------------------------------------------------
// Server.

function canConnect(port) {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    import('node:net').then(({ createServer }) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
  });
}

function version(cmd, args, re) {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return re.exec(out)?.[1] ?? '?';
  } catch {
    return '?';
  }
}

async function startServer(kind, cert) {
  const dir = mkdtempSync(join(tmpdir(), 'uvfetch-h2-bench-'));
  const www = join(dir, 'www');
  mkdirSync(www);
  writeFileSync(join(www, 'small'), 'hello, world\n'); // 13 B, as the other benches' small body
  writeFileSync(join(www, '16k'), Buffer.alloc(16384, 'x'));
  const port = await freePort();
  let cmd;
  let args;
  let label;
  if (kind === 'h2o') {
    const conf = join(dir, 'h2o.conf');
    // user: h2o started as root would switch to nobody, which cannot write into our temp dir.
    // ocsp-update-interval 0: the test certificate has no OCSP responder.
    const user = process.getuid?.() === 0 ? 'user: root\n' : '';
    writeFileSync(
      conf,
      `num-threads: 1
${user}pid-file: ${dir}/h2o.pid
error-log: ${dir}/error.log
listen:
  host: 127.0.0.1
  port: ${port}
  ssl:
    certificate-file: ${cert.certFile}
    key-file: ${cert.keyFile}
    minimum-version: TLSv1.3
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
        file.dir: ${www}
`,
    );
    [cmd, args] = pinned(CPUS - 1, which('h2o'), ['-c', conf]);
    label = `h2o ${version(which('h2o'), ['--version'], /h2o version (\S+)/)} (1 thread; h2 and http/1.1 by ALPN on one TLS 1.3 port)`;
  } else {
    [cmd, args] = pinned(CPUS - 1, which('nghttpd'), ['-a', '127.0.0.1', '-n', '1', '-d', www, String(port), cert.keyFile, cert.certFile]);
    label = `nghttpd ${version(which('nghttpd'), ['--version'], /nghttp2\/(\S+)/)} (1 worker; h2 only)`;
  }
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  for (let i = 0; i < 100; i++) {
    if (await canConnect(port)) {
      const pinnedTo = TASKSET ? CPUS - 1 : null;
      return {
        kind,
        port,
        pid: proc.pid, // taskset execs the server in place
        label: pinnedTo === null ? label : `${label}, pinned to CPU ${pinnedTo} (clients on CPU 0)`,
        async close() {
          if (proc.exitCode === null && proc.signalCode === null) {
            const exited = new Promise((r) => proc.once('exit', r));
            proc.kill('SIGTERM');
            const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
            await exited;
            clearTimeout(t);
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  let log = '';
  try {
    log = readFileSync(join(dir, 'error.log'), 'utf8');
  } catch {}
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`${kind} did not start: ${stderr}${log}`);
}

// ---------------------------------------------------------------------------------------------
// Runs.

function runNodeClient(cfg, serverPid) {
  return new Promise((resolve) => {
    const [cmd, args] = pinned(0, process.execPath, [SELF, CHILD, JSON.stringify(cfg)]);
    const p = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result = null;
    let start;
    let stop;
    const kill = setTimeout(() => p.kill('SIGKILL'), (cfg.warmupS + cfg.durationS + 40) * 1000);
    p.on('message', (m) => {
      if (m.type === 'start') start = sampler([p.pid, serverPid]);
      else if (m.type === 'stop') stop = sampler([p.pid, serverPid]);
      else if (m.type === 'end') result = m;
    });
    p.on('exit', (code, sig) => {
      clearTimeout(kill);
      if (!result) result = { error: `client process exited (${sig ?? code}) without a result` };
      const [clientCpu, serverCpu] = start && stop ? cpuShare(start, stop) : [null, null];
      resolve({ ...result, clientCpu, serverCpu, cpuUs: usPerRequest(clientCpu, result.rps) });
    });
  });
}

function runH2load(cfg, serverPid) {
  const bin = which('h2load');
  if (!bin) return Promise.resolve({ skipped: 'h2load not installed (Debian: nghttp2-client)' });
  const ms = (s) => `${Math.max(1, Math.round(s * 1000))}ms`;
  const url = `https://127.0.0.1:${cfg.port}${cfg.path}`;
  const [cmd, args] = pinned(0, bin, ['-c1', `-m${cfg.streams}`, '-t1', '-D', ms(cfg.durationS), '--warm-up-time', ms(cfg.warmupS), url]);
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    // CPU over the measured window, by wall clock (h2load's warm-up starts right after connecting).
    let start;
    let stop;
    const t0 = setTimeout(() => (start = sampler([p.pid, serverPid])), cfg.warmupS * 1000);
    const t1 = setTimeout(() => (stop = sampler([p.pid, serverPid])), (cfg.warmupS + cfg.durationS) * 1000 - 20);
    const kill = setTimeout(() => p.kill('SIGKILL'), (cfg.warmupS + cfg.durationS + 30) * 1000);
    p.on('exit', (code, sig) => {
      for (const t of [t0, t1, kill]) clearTimeout(t);
      const [clientCpu, serverCpu] = start && stop ? cpuShare(start, stop) : [null, null];
      const fin = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(out);
      const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
      const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
      const proto = /Application protocol: (\S+)/.exec(out)?.[1];
      if (code !== 0 || !fin || !req) {
        resolve({ error: `h2load exited (${sig ?? code}): ${out.trim().split('\n').slice(-3).join(' | ')}`, clientCpu, serverCpu });
        return;
      }
      const failed = Number(req[5]) + Number(req[6]) + Number(req[7]);
      // (2xx can exceed "succeeded": h2load counts a status when the head arrives, a success when
      // the stream ends, and the window closes with streams in between.)
      const non2xx = status ? Number(status[2]) + Number(status[3]) + Number(status[4]) : 0;
      resolve({
        ok: Number(req[4]),
        rps: Number(fin[3]),
        errors: failed + non2xx,
        codes: failed + non2xx > 0 ? { failed, non2xx } : {},
        conns: 1,
        error: proto !== undefined && proto !== 'h2' ? `WRONG_PROTOCOL: h2load negotiated ${proto}` : null,
        clientCpu,
        serverCpu,
        cpuUs: usPerRequest(clientCpu, Number(fin[3])),
      });
    });
  });
}

/** Client CPU time per request in µs, from its share of one core and its req/s. */
function usPerRequest(cpuPct, rps) {
  return cpuPct === null || cpuPct === undefined || !(rps > 0) ? null : (cpuPct / 100 / rps) * 1e6;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summarize(rows) {
  const bad = rows.find((r) => r.error);
  const skipped = rows.find((r) => r.skipped);
  if (skipped) return { skipped: skipped.skipped };
  if (bad) return { error: bad.error, rounds: rows.length };
  const nums = (k) => rows.map((r) => r[k]).filter((v) => v !== null && v !== undefined);
  const cpu = (k) => (nums(k).length ? median(nums(k)) : null);
  const errors = rows.reduce((a, r) => a + (r.errors ?? 0), 0);
  const codes = {};
  for (const r of rows) for (const [k, v] of Object.entries(r.codes ?? {})) codes[k] = (codes[k] ?? 0) + v;
  return {
    rps: median(rows.map((r) => r.rps)),
    min: Math.min(...rows.map((r) => r.rps)),
    max: Math.max(...rows.map((r) => r.rps)),
    conns: Math.max(...rows.map((r) => r.conns ?? 0)),
    clientCpu: cpu('clientCpu'),
    serverCpu: cpu('serverCpu'),
    cpuUs: cpu('cpuUs'),
    errors,
    codes,
    lastError: rows.map((r) => r.lastError).find(Boolean) ?? null,
    note: rows.map((r) => r.note).find(Boolean) ?? null,
    rounds: rows.length,
  };
}

function targets(byClient) {
  const uv = byClient['uvfetch-h2'];
  return TARGETS.map((t) => {
    const o = byClient[t.over];
    if (!uv || !o || uv.rps === undefined || o.rps === undefined || !(o.rps > 0)) {
      return { ...t, ratio: null, met: null, why: !uv || uv.rps === undefined ? 'uvfetch h2 did not run' : `${LABELS[t.over]} did not run` };
    }
    const ratio = uv.rps / o.rps;
    // The same ratio per client CPU second: what the clients would do if each had its core to itself.
    const perCpu = uv.cpuUs > 0 && o.cpuUs > 0 ? o.cpuUs / uv.cpuUs : null;
    return { ...t, ratio, perCpu, met: ratio >= t.min, short: ratio >= t.min ? 0 : t.min / ratio - 1 };
  });
}

// ---------------------------------------------------------------------------------------------
// Report.

const fmtN = (n) => Math.round(n).toLocaleString('en-US');
const fmtR = (r, f) => (f === '%' ? `${(100 * r).toFixed(0)}%` : `${r.toFixed(2)}×`);
const fmtCpu = (c) => (c === null || c === undefined ? '-' : `${c.toFixed(0)}%`);

function printScenario(s, res, o) {
  const sc = SCENARIOS[s];
  console.log(
    `\n${s}: ${sc.label}, ${o.streams} requests in flight, GET https://127.0.0.1${sc.path}; ` +
      `${o.rounds > 1 ? `median of ${o.rounds} rounds × ` : ''}${o.durationS} s measured after ${o.warmupS} s warm-up`,
  );
  const pad = (v, n) => String(v).padStart(n);
  console.log(
    `${'client'.padEnd(24)}${pad('req/s', 10)}${pad('(min–max)', 22)}${pad('conns', 7)}${pad('client CPU', 12)}${pad('µs CPU/req', 12)}${pad('server CPU', 12)}${pad('errors', 8)}`,
  );
  for (const c of o.clients) {
    const r = res.byClient[c];
    const name = LABELS[c].padEnd(24);
    if (r.skipped) console.log(`${name}  skipped: ${r.skipped}`);
    else if (r.error) console.log(`${name}  ERROR: ${r.error}`);
    else {
      console.log(
        `${name}${pad(fmtN(r.rps), 10)}${pad(`(${fmtN(r.min)}–${fmtN(r.max)})`, 22)}${pad(r.conns, 7)}${pad(fmtCpu(r.clientCpu), 12)}` +
          `${pad(r.cpuUs === null ? '-' : r.cpuUs.toFixed(1), 12)}${pad(fmtCpu(r.serverCpu), 12)}${pad(r.errors, 8)}` +
          (r.errors ? `  ${JSON.stringify(r.codes)} last: ${r.lastError}` : '') +
          (r.note ? `  (${r.note})` : ''),
      );
    }
  }
  console.log('targets (issue #15), on median req/s; "per CPU s": the same ratio per client CPU second:');
  for (const t of res.targets) {
    const want = t.fmt === '%' ? `≥ ${(100 * t.min).toFixed(0)}%` : `≥ ${t.min}×`;
    if (t.ratio === null) console.log(`  ${t.name.padEnd(32)}${want.padStart(7)}   n/a (${t.why})`);
    else {
      const verdict = t.met
        ? 'met'
        : `MISSED: ${t.fmt === '%' ? `${(100 * t.min - 100 * t.ratio).toFixed(0)} points short` : `${(100 * t.short).toFixed(0)}% more req/s needed`}`;
      const perCpu = t.perCpu === null ? '' : `   (per CPU s: ${fmtR(t.perCpu, t.fmt)})`;
      console.log(`  ${t.name.padEnd(32)}${want.padStart(7)}   ${fmtR(t.ratio, t.fmt).padStart(6)}   ${verdict}${perCpu}`);
    }
  }
}

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        scenario: { type: 'string' },
        clients: { type: 'string' },
        streams: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        rounds: { type: 'string' },
        server: { type: 'string' },
        quick: { type: 'boolean', default: false },
        'no-pin': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    fail(e.message);
  }
  if (values.help) {
    process.stdout.write(
      `${readFileSync(SELF, 'utf8')
        .split('\n\n')[0]
        .replace(/^\/\/ ?/gm, '')}\n`,
    );
    return 0;
  }
  const numArg = (name, def, min, max, integer) => {
    const v = values[name];
    if (v === undefined) return def;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max)
      fail(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got '${v}'`);
    return n;
  };
  const q = values.quick;
  const o = {
    streams: numArg('streams', 100, 1, 1000, true),
    durationS: numArg('duration', q ? 0.3 : 2, 0.1, 60, false),
    warmupS: numArg('warmup', q ? 0.2 : 0.5, 0.05, 30, false),
    rounds: numArg('rounds', q ? 1 : 3, 1, 20, true),
  };
  const scenarios = (values.scenario ?? Object.keys(SCENARIOS).join(',')).split(',').map((s) => s.trim());
  for (const s of scenarios) if (!SCENARIOS[s]) fail(`unknown scenario '${s}' (known: ${Object.keys(SCENARIOS).join(', ')})`);
  o.clients = (values.clients ?? CLIENTS.join(',')).split(',').map((s) => s.trim());
  for (const c of o.clients) if (!CLIENTS.includes(c)) fail(`unknown client '${c}' (known: ${CLIENTS.join(', ')})`);
  if (values['no-pin']) TASKSET = null;
  const want = values.server ?? 'auto';
  if (!['auto', 'h2o', 'nghttpd'].includes(want)) fail(`--server must be auto, h2o or nghttpd, got '${want}'`);
  const kind = want === 'auto' ? (which('h2o') ? 'h2o' : which('nghttpd') ? 'nghttpd' : null) : which(want) ? want : null;
  if (!kind) fail(want === 'auto' ? 'needs h2o (apt-get install h2o) or nghttpd (apt-get install nghttp2-server)' : `${want} is not installed`);

  let tls;
  try {
    tls = await import('../dist/tools/tls-loopback.js');
    await import('../dist/index.js');
  } catch (e) {
    fail(`cannot load dist/ (${e?.message ?? e}); build first: npm run build`);
  }
  let cert;
  try {
    cert = tls.benchCertificate();
  } catch (e) {
    fail(e.message);
  }
  const server = await startServer(kind, cert).catch((e) => fail(e.message));
  const onSignal = () => {
    server.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (!values.json) console.log(`bench:h2 — server: ${server.label}; Node ${process.version}`);

  const report = { config: { ...o, scenarios, server: server.label, node: process.version }, scenarios: {} };
  try {
    for (const s of scenarios) {
      const rows = Object.fromEntries(o.clients.map((c) => [c, []]));
      for (let round = 0; round < o.rounds; round++) {
        for (const c of o.clients) {
          const cfg = { client: c, port: server.port, caFile: cert.caFile, ...SCENARIOS[s], streams: o.streams, durationS: o.durationS, warmupS: o.warmupS };
          let r;
          if (c === 'h2load') r = await runH2load(cfg, server.pid);
          else if (c === 'uvfetch-h1' && server.kind !== 'h2o') r = { skipped: 'nghttpd speaks only h2 (install h2o for this row)' };
          else r = await runNodeClient(cfg, server.pid);
          rows[c].push(r);
          if (!values.json) {
            const what = r.skipped ? 'skipped' : r.error ? `error: ${r.error}` : `${fmtN(r.rps)} req/s${r.errors ? `, ${r.errors} errors` : ''}`;
            process.stderr.write(`  [${s} round ${round + 1}/${o.rounds}] ${LABELS[c]}: ${what}\n`);
          }
        }
      }
      const byClient = Object.fromEntries(o.clients.map((c) => [c, summarize(rows[c])]));
      report.scenarios[s] = { byClient, targets: targets(byClient) };
      if (!values.json) printScenario(s, report.scenarios[s], o);
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await server.close();
  }
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  const failed = Object.values(report.scenarios).some((sc) => Object.values(sc.byClient).some((r) => r.error || r.errors > 0));
  return failed ? 1 : 0;
}

if (process.argv[2] === CHILD) {
  child(JSON.parse(process.argv[3])).catch(async (e) => {
    await new Promise((r) => process.send({ type: 'end', error: `crashed: ${e?.stack ?? e}` }, r));
    process.exit(1);
  });
} else {
  main().then(
    (code) => (process.exitCode = code),
    (e) => fail(e?.stack ?? String(e)),
  );
}
