// "Too many open files" benchmark: every client keeps 5,000 requests in flight against the
// loopback server while its process's descriptor limit is 1024 (soft and hard, via prlimit);
// uvfetch also runs unconstrained for reference. Pure-JS clients turn EMFILE into failed
// requests; uvfetch treats it as backpressure.
//   node bench/fd-pressure.mjs [--inflight 5000] [--nofile 1024] [--seconds 5] [--json]
import { spawn, spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLoopbackServer } from '../dist/tools/loopback-server.js';

const { values } = parseArgs({
  options: {
    inflight: { type: 'string', default: '5000' },
    nofile: { type: 'string', default: '1024' },
    seconds: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
if (spawnSync('prlimit', ['--version']).status !== 0) {
  console.error('prlimit (util-linux) is needed to lower the descriptor limit');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const server = await startLoopbackServer({ bodySize: 13 });
const url = `${server.url}/fd`;

function run(client, nofile) {
  const args = [path.join(here, 'fd-pressure-client.mjs'), client, url, values.inflight, String(Number(values.seconds) * 1000)];
  const cmd = nofile ? 'prlimit' : process.execPath;
  const argv = nofile ? [`--nofile=${nofile}:${nofile}`, process.execPath, ...args] : args;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${client} exited ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop()));
    });
  });
}

const rows = [];
try {
  rows.push({ ...(await run('uvfetch', null)), limit: 'unlimited' });
  for (const c of ['uvfetch', 'undici', 'node-http']) rows.push({ ...(await run(c, values.nofile)), limit: values.nofile });
} finally {
  await server.close();
}
if (values.json) {
  console.log(JSON.stringify(rows));
} else {
  const base = rows[0].rps;
  console.log(`${values.inflight} requests in flight, ${values.seconds} s each`);
  console.log('client      fd limit    req/s     ok       failed   errors (top)          % of uvfetch unconstrained');
  for (const r of rows) {
    const failed = Object.values(r.errors).reduce((a, b) => a + b, 0);
    const top =
      Object.entries(r.errors)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 2)
        .map(([k, v]) => `${k}:${v}`)
        .join(' ') || '-';
    console.log(
      `${r.client.padEnd(11)} ${String(r.limit).padEnd(10)} ${String(r.rps).padStart(7)} ${String(r.ok).padStart(8)} ${String(failed).padStart(8)}   ${top.padEnd(21)} ${((100 * r.rps) / base).toFixed(0)}%`,
    );
  }
}
