// Real HTTP/2 peers for the tests, each started on 127.0.0.1 (a fresh free port, files in a fresh
// temp directory) and stopped by its close():
//
//   startNghttpd   nghttpd (Debian nghttp2-server): static files, --echo-upload, TLS or h2c
//                  (--no-tls). Runs with -v, whose frame log is an independent parser of what the
//                  client sent: `frames()`, `requestHeaders()`, `fingerprint()` read it.
//   startH2o       h2o (Debian h2o): h1 and h2 on one TLS port, static files, /echo (mruby), an
//                  access log with the connection id and protocol of every request.
//   startNginxH2   nginx (Debian nginx-light) with http2 on a TLS port, or h2c without TLS, or
//                  HTTP/1.1 only (`http2: false`); access log with connection serial and protocol.
//   startNodeH2    node:http2 (createSecureServer, allowHTTP1 on or off; createServer for h2c),
//                  where tests see every stream: headers in wire order, RST_STREAM codes received
//                  (`rstCode`), bytes written under flow control; can send GOAWAY mid-load.
//
// Binaries that are missing make `peerMissing(name)` return a reason, for `it.skipIf`; CI installs
// them all (.ci/run).

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeAll } from 'vitest';
import { Session, type SessionOptions } from '../../lib/index.js';
import { Cleanup, closedPort, sleep } from './http-servers.js';
import { tlsFixtures, type TlsFixtures } from './tls-fixtures.js';

// ---- binaries ------------------------------------------------------------------------------------

const DEB_PACKAGE: Record<string, string> = { nghttpd: 'nghttp2-server', h2o: 'h2o', nginx: 'nginx-light', nghttp: 'nghttp2-client' };

