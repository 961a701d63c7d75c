// Integration tests of the `uvfetch` CLI (dist/tools/cli.js): runs it as a child process with small
// numbers against loopback servers only, and checks exit codes and the shape of its output.
// Never asserts timings. Needs the compiled TypeScript and the native addon (npm run build);
// dist/ is compiled here if it is missing.

import { describe, it, expect, beforeAll } from 'vitest';
import { ensureCliBuilt, runCli } from '../helpers/run-cli.js';
import type { Summary } from '../../tools/cli.js';
import * as net from 'node:net';
import { startLoopbackServer } from '../../tools/loopback-server.js';

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

type JsonSummary = Summary;

function parseJsonSummary(stdout: string): JsonSummary {
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1); // exactly one JSON object on stdout
  return JSON.parse(lines[0]!) as JsonSummary;
}

beforeAll(ensureCliBuilt);

describe('uvfetch CLI', () => {
  it('run --json against the embedded server: exit 0 and a well-formed summary', async () => {
    const r = await runCli(['run', '--requests', '300', '--concurrency', '8', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = parseJsonSummary(r.stdout);
    expect(s.command).toBe('run');
    expect(s.ok).toBe(true);
    expect(s.interrupted).toBe(false);
    expect(s.requests).toBe(300);
    expect(s.concurrency).toBe(8);
    expect(s.maxConnections).toBe(8);
    expect(s.started).toBe(300);
    expect(s.completed).toBe(300);
    expect(s.failed).toBe(0);
    expect(s.statuses).toEqual({ '200': 300 });
    expect(s.errors).toEqual({});
    expect(s.bytesReceived).toBe(300 * 13);
    expect(s.durationMs).toBeGreaterThan(0);
    expect(s.reqPerSec).toBeGreaterThan(0);
    expect(s.latencyMs).not.toBeNull();
    const l = s.latencyMs!;
    for (const v of [l.p50, l.p90, l.p99, l.max, l.mean]) {
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThan(0);
    }
    expect(l.p50).toBeLessThanOrEqual(l.p90);
    expect(l.p90).toBeLessThanOrEqual(l.p99);
    expect(l.p99).toBeLessThanOrEqual(l.max * 1.01); // histogram buckets: allow rounding
    expect(s.connections.created).toBeGreaterThanOrEqual(1);
    expect(s.connections.created).toBeLessThanOrEqual(8);
    expect(s.connections.reused).toBeGreaterThanOrEqual(0);
    expect(s.server).not.toBeNull();
    expect(s.server!.requests).toBe(300);
    expect(s.server!.expected).toBe(300);
    expect(s.server!.matches).toBe(true);
    expect(s.server!.connections).toBeGreaterThanOrEqual(1);
    expect(s.client.rssPeakBytes).toBeGreaterThan(0);
    // The live status line went to stderr (stdout is not a TTY and holds the JSON).
    expect(r.stderr).toMatch(/300\/300 +100\.0%/);
  });

  it('default command prints a human summary block', async () => {
    const r = await runCli(['--requests', '120', '--concurrency', '4', '--body-size', '100']);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/uvfetch summary OK/);
    for (const label of ['target', 'requests', 'total time', 'throughput', 'latency', 'statuses', 'errors', 'connections', 'server', 'client']) {
      expect(out).toMatch(new RegExp(`^  ${label} +\\S`, 'm'));
    }
    expect(out).toMatch(/requests +120 ok, 0 failed of 120/);
    expect(out).toMatch(/total time +\d+\.\d{3} s/);
    expect(out).toMatch(/throughput +[\d,]+ req\/s/);
    expect(out).toMatch(/latency +p50 [\d.]+ ms +p90 [\d.]+ ms +p99 [\d.]+ ms +max [\d.]+ ms/);
    expect(out).toMatch(/statuses +200: 120$/m);
    expect(out).toMatch(/errors +none$/m);
    expect(out).toMatch(/connections +created \d+, reused [\d,]+/);
    expect(out).toMatch(/server +120 requests \(= requests sent\)/);
    expect(out).toMatch(/received +12,000 body bytes/);
    expect(r.stderr).toMatch(/inflight \d+ queued \d+/);
    expect(r.stderr).toMatch(/rss [\d.]+ MiB/);
  });

  it('--url with an {i} placeholder against an external loopback server', async () => {
    const srv = await startLoopbackServer({ bodySize: 7, pin: false });
    try {
      const r = await runCli(['--url', `${srv.url}/item/{i}`, '--requests', '150', '--concurrency', '5', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const s = parseJsonSummary(r.stdout);
      expect(s.ok).toBe(true);
      expect(s.completed).toBe(150);
      expect(s.server).toBeNull(); // not the embedded server
      expect(s.bytesReceived).toBe(150 * 7);
      expect((await srv.stats()).requests).toBe(150);
    } finally {
      await srv.close();
    }
  });

  it('exits 1 and counts errors by code when requests fail', async () => {
    const port = await closedPort();
    const r = await runCli(['--url', `http://127.0.0.1:${port}/x`, '--requests', '6', '--concurrency', '2', '--json']);
    expect(r.code, r.stderr).toBe(1);
    const s = parseJsonSummary(r.stdout);
    expect(s.ok).toBe(false);
    expect(s.failed).toBe(6);
    expect(s.completed).toBe(0);
    expect(s.latencyMs).toBeNull();
    const codes = Object.keys(s.errors);
    expect(codes.length).toBeGreaterThanOrEqual(1);
    expect(Object.values(s.errors).reduce((a, b) => a + b, 0)).toBe(6);
    for (const c of codes) expect(c).toMatch(/^[A-Z0-9_]+$/);
  });

  it('rejects bad arguments with exit code 2 and prints help with exit code 0', async () => {
    const bad = await runCli(['--requests', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--requests/);
    const unknown = await runCli(['--no-such-flag']);
    expect(unknown.code).toBe(2);
    const cmd = await runCli(['no-such-command']);
    expect(cmd.code).toBe(2);
    const tooMany = await runCli(['--concurrency', '2', '--connections', '3']);
    expect(tooMany.code).toBe(2);
    const help = await runCli(['help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/commands:/);
    expect(help.stdout).toMatch(/\brun\b/);
    const runHelp = await runCli(['run', '--help']);
    expect(runHelp.code).toBe(0);
    expect(runHelp.stdout).toMatch(/--concurrency/);
  });
});
