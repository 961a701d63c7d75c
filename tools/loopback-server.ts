// A fast loopback HTTP/1.1 server for the uvfetch CLI, benchmarks and tests.
//
// It must never be the bottleneck for a native client doing 100k+ req/s, so it is not
// node:http: it is a raw node:net server that parses requests minimally (find the end of the
// header block, honour Content-Length request bodies, keep-alive) and answers every request
// with one precomputed response buffer. It runs in separate process(es) — this very module,
// forked — so it uses another core than the client; when the machine has >= 2 cores and
// `taskset` exists the server processes are pinned to the last core(s).
//
//   import { startLoopbackServer } from './loopback-server.js';
//   const srv = await startLoopbackServer({ bodySize: 13 });
//   ... fetch `${srv.url}/anything` ...
//   console.log(await srv.stats());   // { requests, connections, openConnections, cpu, ... }
//   await srv.close();
//
// Standalone: `node dist/tools/loopback-server.js [--port 8080] [--body-size 13] [--workers N]
//                                          [--chunked] [--no-keep-alive] [--transport net]`
//
// With `tls: { cert, key }` the workers speak HTTPS instead (node:tls over net.Socket, same
// request handling), and count handshakes and resumed sessions. That is the portable fallback
// of the HTTPS benchmark server (tls-loopback.ts prefers nginx, which is much faster).
//
// Every request gets `200 OK` with a body of `bodySize` bytes ("Hello, World!" repeated and
// cut to size), either with Content-Length or as one chunk (`chunked: true`); HEAD requests get
// the same headers without a body. `keepAlive: false` adds `Connection: close` and closes the
// socket after each response. A request with `Connection: close` also closes after its response.
// Pipelined requests are answered in order (not needed by uvfetch, but cheap to support).
// Request bodies sent with `Transfer-Encoding: chunked` are not supported (answered with 501,
// connection closed). Children exit as soon as their IPC channel to the parent goes away.

import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';

export interface LoopbackServerOptions {
  /** Only loopback is ever bound. Default '127.0.0.1'. */
  host?: '127.0.0.1';
  /** 0 (default) = an ephemeral port. */
  port?: number;
  /** Response body size in bytes. Default 13 ("Hello, World!"). */
  bodySize?: number;
  /**
   * Number of server processes sharing the listening socket. Default: 1 on machines with up to
   * 3 cores, else half the cores (at most 4) — the rest is left to the client.
   */
  workers?: number;
  /** Send the body with Transfer-Encoding: chunked instead of Content-Length. Default false. */
  chunked?: boolean;
  /** Keep connections alive between requests. Default true. */
  keepAlive?: boolean;
  /** Pin server processes to the last core(s) when possible. Default true. */
  pin?: boolean;
  /**
   * Explicit CPU list for the server processes (taskset -c syntax, e.g. '3' or '2,3') instead of
   * the automatic choice. Needed when this process is itself pinned (the automatic choice only
   * picks among the cores this process may use). Ignored with `pin: false` or without taskset.
   */
  pinTo?: string;
  /**
   * 'auto' (default): drive libuv stream handles directly when this Node version allows it
   * (less CPU per request), else net.Socket. 'net': always net.Socket.
   */
  transport?: 'auto' | 'net';
  /** Serve HTTPS with this certificate chain and key (PEM). Default: plain HTTP. */
  tls?: { cert: string; key: string };
}

export interface LoopbackServerStats {
  /** Requests parsed (and answered) by all workers. */
  requests: number;
  /** Connections accepted by all workers since start. */
  connections: number;
  /** Connections currently open. */
  openConnections: number;
  /** Request parse errors (answered with 400/501 and closed). */
  badRequests: number;
  /** TLS servers only: handshakes completed, and how many of them resumed a session. */
  tlsHandshakes?: number;
  tlsResumed?: number;
  /** CPU time consumed by all server processes since start, microseconds. */
  cpu: { user: number; system: number };
}

