// I/O threads (Session ioThreads): what they take off the JavaScript thread, and what they add.
//
//   node bench/io-threads.mjs [--requests 20000] [--seconds 2]
//
// Needs the compiled TypeScript (npm run build:ts) and the native addon. Two parts:
//
//   main-thread CPU per request   `requests` requests, 50 at a time, against the loopback server
//                                 (its own process, 1 worker), with ioThreads 0 and 1: the JS
//                                 thread's own CPU time (Linux /proc/self/task/<pid>/stat, i.e.
//                                 per-thread, 10 ms ticks) and the whole process's
//                                 (process.cpuUsage), each divided by the requests.
//   MemorySocket throughput       requests/s for `seconds` with the socket faked out
//                                 (tools/bench-hooks.ts): 8 origins, 400 in flight, ioThreads 0, 1
//                                 and 2 — the engine's and the crossing's own cost, no kernel.
// Report numbers; on a shared 2-core machine they move between runs.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Session } from '../dist/index.js';
import { kMemoryResponse } from '../dist/tools/bench-hooks.js';
import { startLoopbackServer } from '../dist/tools/loopback-server.js';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '20000' }, seconds: { type: 'string', default: '2' } } });
const REQUESTS = Number(values.requests);
const SECONDS = Number(values.seconds);

// utime + stime of this process's main thread, in ms (clock ticks of 10 ms).
function mainThreadCpuMs() {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // fields 14, 15 of stat(5)
}
const processCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function closedLoop(session, urls, total, concurrency) {
  let next = 0;
  let failed = 0;
  async function lane() {
    while (next < total) {
      const i = next++;
      try {
        const res = await session.request(urls[i % urls.length]);
        if (res.status !== 200) failed++;
      } catch {
        failed++;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return failed;
}

const server = await startLoopbackServer({ bodySize: 13, workers: 1 });
console.log(`main-thread CPU per request: ${REQUESTS} requests, c50, loopback server (own process)`);
for (const io of [0, 1]) {
  const s = new Session({ ioThreads: io, connectionsPerHost: 50 });
  await closedLoop(s, [`${server.url}/warm`], 2000, 50);
  const m0 = mainThreadCpuMs();
  const p0 = processCpuMs();
  const t0 = performance.now();
  const failed = await closedLoop(s, [`${server.url}/cpu`], REQUESTS, 50);
  const ms = performance.now() - t0;
  const main = mainThreadCpuMs() - m0;
  const proc = processCpuMs() - p0;
  await s.close();
  console.log(
    `  ioThreads ${io}: ${Math.round(REQUESTS / (ms / 1000))} req/s, main thread ${((main * 1000) / REQUESTS).toFixed(1)} µs/req, ` +
      `process ${((proc * 1000) / REQUESTS).toFixed(1)} µs/req${failed ? `, ${failed} failed` : ''}`,
  );
}
await server.close();

console.log(`MemorySocket throughput: ${SECONDS} s each, 8 origins, 400 in flight`);
const memory = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
const origins = Array.from({ length: 8 }, (_, i) => `http://127.0.0.1:${9001 + i}/m`);
for (const io of [0, 1, 2]) {
  const s = new Session({ ioThreads: io, [kMemoryResponse]: memory });
  await closedLoop(s, origins, 4000, 400);
  let done = 0;
  let stop = false;
  const t0 = performance.now();
  const m0 = mainThreadCpuMs();
  async function lane(k) {
    let i = k;
    while (!stop) {
      await s.request(origins[i++ % origins.length]);
      done++;
    }
  }
  const lanes = Array.from({ length: 400 }, (_, k) => lane(k));
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  stop = true;
  await Promise.all(lanes);
  const ms = performance.now() - t0;
  const main = mainThreadCpuMs() - m0;
  await s.close();
  console.log(`  ioThreads ${io}: ${Math.round(done / (ms / 1000))} req/s (main thread ${((main * 1000) / done).toFixed(1)} µs/req)`);
}
