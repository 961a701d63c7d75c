// Load benchmark: uvfetch vs undici (Pool, Agent) vs node:http vs fetch (vs wrk) against the
// same loopback server. A thin wrapper around `uvfetch bench` (tools/bench.ts): same options.
//
//   npm run bench -- [--scenario small-c50|small-c500|16k-c50|close-c50|chunked-c50|
//                                https-c50|https-close-c50|all]
//                    [--clients uvfetch,undici-pool,undici-agent,node-http,fetch] [--concurrency N]
//                    [--duration 3] [--warmup 1] [--rounds 3] [--https-server auto|nginx|node]
//                    [--https-trust env|ca] [--with-wrk] [--json] [--help]
//
// HTTPS scenarios need the `openssl` command (test certificate); they use nginx as the server when
// it is installed (Debian/Ubuntu: apt-get install nginx-light), else node:tls server processes,
// and say which in the output.
//
// Needs the compiled TypeScript (npx tsc -p tsconfig.json) and the native addon.

let bench;
try {
  bench = await import('../dist/tools/bench.js');
} catch (e) {
  process.stderr.write(`bench: cannot load dist/tools/bench.js (${e?.message ?? e}); build first: npm run build\n`);
  process.exit(2);
}
process.exitCode = await bench.benchMain(process.argv.slice(2));
