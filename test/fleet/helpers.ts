// Helpers of the fleet tests: a real redis-server (Debian package) on a free loopback port in a
// temp dir, a tiny RESP client for the checks, a loopback HTTP server that records every request
// per host, and CLI child processes.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { cli, root, ensureCliBuilt } from '../helpers/run-cli.js';

/** dist/ with the fleet modules (an older dist/ without them is compiled again). */
export function ensureFleetBuilt(): void {
  ensureCliBuilt();
  if (existsSync(path.join(root, 'dist', 'fleet', 'commands.js'))) return;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
}

export const redisMissing: string | undefined = spawnSync('redis-server', ['--version']).error
  ? 'redis-server is not installed (Debian package redis-server; .ci/run installs it)'
  : undefined;

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export function tempDir(name: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `uvfetch-${name}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns true; throws with `what` after `timeoutMs`. */
export async function waitFor(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------
// A small RESP2 client (the tests check Redis with it, independently of the code under test).

type Resp = string | number | null | Resp[] | Error;

export class RespClient {
  readonly #sock: net.Socket;
  #buf: Buffer = Buffer.alloc(0);
  readonly #waiting: Array<(v: Resp) => void> = [];

  private constructor(sock: net.Socket) {
    this.#sock = sock;
    sock.on('data', (d: Buffer) => {
      this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
      for (;;) {
        const r = parse(this.#buf, 0);
        if (r === undefined) break;
        this.#buf = this.#buf.subarray(r[1]);
        this.#waiting.shift()?.(r[0]);
      }
    });
    sock.on('error', () => {});
  }

  static connect(port: number): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.off('error', reject);
        resolve(new RespClient(s));
      });
      s.once('error', reject);
    });
  }

  call(...args: Array<string | number>): Promise<Resp> {
    const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = Buffer.from(String(a));
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    return new Promise((resolve, reject) => {
      this.#waiting.push((v) => (v instanceof Error ? reject(v) : resolve(v)));
      this.#sock.write(Buffer.concat(parts));
    });
  }

  close(): void {
    this.#sock.destroy();
  }
}

function parse(buf: Buffer, off: number): [Resp, number] | undefined {
  const eol = buf.indexOf('\r\n', off);
  if (eol < 0) return undefined;
  const t = String.fromCharCode(buf[off]!);
  const line = buf.toString('utf8', off + 1, eol);
  const next = eol + 2;
  if (t === '+') return [line, next];
  if (t === '-') return [new Error(line), next];
  if (t === ':') return [Number(line), next];
  if (t === '$') {
    const n = Number(line);
    if (n < 0) return [null, next];
    if (buf.length < next + n + 2) return undefined;
    return [buf.toString('utf8', next, next + n), next + n + 2];
  }
  if (t === '*') {
    const n = Number(line);
    if (n < 0) return [null, next];
    const out: Resp[] = [];
    let p = next;
    for (let i = 0; i < n; i++) {
      const r = parse(buf, p);
      if (r === undefined) return undefined;
      out.push(r[0]);
      p = r[1];
    }
    return [out, p];
  }
  throw new Error(`bad RESP type ${t}`);
}

/** Every entry of a stream: [id, fields]. */
export async function xrangeAll(c: RespClient, key: string): Promise<Array<[string, Record<string, string>]>> {
  const out: Array<[string, Record<string, string>]> = [];
  let start = '-';
  for (;;) {
    const r = (await c.call('XRANGE', key, start, '+', 'COUNT', 5000)) as Array<[string, string[]]>;
    for (const [id, flat] of r) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
      out.push([id, f]);
    }
    if (r.length < 5000) return out;
    start = `(${r[r.length - 1]![0]}`;
  }
}

// ---------------------------------------------------------------------------------------------

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  /** SIGKILL (no shutdown save). */
  kill(): Promise<void>;
  /** Starts it again on the same port and dir (AOF reloaded when on). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(opts: { appendonly: boolean }): Promise<RedisServer> {
  const port = await freePort();
  const tmp = tempDir('redis');
  let proc: ChildProcess | undefined;
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--dir',
    tmp.dir,
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
    '--appendonly',
    opts.appendonly ? 'yes' : 'no',
    ...(opts.appendonly ? ['--appendfsync', 'always'] : []),
  ];
  const launch = async (): Promise<void> => {
    const p = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    proc = p;
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor(
      `redis-server on ${port} (${err})`,
      async () => {
        if (p.exitCode !== null) throw new Error(`redis-server exited: ${err}`);
        try {
          const c = await RespClient.connect(port);
          try {
            return (await c.call('PING')) === 'PONG';
          } catch {
            return false; // LOADING
          } finally {
            c.close();
          }
        } catch {
          return false;
        }
      },
      10_000,
      50,
    );
  };
  const killProc = async (signal: NodeJS.Signals): Promise<void> => {
    const p = proc;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await gone;
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir: tmp.dir,
    kill: () => killProc('SIGKILL'),
    start: launch,
    stop: async () => {
      await killProc('SIGKILL');
      tmp.remove();
    },
  };
}

// ---------------------------------------------------------------------------------------------

export interface HostLog {
  /** Arrival times (performance.now(), ms). */
  arrivals: number[];
  active: number;
  maxActive: number;
}

export interface RecordingServer {
  port: number;
  /** Requests per path (the path identifies the URL). */
  hits: Map<string, number>;
  hosts: Map<string, HostLog>;
  total: number;
  close(): Promise<void>;
}

/** A loopback HTTP server answering `ok <path>` after `delayMs`, recording every request per Host. */
export async function startRecordingServer(delayMs = 0, port = 0): Promise<RecordingServer> {
  const hits = new Map<string, number>();
  const hosts = new Map<string, HostLog>();
  const s: RecordingServer = { port: 0, hits, hosts, total: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    let h = hosts.get(host);
    if (h === undefined) {
      h = { arrivals: [], active: 0, maxActive: 0 };
      hosts.set(host, h);
    }
    const hl = h;
    hl.arrivals.push(performance.now());
    hl.active++;
    if (hl.active > hl.maxActive) hl.maxActive = hl.active;
    s.total++;
    const p = req.url ?? '/';
    hits.set(p, (hits.get(p) ?? 0) + 1);
    const answer = (): void => {
      hl.active--;
      res.end(`ok ${p}`);
    };
    req.resume();
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  s.port = (server.address() as net.AddressInfo).port;
  s.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return s;
}

/** A --session-options file mapping every host name to 127.0.0.1. */
export function sessionOptionsFile(dir: string, hostNames: string[]): string {
  const overrides: Record<string, string> = {};
  for (const h of hostNames) overrides[h] = '127.0.0.1';
  const file = path.join(dir, 'session.json');
  writeFileSync(file, JSON.stringify({ dns: { overrides } }));
  return file;
}

export interface CliProcess {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `node dist/tools/cli.js ...args` (stdin ignored unless `stdin` is given). */
export function spawnCli(args: string[], stdin?: string): CliProcess {
  const proc = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  if (stdin !== undefined) proc.stdin!.end(stdin);
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  return { proc, stdout: () => out, stderr: () => err, exited };
}

/** Waits for a child to exit; SIGKILLs it and throws after `timeoutMs`. */
export async function exitOf(p: CliProcess, timeoutMs: number, what: string): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.proc.kill('SIGKILL');
      reject(new Error(`${what} did not exit within ${timeoutMs} ms\nstderr:\n${p.stderr().slice(-3000)}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([p.exited, t]);
  } finally {
    clearTimeout(timer);
  }
}
