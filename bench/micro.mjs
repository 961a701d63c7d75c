// Micro-benchmarks of the JS-side costs a user pays per response, through public API only.
//
//   node bench/micro.mjs [--time 1000]
//
// Needs the compiled TypeScript (npx tsc -p tsconfig.json) and the native addon.
//
//   headers.get() first read   a fresh ResponseHeaders over a real 10-header response head, then
//                              one get(): the lazy parse of the head that res.headers does on first
//                              access, plus the lookup
//   headers.get() again        get() on an already parsed 10-header response
//   res.text()                 await res.text() on a real response (13 B body)
//   request() round trip c1    await session.request() against the loopback server (its own
//                              process), one request at a time: latency, not throughput
//   undici Pool round trip c1  the same with undici Pool.request + body.arrayBuffer(), for scale
//   submit→complete, socket faked out, c1 / c50
//                              session.request() on connections whose socket is a socket-less
//                              stand-in (tools/bench-hooks.ts, native/core/net/memory_socket.h)
//                              answering each request from the event loop: everything uvfetch does
//                              per request (JS API, the submit crossing, encoding, pool, parsing,
//                              the per-turn batch, promise resolution) and nothing of the kernel's.
//                              c50 runs 50 requests at once per iteration, reported per request.
//
// Sub-microsecond operations are timed in batches of 1000 (so the timer's own cost does not
// dominate) and reported per operation. Numbers move by several percent between runs; compare
// runs on the same machine only.

import * as net from 'node:net';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import { Session, ResponseHeaders } from '../dist/index.js';
import { kMemoryResponse } from '../dist/tools/bench-hooks.js';
import { startLoopbackServer } from '../dist/tools/loopback-server.js';

const { values } = parseArgs({ options: { time: { type: 'string', default: '1000' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write('usage: node bench/micro.mjs [--time MS per task, default 1000]\n');
  process.exit(0);
}
const time = Math.max(100, Number(values.time) || 1000);
const BATCH = 1000;

// A response with 10 header fields, from a tiny in-process server (used once).
const HEAD10 =
  'HTTP/1.1 200 OK\r\n' +
  'Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n' +
  'Server: micro\r\n' +
  'Content-Type: text/plain; charset=utf-8\r\n' +
  'Content-Length: 13\r\n' +
  'Cache-Control: no-store\r\n' +
  'ETag: "abc123"\r\n' +
  'Vary: Accept-Encoding\r\n' +
  'X-Request-Id: 4f6c1c52-8a2e-4a8e-9a57-3f1f5a2b7c10\r\n' +
  'X-Frame-Options: DENY\r\n' +
  'Connection: keep-alive\r\n\r\n';
const raw = net.createServer((s) => {
  s.on('data', () => s.write(`${HEAD10}Hello, World!`));
  s.on('error', () => {});
});
await new Promise((r) => raw.listen(0, '127.0.0.1', r));
const session = new Session();
const res10 = await session.request(`http://127.0.0.1:${raw.address().port}/`);
await session.close();
raw.close();
const rawHead = res10.headers.rawHead;
if ([...res10.headers].length !== 10) throw new Error('expected a 10-header response');

// Round trips: the loopback server in its own process(es).
const server = await startLoopbackServer({ bodySize: 13 });
const url = `${server.url}/micro`;
const rtSession = new Session({ connections: 1, connectionsPerHost: 1 });
let undici = null;
try {
  undici = await import('undici');
} catch {
  process.stderr.write('undici not installed: skipping the undici round trip\n');
}
const pool = undici ? new undici.Pool(server.url, { connections: 1 }) : null;

const fake = new Session({ connectionsPerHost: 50, [kMemoryResponse]: `${HEAD10}Hello, World!` });
const fakeUrl = 'http://127.0.0.1:9/micro'; // never dialled: the stand-in answers
const FAKE_C = 50;

let sink = 0;
const bench = new Bench({ time, warmupTime: Math.min(500, time) });
bench
  .add(`headers.get() first read (x${BATCH})`, () => {
    for (let i = 0; i < BATCH; i++) sink += new ResponseHeaders(rawHead).get('x-request-id').length;
  })
  .add(`headers.get() again (x${BATCH})`, () => {
    const h = res10.headers;
    for (let i = 0; i < BATCH; i++) sink += h.get('x-request-id').length;
  })
  .add(`res.text() (x${BATCH})`, async () => {
    for (let i = 0; i < BATCH; i++) sink += (await res10.text()).length;
  })
  .add('request() round trip c1', async () => {
    const r = await rtSession.request(url);
    sink += r.body.length;
  });
bench
  .add('submit→complete, socket faked out, c1', async () => {
    const r = await fake.request(fakeUrl);
    sink += r.body.length;
  })
  .add(`submit→complete, socket faked out, c50 (x${FAKE_C})`, async () => {
    const all = [];
    for (let i = 0; i < FAKE_C; i++) all.push(fake.request(fakeUrl));
    for (const r of await Promise.all(all)) sink += r.body.length;
  });
if (pool) {
  bench.add('undici Pool round trip c1', async () => {
    const { body } = await pool.request({ path: '/micro', method: 'GET' });
    sink += (await body.arrayBuffer()).byteLength;
  });
}

try {
  await bench.run();
} finally {
  await rtSession.close();
  await fake.close();
  if (pool) await pool.close();
  await server.close();
}

const rows = bench.tasks.map((t) => {
  const r = t.result;
  if (r.state !== 'completed') return { task: t.name, 'ops/s': r.state === 'errored' ? String(r.error) : r.state };
  const per = Number(/\(x(\d+)\)$/.exec(t.name)?.[1] ?? 1);
  const meanMs = r.latency.mean / per;
  return {
    task: t.name.replace(/ \(x\d+\)$/, ''),
    'ops/s': Math.round(1000 / meanMs).toLocaleString('en-US'),
    'mean per op': meanMs < 0.001 ? `${(meanMs * 1e6).toFixed(0)} ns` : `${(meanMs * 1e3).toFixed(1)} µs`,
    'p99 per op': per === 1 ? `${(r.latency.p99 * 1e3).toFixed(1)} µs` : '-',
    '±': `${r.latency.rme.toFixed(1)}%`,
    samples: r.latency.samplesCount ?? r.latency.samples?.length ?? '-',
  };
});
console.log(`uvfetch micro-benchmarks — Node ${process.version}, loopback server pinned to ${server.pinnedTo ?? 'no core'}`);
console.table(rows);
if (sink < 0) console.log(sink); // keep the results observable to the optimizer
