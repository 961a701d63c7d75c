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
      process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n\n')[0] + '\n');
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
  const child = pin.length > 0 ? spawn(pin[0], [...pin.slice(1), cmd, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
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
  return { port, kind: (kind === 'native' ? 'C epoll echo server (bench/echo-server.c), own process' : 'node:net echo server, child process') + where, stop: () => child.kill() };
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

/** Ping-pong: round trips per second. */
async function pingPong(kind, port, o) {
  const socks = await openAll(kind, port, o.connections);
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
  const t0 = performance.now();
  const c0 = trips;
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  const rate = ((trips - c0) * 1000) / (performance.now() - t0);
  running = false;
  await closeAll(socks);
  return rate;
}

/** Bulk: echoed MB/s. */
async function bulk(kind, port, o) {
  const socks = await openAll(kind, port, o.bulkConnections);
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
  const t0 = performance.now();
  const b0 = received;
  await new Promise((r) => setTimeout(r, o.bulkSeconds * 1000));
  const mbps = (received - b0) / 1e6 / ((performance.now() - t0) / 1000);
  running = false;
  await closeAll(socks);
  return mbps;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const o = args(process.argv.slice(2));
// On Linux with taskset and two or more cores: this client on the first core, the server on the
// last (re-exec once under taskset), so the two never compete for one core.
const cores = (await import('node:os')).availableParallelism();
let pin = [];
if (process.platform === 'linux' && cores >= 2) {
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
    env: { ...process.env, UVF_RAW_BENCH_PINNED: '1' },
  });
  child.on('exit', (code) => process.exit(code ?? 1));
  await new Promise(() => {});
}
const server = await startServer(o.server, pin);
const results = { pingPong: { uvfetch: [], 'node:net': [] }, bulk: { uvfetch: [], 'node:net': [] } };
const log = (s) => {
  if (!o.json) process.stdout.write(s + '\n');
};
log(`server: ${server.kind}, port ${server.port}`);
log(`ping-pong: ${o.connections} connections, ${o.size}-byte messages, ${o.seconds} s × ${o.rounds} rounds (interleaved)`);
try {
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? ['uvfetch', 'node:net'] : ['node:net', 'uvfetch'];
    for (const k of order) {
      const v = await pingPong(k, server.port, o);
      results.pingPong[k].push(v);
      log(`  round ${r + 1} ${k.padEnd(8)} ${Math.round(v).toLocaleString('en-US')} round trips/s`);
    }
  }
  log(`bulk: ${o.bulkConnections} connection(s), 64 KiB writes, ${o.bulkSeconds} s × ${o.rounds} rounds`);
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? ['uvfetch', 'node:net'] : ['node:net', 'uvfetch'];
    for (const k of order) {
      const v = await bulk(k, server.port, o);
      results.bulk[k].push(v);
      log(`  round ${r + 1} ${k.padEnd(8)} ${v.toFixed(0)} MB/s`);
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
if (o.json) {
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
} else {
  log('');
  log(`median ping-pong  uvfetch ${Math.round(summary.pingPong.uvfetch).toLocaleString('en-US')}/s   node:net ${Math.round(summary.pingPong['node:net']).toLocaleString('en-US')}/s   ratio ${summary.pingPong.ratio.toFixed(2)}×`);
  log(`median bulk       uvfetch ${summary.bulk.uvfetch.toFixed(0)} MB/s   node:net ${summary.bulk['node:net'].toFixed(0)} MB/s   ratio ${summary.bulk.ratio.toFixed(2)}×`);
}
