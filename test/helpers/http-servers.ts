// Shared helpers for the integration tests: loopback-only servers (node:http and raw node:net)
// that count connections and requests, plus small bounded wait utilities and a cleanup list.
// Every server listens on 127.0.0.1 (or ::1 when asked) port 0 and is closed by its close().

import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Session, type SessionOptions } from '../../lib/index.js';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext) => unknown;

export interface RequestContext {
  /** 1-based index of this request on the whole server. */
  index: number;
  /** 1-based id of the socket it arrived on (in accept order). */
  socketId: number;
  /** How many requests this socket has carried, this one included. */
  onSocket: number;
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  socketId: number;
  body?: Buffer;
}

interface Counting {
  /** Sockets accepted so far. */
  connections: number;
  /** Sockets currently open. */
  open: number;
  /** Highest number of sockets open at the same time. */
  maxOpen: number;
  /** Sockets that have closed (server side observed 'close'). */
  closed: number;
  /** socketId → remote port, in accept order. */
  remotePorts: number[];
  /** Resolves when socket `id` (1-based) has closed. */
  socketClosed(id: number): Promise<void>;
  isSocketClosed(id: number): boolean;
}

export interface HttpTestServer extends Counting {
  server: http.Server;
  port: number;
  host: string;
  /** http://host:port + path */
  url(path?: string): string;
  requests: SeenRequest[];
  /** Requests currently being handled (response not finished). */
  inFlight: number;
  maxInFlight: number;
  close(): Promise<void>;
}

export interface StartHttpOptions {
  host?: string;
  /** Read and keep every request body into SeenRequest.body before calling the handler. */
  collectBody?: boolean;
  /** node:http keepAliveTimeout (ms). Default 60 s so the client is the one that closes idle sockets. */
  keepAliveTimeout?: number;
}

const live = new Set<{ close(): Promise<void> }>();

function makeCounting(): Counting & { track(sock: net.Socket): number } {
  const closedIds = new Set<number>();
  const waiters = new Map<number, Array<() => void>>();
  const c = {
    connections: 0,
    open: 0,
    maxOpen: 0,
    closed: 0,
    remotePorts: [] as number[],
    socketClosed(id: number): Promise<void> {
      if (closedIds.has(id)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const list = waiters.get(id) ?? [];
        list.push(resolve);
        waiters.set(id, list);
      });
    },
    isSocketClosed(id: number): boolean {
      return closedIds.has(id);
    },
    track(sock: net.Socket): number {
      const id = ++c.connections;
      c.remotePorts.push(sock.remotePort ?? 0);
      c.open++;
      if (c.open > c.maxOpen) c.maxOpen = c.open;
      sock.on('error', () => {});
      sock.on('close', () => {
        c.open--;
        c.closed++;
        closedIds.add(id);
        for (const w of waiters.get(id) ?? []) w();
        waiters.delete(id);
      });
      return id;
    },
  };
  return c;
}

