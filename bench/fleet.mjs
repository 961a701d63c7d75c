// Fleet throughput: N URLs through 1, 2 and 3 `uvfetch worker` processes on one redis-server,
// against the embedded loopback server, and the same N through `uvfetch fetch` (fetchMany, no
// Redis) for the per-result overhead of the Redis path. Everything on 127.0.0.1; a short run.
//
//   node bench/fleet.mjs [--urls 20000] [--concurrency 64] [--workers 1,2,3] [--hosts 20]
//
// Needs dist/ (npm run build:ts), ioredis installed, and redis-server (Debian package).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli.js');
const { startLoopbackServer } = await import(path.join(root, 'dist', 'loopback-server.js'));
const { Redis } = await import('ioredis');

const { values } = parseArgs({
  options: {
    urls: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    workers: { type: 'string', default: '1,2,3' },
    hosts: { type: 'string', default: '20' },
  },
});
const N = Number(values.urls);
const C = Number(values.concurrency);
const H = Number(values.hosts);
const counts = values.workers.split(',').map(Number);

const tmp = mkdtempSync(path.join(tmpdir(), 'uvfetch-fleet-bench-'));
const freePort = () =>
  new Promise((r) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => r(p));
    });
  });
/** user+system CPU seconds of a process, from /proc. */
function cpuOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}
/** Runs the CLI; resolves with its CPU seconds (the last /proc sample before it exited). */
function run(args, opts = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
    let err = '';
    let cpu = 0;
    const poll = setInterval(() => {
      const c = cpuOf(p.pid);
      if (Number.isFinite(c)) cpu = c;
    }, 50);
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', () => clearInterval(poll));
    p.on('close', (code) => (code === 0 ? resolve(cpu) : reject(new Error(`uvfetch ${args[0]} exited ${code}: ${err.slice(-1500)}`))));
  });
}

const redisPort = await freePort();
const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp], {
  stdio: 'ignore',
});
const server = await startLoopbackServer({ bodySize: 13 });
const client = new Redis(`redis://127.0.0.1:${redisPort}`, { protocol: 2, maxRetriesPerRequest: null });
for (let i = 0; i < 50; i++) {
  try {
    await client.ping();
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 100));
  }
}
const url = `redis://127.0.0.1:${redisPort}`;
try {
  const hosts = Array.from({ length: H }, (_, i) => `b${i}.bench.test`);
  const sess = path.join(tmp, 'session.json');
  writeFileSync(sess, JSON.stringify({ dns: { overrides: Object.fromEntries(hosts.map((h) => [h, '127.0.0.1'])) } }));
  const file = path.join(tmp, 'urls.txt');
  writeFileSync(file, `${Array.from({ length: N }, (_, i) => `http://${hosts[i % H]}:${server.port}/item/${i}`).join('\n')}\n`);
  console.log(
    `fleet bench: ${N} URLs over ${H} hosts, concurrency ${C} per process, loopback server ${server.workers} process(es)` +
      (server.pinnedTo !== null ? ` pinned to CPU ${server.pinnedTo}` : ''),
  );

  // fetchMany path: uvfetch fetch into a file.
  {
    const s0 = await server.stats();
    const t0 = performance.now();
    const cpu = await run(['fetch', file, '--out', path.join(tmp, 'out.jsonl'), '--concurrency', String(C), '--session-options', sess, '-q']);
    const dt = (performance.now() - t0) / 1000;
    const s1 = await server.stats();
    const srvCpu = (s1.cpu.user + s1.cpu.system - s0.cpu.user - s0.cpu.system) / 1e6;
    const ats = readFileSync(path.join(tmp, 'out.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).at);
    const steady = (N - 1) / ((Math.max(...ats) - Math.min(...ats)) / 1000);
    console.log(
      `  uvfetch fetch (no Redis):  ${steady.toFixed(0).padStart(6)} results/s steady, ${(N / dt).toFixed(0)} with start-up (${dt.toFixed(2)} s; ${((dt * 1e6) / N).toFixed(1)} µs/result wall; client CPU ${((cpu * 1e6) / N).toFixed(0)} µs/result; server CPU ${srvCpu.toFixed(1)} s)`,
    );
  }
  for (const w of counts) {
    await client.flushall();
    const t0 = performance.now();
    await run(['enqueue', file, '--redis', url, '--stream', 'in', '--group', 'g']);
    const tEnq = (performance.now() - t0) / 1000;
    const r0 = cpuOf(redis.pid);
    const s0 = await server.stats();
    const t1 = performance.now();
    const cpus = await Promise.all(
      Array.from({ length: w }, (_, i) =>
        run([
          'worker',
          '--redis',
          url,
          '--stream',
          'in',
          '--group',
          'g',
          '--results',
          'out',
          '--concurrency',
          String(C),
          '--session-options',
          sess,
          '--until-empty',
          '--consumer',
          `b${i}`,
          '-q',
        ]),
      ),
    );
    const dt = (performance.now() - t1) / 1000;
    const rc = cpuOf(redis.pid) - r0;
    const s1 = await server.stats();
    const srvCpu = (s1.cpu.user + s1.cpu.system - s0.cpu.user - s0.cpu.system) / 1e6;
    const got = await client.xlen('out');
    if (got !== N) throw new Error(`expected ${N} results, got ${got}`);
    // Steady rate: from the first result entry to the last (entry ids carry Redis' ms clock).
    const firstId = (await client.xrange('out', '-', '+', 'COUNT', 1))[0][0];
    const lastId = (await client.xrevrange('out', '+', '-', 'COUNT', 1))[0][0];
    const steady = (N - 1) / ((Number(lastId.split('-')[0]) - Number(firstId.split('-')[0])) / 1000);
    console.log(
      `  ${w} worker${w > 1 ? 's' : ' '} (Redis):         ${steady.toFixed(0).padStart(6)} results/s steady, ${(N / dt).toFixed(0)} with start-up (${dt.toFixed(2)} s; enqueue ${tEnq.toFixed(2)} s; ` +
        `workers' CPU ${((cpus.reduce((a, b) => a + b, 0) * 1e6) / N).toFixed(0)} µs/result; ` +
        `redis-server CPU ${((rc * 1e6) / N).toFixed(1)} µs/result (${((100 * rc) / dt).toFixed(0)}% of a core); server CPU ${srvCpu.toFixed(1)} s)`,
    );
  }
} finally {
  client.disconnect();
  await server.close();
  redis.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
}