export interface LoopbackServer {
  /** e.g. 'http://127.0.0.1:41234' (no trailing slash). */
  url: string;
  port: number;
  host: string;
  workers: number;
  /** Cores the server processes are pinned to (e.g. '1'), or null when not pinned. */
  pinnedTo: string | null;
  /** Worker process ids. */
  pids: number[];
  /** How the workers do I/O: raw libuv stream handles, net.Socket, or node:tls over net.Socket. */
  transport: 'handles' | 'net' | 'tls';
  close(): Promise<void>;
  stats(): Promise<LoopbackServerStats>;
}

// ---------------------------------------------------------------------------------------------
// Wire protocol between the parent and the server children (IPC messages).

interface ChildConfig {
  bodySize: number;
  chunked: boolean;
  keepAlive: boolean;
  transport: 'auto' | 'net';
  tls: { cert: string; key: string } | null;
}
type ToChild = { t: 'config'; config: ChildConfig } | { t: 'stats'; id: number } | { t: 'close' };
type FromChild =
  | { t: 'ready'; pid: number; transport: 'handles' | 'net' | 'tls' }
  | { t: 'stats'; id: number; stats: LoopbackServerStats }
  | { t: 'error'; message: string };

const CHILD_FLAG = '--uvfetch-loopback-child';

// ---------------------------------------------------------------------------------------------
// Response construction (shared, pure).

export interface Responses {
  get: Buffer;
  head: Buffer;
  /** Variants with `Connection: close`, for requests that close the connection. */
  getClose: Buffer;
  headClose: Buffer;
}

/** Builds the precomputed response buffers for a configuration. */
export function buildResponses(config: ChildConfig): Responses {
  const ka = buildResponsePair(config, config.keepAlive);
  const close = config.keepAlive ? buildResponsePair(config, false) : ka;
  return { get: ka.get, head: ka.head, getClose: close.get, headClose: close.head };
}

function buildResponsePair(config: ChildConfig, keepAlive: boolean): { get: Buffer; head: Buffer } {
  const pattern = 'Hello, World!';
  const body = Buffer.alloc(config.bodySize);
  if (config.bodySize > 0) body.fill(pattern);
  const lines = ['HTTP/1.1 200 OK', 'Content-Type: text/plain'];
  if (config.chunked) lines.push('Transfer-Encoding: chunked');
  else lines.push(`Content-Length: ${config.bodySize}`);
  lines.push(keepAlive ? 'Connection: keep-alive' : 'Connection: close');
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  let get: Buffer;
  if (config.chunked) {
    const parts: Buffer[] = [head];
    if (config.bodySize > 0) {
      parts.push(Buffer.from(`${config.bodySize.toString(16)}\r\n`, 'latin1'), body, Buffer.from('\r\n'));
    }
    parts.push(Buffer.from('0\r\n\r\n', 'latin1'));
    get = Buffer.concat(parts);
  } else {
    get = Buffer.concat([head, body]);
  }
  return { get, head };
}

