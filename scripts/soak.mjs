// Soak: drives many requests through every path that allocates or owns resources — keep-alive,
// a new connection per request, server errors, refused connects, aborts, timeouts, streams left
// half-read — and samples RSS, V8 heap, open fds and active libuv handles every --interval
// seconds. After warm-up the samples must stay flat, and at the end fds and handles must be back
// at their baseline.
//
//   npm run soak                                  # 1,000,000 requests, prints a sample every 10 s
//   node scripts/soak.mjs --requests 50000 --interval 1 --json   # the short version the tests run
//
// Servers: node:http on 127.0.0.1 in a child process (so the server's memory is not ours).
import { fork } from 'node:child_process';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

if (process.argv[2] === '--server') {
  const http = await import('node:http');
  const srv = http.createServer((req, res) => {
    if (req.url === '/close') res.setHeader('connection', 'close');
    if (req.url === '/500') res.statusCode = 500;
    if (req.url === '/slow') return setTimeout(() => res.end('late'), 300);
    if (req.url === '/big') return res.end(Buffer.alloc(256 * 1024, 'b'));
    res.end('ok');
  });
  srv.keepAliveTimeout = 60_000;
  srv.listen(0, '127.0.0.1', () => process.send(srv.address().port));
  process.on('disconnect', () => process.exit(0));
} else {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '1000000' },
      concurrency: { type: 'string', default: '200' },
      interval: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '0.2' }, // fraction of the requests
      'max-rss-growth': { type: 'string', default: '64' }, // MiB after warm-up
      json: { type: 'boolean', default: false },
    },
  });
  const total = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const here = fileURLToPath(import.meta.url);
  const { Session } = await import(new URL('../dist/index.js', import.meta.url).href);

  const server = fork(here, ['--server'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const port = await new Promise((r) => server.once('message', r));
  const base = `http://127.0.0.1:${port}`;
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const handles = () => process.getActiveResourcesInfo().filter((t) => t !== 'Timeout' && t !== 'Immediate').length;
  const mib = (n) => Math.round((n / 1048576) * 10) / 10;

  const baseline = { fds: fds(), handles: handles() };
  const session = new Session({ connectionsPerHost: 64, timeout: { headers: 100 } });
  const samples = [];
  let done = 0;
  let errors = 0;
  let warmRss = 0;
  const t0 = Date.now();
  const sample = () => {
    global.gc?.();
    const m = process.memoryUsage();
    const s = { t: (Date.now() - t0) / 1000, done, rss: mib(m.rss), heap: mib(m.heapUsed), fds: fds(), handles: handles() };
    samples.push(s);
    if (!values.json) {
      console.log(`${s.t.toFixed(0).padStart(5)} s  ${String(done).padStart(8)} req  rss ${s.rss} MiB  heap ${s.heap} MiB  fds ${s.fds}  handles ${s.handles}`);
    }
  };
  const timer = setInterval(sample, Number(values.interval) * 1000);

  // The mix: mostly keep-alive, plus every other path once in a while.
  const one = async (i) => {
    const k = i % 50;
    try {
      if (k === 0) await session.request(`${base}/close`);
      else if (k === 1) await session.request(`${base}/500`);
      else if (k === 2)
        await session.request('http://127.0.0.1:1/'); // refused
      else if (k === 3)
        await session.request(`${base}/slow`); // headers timeout
      else if (k === 4) {
        const ac = new AbortController();
        const p = session.request(`${base}/slow`, { signal: ac.signal });
        setTimeout(() => ac.abort(), 1);
        await p;
      } else if (k === 5) {
        const st = await session.stream(`${base}/big`);
        for await (const _ of st.body) break; // half-read, then dropped
      } else await session.request(`${base}/`);
    } catch {
      errors++;
    }
    done++;
    if (warmRss === 0 && done >= total * Number(values.warmup)) {
      global.gc?.();
      warmRss = process.memoryUsage().rss;
      sample();
    }
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await one(next++);
    }),
  );
  clearInterval(timer);
  await session.close();
  server.disconnect();
  await new Promise((r) => server.once('exit', r));
  await new Promise((r) => setTimeout(r, 100));
  sample();
  const last = samples.at(-1);
  const growth = mib(process.memoryUsage().rss - warmRss);
  const result = {
    requests: done,
    errors,
    seconds: (Date.now() - t0) / 1000,
    baseline,
    final: { fds: last.fds, handles: last.handles },
    rssAfterWarmup: mib(warmRss),
    rssGrowthMiB: growth,
    peakRss: Math.max(...samples.map((s) => s.rss)),
    samples,
  };
  const ok = growth <= Number(values['max-rss-growth']) && last.fds <= baseline.fds && last.handles <= baseline.handles;
  result.ok = ok;
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log(
      `soak: ${done} requests (${errors} expected errors) in ${result.seconds.toFixed(1)} s; RSS after warm-up ${result.rssAfterWarmup} MiB, growth ${growth} MiB; fds ${baseline.fds} → ${last.fds}, handles ${baseline.handles} → ${last.handles}: ${ok ? 'flat' : 'NOT FLAT'}`,
    );
  }
  process.exitCode = ok ? 0 : 1;
}