/** Where a binary is, or null. */
export function binPath(name: string): string | null {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  try {
    return execFileSync('which', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    return null;
  }
}

/** A skip reason when the binary is not installed (null when it is). */
export function peerMissing(name: 'nghttpd' | 'h2o' | 'nginx' | 'nghttp'): string | null {
  return binPath(name) === null ? `${name} is not installed (Debian: apt-get install ${DEB_PACKAGE[name]})` : null;
}

// ---- bodies ---------------------------------------------------------------------------------------

/** n deterministic pseudo-random bytes (same seed, same bytes). */
export function patternBytes(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  for (; i < n; i++) out[i] = i & 0xff;
  return out;
}

export function sha256(b: Buffer | Uint8Array): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

// ---- shared process plumbing -----------------------------------------------------------------------

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

interface Spawned {
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Spawns a server and waits (≤ 5 s) until `port` accepts; throws with its output when it does not. */
async function spawnServer(bin: string, args: string[], port: number, logFile: string, cwd: string, what: string): Promise<Spawned> {
  const fd = fs.openSync(logFile, 'a');
  const proc = spawn(bin, args, { cwd, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  let exited = false;
  const exit = new Promise<void>((r) => proc.once('exit', () => ((exited = true), r())));
  proc.once('error', () => {});
  let up = false;
  for (let i = 0; i < 200 && !up && !exited; i++) {
    up = await canConnect(port);
    if (!up) await sleep(25);
  }
  const stop = async () => {
    if (!exited) proc.kill('SIGTERM');
    await Promise.race([exit, sleep(2000)]);
    if (!exited) {
      proc.kill('SIGKILL');
      await Promise.race([exit, sleep(2000)]);
    }
  };
  if (!up) {
    await stop();
    throw new Error(`${what} did not start on port ${port}: ${fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-4000) : ''}`);
  }
  return { proc, stop };
}

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  // nginx and h2o workers may run as another user: let them read the files.
  fs.chmodSync(dir, 0o755);
  return dir;
}

function writeFiles(dir: string, files: Record<string, string | Buffer>): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const [name, content] of Object.entries(files)) {
    const p = path.join(dir, name.replace(/^\/+/, ''));
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
    fs.writeFileSync(p, content, { mode: 0o644 });
  }
}

async function pollUntil<T>(read: () => T, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = read();
  while (!ok(v) && Date.now() < end) {
    await sleep(20);
    v = read();
  }
  return v;
}

// ---- nghttpd ---------------------------------------------------------------------------------------

export interface NghttpdFrame {
  /** nghttpd's connection id ([id=N]). */
  conn: number;
  dir: 'recv' | 'send';
  /** Frame type name as nghttpd prints it: SETTINGS, HEADERS, WINDOW_UPDATE, RST_STREAM, ... */
  type: string;
  length: number;
  flags: number;
  streamId: number;
  /** The indented detail lines nghttpd printed under the frame line. */
  details: string[];
}

export interface NghttpdLog {
  frames: NghttpdFrame[];
  /** Request header fields received, per connection and stream, in wire order. */
  headers: Map<string, Array<[string, string]>>;
  /** The ALPN lists clients offered (one entry per callback nghttpd logged). */
  alpnOffers: string[][];
  /**
   * Ids of the connections that received at least one frame from a client (the helper's own
   * readiness probe, a bare TCP connect, also gets an id: it is not listed).
   */
  conns: number[];
}

const FRAME_LINE = /^\[id=(\d+)\] \[\s*[\d.]+\] (recv|send) (\w+) frame <length=(\d+), flags=0x([0-9a-fA-F]+), stream_id=(\d+)>/;
const HEADER_LINE = /^\[id=(\d+)\] \[\s*[\d.]+\] recv \(stream_id=(\d+)\) (:?[^:]+): (.*)$/;

/** Parses nghttpd -v output. */
export function parseNghttpdLog(text: string): NghttpdLog {
  const frames: NghttpdFrame[] = [];
  const headers = new Map<string, Array<[string, string]>>();
  const alpnOffers: string[][] = [];
  const conns = new Set<number>();
  let cur: NghttpdFrame | undefined;
  let alpn: string[] | undefined;
  for (const line of text.split('\n')) {
    const f = FRAME_LINE.exec(line);
    if (f) {
      cur = {
        conn: Number(f[1]),
        dir: f[2] as 'recv' | 'send',
        type: f[3]!,
        length: Number(f[4]),
        flags: parseInt(f[5]!, 16),
        streamId: Number(f[6]),
        details: [],
      };
      frames.push(cur);
      if (cur.dir === 'recv') conns.add(cur.conn);
      alpn = undefined;
      continue;
    }
    const h = HEADER_LINE.exec(line);
    if (h) {
      const key = `${h[1]}/${h[2]}`;
      const list = headers.get(key) ?? [];
      list.push([h[3]!, h[4]!]);
      headers.set(key, list);
      cur = undefined;
      continue;
    }
    if (line.startsWith('[ALPN] client offers:')) {
      alpn = [];
      alpnOffers.push(alpn);
      cur = undefined;
      continue;
    }
    if (alpn && /^ \* /.test(line)) {
      alpn.push(line.slice(3).trim());
      continue;
    }
    if (cur && /^\s+\S/.test(line)) {
      cur.details.push(line.trim());
      continue;
    }
    cur = undefined;
    alpn = undefined;
  }
  return { frames, headers, alpnOffers, conns: [...conns] };
}

/** [id, value] pairs of a SETTINGS frame nghttpd printed ("[SETTINGS_X(0x04):65535]"). */
export function nghttpdSettings(f: NghttpdFrame): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const d of f.details) {
    const m = /\((0x[0-9a-fA-F]+)\):(\d+)\]$/.exec(d);
    if (m) out.push([parseInt(m[1]!, 16), Number(m[2])]);
  }
  return out;
}

function detail(f: NghttpdFrame, key: string): string | undefined {
  for (const d of f.details) {
    const m = new RegExp(`[(,]\\s*${key}=([^,)]+)`).exec(d);
    if (m) return m[1]!;
  }
  return undefined;
}

/** Numeric error code of an RST_STREAM or GOAWAY frame nghttpd printed ("error_code=CANCEL(0x08)"). */
export function nghttpdErrorCode(f: NghttpdFrame): number | undefined {
  for (const d of f.details) {
    const m = /error_code=[A-Z0-9_]*\((0x[0-9a-fA-F]+)\)/.exec(d);
    if (m) return parseInt(m[1]!, 16);
  }
  return undefined;
}

const LETTER: Record<string, string> = { ':method': 'm', ':authority': 'a', ':scheme': 's', ':path': 'p' };

/**
 * The Akamai fingerprint of connection `conn` as nghttpd saw it: first SETTINGS received, the
 * WINDOW_UPDATE on stream 0 and the PRIORITY frames received before the first HEADERS ('00' / '0'
 * when none), and the pseudo-header order of that HEADERS.
 */