const BAD_REQUEST = Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 'latin1');
const NOT_IMPLEMENTED = Buffer.from('HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 'latin1');
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const MAX_HEADER_BYTES = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Child side: the actual server loop.

interface Counters {
  requests: number;
  connections: number;
  openConnections: number;
  badRequests: number;
  tlsHandshakes: number;
  tlsResumed: number;
}

/** Value of a header in a lower-cased latin1 header block (request line + headers), or null. */
function headerValue(block: string, lowerName: string): string | null {
  const key = `\r\n${lowerName}:`;
  const at = block.indexOf(key);
  if (at < 0) return null;
  const start = at + key.length;
  let end = block.indexOf('\r\n', start);
  if (end < 0) end = block.length;
  return block.slice(start, end).trim();
}

/** Per-connection request parser state. */
interface ConnState {
  pending: Buffer | null; // unparsed bytes carried over between reads
  bodyRemaining: number; // request body bytes still to skip
  closing: boolean; // a response with Connection: close (or an error) was produced
}

/**
 * Consumes bytes read from a connection and returns the bytes to write back (null = nothing
 * yet). Sets `st.closing` when the connection must be closed after writing them.
 */
function onBytes(st: ConnState, chunk: Buffer, responses: Responses, config: ChildConfig, counters: Counters): Buffer | null {
  if (st.closing) return null;
  const buf: Buffer = st.pending === null ? chunk : Buffer.concat([st.pending, chunk]);
  st.pending = null;
  let off = 0;
  let out: Buffer | null = null;
  let outs: Buffer[] | null = null;
  const push = (b: Buffer): void => {
    if (out === null) out = b;
    else if (outs === null) outs = [out, b];
    else outs.push(b);
  };
  while (off < buf.length) {
    if (st.bodyRemaining > 0) {
      const take = Math.min(st.bodyRemaining, buf.length - off);
      st.bodyRemaining -= take;
      off += take;
      continue;
    }
    const end = buf.indexOf(CRLFCRLF, off);
    if (end < 0) {
      if (buf.length - off > MAX_HEADER_BYTES) {
        counters.badRequests++;
        push(BAD_REQUEST);
        st.closing = true;
      }
      break;
    }
    counters.requests++;
    // The header block of a typical request is a few hundred bytes: scanning a lower-cased
    // latin1 copy for the three headers that matter is cheap next to the syscalls.
    const block = buf.toString('latin1', off, end).toLowerCase();
    off = end + 4;
    const conn = headerValue(block, 'connection');
    let closeAfter = !config.keepAlive || conn?.includes('close');
    let lineEnd = block.indexOf('\r\n');
    if (lineEnd < 0) lineEnd = block.length;
    if (block.startsWith('http/1.0', lineEnd - 8) && (conn === null || !conn.includes('keep-alive'))) {
      closeAfter = true;
    }
    if (headerValue(block, 'transfer-encoding') !== null) {
      counters.badRequests++;
      push(NOT_IMPLEMENTED);
      st.closing = true;
      break;
    }
    const cl = headerValue(block, 'content-length');
    if (cl !== null) {
      if (!/^\d{1,15}$/.test(cl)) {
        counters.badRequests++;
        push(BAD_REQUEST);
        st.closing = true;
        break;
      }
      st.bodyRemaining = Number(cl);
    }
    const isHead = block.startsWith('head ');
    if (closeAfter) {
      push(isHead ? responses.headClose : responses.getClose);
      st.closing = true;
      break;
    }
    push(isHead ? responses.head : responses.get);
  }
  if (!st.closing && off < buf.length) {
    // Copy a small remainder rather than pin a large read buffer.
    st.pending = buf.length - off < 4096 && buf.length > 65536 ? Buffer.from(buf.subarray(off)) : buf.subarray(off);
  }
  return outs !== null ? Buffer.concat(outs) : out;
}

/** Serves one stream socket (plain net.Socket or a TLSSocket) until it closes. */
function serveSocket(socket: net.Socket, responses: Responses, config: ChildConfig, counters: Counters): void {
  const st: ConnState = { pending: null, bodyRemaining: 0, closing: false };
  socket.on('data', (chunk: Buffer) => {
    const out = onBytes(st, chunk, responses, config, counters);
    if (out !== null) socket.write(out);
    if (st.closing) socket.end();
  });
}

/** Portable transport: net.Socket streams. */
function serveWithNet(server: net.Server, responses: Responses, config: ChildConfig, counters: Counters): void {
  server.on('connection', (socket: net.Socket) => {
    counters.connections++;
    counters.openConnections++;
    socket.setNoDelay(true);
    socket.on('error', () => {
      /* peer resets are normal under load; 'close' follows */
    });
    socket.on('close', () => {
      counters.openConnections--;
    });
    serveSocket(socket, responses, config, counters);
  });
}

/**
 * HTTPS: every accepted net.Socket is handed to a node:tls server (which wraps it in a TLSSocket);
 * requests are then handled exactly as in plain mode. Session tickets stay on (node's default),
 * so a client that offers a session can resume; the counters show whether it did.
 */
function serveWithTls(server: net.Server, creds: { cert: string; key: string }, responses: Responses, config: ChildConfig, counters: Counters): void {
  const tlsServer = tls.createServer({ cert: creds.cert, key: creds.key, ALPNProtocols: ['http/1.1'] });
  tlsServer.on('tlsClientError', () => {
    /* failed handshakes are counted by the client */
  });
  tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
    counters.tlsHandshakes++;
    if (socket.isSessionReused()) counters.tlsResumed++;
    socket.on('error', () => {});
    serveSocket(socket, responses, config, counters);
  });
  server.on('connection', (socket: net.Socket) => {
    counters.connections++;
    counters.openConnections++;
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.on('close', () => {
      counters.openConnections--;
    });
    tlsServer.emit('connection', socket);
  });
}

