// Load benchmark: uvfetch vs undici vs node:http against the same loopback server.
//
//   npm run bench -- [--duration 5] [--warmup 1] [--concurrency 50] [--rounds 3]
//                    [--body-size 13] [--server-workers N] [--clients a,b,...] [--json]
//
// Needs the compiled TypeScript (npx tsc -p tsconfig.json) and the native addon
// (build/Release/*.node). Clients (--clients picks a subset, in this order):
//   uvfetch       Session.request (connections = concurrency)
//   undici-pool   undici Pool.request (connections = concurrency, pipelining 1)
//   undici-agent  undici request() with an Agent (connections = concurrency, pipelining 1)
//   node-http     node:http get with a keep-alive Agent (maxSockets = concurrency)
// The server (dist/loopback-server.js) runs in its own process(es), pinned to the last core
// when possible; the clients run in this process one at a time, in interleaved rounds
// (A B C D A B C D ...), each with its own fresh client: warm-up, then a fixed measured
// duration of closed-loop requests by `concurrency` workers. Every response body is read
// fully into memory. Reported: req/s median (min-max) over rounds, latency p50/p99 over all
// measured requests, errors, ratio of medians to undici Pool, this process's CPU% and the
// server's CPU% during the measured windows (server near 100% = the server was the limit).

import { parseArgs } from 'node:util';
import { createHistogram } from 'node:perf_hooks';
import * as http from 'node:http';
import * as os from 'node:os';
import { Pool, Agent, request as undiciRequest } from 'undici';
import { startLoopbackServer } from '../dist/loopback-server.js';

const ALL_CLIENTS = ['uvfetch', 'undici-pool', 'undici-agent', 'node-http'];
const BASELINE = 'undici-pool';

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

function intArg(values, name, def, min) {
  const v = values[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) fail(`--${name} must be a number >= ${min}, got '${v}'`);
  return n;
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string' },
    warmup: { type: 'string' },
    concurrency: { type: 'string' },
    rounds: { type: 'string' },
    'body-size': { type: 'string' },
    'server-workers': { type: 'string' },
    clients: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: node bench/load.mjs [--duration 5] [--warmup 1] [--concurrency 50] [--rounds 3]\n' +
      '                           [--body-size 13] [--server-workers N] [--clients ' + ALL_CLIENTS.join(',') + '] [--json]\n',
  );
  process.exit(0);
}
const cfg = {
  durationS: intArg(values, 'duration', 5, 0.1),
  warmupS: intArg(values, 'warmup', 1, 0),
  concurrency: Math.floor(intArg(values, 'concurrency', 50, 1)),
  rounds: Math.floor(intArg(values, 'rounds', 3, 1)),
  bodySize: Math.floor(intArg(values, 'body-size', 13, 0)),
  serverWorkers: values['server-workers'] === undefined ? undefined : Math.floor(intArg(values, 'server-workers', 1, 1)),
  clients: values.clients === undefined ? ALL_CLIENTS : values.clients.split(',').map((s) => s.trim()).filter(Boolean),
};
for (const c of cfg.clients) if (!ALL_CLIENTS.includes(c)) fail(`unknown client '${c}' (known: ${ALL_CLIENTS.join(', ')})`);