export function nghttpdFingerprint(log: NghttpdLog, conn: number): string {
  const recv = log.frames.filter((f) => f.conn === conn && f.dir === 'recv');
  const settings = recv.find((f) => f.type === 'SETTINGS' && !(f.flags & 1));
  const hi = recv.findIndex((f) => f.type === 'HEADERS');
  const before = hi < 0 ? recv : recv.slice(0, hi);
  const wu = before.find((f) => f.type === 'WINDOW_UPDATE' && f.streamId === 0);
  const prios = before.filter((f) => f.type === 'PRIORITY');
  const s = settings
    ? nghttpdSettings(settings)
        .map(([id, v]) => `${id}:${v}`)
        .join(';')
    : '';
  const w = wu ? detail(wu, 'window_size_increment')! : '00';
  const p = prios.length ? prios.map((f) => `${f.streamId}:${detail(f, 'exclusive')}:${detail(f, 'dep_stream_id')}:${detail(f, 'weight')}`).join(',') : '0';
  const first = hi < 0 ? undefined : recv[hi]!;
  const names = first ? (log.headers.get(`${conn}/${first.streamId}`) ?? []).map(([n]) => n) : [];
  const order = names
    .filter((n) => n.startsWith(':'))
    .map((n) => LETTER[n] ?? n)
    .join(',');
  return `${s}|${w}|${p}|${order}`;
}

export interface NghttpdOptions {
  /** Certificate and key (PEM); without them the server speaks h2c (--no-tls). */
  tls?: { cert: string; key: string };
  /** Files under the document root: name → content. */
  files?: Record<string, string | Buffer>;
  /** --echo-upload: POST/PUT bodies are sent back. Default true. */
  echoUpload?: boolean;
  /** -m: SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxConcurrentStreams?: number;
  /** -w: stream initial window 2^N-1. */
  windowBits?: number;
  /** Log frames (-v). Default true. */
  verbose?: boolean;
  extraArgs?: string[];
}

export interface NghttpdServer {
  port: number;
  dir: string;
  /** https://localhost:port (TLS) or http://127.0.0.1:port (h2c) + path. */
  url(p?: string): string;
  /** The raw -v log so far. */
  logText(): string;
  /** The parsed log, once `until(log)` holds (polled up to timeoutMs; returns what there is). */
  log(until?: (l: NghttpdLog) => boolean, timeoutMs?: number): Promise<NghttpdLog>;
  close(): Promise<void>;
}

