// Raw-socket benchmark: uvfetch's RawSocket (connect()) vs node:net against the same local echo
// server, side by side, interleaved rounds, medians.
//
//   npm run bench:raw -- [--connections 100] [--size 64] [--seconds 3] [--rounds 5]
//                        [--bulk-seconds 3] [--bulk-connections 1] [--server native|node] [--json]
//
// Ping-pong: each of --connections sockets sends a --size message, waits for its echo, sends the
// next; the score is completed round trips per second across all sockets. Bulk: each of
// --bulk-connections sockets writes 64 KiB chunks as fast as backpressure allows while reading the
// echo; the score is echoed MB/s (10^6 bytes) received.
//
// The server is a small epoll echo server in C (bench/echo-server.c, built with `cc` on first use,
// one thread, in its own process) so that it is not the bottleneck: a node:net echo server costs
// as much per message as a node:net client, which would cap both clients at the same rate.
// `--server node` uses a node:net echo server in a child process instead (also used when no C
// compiler is found; the output says which).
//
// CPU accounting, over each counted window only (not connect or warm-up), so that readers can
// check where the time goes:
//   - client: process.cpuUsage() deltas, user and system separately, reported as µs per round
//     trip (ping-pong) and µs per MB echoed (bulk). On loopback the system part is most of the
//     cost and is roughly the same for both clients: each makes one write() and one read() per
//     round trip, and the TCP send path also runs the receiving side's softirq work in the
//     sender's context, so the client is charged for much of the kernel's work on both ends.
//     Also the client's share of one core, (user + sys) / wall time.
//   - server: utime+stime (fields 14 and 15 of /proc/<pid>/stat, in clock ticks, ticks per second
//     from `getconf CLK_TCK`, else 100) over the same window, reported as % of one core, so a
//     reader sees whether the server was saturated (near 100% means the server, not the client,
//     set the pace). Same method for the C and the node:net server. Resolution is one tick
//     (10 ms at 100 Hz), so short windows give coarse numbers. Without /proc (not Linux) the
//     field is omitted and the output says so.
// The summary also prints a kernel bound for ping-pong:
//     X = median(node:net user + sys µs per trip) / median(uvfetch sys µs per trip)
// i.e. the speed-up over node:net of a hypothetical client that spends no user CPU at all and
// only the system CPU uvfetch was charged. It is an estimate: it assumes the system cost per
// round trip does not depend on the client (same syscalls, same kernel path), and that the client
// process, not the server, is the bottleneck (check the client and server CPU shares).
// --json carries all of it under `cpu` (medians per client, and every round's raw record); the
// earlier fields are unchanged.
//
// Needs the compiled TypeScript (npx tsc -p tsconfig.json) and the native addon.

import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');

let uv;
try {
  uv = await import('../dist/index.js');
} catch (e) {
  process.stderr.write(`bench:raw: cannot load dist/index.js (${e?.message ?? e}); build first: npm run build\n`);
  process.exit(2);
}

