// One client under a (low) descriptor limit: keeps `inflight` requests in flight for `ms`
// milliseconds and prints {client, ok, errors, rps}. Started by bench/fd-pressure.mjs.
//   node bench/fd-pressure-client.mjs <uvfetch|undici|node-http> <url> <inflight> <ms>
import http from 'node:http';
import { Pool } from 'undici';
import { Session } from '../dist/index.js';

const [client, url, inflightArg, msArg] = process.argv.slice(2);
const inflight = Number(inflightArg);
const ms = Number(msArg);
const errors = {};
let ok = 0;

let one;
let close = async () => {};
if (client === 'uvfetch') {
  const s = new Session({ connections: inflight, connectionsPerHost: inflight, timeout: { connect: 30_000 } });
  one = async () => {
    const r = await s.request(url);
    if (r.status !== 200) throw new Error(`status ${r.status}`);
  };
  close = () => s.close();
} else if (client === 'undici') {
  const pool = new Pool(new URL(url).origin, { connections: inflight, pipelining: 1 });
  const path = new URL(url).pathname;
  one = async () => {
    const r = await pool.request({ path, method: 'GET' });
    await r.body.dump();
  };
  close = () => pool.close();
} else if (client === 'node-http') {
  const agent = new http.Agent({ keepAlive: true, maxSockets: inflight });
  one = () =>
    new Promise((resolve, reject) => {
      http
        .get(url, { agent }, (res) => {
          res.resume();
          res.on('end', resolve);
          res.on('error', reject);
        })
        .on('error', reject);
    });
  close = async () => agent.destroy();
} else {
  throw new Error(`unknown client ${client}`);
}

const end = Date.now() + ms;
const t0 = Date.now();
await Promise.all(
  Array.from({ length: inflight }, async () => {
    while (Date.now() < end) {
      try {
        await one();
        ok++;
      } catch (err) {
        const code = err?.code ?? err?.cause?.code ?? err?.message ?? String(err);
        errors[code] = (errors[code] ?? 0) + 1;
        await new Promise((r) => setImmediate(r)); // do not spin on instant failures
      }
    }
  }),
);
const elapsed = (Date.now() - t0) / 1000;
await close();
console.log(JSON.stringify({ client, ok, errors, rps: Math.round(ok / elapsed) }));