export async function startNghttpd(o: NghttpdOptions = {}): Promise<NghttpdServer> {
  const bin = binPath('nghttpd');
  if (!bin) throw new Error(peerMissing('nghttpd')!);
  const dir = tempDir('uvf-nghttpd-');
  const htdocs = path.join(dir, 'htdocs');
  writeFiles(htdocs, { 'index.html': 'hello from nghttpd\n', ...o.files });
  const logFile = path.join(dir, 'nghttpd.log');
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await closedPort();
    const args = ['-a', '127.0.0.1', `--htdocs=${htdocs}`];
    if (o.verbose !== false) args.push('-v');
    if (o.echoUpload !== false) args.push('--echo-upload');
    if (o.maxConcurrentStreams !== undefined) args.push(`--max-concurrent-streams=${o.maxConcurrentStreams}`);
    if (o.windowBits !== undefined) args.push(`--window-bits=${o.windowBits}`);
    args.push(...(o.extraArgs ?? []));
    if (o.tls) {
      fs.writeFileSync(path.join(dir, 'key.pem'), o.tls.key);
      fs.writeFileSync(path.join(dir, 'cert.pem'), o.tls.cert);
      args.push(String(port), path.join(dir, 'key.pem'), path.join(dir, 'cert.pem'));
    } else {
      args.push('--no-tls', String(port));
    }
    try {
      const sp = await spawnServer(bin, args, port, logFile, dir, 'nghttpd');
      const read = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
      return {
        port,
        dir,
        url: (p = '/') => (o.tls ? `https://localhost:${port}${p}` : `http://127.0.0.1:${port}${p}`),
        logText: read,
        log: async (until = () => true, timeoutMs = 3000) => pollUntil(() => parseNghttpdLog(read()), until, timeoutMs),
        async close() {
          await sp.stop();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      lastErr = e;
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw lastErr;
}

// ---- h2o ---------------------------------------------------------------------------------------------

export interface AccessRecord {
  /** The server's connection id / serial. */
  conn: string;
  /** 'HTTP/2.0' (nginx), 'HTTP/2' (h2o), 'HTTP/1.1'. */
  protocol: string;
  method: string;
  path: string;
  status: number;
  bytes: number;
}

export interface LoggingServer {
  port: number;
  dir: string;
  url(p?: string): string;
  /** Access-log records; waits (≤ 3 s) until there are at least `atLeast`. */
  requests(atLeast?: number): Promise<AccessRecord[]>;
  close(): Promise<void>;
}

function accessLogReader(file: string): (atLeast?: number) => Promise<AccessRecord[]> {
  const read = () =>
    (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [conn, protocol, method, p, status, bytes] = l.split(' ');
        return { conn: conn!, protocol: protocol!, method: method!, path: p!, status: Number(status), bytes: Number(bytes) || 0 };
      });
  return (atLeast = 0) => pollUntil(read, (r) => r.length >= atLeast, 3000);
}

export interface H2oOptions {
  tls: { cert: string; key: string };
  files?: Record<string, string | Buffer>;
  /** http2-max-concurrent-requests-per-connection. */
  maxConcurrentStreams?: number;
}

/** h2o on one TLS port (h2 and http/1.1 by ALPN): static files under /, and /echo sending the request body back. */
export async function startH2o(o: H2oOptions): Promise<LoggingServer> {
  const bin = binPath('h2o');
  if (!bin) throw new Error(peerMissing('h2o')!);
  const dir = tempDir('uvf-h2o-');
  const htdocs = path.join(dir, 'htdocs');
  writeFiles(htdocs, { 'index.html': 'hello from h2o\n', ...o.files });
  fs.writeFileSync(path.join(dir, 'key.pem'), o.tls.key, { mode: 0o644 });
  fs.writeFileSync(path.join(dir, 'cert.pem'), o.tls.cert, { mode: 0o644 });
  const access = path.join(dir, 'access.log');
  const logFile = path.join(dir, 'h2o.log');
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await closedPort();
    const conf = `${process.getuid?.() === 0 ? 'user: root\n' : ''}num-threads: 1
pid-file: ${dir}/h2o.pid
error-log: ${dir}/error.log
${o.maxConcurrentStreams !== undefined ? `http2-max-concurrent-requests-per-connection: ${o.maxConcurrentStreams}\n` : ''}access-log:
  path: ${access}
  format: "%{connection-id}x %H %m %U %s %b"
hosts:
  default:
    listen:
      port: ${port}
      host: 127.0.0.1
      ssl:
        certificate-file: ${dir}/cert.pem
        key-file: ${dir}/key.pem
        ocsp-update-interval: 0
    paths:
      /echo:
        mruby.handler: |
          Proc.new do |env|
            input = env["rack.input"]
            body = input ? input.read : ""
            [200, {"content-type" => "application/octet-stream"}, [body]]
          end
      /:
        file.dir: ${htdocs}
`;
    fs.writeFileSync(path.join(dir, 'h2o.conf'), conf);
    try {
      const sp = await spawnServer(bin, ['-c', path.join(dir, 'h2o.conf')], port, logFile, dir, 'h2o');
      return {
        port,
        dir,
        url: (p = '/') => `https://localhost:${port}${p}`,
        requests: accessLogReader(access),
        async close() {
          await sp.stop();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      lastErr = e;
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw lastErr;
}

// ---- nginx ---------------------------------------------------------------------------------------------

export interface NginxH2Options {
  /** TLS certificate and key; without them nginx listens in clear text (h2c when http2). */
  tls?: { cert: string; key: string };
  /** Speak HTTP/2 on the port (ALPN h2 on TLS, prior knowledge in clear text). Default true. */
  http2?: boolean;
  files?: Record<string, string | Buffer>;
  maxConcurrentStreams?: number;
}

function nginxVersion(bin: string): [number, number, number] {
  // nginx -v prints to stderr.
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(`${r.stderr ?? ''}${r.stdout ?? ''}`);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
}

/** nginx serving files under / and "ok" at /ok, logging connection serial and protocol per request. */
export async function startNginxH2(o: NginxH2Options = {}): Promise<LoggingServer> {
  const bin = binPath('nginx');
  if (!bin) throw new Error(peerMissing('nginx')!);
  const version = nginxVersion(bin);
  // `http2 on;` exists from 1.25.1; before that the listen parameter says it.
  const http2Directive = version[0] > 1 || (version[0] === 1 && (version[1] > 25 || (version[1] === 25 && version[2] >= 1)));
  const h2 = o.http2 !== false;
  const dir = tempDir('uvf-nginx-h2-');
  fs.mkdirSync(path.join(dir, 'tmp'));
  const htdocs = path.join(dir, 'htdocs');
  writeFiles(htdocs, { 'index.html': 'hello from nginx\n', ...o.files });
  if (o.tls) {
    fs.writeFileSync(path.join(dir, 'cert.pem'), o.tls.cert, { mode: 0o644 });
    fs.writeFileSync(path.join(dir, 'key.pem'), o.tls.key, { mode: 0o644 });
  }
  const access = path.join(dir, 'access.log');
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await closedPort();
    const listenParams = `${o.tls ? ' ssl' : ''}${h2 && !http2Directive ? ' http2' : ''}`;
    const conf = `worker_processes 1;
daemon off;
master_process on;
${process.getuid?.() === 0 ? 'user root;' : ''}
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  log_format h2 '$connection $server_protocol $request_method $uri $status $body_bytes_sent';
  access_log ${access} h2;
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp;
  fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp;
  scgi_temp_path ${dir}/tmp;
  keepalive_requests 10000;
  keepalive_timeout 60s;
  ${o.maxConcurrentStreams !== undefined ? `http2_max_concurrent_streams ${o.maxConcurrentStreams};` : ''}
  server {
    listen 127.0.0.1:${port}${listenParams};
    ${h2 && http2Directive ? 'http2 on;' : ''}
    ${o.tls ? `ssl_certificate ${dir}/cert.pem;\n    ssl_certificate_key ${dir}/key.pem;\n    ssl_protocols TLSv1.2 TLSv1.3;` : ''}
    root ${htdocs};
    location = /ok { default_type text/plain; return 200 "ok\\n"; }
    location / { }
  }
}
`;
    fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
    try {
      const sp = await spawnServer(bin, ['-c', path.join(dir, 'nginx.conf'), '-p', dir], port, path.join(dir, 'stderr.log'), dir, 'nginx');
      return {
        port,
        dir,
        url: (p = '/') => (o.tls ? `https://localhost:${port}${p}` : `http://127.0.0.1:${port}${p}`),
        requests: accessLogReader(access),
        async close() {
          await sp.stop();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      lastErr = e;
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw lastErr;
}

// ---- node:http2 --------------------------------------------------------------------------------------

export interface StreamRecord {
  /** 1-based session (connection) number on this server, in accept order. */
  session: number;
  id: number;
  method: string;
  path: string;
  headers: http2.IncomingHttpHeaders;
  /** Header names and values as received, in wire order (pseudo-headers first). */
  rawHeaders: string[];
  /** Request body bytes received so far. */
  bytesIn: number;
  /** Response body bytes the handler wrote so far (accepted by the stream). */
  bytesOut: number;
  /** The RST_STREAM code when the stream closed by a reset (either side); 0 for a clean close. */
  rstCode: number | undefined;
  closed: boolean;
}

export interface NodeH2Context {
  rec: StreamRecord;
  server: NodeH2Server;
  session: http2.ServerHttp2Session;
}

export type NodeH2Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ctx: NodeH2Context) => unknown;

export interface NodeH2Options {
  /** TLS (createSecureServer, ALPN h2); without it an h2c server (createServer, prior knowledge). */
  tls?: { cert: string; key: string };
  /** Accept HTTP/1.1 too (ALPN http/1.1; TLS only). Default false. */
  allowHTTP1?: boolean;
  /** SETTINGS the server sends (maxConcurrentStreams, initialWindowSize, ...). */
  settings?: http2.Settings;
  /** Called for each stream instead of the default routes (which it may call: `defaultRoutes`). */
  handler?: NodeH2Handler;
  /** Called for each HTTP/1.1 request (allowHTTP1). Default: 200 "h1 <path>". */
  http1Handler?: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => unknown;
}

export interface NodeH2Server {
  port: number;
  server: http2.Http2Server | http2.Http2SecureServer;
  /** https://localhost:port (TLS) or http://127.0.0.1:port + path. */
  url(p?: string): string;
  /** Every session (connection) accepted, in order. */
  sessions: http2.ServerHttp2Session[];
  /** Sessions accepted so far (HTTP/2 connections). */
  readonly sessionCount: number;
  /** Sessions not yet closed. */
  readonly openSessions: number;
  streams: StreamRecord[];
  /** Streams open now, over all sessions. */
  readonly activeStreams: number;
  /** The most streams open at once on one session. */
  readonly maxConcurrentPerSession: number;
  /** HTTP/1.1 requests (allowHTTP1): method and path. */
  http1Requests: Array<{ method: string; path: string; httpVersion: string }>;
  /** Sends GOAWAY on every open session with the highest stream id it has seen (streams above it are not processed). */
  goawayAll(code?: number): void;
  /** Polls cond every 5 ms until it holds (throws after timeoutMs). */
  until(cond: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

function writeWithBackpressure(stream: http2.ServerHttp2Stream, data: Buffer, rec: StreamRecord, chunk = 16384): Promise<void> {
  return new Promise<void>((resolve) => {
    let off = 0;
    const pump = () => {
      while (off < data.length) {
        if (stream.destroyed || stream.closed) return resolve();
        const piece = data.subarray(off, off + chunk);
        off += piece.length;
        const ok = stream.write(piece, () => {
          rec.bytesOut += piece.length;
        });
        if (!ok) {
          stream.once('drain', pump);
          return;
        }
      }
      stream.end();
      resolve();
    };
    stream.once('close', () => resolve());
    pump();
  });
}

/**
 * The routes every node:http2 test server has unless a handler replaces them:
 *   /echo            the request body back
 *   /sha256          {"bytes": n, "sha256": hex} of the request body
 *   /bytes/N[/seed]  N bytes of patternBytes(N, seed)
 *   /delay/MS        "ok" after MS ms
 *   /hold            never answers (until the client resets or the server closes)
 *   /reset/CODE      RST_STREAM(CODE) without answering
 *   /trailers        "ok" with trailers x-checksum: abc
 *   /status/N        status N, empty body
 *   anything else    200 "ok <method> <path>"
 */
export function defaultRoutes(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ctx: NodeH2Context): void {
  const p = String(headers[':path'] ?? '/');
  const method = String(headers[':method']);
  const parts = p.split('?')[0]!.split('/').filter(Boolean);
  const collect = (): Promise<Buffer> =>
    new Promise((resolve) => {
      const chunks: Buffer[] = [];
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('end', () => resolve(Buffer.concat(chunks)));
      stream.on('close', () => resolve(Buffer.concat(chunks)));
    });
  switch (parts[0]) {
    case 'echo':
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
      stream.pipe(stream);
      return;
    case 'sha256':
      void collect().then((b) => {
        if (stream.closed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(JSON.stringify({ bytes: b.length, sha256: sha256(b) }));
      });
      return;
    case 'bytes': {
      const n = Number(parts[1] ?? 0);
      const seed = Number(parts[2] ?? 1);
      stream.respond({ ':status': 200, 'content-length': String(n), 'content-type': 'application/octet-stream' });
      void writeWithBackpressure(stream, patternBytes(n, seed), ctx.rec);
      return;
    }
    case 'delay': {
      const t = setTimeout(
        () => {
          if (stream.closed || stream.destroyed) return;
          stream.respond({ ':status': 200 });
          stream.end('ok');
        },
        Number(parts[1] ?? 0),
      );
      stream.once('close', () => clearTimeout(t));
      stream.resume();
      return;
    }
    case 'hold':
      stream.resume();
      return;
    case 'reset':
      stream.close(Number(parts[1] ?? http2.constants.NGHTTP2_INTERNAL_ERROR));
      return;
    case 'trailers':
      stream.respond({ ':status': 200 }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
      stream.end('ok');
      return;
    case 'status':
      stream.respond({ ':status': Number(parts[1] ?? 200) }, { endStream: true });
      return;
    default:
      void collect().then(() => {
        if (stream.closed || stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end(`ok ${method} ${p}`);
      });
  }
}

export async function startNodeH2(o: NodeH2Options = {}): Promise<NodeH2Server> {
  const server = o.tls
    ? http2.createSecureServer({ key: o.tls.key, cert: o.tls.cert, allowHTTP1: o.allowHTTP1 ?? false, settings: o.settings })
    : http2.createServer({ settings: o.settings });
  const sessions: http2.ServerHttp2Session[] = [];
  const sessionNo = new WeakMap<http2.ServerHttp2Session, number>();
  const active = new Map<number, number>();
  const maxSeen = new Map<number, number>();
  const sockets = new Set<net.Socket>();
  let maxConcurrent = 0;
  const self: NodeH2Server = {
    port: 0,
    server,
    url: (p = '/') => (o.tls ? `https://localhost:${self.port}${p}` : `http://127.0.0.1:${self.port}${p}`),
    sessions,
    get sessionCount() {
      return sessions.length;
    },
    get openSessions() {
      return sessions.filter((s) => !s.closed && !s.destroyed).length;
    },
    streams: [],
    get activeStreams() {
      let n = 0;
      for (const v of active.values()) n += v;
      return n;
    },
    get maxConcurrentPerSession() {
      return maxConcurrent;
    },
    http1Requests: [],
    goawayAll(code = http2.constants.NGHTTP2_NO_ERROR) {
      for (const s of sessions) {
        if (s.closed || s.destroyed) continue;
        s.goaway(code, maxSeen.get(sessionNo.get(s)!) ?? 0);
      }
    },
    async until(cond, timeoutMs = 5000, what = 'condition') {
      const end = Date.now() + timeoutMs;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(5);
      }
    },
    async close() {
      for (const s of sessions) if (!s.destroyed) s.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.push(s);
    sessionNo.set(s, sessions.length);
    s.on('error', () => {});
  });
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    const sess = stream.session as http2.ServerHttp2Session;
    const no = sessionNo.get(sess) ?? 0;
    const rec: StreamRecord = {
      session: no,
      id: stream.id ?? 0,
      method: String(headers[':method']),
      path: String(headers[':path']),
      headers,
      rawHeaders: rawHeaders ?? [],
      bytesIn: 0,
      bytesOut: 0,
      rstCode: undefined,
      closed: false,
    };
    self.streams.push(rec);
    maxSeen.set(no, Math.max(maxSeen.get(no) ?? 0, stream.id ?? 0));
    active.set(no, (active.get(no) ?? 0) + 1);
    maxConcurrent = Math.max(maxConcurrent, active.get(no)!);
    stream.on('data', (d: Buffer) => {
      rec.bytesIn += d.length;
    });
    stream.on('error', () => {});
    stream.once('close', () => {
      rec.closed = true;
      rec.rstCode = stream.rstCode;
      active.set(no, active.get(no)! - 1);
    });
    const ctx: NodeH2Context = { rec, server: self, session: sess };
    try {
      const r = (o.handler ?? defaultRoutes)(stream, headers, ctx);
      if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(() => stream.destroy());
    } catch {
      stream.destroy();
    }
  });
  if (o.allowHTTP1) {
    server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      if (req.httpVersionMajor !== 1) return; // HTTP/2 streams are handled by the 'stream' listener
      self.http1Requests.push({ method: req.method, path: req.url, httpVersion: req.httpVersion });
      if (o.http1Handler) {
        void o.http1Handler(req, res);
        return;
      }
      req.resume();
      req.on('end', () => res.end(`h1 ${req.url}`));
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  self.port = (server.address() as net.AddressInfo).port;
  return self;
}

// ---- per-file kit ----------------------------------------------------------------------------------

export interface H2Kit {
  cleanup: Cleanup;
  /** The test CA and certificates (ready inside tests). */
  readonly fx: TlsFixtures;
  /**
   * A Session trusting the test CA, with bounded timeouts (connect/tls 5 s, headers 15 s, body 15 s)
   * unless `opts` says otherwise; destroyed after the test.
   */
  session(opts?: SessionOptions): Session;
  /** Closes `s` after the test; returns it. */
  track<T extends { close(): Promise<void> }>(s: T): T;
}

/** Registers afterEach cleanup and the TLS fixtures for a test file. */
export function h2Kit(): H2Kit {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let fx: TlsFixtures | undefined;
  beforeAll(async () => {
    fx = await tlsFixtures();
  }, 60_000);
  return {
    cleanup,
    get fx() {
      if (!fx) throw new Error('TLS fixtures are not ready (use them inside tests)');
      return fx;
    },
    session(opts: SessionOptions = {}) {
      const s = new Session({
        ...opts,
        tls: opts.tls ?? { ca: fx!.caPem },
        timeout: { connect: 5000, tls: 5000, headers: 15_000, body: 15_000, ...opts.timeout },
      });
      cleanup.add(() => s.destroy());
      return s;
    },
    track(s) {
      cleanup.add(() => s.close());
      return s;
    },
  };
}