let uvfetch = null;
if (cfg.clients.includes('uvfetch')) {
  try {
    uvfetch = await import('../dist/index.js');
  } catch (e) {
    fail(
      `cannot load uvfetch from dist/index.js (${e?.message ?? e}).\n` +
        `Build it (npm run build), or leave it out: --clients ${ALL_CLIENTS.filter((c) => c !== 'uvfetch').join(',')}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Clients: each factory returns { request(path) -> Promise<{status, bytes}>, close() }.

function makeClient(name, origin, C) {
  switch (name) {
    case 'uvfetch': {
      const session = new uvfetch.Session({ connections: C, connectionsPerHost: C });
      return {
        async request(path) {
          const res = await session.request(origin + path);
          return { status: res.status, bytes: res.body.length };
        },
        close: () => session.close(),
      };
    }
    case 'undici-pool': {
      const pool = new Pool(origin, { connections: C, pipelining: 1 });
      return {
        async request(path) {
          const { statusCode, body } = await pool.request({ path, method: 'GET' });
          const buf = await body.arrayBuffer();
          return { status: statusCode, bytes: buf.byteLength };
        },
        close: () => pool.close(),
      };
    }
    case 'undici-agent': {
      const agent = new Agent({ connections: C, pipelining: 1 });
      return {
        async request(path) {
          const { statusCode, body } = await undiciRequest(origin + path, { dispatcher: agent });
          const buf = await body.arrayBuffer();
          return { status: statusCode, bytes: buf.byteLength };
        },
        close: () => agent.close(),
      };
    }
    case 'node-http': {
      const agent = new http.Agent({ keepAlive: true, maxSockets: C });
      return {
        request(path) {
          return new Promise((resolve, reject) => {
            const req = http.get(origin + path, { agent }, (res) => {
              const chunks = [];
              res.on('data', (c) => chunks.push(c));
              res.on('end', () => resolve({ status: res.statusCode, bytes: Buffer.concat(chunks).length }));
              res.on('error', reject);
            });
            req.on('error', reject);
          });
        },
        async close() {
          agent.destroy();
        },
      };
    }
    default:
      throw new Error(`unknown client ${name}`);
  }
}

// ---------------------------------------------------------------------------------------------
// One segment: fresh client, warm-up, measured window.

let pathCounter = 0;

async function runPhase(client, C, seconds, hist) {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  let done = 0;
  let errors = 0;
  const errorCodes = {};
  const worker = async () => {
    while (process.hrtime.bigint() < deadline) {
      const t0 = process.hrtime.bigint();
      try {
        const r = await client.request(`/item/${pathCounter++}`);
        if (r.status !== 200 || r.bytes !== cfg.bodySize) throw Object.assign(new Error('bad response'), { code: `BAD_RESPONSE_${r.status}_${r.bytes}B` });
        if (hist) hist.record(process.hrtime.bigint() - t0);
        done++;
      } catch (e) {
        errors++;
        const code = typeof e?.code === 'string' ? e.code : e?.name ?? 'Error';
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        // Do not spin on a dead target.
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: C }, worker));
  const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9;
  return { done, errors, errorCodes, elapsedS };
}

async function runSegment(name, server, hist) {
  const client = makeClient(name, server.url, cfg.concurrency);
  try {
    if (cfg.warmupS > 0) await runPhase(client, cfg.concurrency, cfg.warmupS, null);
    const s0 = await server.stats();
    const cpu0 = process.cpuUsage();
    const r = await runPhase(client, cfg.concurrency, cfg.durationS, hist);
    const cpu = process.cpuUsage(cpu0);
    const s1 = await server.stats();
    const serverCpuS = (s1.cpu.user + s1.cpu.system - s0.cpu.user - s0.cpu.system) / 1e6;
    return {
      reqPerSec: r.done / r.elapsedS,
      requests: r.done,
      errors: r.errors,
      errorCodes: r.errorCodes,
      elapsedS: r.elapsedS,
      clientCpuPercent: (100 * (cpu.user + cpu.system)) / 1e6 / r.elapsedS,
      serverCpuPercent: (100 * serverCpuS) / r.elapsedS,
      serverRequests: s1.requests - s0.requests,
    };
  } finally {
    await client.close();
  }
}

// ---------------------------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const ms = (ns) => ns / 1e6;

const log = (s) => process.stderr.write(s + '\n');

const server = await startLoopbackServer({ bodySize: cfg.bodySize, workers: cfg.serverWorkers });
const cores = os.availableParallelism();
log(
  `server: ${server.url}, ${server.workers} worker process(es), ${server.transport} transport, ` +
    (server.pinnedTo !== null ? `pinned to CPU ${server.pinnedTo}` : 'not pinned') +
    ` (${cores} cores); body ${cfg.bodySize} B`,
);
log(
  `clients: ${cfg.clients.join(', ')}; concurrency ${cfg.concurrency}; ${cfg.rounds} round(s) of ` +
    `${cfg.warmupS}s warm-up + ${cfg.durationS}s measured each`,
);

const results = new Map(cfg.clients.map((c) => [c, { rounds: [], hist: createHistogram() }]));
try {
  for (let round = 1; round <= cfg.rounds; round++) {
    for (const name of cfg.clients) {
      const res = results.get(name);
      const seg = await runSegment(name, server, res.hist);
      res.rounds.push(seg);
      log(
        `  round ${round} ${name.padEnd(12)} ${fmtInt(seg.reqPerSec).padStart(9)} req/s` +
          `  errors ${seg.errors}  client CPU ${seg.clientCpuPercent.toFixed(0)}%  server CPU ${seg.serverCpuPercent.toFixed(0)}%`,
      );
    }
  }
} finally {
  await server.close();
}

const summary = cfg.clients.map((name) => {
  const { rounds, hist } = results.get(name);
  const rps = rounds.map((r) => r.reqPerSec);
  const errorCodes = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.errorCodes)) errorCodes[k] = (errorCodes[k] ?? 0) + v;
  return {
    client: name,
    reqPerSec: { median: median(rps), min: Math.min(...rps), max: Math.max(...rps), rounds: rps },
    latencyMs: hist.count > 0 ? { p50: ms(hist.percentile(50)), p99: ms(hist.percentile(99)), max: ms(hist.max) } : null,
    requests: rounds.reduce((a, r) => a + r.requests, 0),
    errors: rounds.reduce((a, r) => a + r.errors, 0),
    errorCodes,
    clientCpuPercent: median(rounds.map((r) => r.clientCpuPercent)),
    serverCpuPercent: median(rounds.map((r) => r.serverCpuPercent)),
    serverCpuPercentMax: Math.max(...rounds.map((r) => r.serverCpuPercent)),
  };
});
const base = summary.find((s) => s.client === BASELINE);
for (const s of summary) s.ratioToUndiciPool = base ? s.reqPerSec.median / base.reqPerSec.median : null;

if (values.json) {
  process.stdout.write(
    JSON.stringify({
      config: { ...cfg, serverWorkers: server.workers, serverPinnedTo: server.pinnedTo, serverTransport: server.transport, cores, node: process.version },
      results: summary,
    }) + '\n',
  );
} else {
  const header = ['client', 'req/s median (min–max)', 'p50', 'p99', 'errors', `vs ${BASELINE}`, 'client CPU', 'server CPU'];
  const rows = summary.map((s) => [
    s.client,
    `${fmtInt(s.reqPerSec.median)} (${fmtInt(s.reqPerSec.min)}–${fmtInt(s.reqPerSec.max)})`,
    s.latencyMs ? `${s.latencyMs.p50.toFixed(2)} ms` : '-',
    s.latencyMs ? `${s.latencyMs.p99.toFixed(2)} ms` : '-',
    String(s.errors),
    s.ratioToUndiciPool === null ? '-' : `${s.ratioToUndiciPool.toFixed(2)}x`,
    `${s.clientCpuPercent.toFixed(0)}%`,
    `${s.serverCpuPercent.toFixed(0)}%`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  process.stdout.write(
    [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n',
  );
  const busy = summary.filter((s) => s.serverCpuPercentMax >= 90 * server.workers);
  if (busy.length > 0) {
    process.stdout.write(
      `note: server CPU reached ~100% of its ${server.workers} core(s) for ${busy.map((s) => s.client).join(', ')}: ` +
        `those numbers are bounded by the server, not the client.\n`,
    );
  }
}
const anyErrors = summary.some((s) => s.errors > 0);
process.exitCode = anyErrors ? 1 : 0;