// Fast transport: libuv stream handles driven directly, skipping net.Socket and the stream
// machinery (~15-25% less server CPU per request). Uses Node's (documentation-deprecated, but
// present through Node 24) process.binding('stream_wrap'); falls back to serveWithNet if the
// shape is not what we expect.
interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  ShutdownWrap: new () => ShutdownReq;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
  streamBaseState: Int32Array;
}
interface WriteReq {
  handle: unknown;
  oncomplete: (status: number) => void;
  async: boolean;
  buffer: Buffer | null;
}
interface ShutdownReq {
  handle: unknown;
  oncomplete: (status: number) => void;
}
interface RawStream {
  onread: (ab: ArrayBuffer | undefined) => void;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, buf: Buffer): number;
  shutdown(req: ShutdownReq): number;
  setNoDelay?(on: boolean): number;
  close(cb?: () => void): void;
}
interface RawServerHandle {
  onconnection: (err: number, client: RawStream | undefined) => void;
}

function loadStreamWrap(): StreamWrapBinding | null {
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding;
    if (typeof binding !== 'function') return null;
    const sw = binding.call(process, 'stream_wrap') as Partial<StreamWrapBinding>;
    if (
      typeof sw.WriteWrap === 'function' &&
      typeof sw.ShutdownWrap === 'function' &&
      typeof sw.kReadBytesOrError === 'number' &&
      typeof sw.kArrayBufferOffset === 'number' &&
      typeof sw.kLastWriteWasAsync === 'number' &&
      sw.streamBaseState instanceof Int32Array
    ) {
      return sw as StreamWrapBinding;
    }
  } catch {
    /* not available */
  }
  return null;
}

function ignoreRead(): void {}

function serveWithHandles(server: net.Server, sw: StreamWrapBinding, responses: Responses, config: ChildConfig, counters: Counters): boolean {
  const serverHandle = (server as unknown as { _handle?: RawServerHandle | null })._handle;
  if (!serverHandle || typeof serverHandle.onconnection !== 'function') return false;
  const { WriteWrap, ShutdownWrap, kReadBytesOrError, kArrayBufferOffset, kLastWriteWasAsync, streamBaseState } = sw;

  serverHandle.onconnection = (err: number, h: RawStream | undefined): void => {
    if (err !== 0 || h === undefined) return;
    counters.connections++;
    counters.openConnections++;
    const st: ConnState = { pending: null, bodyRemaining: 0, closing: false };
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      h.onread = ignoreRead; // must stay a function
      h.close(() => {
        counters.openConnections--;
      });
    };
    const onWriteDone = function (this: WriteReq, status: number): void {
      this.buffer = null;
      if (status < 0) close();
    };
    const write = (data: Buffer): boolean => {
      const req = new WriteWrap();
      req.handle = h;
      req.oncomplete = onWriteDone;
      req.async = false;
      req.buffer = null;
      const r = h.writeBuffer(req, data);
      if (r !== 0) {
        close();
        return false;
      }
      if (streamBaseState[kLastWriteWasAsync]) req.buffer = data; // keep alive until done
      return true;
    };
    h.setNoDelay?.(true);
    h.onread = (ab: ArrayBuffer | undefined): void => {
      const nread = streamBaseState[kReadBytesOrError]!;
      if (nread < 0 || ab === undefined) {
        close(); // EOF or error
        return;
      }
      if (nread === 0 || closed) return;
      const chunk = Buffer.from(ab, streamBaseState[kArrayBufferOffset]!, nread);
      const out = onBytes(st, chunk, responses, config, counters);
      if (out !== null && !write(out)) return;
      if (st.closing) {
        h.readStop();
        const req = new ShutdownWrap();
        req.handle = h;
        req.oncomplete = () => close();
        if (h.shutdown(req) !== 0) close();
      }
    };
    if (h.readStart() !== 0) close();
  };
  return true;
}

