// Bulk-fetch benchmark: uvfetch fetchMany vs undici Pool.request driven by a hand-written
// semaphore — the same N URLs at the same concurrency, against the loopback server
// (dist/tools/loopback-server.js, its own process, pinned to the last core when possible).
//
//   node bench/fetch-many.mjs [--requests 100000] [--concurrency 500] [--rounds 1] [--json]
//
// Each client run happens in a fresh child process (so peak RSS is that client's alone), in
// interleaved rounds (uvfetch, undici, uvfetch, ...). Per run: requests/s, peak RSS of the
// process (getrusage maxrss), RSS growth over the process's RSS just before the run, and the
// event-loop delay p99 during the run (perf_hooks.monitorEventLoopDelay, 1 ms resolution; the
// values include that 1 ms timer interval, so an idle loop shows ~1.1 ms).
// URLs come from a generator (never an array of N strings), bodies are read fully.
// With --rounds > 1 the median run of each client is shown.
//
// Needs the compiled TypeScript (npx tsc -p tsconfig.json) and the native addon.

import { fork } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const CHILD = '--fetch-many-bench-child';
const CLIENTS = ['uvfetch', 'undici'];

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

function intArg(values, name, def, min) {
  const v = values[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Child: one client, one run.

function* urls(origin, n) {
  for (let i = 0; i < n; i++) yield `${origin}/item/${i}`;
}

/** Counting semaphore: acquire() resolves when one of `n` permits is free. */
class Semaphore {
  #free;
  #waiters = [];
  constructor(n) {
    this.#free = n;
  }
  acquire() {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  release() {
    const w = this.#waiters.shift();
    if (w !== undefined) w();
    else this.#free++;
  }
}

// A run that makes no progress for this long is reported (with the client's state) and fails,
// instead of hanging the bench.
const STALL_MS = 30_000;
const progress = { phase: 'start', results: 0, at: Date.now(), describe: () => '' };

function setPhase(phase) {
  progress.phase = phase;
  progress.at = Date.now();
}

function startWatchdog(client) {
  let last = -1;
  setInterval(() => {
    if (progress.results !== last) {
      last = progress.results;
      progress.at = Date.now();
    } else if (Date.now() - progress.at > STALL_MS) {
      process.stderr.write(
        `bench: ${client} stalled for ${STALL_MS / 1000} s in phase '${progress.phase}' after ${progress.results} results` + `${progress.describe()}\n`,
      );
      process.exit(3);
    }
  }, 1000).unref();
}

async function runUvfetch(origin, _n, c, onResult) {
  const { Session } = await import('../dist/index.js');
  const { fetchMany } = await import('../dist/session/fetch-many.js');
  const session = new Session({ connections: c, connectionsPerHost: c });
  progress.describe = () => `; session stats ${JSON.stringify(session.stats())}`;
  const run = async (count) => {
    for await (const r of fetchMany(session, urls(origin, count), { concurrency: c })) {
      onResult(r.response !== undefined && r.response.status === 200 && r.response.body.length > 0);
    }
  };
  return { run, close: () => session.close() };
}

async function runUndici(origin, _n, c, onResult) {
  const { Pool } = await import('undici');
  const pool = new Pool(origin, { connections: c, pipelining: 1 });
  progress.describe = () => `; pool stats ${JSON.stringify({ ...pool.stats })}`;
  const prefix = origin.length;
  const run = async (count) => {
    const sem = new Semaphore(c);
    let inFlight = 0;
    let finishedInput = false;
    let allDone;
    const drained = new Promise((resolve) => (allDone = resolve));
    const one = async (url) => {
      try {
        const res = await pool.request({ path: url.slice(prefix), method: 'GET' });
        const body = Buffer.from(await res.body.arrayBuffer());
        onResult(res.statusCode === 200 && body.length > 0);
      } catch {
        onResult(false);
      } finally {
        sem.release();
        if (--inFlight === 0 && finishedInput) allDone();
      }
    };
    for (const url of urls(origin, count)) {
      await sem.acquire();
      inFlight++;
      void one(url);
    }
    finishedInput = true;
    if (inFlight > 0) await drained;
  };
  return { run, close: () => pool.close() };
}

async function child(client, origin, n, c) {
  let ok = 0;
  let failed = 0;
  const onResult = (good) => {
    progress.results++;
    if (good) ok++;
    else failed++;
  };
  startWatchdog(client);
  const impl = await (client === 'uvfetch' ? runUvfetch : runUndici)(origin, n, c, onResult);
  // Warm-up: open the connections, let the JIT settle.
  setPhase('warm-up');
  await impl.run(Math.min(n, Math.max(2 * c, 5000)));
  setPhase('measured run');
  ok = 0;
  failed = 0;
  globalThis.gc?.();
  const rss0 = process.memoryUsage.rss();
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  await impl.run(n);
  const ns = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  h.disable();
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage.rss());
  setPhase('close');
  await impl.close();
  return {
    client,
    requests: n,
    ok,
    failed,
    seconds: ns / 1e9,
    rps: n / (ns / 1e9),
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    rssGrowthMiB: (peak - rss0) / 2 ** 20,
    elDelayP99Ms: h.percentile(99) / 1e6,
    elDelayMaxMs: h.max / 1e6,
    cpuPct: ((cpu.user + cpu.system) / 1e3 / (ns / 1e6)) * 100,
  };
}

if (process.argv.includes(CHILD)) {
  const [client, origin, n, c] = process.argv.slice(process.argv.indexOf(CHILD) + 1);
  const r = await child(client, origin, Number(n), Number(c));
  process.send(r, () => process.exit(0));
} else {
  await main();
}

// ---------------------------------------------------------------------------------------------
// Parent: the server, the runs, the table.

function runChild(client, origin, n, c) {
  return new Promise((resolve, reject) => {
    const cp = fork(fileURLToPath(import.meta.url), [CHILD, client, origin, String(n), String(c)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result;
    cp.on('message', (m) => (result = m));
    cp.on('error', reject);
    cp.on('exit', (code) => (result ? resolve(result) : reject(new Error(`${client} run exited with code ${code} and no result`))));
  });
}

function median(runs, key) {
  const s = runs.map((r) => r[key]).sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

async function main() {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string' },
      concurrency: { type: 'string' },
      rounds: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node bench/fetch-many.mjs [--requests 100000] [--concurrency 500] [--rounds 1] [--json]\n');
    return;
  }
  const n = intArg(values, 'requests', 100_000, 1);
  const c = intArg(values, 'concurrency', 500, 1);
  const rounds = intArg(values, 'rounds', 1, 1);

  let startLoopbackServer;
  try {
    ({ startLoopbackServer } = await import('../dist/tools/loopback-server.js'));
    await import('../dist/session/fetch-many.js');
  } catch (e) {
    fail(`cannot load uvfetch from dist/ (${e?.message ?? e}); build first: npx tsc -p tsconfig.json`);
  }
  const srv = await startLoopbackServer();
  const runs = Object.fromEntries(CLIENTS.map((k) => [k, []]));
  try {
    if (!values.json) {
      process.stdout.write(
        `fetch-many bench: ${n} requests, concurrency ${c}, ${rounds} round(s); server ${srv.url} ` +
          `(${srv.workers} worker(s)${srv.pinnedTo !== null ? `, pinned to CPU ${srv.pinnedTo}` : ''})\n`,
      );
    }
    for (let i = 0; i < rounds; i++) {
      for (const client of CLIENTS) {
        const r = await runChild(client, srv.url, n, c);
        runs[client].push(r);
        if (!values.json && rounds > 1) {
          process.stdout.write(`  round ${i + 1} ${client}: ${Math.round(r.rps)} req/s\n`);
        }
      }
    }
  } catch (e) {
    await srv.close();
    fail(e?.message ?? String(e));
  }
  await srv.close();

  const rows = CLIENTS.map((client) => {
    const rs = runs[client];
    const rps = median(rs, 'rps');
    const r = rs.find((x) => x.rps === rps);
    return r;
  });
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ requests: n, concurrency: c, rounds, runs }, null, 2)}\n`);
    return;
  }
  const header = ['client', 'req/s', 'seconds', 'peak RSS MiB', 'RSS growth MiB', 'EL delay p99 ms', 'EL delay max ms', 'CPU %', 'failed'];
  const table = rows.map((r) => [
    r.client === 'uvfetch' ? 'uvfetch fetchMany' : 'undici Pool+semaphore',
    Math.round(r.rps).toString(),
    r.seconds.toFixed(2),
    r.peakRssMiB.toFixed(1),
    r.rssGrowthMiB.toFixed(1),
    r.elDelayP99Ms.toFixed(2),
    r.elDelayMaxMs.toFixed(2),
    r.cpuPct.toFixed(0),
    String(r.failed),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells) => cells.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
  process.stdout.write(`${line(header)}\n`);
  for (const row of table) process.stdout.write(`${line(row)}\n`);
  const u = rows[0];
  const d = rows[1];
  process.stdout.write(`uvfetch / undici req/s: ${(u.rps / d.rps).toFixed(2)}x\n`);
  if (rows.some((r) => r.failed > 0 || r.ok !== n)) process.exitCode = 1;
}