function args(argv) {
  const o = { connections: 100, size: 64, seconds: 3, rounds: 5, bulkSeconds: 3, bulkConnections: 1, server: 'native', json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--connections') o.connections = Number(next());
    else if (a === '--size') o.size = Number(next());
    else if (a === '--seconds') o.seconds = Number(next());
    else if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--bulk-seconds') o.bulkSeconds = Number(next());
    else if (a === '--bulk-connections') o.bulkConnections = Number(next());
    else if (a === '--server') o.server = next();
    else if (a === '--json') o.json = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`${fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n\n')[0]}\n`);
      process.exit(0);
    } else {
      process.stderr.write(`bench:raw: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return o;
}

const NODE_ECHO = `
const net = require('node:net');
const srv = net.createServer({ noDelay: true }, (c) => { c.on('data', (d) => c.write(d)); c.on('error', () => {}); });
srv.listen(0, '127.0.0.1', () => process.stdout.write(srv.address().port + '\\n'));
`;

/** Starts the echo server; resolves with { port, kind, stop }. */
async function startServer(kind, pin) {
  let cmd, argv;
  if (kind === 'native') {
    const bin = path.join(root, 'build', 'echo-server');
    const src = path.join(here, 'echo-server.c');
    try {
      if (!fs.existsSync(bin) || fs.statSync(bin).mtimeMs < fs.statSync(src).mtimeMs) {
        fs.mkdirSync(path.dirname(bin), { recursive: true });
        execFileSync('cc', ['-O2', '-o', bin, src], { stdio: 'pipe' });
      }
      cmd = bin;
      argv = ['0'];
    } catch {
      kind = 'node';
    }
  }
  if (kind === 'node') {
    cmd = process.execPath;
    argv = ['-e', NODE_ECHO];
  }
  const child =
    pin.length > 0
      ? spawn(pin[0], [...pin.slice(1), cmd, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^(\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`echo server exited (${code})`)));
  });
  const where = pin.length > 0 ? `, pinned to CPU ${pin[2]} (client on CPU 0)` : '';
  // taskset execs the server in place, so child.pid is the server's pid either way.
  return {
    port,
    pid: child.pid,
    kind: (kind === 'native' ? 'C epoll echo server (bench/echo-server.c), own process' : 'node:net echo server, child process') + where,
    stop: () => child.kill(),
  };
}

// --- CPU accounting over a counted window ---------------------------------------------------

const CLK_TCK = clockTicks();

function clockTicks() {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

/** utime + stime of `pid` in clock ticks, from /proc/<pid>/stat; null where that is unavailable. */
function procTicks(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) is in parentheses and may contain spaces, so split after the last ')':
    // there field 3 is at index 0, utime (14) at index 11 and stime (15) at index 12.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const t = Number(f[11]) + Number(f[12]);
    return Number.isFinite(t) ? t : null;
  } catch {
    return null;
  }
}

/**
 * Opens a measurement window: wall time, this process's CPU and the server's CPU ticks, taken
 * back to back. The returned function closes it and gives the deltas; serverCpuPercent is null
 * when /proc could not be read.
 */
function cpuWindow(serverPid) {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const s0 = procTicks(serverPid);
  return () => {
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const s1 = procTicks(serverPid);
    const serverCpuPercent = s0 === null || s1 === null ? null : (((s1 - s0) / CLK_TCK) * 1000 * 100) / ms;
    return { ms, userUs: c.user, sysUs: c.system, serverCpuPercent };
  };
}

/** One round's record: the work done, client CPU per unit of work, server CPU share if known. */
function cpuRecord(w, work, unit) {
  const r = { [unit === 'trip' ? 'trips' : 'mb']: work, seconds: w.ms / 1000, userUs: w.userUs, sysUs: w.sysUs };
  r[`userUsPer${unit === 'trip' ? 'Trip' : 'MB'}`] = work > 0 ? w.userUs / work : null;
  r[`sysUsPer${unit === 'trip' ? 'Trip' : 'MB'}`] = work > 0 ? w.sysUs / work : null;
  // The client's own share of a core: near 100% means the client process set the pace.
  r.clientCpuPercent = ((w.userUs + w.sysUs) / 1000 / w.ms) * 100;
  if (w.serverCpuPercent !== null) r.serverCpuPercent = w.serverCpuPercent;
  return r;
}

// --- the two clients, behind one small interface ---------------------------------------------

const clients = {
  uvfetch: async (port) => {
    const s = await uv.connect({ host: '127.0.0.1', port });
    return s;
  },
  'node:net': (port) =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    }),
};

async function openAll(kind, port, n) {
  const out = [];
  for (let i = 0; i < n; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 50); j++) batch.push(clients[kind](port));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

async function closeAll(socks) {
  await Promise.all(
    socks.map(
      (s) =>
        new Promise((resolve) => {
          if (s.destroyed) return resolve();
          s.once('close', resolve);
          s.destroy();
        }),
    ),
  );
}

/** Ping-pong: round trips per second, and the CPU record of the counted window. */
async function pingPong(kind, server, o) {
  const socks = await openAll(kind, server.port, o.connections);
  const msg = Buffer.alloc(o.size, 0x61);
  let trips = 0;
  let running = true;
  for (const s of socks) {
    let got = 0;
    s.on('data', (d) => {
      got += d.length;
      while (got >= o.size) {
        got -= o.size;
        trips++;
        if (running) s.write(msg);
      }
    });
    s.on('error', () => {});
  }
  // Warm up for 300 ms, then count.
  for (const s of socks) s.write(msg);
  await new Promise((r) => setTimeout(r, 300));
  const c0 = trips;
  const end = cpuWindow(server.pid);
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  const w = end();
  const n = trips - c0;
  running = false;
  await closeAll(socks);
  return { rate: (n * 1000) / w.ms, cpu: cpuRecord(w, n, 'trip') };
}

/** Bulk: echoed MB/s, and the CPU record of the counted window. */
async function bulk(kind, server, o) {
  const socks = await openAll(kind, server.port, o.bulkConnections);
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  let received = 0;
  let running = true;
  for (const s of socks) {
    s.on('data', (d) => {
      received += d.length;
    });
    s.on('error', () => {});
    const pump = () => {
      while (running && s.write(chunk));
    };
    s.on('drain', pump);
    pump();
  }
  await new Promise((r) => setTimeout(r, 300));
  const b0 = received;
  const end = cpuWindow(server.pid);
  await new Promise((r) => setTimeout(r, o.bulkSeconds * 1000));
  const w = end();
  const mb = (received - b0) / 1e6;
  running = false;
  await closeAll(socks);
  return { rate: mb / (w.ms / 1000), cpu: cpuRecord(w, mb, 'MB') };
}

const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const o = args(process.argv.slice(2));
// On Linux with taskset and two or more cores: this client on the first core, the server on the
// last (re-exec once under taskset), so the two never compete for one core. The decision is made
// before the re-exec and handed down: under `taskset -c 0` availableParallelism() counts only
// CPU 0, so the re-executed process would otherwise leave the server unpinned, sharing CPU 0.
const cores = (await import('node:os')).availableParallelism();
let pin = [];
if (process.env.UVF_RAW_BENCH_PINNED === '1') {
  if (process.env.UVF_RAW_BENCH_SERVER_CPU) pin = ['taskset', '-c', process.env.UVF_RAW_BENCH_SERVER_CPU];
} else if (process.platform === 'linux' && cores >= 2) {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    pin = ['taskset', '-c', String(cores - 1)];
  } catch {
    pin = [];
  }
}
if (pin.length > 0 && process.env.UVF_RAW_BENCH_PINNED !== '1') {
  const child = spawn('taskset', ['-c', '0', process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, UVF_RAW_BENCH_PINNED: '1', UVF_RAW_BENCH_SERVER_CPU: pin[2] },
  });
  child.on('exit', (code) => process.exit(code ?? 1));
  await new Promise(() => {});
}
const server = await startServer(o.server, pin);
const results = { pingPong: { uvfetch: [], 'node:net': [] }, bulk: { uvfetch: [], 'node:net': [] } };
// Per-round CPU records, kept apart so that `rounds` in --json keeps its plain list of rates.
const cpuRounds = { pingPong: { uvfetch: [], 'node:net': [] }, bulk: { uvfetch: [], 'node:net': [] } };
const serverCpuKnown = procTicks(server.pid) !== null;
const log = (s) => {
  if (!o.json) process.stdout.write(`${s}\n`);
};
log(`server: ${server.kind}, port ${server.port}`);
log(
  serverCpuKnown
    ? `CPU per counted window: client from process.cpuUsage(), server from /proc/${server.pid}/stat (${CLK_TCK} ticks/s)`
    : `CPU per counted window: client from process.cpuUsage(); server CPU not measured (/proc/<pid>/stat unavailable here)`,
);
log(`ping-pong: ${o.connections} connections, ${o.size}-byte messages, ${o.seconds} s × ${o.rounds} rounds (interleaved)`);
try {
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? ['uvfetch', 'node:net'] : ['node:net', 'uvfetch'];
    for (const k of order) {
      const { rate, cpu } = await pingPong(k, server, o);
      results.pingPong[k].push(rate);
      cpuRounds.pingPong[k].push(cpu);
      log(
        `  round ${r + 1} ${k.padEnd(8)} ${Math.round(rate).toLocaleString('en-US').padStart(9)} round trips/s   ${cpuText(cpu.userUsPerTrip, cpu.sysUsPerTrip, 'trip', cpu.clientCpuPercent, cpu.serverCpuPercent)}`,
      );
    }
  }
  log(`bulk: ${o.bulkConnections} connection(s), 64 KiB writes, ${o.bulkSeconds} s × ${o.rounds} rounds`);
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? ['uvfetch', 'node:net'] : ['node:net', 'uvfetch'];
    for (const k of order) {
      const { rate, cpu } = await bulk(k, server, o);
      results.bulk[k].push(rate);
      cpuRounds.bulk[k].push(cpu);
      log(
        `  round ${r + 1} ${k.padEnd(8)} ${rate.toFixed(0).padStart(5)} MB/s   ${cpuText(cpu.userUsPerMB, cpu.sysUsPerMB, 'MB', cpu.clientCpuPercent, cpu.serverCpuPercent)}`,
      );
    }
  }
} finally {
  server.stop();
}
const summary = {
  server: server.kind,
  connections: o.connections,
  size: o.size,
  pingPong: { uvfetch: median(results.pingPong.uvfetch), 'node:net': median(results.pingPong['node:net']) },
  bulk: { uvfetch: median(results.bulk.uvfetch), 'node:net': median(results.bulk['node:net']) },
  rounds: results,
};
summary.pingPong.ratio = summary.pingPong.uvfetch / summary.pingPong['node:net'];
summary.bulk.ratio = summary.bulk.uvfetch / summary.bulk['node:net'];
summary.cpu = cpuSummary();
if (o.json) {
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
} else {
  log('');
  log(
    `median ping-pong  uvfetch ${Math.round(summary.pingPong.uvfetch).toLocaleString('en-US')}/s   node:net ${Math.round(summary.pingPong['node:net']).toLocaleString('en-US')}/s   ratio ${summary.pingPong.ratio.toFixed(2)}×`,
  );
  log(
    `median bulk       uvfetch ${summary.bulk.uvfetch.toFixed(0)} MB/s   node:net ${summary.bulk['node:net'].toFixed(0)} MB/s   ratio ${summary.bulk.ratio.toFixed(2)}×`,
  );
  const c = summary.cpu;
  log('');
  log('client process CPU in the counted windows (medians over rounds):');
  for (const k of ['uvfetch', 'node:net']) {
    const p = c.pingPong[k];
    log(`  ping-pong ${k.padEnd(8)} ${cpuText(p.userUsPerTrip, p.sysUsPerTrip, 'trip', p.clientCpuPercent, p.serverCpuPercent)}`);
  }
  log(`  user CPU per trip, node:net ÷ uvfetch: ${fmtRatio(c.pingPong.userRatio)}`);
  for (const k of ['uvfetch', 'node:net']) {
    const b = c.bulk[k];
    log(`  bulk      ${k.padEnd(8)} ${cpuText(b.userUsPerMB, b.sysUsPerMB, 'MB', b.clientCpuPercent, b.serverCpuPercent)}`);
  }
  log(`  user CPU per MB, node:net ÷ uvfetch: ${fmtRatio(c.bulk.userRatio)}`);
  if (!serverCpuKnown) log('  server CPU: not measured (/proc/<pid>/stat unavailable here)');
  log(`kernel bound: a client with zero user-space cost would reach at most ${fmtRatio(c.pingPong.kernelBound)} node:net here`);
  log('  (= median node:net (user + sys) µs/trip ÷ median uvfetch sys µs/trip; assumes the sys cost per trip does not depend on the client)');
}

// --- CPU summary and formatting (hoisted; used above) ------------------------------------------

function fmtUs(x) {
  return x === null ? 'n/a' : x < 10 ? x.toFixed(2) : x.toFixed(1);
}

function fmtRatio(x) {
  return x === null || !Number.isFinite(x) ? 'n/a' : `${x.toFixed(2)}×`;
}

/** "user 1.31 µs/trip  sys 6.20 µs/trip   CPU: client 99%, server 80% of a core" (server only if known). */
function cpuText(user, sys, unit, clientPct, serverPct) {
  const pct = (x) => `${x.toFixed(0)}%`;
  const srv = serverPct === undefined || serverPct === null ? '' : `, server ${pct(serverPct)}`;
  return `user ${fmtUs(user).padStart(5)} µs/${unit}  sys ${fmtUs(sys).padStart(5)} µs/${unit}   CPU: client ${pct(clientPct)}${srv} of a core`;
}

/** Medians of the per-round records of one client; serverCpuPercent omitted when unknown. */
function cpuMedians(recs, unit) {
  const u = `userUsPer${unit}`;
  const sy = `sysUsPer${unit}`;
  const m = { [u]: median(recs.map((r) => r[u])), [sy]: median(recs.map((r) => r[sy])) };
  if (unit === 'Trip') m.userPlusSysUsPerTrip = median(recs.map((r) => (r[u] === null ? null : r[u] + r[sy])));
  m.clientCpuPercent = median(recs.map((r) => r.clientCpuPercent));
  const srv = median(recs.map((r) => r.serverCpuPercent));
  if (srv !== null) m.serverCpuPercent = srv;
  m.rounds = recs;
  return m;
}

function cpuSummary() {
  const ratio = (a, b) => (a === null || b === null || b === 0 ? null : a / b);
  const pp = { uvfetch: cpuMedians(cpuRounds.pingPong.uvfetch, 'Trip'), 'node:net': cpuMedians(cpuRounds.pingPong['node:net'], 'Trip') };
  pp.userRatio = ratio(pp['node:net'].userUsPerTrip, pp.uvfetch.userUsPerTrip);
  // Kernel bound (see the header): node:net's whole cost per trip over uvfetch's system cost alone.
  pp.kernelBound = ratio(pp['node:net'].userPlusSysUsPerTrip, pp.uvfetch.sysUsPerTrip);
  const bk = { uvfetch: cpuMedians(cpuRounds.bulk.uvfetch, 'MB'), 'node:net': cpuMedians(cpuRounds.bulk['node:net'], 'MB') };
  bk.userRatio = ratio(bk['node:net'].userUsPerMB, bk.uvfetch.userUsPerMB);
  return {
    clientSource: 'process.cpuUsage()',
    serverSource: serverCpuKnown ? `/proc/<pid>/stat utime+stime, ${CLK_TCK} ticks/s` : null,
    ...(serverCpuKnown ? {} : { serverCpuNote: 'server CPU not measured: /proc/<pid>/stat unavailable' }),
    kernelBoundFormula: 'median(node:net userUsPerTrip + sysUsPerTrip) / median(uvfetch sysUsPerTrip); assumes sys cost per trip is client-independent',
    pingPong: pp,
    bulk: bk,
  };
}
