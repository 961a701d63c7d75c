// Memory of idle keep-alive connections: each client opens 10,000 connections to a local server
// (in its own process) and keeps them idle; reports the client process's RSS after a GC.
//   node bench/idle-memory.mjs [--connections 10000] [--json]
import { fork, spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '10000' }, json: { type: 'boolean', default: false } } });
const here = path.dirname(fileURLToPath(import.meta.url));
const n = values.connections;

async function withServer(fn) {
  const child = fork(path.join(here, '..', 'test', 'scale', 'fixtures', 'hold-server.mjs'), [n], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const port = await new Promise((resolve) => child.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
  try {
    return await fn(`http://127.0.0.1:${port}`);
  } finally {
    child.kill();
  }
}

function run(client, url) {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--expose-gc', path.join(here, 'idle-memory-client.mjs'), client, url, n], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`${client} exited ${code}`))));
  });
}

const rows = [];
for (const client of ['uvfetch', 'undici']) rows.push(await withServer((url) => run(client, url)));
if (values.json) {
  console.log(JSON.stringify(rows));
} else {
  console.log(`${n} idle keep-alive connections, client RSS after GC (baseline = before connecting)`);
  for (const r of rows)
    console.log(
      `${r.client.padEnd(8)} RSS ${String(r.rssMiB).padStart(7)} MiB  (+${(r.rssMiB - r.baselineMiB).toFixed(1)} MiB over baseline ${r.baselineMiB} MiB)`,
    );
  const [u, d] = rows;
  console.log(
    `uvfetch / undici: ${(u.rssMiB / d.rssMiB).toFixed(2)} of total RSS, ${((u.rssMiB - u.baselineMiB) / (d.rssMiB - d.baselineMiB)).toFixed(2)} of the growth`,
  );
}
