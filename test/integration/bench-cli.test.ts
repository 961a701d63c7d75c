// Integration tests of `uvfetch bench` (dist/tools/cli.js bench): short runs against the embedded
// loopback server, checking exit codes and the shape of the output. Never asserts timings or
// speed ratios (only that the numbers exist and are positive). Needs the compiled TypeScript and
// the native addon; dist/ is compiled here if it is missing.

import { describe, it, expect, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { ensureCliBuilt, runCli, root } from '../helpers/run-cli.js';
import { parseWrk, type BenchReport } from '../../tools/bench.js';

const CLIENTS = ['uvfetch', 'undici-pool'];
const BASE_ARGS = ['bench', '--duration', '1', '--rounds', '1', '--clients', CLIENTS.join(',')];

beforeAll(ensureCliBuilt);

describe('uvfetch bench', () => {
  it('--json: one JSON document with a result per client', async () => {
    const r = await runCli([...BASE_ARGS, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const rep = JSON.parse(lines[0]!) as BenchReport;
    expect(rep.tool).toBe('uvfetch bench');
    expect(rep.ok).toBe(true);
    expect(rep.baseline).toBe('undici-pool');
    expect(rep.machine.cores).toBeGreaterThanOrEqual(1);
    expect(typeof rep.machine.cpuModel).toBe('string');
    expect(rep.machine.node).toBe(process.version);
    expect(typeof rep.pinning.pinned).toBe('boolean');
    expect(rep.settings).toMatchObject({ durationS: 1, rounds: 1, clients: CLIENTS });
    expect(rep.scenarios).toHaveLength(1);
    const sc = rep.scenarios[0]!;
    expect(sc).toMatchObject({ name: 'small-c50', bodySize: 13, keepAlive: true, chunked: false, concurrency: 50 });
    expect(sc.server).not.toBeNull();
    expect(sc.clients.map((c) => c.client)).toEqual(CLIENTS);
    for (const c of sc.clients) {
      expect(c.errors, JSON.stringify(c.errorCodes)).toBe(0);
      expect(c.requests).toBeGreaterThan(0);
      expect(c.rps.median).toBeGreaterThan(0);
      expect(c.rps.min).toBeGreaterThan(0);
      expect(c.rps.max).toBeGreaterThan(0);
      expect(c.rps.rounds).toHaveLength(1);
      expect(c.latencyMs).not.toBeNull();
      expect(c.latencyMs!.p50).toBeGreaterThan(0);
      expect(c.latencyMs!.p99).toBeGreaterThan(0);
      expect(c.rssMiB).toBeGreaterThan(0);
      expect(typeof c.eventLoopP99Ms).toBe('number');
      expect(typeof c.serverCpuPercent).toBe('number');
      expect(typeof c.ratioToUndiciPool).toBe('number');
      expect(c.ratioToUndiciPool).toBeGreaterThan(0);
      expect(c.ratioToWrk).toBeNull(); // no --with-wrk
    }
    expect(sc.clients.find((c) => c.client === 'undici-pool')!.ratioToUndiciPool).toBe(1);
    // Progress went to stderr, not into the JSON.
    expect(r.stderr).toMatch(/small-c50/);
  });

  it('human output: a header block and a table row per client', async () => {
    const r = await runCli(BASE_ARGS);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/^machine: .+, \d+ cores?, Node v\d+/m);
    expect(out).toMatch(/^pinning: /m);
    expect(out).toMatch(/^small-c50: 13 B body/m);
    const lines = out.split('\n');
    const h = lines.findIndex((l) => /^client\s+req\/s median/.test(l));
    expect(h).toBeGreaterThanOrEqual(0);
    expect(lines[h]).toMatch(/p50\s+p99\s+RSS\s+ELD p99\s+errors\s+vs undici-pool\s+client CPU\s+server CPU$/);
    expect(lines[h + 1]).toMatch(/^-+( +-+)+$/);
    const rows = lines.slice(h + 2).filter((l) => /^\S/.test(l) && !l.startsWith('note') && !l.startsWith('*'));
    expect(rows.slice(0, CLIENTS.length).map((l) => l.split(/\s+/)[0])).toEqual(CLIENTS);
    for (const row of rows.slice(0, CLIENTS.length)) expect(row).toMatch(/\s0\s+[\d.]+x\s/); // errors 0, a ratio
  });

  it('https-c50: a short HTTPS run (nginx if installed, else node:tls workers) is well formed', async () => {
    const r = await runCli(['bench', '--scenario', 'https-c50', '--duration', '0.3', '--warmup', '0.2', '--rounds', '1', '--clients', CLIENTS.join(',')]);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/^note: HTTPS: TLS session resumption is off in every client/m);
    expect(out).toMatch(/^https-c50: HTTPS, 13 B body, keep-alive, concurrency 50 {2}\[server: (nginx \S+|node:tls v\S+), \d+ process\(es\)/m);
    const lines = out.split('\n');
    const h = lines.findIndex((l) => /^client\s+req\/s median/.test(l));
    expect(h).toBeGreaterThanOrEqual(0);
    expect(lines[h + 1]).toMatch(/^-+( +-+)+$/);
    const rows = lines.slice(h + 2, h + 2 + CLIENTS.length);
    expect(rows.map((l) => l.split(/\s+/)[0])).toEqual(CLIENTS);
    for (const row of rows) {
      expect(row).toMatch(/^\S+\s+[\d,]+ \([\d,]+–[\d,]+\)\s/); // req/s median (min–max)
      expect(row).toMatch(/\s0\s+[\d.]+x\s+\d+%\s+\d+%\*?$/); // errors 0, a ratio, client and server CPU
    }
    // The server counted uvfetch's requests, on kept-alive connections (no new handshakes).
    const m = /^server-side, measured windows: uvfetch ([\d,]+) TLS handshakes \(([\d,]+) resumed\) for ([\d,]+) requests/m.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m![3]!.replace(/,/g, ''))).toBeGreaterThan(0);
    expect(Number(m![2]!.replace(/,/g, ''))).toBe(0);
  });

  it('rejects bad arguments with exit code 2; --help exits 0', async () => {
    const bad = await runCli(['bench', '--scenario', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown scenario 'nope'/);
    const badClient = await runCli(['bench', '--clients', 'curl']);
    expect(badClient.code).toBe(2);
    const badServer = await runCli(['bench', '--scenario', 'https-c50', '--https-server', 'apache']);
    expect(badServer.code).toBe(2);
    const httpsUrl = await runCli(['bench', '--scenario', 'https-c50', '--url', 'http://127.0.0.1:1/']);
    expect(httpsUrl.code).toBe(2);
    const help = await runCli(['bench', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--scenario/);
    expect(help.stdout).toMatch(/--with-wrk/);
    expect(help.stdout).toMatch(/https-close-c50/);
  });

  it('parses wrk output', () => {
    const w = parseWrk(
      [
        'Running 2s test @ http://127.0.0.1:18080/',
        '  1 threads and 50 connections',
        '  Latency Distribution',
        '     50%  445.00us',
        '     75%    3.21ms',
        '     99%   60.31ms',
        '  84620 requests in 2.02s, 8.23MB read',
        '  Socket errors: connect 0, read 3, write 0, timeout 1',
        'Requests/sec:  41949.05',
      ].join('\n'),
    );
    expect(w).not.toBeNull();
    expect(w!.rps).toBeCloseTo(41949.05);
    expect(w!.requests).toBe(84620);
    expect(w!.elapsedS).toBeCloseTo(2.02);
    expect(w!.p50Ms).toBeCloseTo(0.445);
    expect(w!.p99Ms).toBeCloseTo(60.31);
    expect(w!.errors).toBe(4);
    expect(w!.errorCodes).toEqual({ wrk_read: 3, wrk_timeout: 1 });
    expect(parseWrk('garbage')).toBeNull();
  });
});

// `npm run bench:raw` (bench/raw-echo.mjs): one very short --json run, checking the shape of the
// report, the CPU accounting fields and that both clients completed round trips. No timings.
describe('bench:raw', () => {
  it('--json: rates, per-round CPU records and the kernel bound for both clients', async () => {
    const argv = ['bench/raw-echo.mjs', '--seconds', '0.3', '--rounds', '1', '--bulk-seconds', '0.3', '--connections', '4', '--json'];
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, argv, { cwd: root, timeout: 30_000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
      );
    });
    const rep = JSON.parse(stdout);
    expect(rep.connections).toBe(4);
    expect(typeof rep.server).toBe('string');
    const linuxProc = process.platform === 'linux';
    for (const k of ['uvfetch', 'node:net']) {
      expect(rep.pingPong[k]).toBeGreaterThan(0);
      expect(rep.bulk[k]).toBeGreaterThan(0);
      expect(rep.rounds.pingPong[k]).toHaveLength(1);
      const pp = rep.cpu.pingPong[k];
      expect(pp.rounds).toHaveLength(1);
      expect(pp.rounds[0].trips).toBeGreaterThan(0);
      expect(pp.userUsPerTrip).toBeGreaterThanOrEqual(0);
      expect(pp.sysUsPerTrip).toBeGreaterThanOrEqual(0);
      expect(pp.userPlusSysUsPerTrip).toBeGreaterThan(0);
      expect(pp.clientCpuPercent).toBeGreaterThan(0);
      const bk = rep.cpu.bulk[k];
      expect(bk.rounds[0].mb).toBeGreaterThan(0);
      expect(typeof bk.userUsPerMB).toBe('number');
      expect(typeof bk.sysUsPerMB).toBe('number');
      if (linuxProc) {
        expect(typeof pp.serverCpuPercent).toBe('number');
        expect(typeof bk.serverCpuPercent).toBe('number');
      }
    }
    expect(rep.cpu.pingPong.kernelBound).toBeGreaterThan(0);
    // A ratio is null only when uvfetch's user CPU in the (short) test window measured 0
    // (getrusage granularity on a loaded machine): a division by zero, not missing data.
    for (const [part, unit] of [
      ['pingPong', 'userUsPerTrip'],
      ['bulk', 'userUsPerMB'],
    ] as const) {
      const r = rep.cpu[part];
      if (r.userRatio === null) expect(r.uvfetch[unit]).toBe(0);
      else expect(typeof r.userRatio).toBe('number');
    }
    expect(rep.cpu.kernelBoundFormula).toMatch(/node:net.*uvfetch sysUsPerTrip/);
  }, 40_000);
});