function listen(server: net.Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** Starts a node:http server on 127.0.0.1:0 that counts sockets and requests. */
export async function startHttpServer(handler: Handler, opts: StartHttpOptions = {}): Promise<HttpTestServer> {
  const host = opts.host ?? '127.0.0.1';
  const counting = makeCounting();
  const sockets = new Set<net.Socket>();
  const socketIds = new WeakMap<net.Socket, number>();
  const perSocket = new Map<number, number>();
  const server = http.createServer();
  server.keepAliveTimeout = opts.keepAliveTimeout ?? 60_000;
  server.headersTimeout = 120_000;
  server.requestTimeout = 0;
  const s = counting as unknown as HttpTestServer;
  s.server = server;
  s.host = host;
  s.requests = [];
  s.inFlight = 0;
  s.maxInFlight = 0;
  server.on('connection', (sock) => {
    sockets.add(sock);
    socketIds.set(sock, counting.track(sock));
    sock.on('close', () => sockets.delete(sock));
  });
  server.on('request', (req, res) => {
    const socketId = socketIds.get(req.socket) ?? 0;
    const onSocket = (perSocket.get(socketId) ?? 0) + 1;
    perSocket.set(socketId, onSocket);
    const seen: SeenRequest = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, socketId };
    s.requests.push(seen);
    const ctx: RequestContext = { index: s.requests.length, socketId, onSocket };
    s.inFlight++;
    if (s.inFlight > s.maxInFlight) s.maxInFlight = s.inFlight;
    let counted = true;
    const done = () => {
      if (counted) {
        counted = false;
        s.inFlight--;
      }
    };
    res.on('finish', done);
    res.on('close', done);
    const run = () => {
      try {
        const r = handler(req, res, ctx);
        if (r && typeof (r as Promise<void>).catch === 'function') {
          (r as Promise<void>).catch(() => res.destroy());
        }
      } catch {
        res.destroy();
      }
    };
    if (opts.collectBody) {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        seen.body = Buffer.concat(parts);
        run();
      });
      req.on('error', () => {});
    } else {
      run();
    }
  });
  server.on('clientError', (_err, sock) => sock.destroy());
  const port = await listen(server, host);
  s.port = port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  s.url = (path = '/') => `http://${urlHost}:${port}${path}`;
  let closing: Promise<void> | undefined;
  s.close = () => {
    closing ??= new Promise<void>((resolve) => {
      live.delete(s);
      for (const sock of sockets) sock.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
    return closing;
  };
  live.add(s);
  return s;
}

export interface NetTestServer extends Counting {
  server: net.Server;
  port: number;
  sockets: net.Socket[];
  url(path?: string): string;
  close(): Promise<void>;
}

/** Starts a raw node:net server on 127.0.0.1:0; onConnection gets each socket and its 1-based id. */
export async function startNetServer(onConnection: (sock: net.Socket, id: number) => void, host = '127.0.0.1'): Promise<NetTestServer> {
  const counting = makeCounting();
  const s = counting as unknown as NetTestServer;
  s.sockets = [];
  const server = net.createServer((sock) => {
    s.sockets.push(sock);
    const id = counting.track(sock);
    onConnection(sock, id);
  });
  s.server = server;
  s.port = await listen(server, host);
  s.url = (path = '/') => `http://${host}:${s.port}${path}`;
  let closing: Promise<void> | undefined;
  s.close = () => {
    closing ??= new Promise<void>((resolve) => {
      live.delete(s);
      for (const sock of s.sockets) sock.destroy();
      server.close(() => resolve());
    });
    return closing;
  };
  live.add(s);
  return s;
}

/** Closes every server started by these helpers that is still open (call from afterEach). */
export async function closeAllServers(): Promise<void> {
  await Promise.all([...live].map((s) => s.close()));
}

/** A loopback port that was bound and then released: nothing listens on it. */
/**
 * A loopback port whose connects hang: a python3 listener with backlog 0 that never accepts, with
 * its accept queue already filled, so the kernel drops further SYNs. Stopped by `cleanup`.
 */
export async function hangingPort(cleanup: Cleanup): Promise<number> {
  const script = [
    'import socket, sys',
    "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(0)",
    'port = l.getsockname()[1]',
    'fill = []',
    'for i in range(16):',
    '    c = socket.socket(); c.settimeout(0.3)',
    '    try:',
    "        c.connect(('127.0.0.1', port)); fill.append(c)",
    '    except Exception:',
    '        c.close(); break',
    'print(port, flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  cleanup.add(() => {
    child.stdin?.end();
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const line = await within(
    new Promise<string>((resolve, reject) => {
      child.once('error', reject);
      child.stdout!.once('data', (d: Buffer) => resolve(d.toString()));
    }),
    10_000,
    'python3 listener',
  );
  return Number(line.trim());
}

export async function closedPort(): Promise<number> {
  const srv = net.createServer();
  const port = await listen(srv, '127.0.0.1');
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Polls `cond` every 5 ms until it holds or `timeoutMs` passes; throws on timeout. */
export async function waitFor(cond: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Rejects after ms: races a promise so that a hang fails the test with a clear message. */
export function within<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]);
}

/** Awaits a promise expected to reject, and returns the rejection reason. */
export async function rejection(p: Promise<unknown>, ms = 20_000): Promise<any> {
  try {
    await within(p, ms, 'request');
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** Runs fn and returns what it threw synchronously (fails if it returned instead). */
export function thrown(fn: () => unknown): any {
  let r: unknown;
  try {
    r = fn();
  } catch (e) {
    return e;
  }
  if (r instanceof Promise) r.catch(() => {});
  throw new Error(`expected a synchronous throw, got ${r instanceof Promise ? 'a promise' : String(r)}`);
}

/** Reads a whole request body. */
export function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

/** Collects cleanup callbacks (sessions to close/destroy, children to kill) run in afterEach. */
export class Cleanup {
  #fns: Array<() => unknown> = [];
  add(fn: () => unknown): void {
    this.#fns.push(fn);
  }
  async run(): Promise<void> {
    const fns = this.#fns.reverse();
    this.#fns = [];
    for (const fn of fns) {
      try {
        await within(Promise.resolve(fn()), 10_000, 'cleanup');
      } catch {
        // keep cleaning
      }
    }
    await closeAllServers();
  }
}

/** A `session(opts)` maker whose sessions are destroyed by `cleanup` after each test. */
export function sessionFactory(cleanup: Cleanup): (opts?: SessionOptions) => Session {
  return (opts) => {
    const s = new Session(opts);
    cleanup.add(() => s.destroy());
    return s;
  };
}

/** Number of open file descriptors of this process (Linux). */
export function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

// ---------------------------------------------------------------------------------------------
// Child-process scenarios
//
// Some behaviours depend on how the event loop wakes up (a bug that only shows when nothing else
// wakes the loop). Inside a vitest worker other timers and IPC wake the loop at random, which
// hides such bugs; a plain `node` child with nothing else running shows them deterministically.
// The child imports the compiled package (dist/index.js; built here with tsc if missing).

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function ensureDist(): string {
  const entry = path.join(repoRoot, 'dist', 'index.js');
  if (!fs.existsSync(entry)) {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', path.join(repoRoot, 'tsconfig.json')], { cwd: repoRoot, stdio: 'inherit' });
  }
  return pathToFileURL(entry).href;
}

/**
 * Runs `body` (an async ES module body) in a fresh node process. In scope: `Session`,
 * `UvfetchError`, `http`, `net`, `out` (an object printed as JSON at the end), `env` and
 * `sleep(ms)`. A watchdog ends the scenario after `watchdogMs` (out.watchdog = true), so a hang is
 * bounded. Returns `out`.
 */
export async function runScenario(body: string, opts: { watchdogMs?: number; env?: Record<string, string> } = {}): Promise<any> {
  const watchdogMs = opts.watchdogMs ?? 6000;
  const code = `
import * as http from 'node:http';
import * as net from 'node:net';
const { Session, UvfetchError } = await import(${JSON.stringify(ensureDist())});
const env = process.env;
const out = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const watchdog = setTimeout(() => { out.watchdog = true; console.log(JSON.stringify(out)); process.exit(0); }, ${watchdogMs});
try {
${body}
} catch (e) { out.error = String(e && e.stack || e); }
clearTimeout(watchdog);
console.log(JSON.stringify(out));
process.exit(0);
`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      cwd: repoRoot,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const kill = setTimeout(() => child.kill('SIGKILL'), watchdogMs + 10_000);
    child.on('error', (e) => {
      clearTimeout(kill);
      reject(e);
    });
    child.on('close', (codeNum) => {
      clearTimeout(kill);
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`scenario exited ${codeNum} without JSON\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      }
    });
  });
}