function runChild(): void {
  const send = (m: FromChild): void => {
    if (process.connected) process.send!(m);
  };
  const counters: Counters = { requests: 0, connections: 0, openConnections: 0, badRequests: 0, tlsHandshakes: 0, tlsResumed: 0 };
  const cpuStart = process.cpuUsage();
  let transport: 'handles' | 'net' | 'tls' = 'net';
  let config0: ChildConfig | null = null;

  // The parent going away (exit, crash, SIGKILL) closes the IPC channel: die with it.
  process.on('disconnect', () => process.exit(0));

  process.on('message', (msg: ToChild, handle?: unknown) => {
    switch (msg.t) {
      case 'config': {
        const config = msg.config;
        config0 = config;
        const responses = buildResponses(config);
        if (!(handle instanceof net.Server)) {
          send({ t: 'error', message: 'no listening handle received' });
          process.exit(1);
        }
        const server = handle;
        server.on('error', (e) => send({ t: 'error', message: String(e) }));
        const sw = config.transport === 'net' || config.tls !== null ? null : loadStreamWrap();
        if (config.tls !== null) {
          serveWithTls(server, config.tls, responses, config, counters);
          transport = 'tls';
        } else if (sw !== null && serveWithHandles(server, sw, responses, config, counters)) transport = 'handles';
        else serveWithNet(server, responses, config, counters);
        send({ t: 'ready', pid: process.pid, transport });
        break;
      }
      case 'stats': {
        const cpu = process.cpuUsage(cpuStart);
        const { tlsHandshakes, tlsResumed, ...plain } = counters;
        const tlsCounts = config0 !== null && config0.tls !== null ? { tlsHandshakes, tlsResumed } : {};
        send({ t: 'stats', id: msg.id, stats: { ...plain, ...tlsCounts, cpu: { user: cpu.user, system: cpu.system } } });
        break;
      }
      case 'close':
        process.exit(0);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Parent side.

/** Path of the compiled JS of this module (children must run JS, even when tests load the .ts). */
function childScriptPath(): string {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.js')) return self;
  // Loaded from tools/loopback-server.ts (e.g. by vitest): use the compiled one in dist/tools/.
  const compiled = path.resolve(path.dirname(self), '..', 'dist', 'tools', 'loopback-server.js');
  if (!existsSync(compiled)) {
    throw new Error(`loopback server: ${compiled} not found; run \`npm run build:ts\` first`);
  }
  return compiled;
}

let tasksetAvailable: boolean | undefined;
function hasTaskset(): boolean {
  if (tasksetAvailable === undefined) {
    if (process.platform !== 'linux') tasksetAvailable = false;
    else {
      const r = spawnSync('taskset', ['-V'], { stdio: 'ignore' });
      tasksetAvailable = r.status === 0;
    }
  }
  return tasksetAvailable;
}

/** Cores the server should be pinned to: the last min(workers, cores-1) cores, or null. */
function pinCores(workers: number): string | null {
  const cores = os.availableParallelism();
  if (cores < 2 || !hasTaskset()) return null;
  // Which CPUs may this process use? Respect an existing affinity mask if we can read it.
  let allowed: number[] = [];
  const r = spawnSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' });
  const m = r.status === 0 ? /:\s*([\d,-]+)\s*$/.exec(r.stdout.trim()) : null;
  if (m) {
    for (const part of m[1]!.split(',')) {
      const [a, b] = part.split('-').map(Number);
      if (b === undefined) allowed.push(a!);
      else for (let i = a!; i <= b; i++) allowed.push(i);
    }
  }
  if (allowed.length === 0) allowed = Array.from({ length: cores }, (_, i) => i);
  if (allowed.length < 2) return null;
  const n = Math.max(1, Math.min(workers, allowed.length - 1));
  return allowed.slice(allowed.length - n).join(',');
}

/** Default number of server worker processes for this machine. */
export function defaultWorkers(): number {
  const cores = os.availableParallelism();
  return cores <= 3 ? 1 : Math.min(4, Math.floor(cores / 2));
}

export async function startLoopbackServer(opts: LoopbackServerOptions = {}): Promise<LoopbackServer> {
  const host = opts.host ?? '127.0.0.1';
  if (host !== '127.0.0.1') throw new Error('loopback server binds 127.0.0.1 only');
  const workers = Math.max(1, Math.floor(opts.workers ?? defaultWorkers()));
  const bodySize = Math.max(0, Math.floor(opts.bodySize ?? 13));
  const config: ChildConfig = {
    bodySize,
    chunked: opts.chunked ?? false,
    keepAlive: opts.keepAlive ?? true,
    transport: opts.transport ?? 'auto',
    tls: opts.tls === undefined ? null : { cert: opts.tls.cert, key: opts.tls.key },
  };
  let transport: 'handles' | 'net' | 'tls' = config.tls !== null ? 'tls' : 'handles';
  const script = childScriptPath();

  // Listen here, hand the listening socket to every child, then close our copy: the children
  // alone accept. (Node 20 has no SO_REUSEPORT in net; handle passing works everywhere.)
  const listener = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen({ host, port: opts.port ?? 0, backlog: 4096, exclusive: false }, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  const port = (listener.address() as net.AddressInfo).port;

  let pinnedTo: string | null = null;
  if (opts.pin !== false) {
    if (opts.pinTo === undefined) pinnedTo = pinCores(workers);
    else if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(opts.pinTo)) throw new Error(`loopback server: invalid pinTo '${opts.pinTo}'`);
    else if (hasTaskset()) pinnedTo = opts.pinTo;
  }
  const children: ChildProcess[] = [];
  const cleanupChildren = (): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };

  try {
    await Promise.all(
      Array.from({ length: workers }, async () => {
        const child = fork(script, [CHILD_FLAG], {
          execArgv: [],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          serialization: 'json',
        });
        children.push(child);
        // IPC send failures surface as callbacks or rejections; never crash the parent.
        child.on('error', () => {});
        await new Promise<void>((resolve, reject) => {
          const onExit = (code: number | null, sig: string | null): void =>
            reject(new Error(`loopback server worker exited early (code ${code}, signal ${sig})`));
          child.once('exit', onExit);
          child.once('error', reject);
          child.on('message', function onMsg(m: FromChild) {
            if (m.t === 'ready') {
              if (m.transport === 'net' && transport === 'handles') transport = 'net';
              child.off('message', onMsg);
              child.off('exit', onExit);
              child.off('error', reject);
              resolve();
            } else if (m.t === 'error') {
              reject(new Error(`loopback server worker: ${m.message}`));
            }
          });
          child.send({ t: 'config', config } satisfies ToChild, listener);
        });
        if (pinnedTo !== null && child.pid !== undefined) {
          spawnSync('taskset', ['-cp', pinnedTo, String(child.pid)], { stdio: 'ignore' });
        }
      }),
    );
  } catch (e) {
    cleanupChildren();
    listener.close();
    throw e;
  }
  await new Promise<void>((resolve) => listener.close(() => resolve()));

  // Children must not keep the parent alive, nor be waited for by it.
  for (const c of children) {
    c.unref();
    (c.channel as { unref?: () => void } | null | undefined)?.unref?.();
  }

  let nextStatsId = 1;
  let closed = false;

  const stats = async (): Promise<LoopbackServerStats> => {
    if (closed) throw new Error('loopback server is closed');
    const id = nextStatsId++;
    const parts = await Promise.all(
      children.map(
        (c) =>
          new Promise<LoopbackServerStats>((resolve, reject) => {
            const timer = setTimeout(() => {
              c.off('message', onMsg);
              reject(new Error('loopback server stats: worker did not answer'));
            }, 5000);
            function onMsg(m: FromChild): void {
              if (m.t === 'stats' && m.id === id) {
                clearTimeout(timer);
                c.off('message', onMsg);
                resolve(m.stats);
              }
            }
            if (!c.connected) {
              clearTimeout(timer);
              reject(new Error(`loopback server worker ${c.pid} is gone`));
              return;
            }
            c.on('message', onMsg);
            c.send({ t: 'stats', id } satisfies ToChild, (err) => {
              if (err) {
                clearTimeout(timer);
                c.off('message', onMsg);
                reject(err);
              }
            });
          }),
      ),
    );
    const total: LoopbackServerStats = {
      requests: 0,
      connections: 0,
      openConnections: 0,
      badRequests: 0,
      cpu: { user: 0, system: 0 },
    };
    for (const p of parts) {
      total.requests += p.requests;
      total.connections += p.connections;
      total.openConnections += p.openConnections;
      total.badRequests += p.badRequests;
      if (p.tlsHandshakes !== undefined) total.tlsHandshakes = (total.tlsHandshakes ?? 0) + p.tlsHandshakes;
      if (p.tlsResumed !== undefined) total.tlsResumed = (total.tlsResumed ?? 0) + p.tlsResumed;
      total.cpu.user += p.cpu.user;
      total.cpu.system += p.cpu.system;
    }
    return total;
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const timer = setTimeout(() => c.kill('SIGKILL'), 2000);
            c.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            if (c.connected) c.send({ t: 'close' } satisfies ToChild);
            else c.kill('SIGTERM');
          }),
      ),
    );
  };

  return {
    url: `${config.tls !== null ? 'https' : 'http'}://${host}:${port}`,
    port,
    host,
    workers,
    pinnedTo,
    pids: children.map((c) => c.pid).filter((p): p is number => p !== undefined),
    transport,
    close,
    stats,
  };
}

