// Opens `n` keep-alive connections with one client (all requests in flight at once against a
// server that holds them until all have arrived), lets them go idle, and prints the process's
// RSS after a GC: {client, n, rssMiB, baselineMiB}. Run with --expose-gc by bench/idle-memory.mjs.
//   node --expose-gc bench/idle-memory-client.mjs <uvfetch|undici> <url> <n>
import { Pool } from 'undici';
import { Session, limits } from '../dist/index.js';

const [client, url, nArg] = process.argv.slice(2);
const n = Number(nArg);
limits.raiseFdLimit();
const mib = () => process.memoryUsage().rss / 1048576;
globalThis.gc();
const baselineMiB = mib();
let keep;
if (client === 'uvfetch') {
  const s = new Session({ connections: n, connectionsPerHost: n, keepAliveTimeout: 600_000, timeout: { headers: 120_000 } });
  await Promise.all(Array.from({ length: n }, (_, i) => s.request(`${url}/i${i}`)));
  if (s.stats().connections.idle !== n) throw new Error(`expected ${n} idle connections, have ${s.stats().connections.idle}`);
  keep = s;
} else {
  const pool = new Pool(new URL(url).origin, { connections: n, pipelining: 1, keepAliveTimeout: 600_000, headersTimeout: 120_000 });
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const r = await pool.request({ path: `/i${i}`, method: 'GET' });
      await r.body.dump();
    }),
  );
  keep = pool;
}
for (let i = 0; i < 3; i++) {
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 100));
}
console.log(JSON.stringify({ client, n, rssMiB: Math.round(mib() * 10) / 10, baselineMiB: Math.round(baselineMiB * 10) / 10 }));
void keep;
process.exit(0);
