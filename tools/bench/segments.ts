// `uvfetch bench`, parent side: one measured segment of a client (a forked child.ts) or of wrk.

// ---------------------------------------------------------------------------------------------
// Parent side: segments.

import { fork, spawn, type ChildProcess } from 'node:child_process';
import type { LoopbackServerStats } from '../loopback-server.js';
import type { TlsServerKind } from '../tls-loopback.js';
import type { FromChild, SegmentResult, SegmentSpec, ToChild } from './child.js';
import { type BenchConfig, CHILD_FLAG, type ClientName, type HttpsTrust, type Scenario, childScriptPath } from './config.js';

export interface Segment extends SegmentResult {
  serverCpuPercent: number | null;
  /** HTTPS: server-side counts over the measured window. */
  serverTls: { requests: number; handshakes: number; resumed: number } | null;
}

/** The server of a scenario: the plain loopback server or one of the HTTPS servers. */
export interface BenchServer {
  kind: 'loopback' | TlsServerKind;
  label: string;
  url: string;
  workers: number;
  transport: string;
  pinnedTo: string | null;
  stats(): Promise<LoopbackServerStats>;
  close(): Promise<void>;
}

export interface SegmentTarget {
  url: string;
  server: BenchServer | null;
  scenario: Scenario;
  concurrency: number;
  /** HTTPS: the CA the clients trust. */
  tls: { caPem: string; caFile: string; trust: HttpsTrust } | null;
}

export function serverTlsDelta(s0: LoopbackServerStats | null, s1: LoopbackServerStats | null): Segment['serverTls'] {
  if (s0 === null || s1 === null || s1.tlsHandshakes === undefined || s0.tlsHandshakes === undefined) return null;
  return {
    requests: s1.requests - s0.requests,
    handshakes: s1.tlsHandshakes - s0.tlsHandshakes,
    resumed: (s1.tlsResumed ?? 0) - (s0.tlsResumed ?? 0),
  };
}

export function serverCpuUs(s: LoopbackServerStats): number {
  return s.cpu.user + s.cpu.system;
}

export function waitMessage(child: ChildProcess, want: FromChild['t'], timeoutMs: number): Promise<FromChild> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`bench client process timed out waiting for '${want}'`));
    }, timeoutMs);
    const onMsg = (m: FromChild): void => {
      if (m.t === want) {
        cleanup();
        resolve(m);
      } else if (m.t === 'error') {
        cleanup();
        reject(new Error(m.message));
      }
    };
    const onExit = (code: number | null, sig: string | null): void => {
      cleanup();
      reject(new Error(`bench client process exited early (code ${code}, signal ${sig})`));
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

export async function runClientSegment(
  client: ClientName,
  t: SegmentTarget,
  cfg: BenchConfig,
  undiciEntry: string | null,
  onPhase: (phase: string) => void,
): Promise<Segment> {
  const spec: SegmentSpec = {
    client,
    url: t.url,
    concurrency: t.concurrency,
    close: !t.scenario.keepAlive,
    warmupS: cfg.warmupS,
    durationS: cfg.durationS,
    expectBytes: t.server !== null ? t.scenario.bodySize : -1,
    undiciEntry,
    tls: t.tls !== null ? { caPem: t.tls.caPem, trust: t.tls.trust } : null,
  };
  const child = fork(childScriptPath(), [CHILD_FLAG], {
    execArgv: [],
    ...(t.tls !== null && t.tls.trust === 'env' ? { env: { ...process.env, NODE_EXTRA_CA_CERTS: t.tls.caFile } } : {}),
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'json',
  });
  child.on('error', () => {});
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  try {
    onPhase(`warm-up /${cfg.warmupS}s`);
    const warm = waitMessage(child, 'warm', (cfg.warmupS + 60) * 1000);
    child.send({ t: 'start', spec } satisfies ToChild);
    await warm;
    const s0 = t.server !== null ? await t.server.stats() : null;
    onPhase(`measuring /${cfg.durationS}s`);
    const res = waitMessage(child, 'result', (cfg.durationS + 60) * 1000);
    child.send({ t: 'go' } satisfies ToChild);
    const { result } = (await res) as { t: 'result'; result: SegmentResult };
    const s1 = t.server !== null ? await t.server.stats() : null;
    const serverCpuPercent = s0 !== null && s1 !== null ? (100 * (serverCpuUs(s1) - serverCpuUs(s0))) / 1e6 / result.elapsedS : null;
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    return { ...result, serverCpuPercent, serverTls: serverTlsDelta(s0, s1) };
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    throw e;
  }
}

/** wrk output → numbers. */
export function parseWrk(out: string): {
  rps: number;
  requests: number;
  elapsedS: number;
  p50Ms: number | null;
  p99Ms: number | null;
  errors: number;
  errorCodes: Record<string, number>;
} | null {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(out);
  if (!rps || !total) return null;
  const unit = (v: string, u: string): number =>
    Number(v) * (u === 'us' ? 1e-3 : u === 'ms' ? 1 : u === 's' ? 1e3 : u === 'm' ? 60e3 : u === 'h' ? 3600e3 : NaN);
  const pct = (p: string): number | null => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(out);
    return m ? unit(m[1]!, m[2]!) : null;
  };
  const errorCodes: Record<string, number> = {};
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (sock) {
    (['connect', 'read', 'write', 'timeout'] as const).forEach((k, i) => {
      const n = Number(sock[i + 1]);
      if (n > 0) errorCodes[`wrk_${k}`] = n;
    });
  }
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx && Number(non2xx[1]) > 0) errorCodes.non_2xx_3xx = Number(non2xx[1]);
  const errors = Object.values(errorCodes).reduce((a, b) => a + b, 0);
  return {
    rps: Number(rps[1]),
    requests: Number(total[1]),
    elapsedS: unit(total[2]!, total[3]!) / 1e3,
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    errors,
    errorCodes,
  };
}

export async function runWrkSegment(t: SegmentTarget, cfg: BenchConfig, onPhase: (phase: string) => void): Promise<Segment> {
  // wrk takes whole seconds; one thread, like the single-threaded JS clients.
  const secs = Math.max(1, Math.round(cfg.durationS));
  const args = ['-t1', `-c${t.concurrency}`, `-d${secs}s`, '--latency', '--timeout', '10s'];
  if (!t.scenario.keepAlive) args.push('-H', 'Connection: close');
  args.push(t.url);
  const s0 = t.server !== null ? await t.server.stats() : null;
  onPhase(`measuring /${secs}s`);
  const started = process.hrtime.bigint();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (text += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), (secs + 60) * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  const s1 = t.server !== null ? await t.server.stats() : null;
  const w = parseWrk(out);
  if (w === null) throw new Error(`could not parse wrk output:\n${out}`);
  const elapsedS = w.elapsedS > 0 ? w.elapsedS : wallS;
  return {
    requests: w.requests,
    errors: w.errors,
    errorCodes: w.errorCodes,
    elapsedS,
    rps: w.rps,
    latencyMs: w.p50Ms !== null && w.p99Ms !== null ? { p50: w.p50Ms, p99: w.p99Ms, max: NaN } : null,
    eventLoopP99Ms: NaN,
    rssBytes: NaN,
    clientCpuPercent: NaN,
    serverCpuPercent: s0 !== null && s1 !== null ? (100 * (serverCpuUs(s1) - serverCpuUs(s0))) / 1e6 / elapsedS : null,
    serverTls: serverTlsDelta(s0, s1),
  };
}