// ---------------------------------------------------------------------------------------------
// Entry points: forked child, or standalone server.

function isMain(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return path.resolve(argv1) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (process.argv.includes(CHILD_FLAG) && typeof process.send === 'function') {
  runChild();
} else if (isMain()) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' },
      'body-size': { type: 'string', default: '13' },
      workers: { type: 'string' },
      transport: { type: 'string', default: 'auto' },
      chunked: { type: 'boolean', default: false },
      'no-keep-alive': { type: 'boolean', default: false },
    },
  });
  const srv = await startLoopbackServer({
    port: Number(values.port),
    bodySize: Number(values['body-size']),
    workers: values.workers === undefined ? undefined : Number(values.workers),
    transport: values.transport === 'net' ? 'net' : 'auto',
    chunked: values.chunked,
    keepAlive: !values['no-keep-alive'],
  });
  process.stdout.write(
    `loopback server listening on ${srv.url} (${srv.workers} worker(s), ${srv.transport} transport` +
      (srv.pinnedTo !== null ? `, pinned to CPU ${srv.pinnedTo}` : '') +
      `)\n`,
  );
  const stop = (): void => {
    void srv
      .stats()
      .then(
        (s) => {
          process.stdout.write(`served ${s.requests} requests on ${s.connections} connections\n`);
          return srv.close();
        },
        () => srv.close(),
      )
      .then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // Keep the process alive (children are unref'd).
  setInterval(() => {}, 1 << 30);
}
