// The HTTPS server of `uvfetch bench`: a throwaway certificate, and a server fast enough not to be
// the limit for a native client.
//
// A node:https server spends most of a core on TLS records and stream machinery at a few tens of
// thousands of small responses per second, less than a fast client asks for. So when nginx is
// installed (Debian: apt-get install nginx-light), it is the server: run as our child with a
// generated configuration in a temp directory, pinned like the plain loopback server, answering
// every GET with the scenario's body from `return 200`. Otherwise the plain loopback server's
// workers speak TLS themselves (loopback-server.ts `tls`, node:tls), and the report says so.
//
//   const cert = benchCertificate();                   // openssl CLI, EC P-256, cached per process
//   const srv = await startTlsLoopbackServer({ bodySize: 13, keepAlive: true, cert });
//   ... request `${srv.url}/bench` trusting cert.caPem ...
//   await srv.stats();   // requests, connections, tlsHandshakes, tlsResumed, cpu
//   await srv.close();
//
// Both servers accept session resumption (TLS 1.3 tickets; nginx also TLS 1.2 tickets), so the
// resumed-handshake counters show what each client actually does.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startLoopbackServer, type LoopbackServerStats } from './loopback-server.js';

export interface BenchCertificate {
  /** The root CA to trust (PEM), and its file (for NODE_EXTRA_CA_CERTS). */
  caPem: string;
  caFile: string;
  /** Server certificate (PEM; SAN localhost, 127.0.0.1, ::1) and its key. */
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
}

export type TlsServerKind = 'nginx' | 'node-https';

export interface TlsLoopbackServerOptions {
  bodySize: number;
  /** false: the server closes every connection after its response (`Connection: close`). */
  keepAlive: boolean;
  cert: BenchCertificate;
  /** Server processes. Default: as the plain loopback server (1 on <= 3 cores). */
  workers?: number;
  /** Pin to these CPUs (taskset -c syntax); ignored without taskset. */
  pinTo?: string;
  /** Pin automatically (plain server) / not at all. Default true. */
  pin?: boolean;
  /** 'auto' (default): nginx when found, else node:https. */
  prefer?: 'auto' | TlsServerKind;
}

export interface TlsLoopbackServer {
  kind: TlsServerKind;
  /** e.g. 'nginx 1.22.1' or 'node:https (node:tls) v20.20.2'. */
  label: string;
  url: string;
  port: number;
  workers: number;
  pinnedTo: string | null;
  pids: number[];
  transport: string;
  stats(): Promise<LoopbackServerStats>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Certificate.

/** openssl req/x509 config: a CA and a localhost server certificate (the test fixtures extend it). */
export const OPENSSL_CONFIG = `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

let certCache: BenchCertificate | undefined;

/**
 * A root CA and a server certificate signed by it (EC P-256), made with the `openssl` CLI in a
 * temp directory that is removed when the process exits. Generated once per process.
 */
export function benchCertificate(): BenchCertificate {
  if (certCache !== undefined) return certCache;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uvfetch-bench-tls-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string): string => path.join(dir, name);
  const openssl = (...args: string[]): void => {
    try {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as Error & { stderr?: Buffer; code?: string };
      if (err.code === 'ENOENT') throw new Error('HTTPS scenarios need the `openssl` command (Debian/Ubuntu: apt-get install openssl)');
      throw new Error(`openssl ${args.join(' ')} failed: ${err.stderr?.toString() ?? err.message}`);
    }
  };
  fs.writeFileSync(file('req.cnf'), OPENSSL_CONFIG);
  const cfg = file('req.cnf');
  const newKey = (name: string): void => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file(name));
  newKey('ca.key');
  openssl(
    'req',
    '-config',
    cfg,
    '-new',
    '-x509',
    '-key',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-subj',
    '/CN=uvfetch bench CA',
    '-days',
    '30',
    '-sha256',
    '-extensions',
    'ca_ext',
  );
  newKey('server.key');
  openssl('req', '-config', cfg, '-new', '-key', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost');
  openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-set_serial',
    `0x${Date.now().toString(16)}`,
    '-days',
    '30',
    '-sha256',
    '-extfile',
    cfg,
    '-extensions',
    'server_ext',
    '-out',
    file('server.pem'),
  );
  certCache = {
    caPem: fs.readFileSync(file('ca.pem'), 'utf8'),
    caFile: file('ca.pem'),
    certPem: fs.readFileSync(file('server.pem'), 'utf8'),
    keyPem: fs.readFileSync(file('server.key'), 'utf8'),
    certFile: file('server.pem'),
    keyFile: file('server.key'),
  };
  return certCache;
}

// ---------------------------------------------------------------------------------------------
// nginx.

/** nginx's path and version, or null when it is not installed. UVFETCH_BENCH_NGINX overrides the path ('' = never). */
export function findNginx(): { path: string; version: string } | null {
  const env = process.env.UVFETCH_BENCH_NGINX;
  if (env === '') return null;
  const candidates = env !== undefined ? [env] : ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx', 'nginx'];
  for (const bin of candidates) {
    const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
    if (r.error !== undefined || r.status !== 0) continue;
    const m = /nginx\/(\S+)/.exec(`${r.stderr ?? ''}${r.stdout ?? ''}`);
    return { path: bin, version: m ? m[1]! : 'unknown' };
  }
  return null;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve());
  });
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

function body(bodySize: number): string {
  const pattern = 'Hello, World!';
  return pattern.repeat(Math.ceil(bodySize / pattern.length)).slice(0, bodySize);
}

function nginxConfig(o: {
  dir: string;
  port: number;
  statusPort: number;
  workers: number;
  keepAlive: boolean;
  bodySize: number;
  cert: BenchCertificate;
}): string {
  const d = o.dir;
  return `# generated by uvfetch bench
daemon off;
master_process ${o.workers > 1 ? 'on' : 'off'};
worker_processes ${o.workers};
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
worker_rlimit_nofile 65536;
events {
  worker_connections 16384;
  multi_accept on;
}
http {
  access_log off;
  server_tokens off;
  default_type text/plain;
  client_body_temp_path ${d}/tmp-body;
  proxy_temp_path ${d}/tmp-proxy;
  fastcgi_temp_path ${d}/tmp-fastcgi;
  uwsgi_temp_path ${d}/tmp-uwsgi;
  scgi_temp_path ${d}/tmp-scgi;
  keepalive_requests 1000000;
  keepalive_timeout ${o.keepAlive ? '75s' : '0'};
  # One log line ("r") per resumed handshake: the first request of a resumed connection.
  map "$ssl_session_reused:$connection_requests" $uvf_resumed {
    "r:1" 1;
    default 0;
  }
  log_format uvf_resumed 'r';
  server {
    listen 127.0.0.1:${o.port} ssl backlog=4096;
    ssl_certificate ${o.cert.certFile};
    ssl_certificate_key ${o.cert.keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets on;
    access_log ${d}/resumed.log uvf_resumed if=$uvf_resumed;
    location / {
      return 200 "${body(o.bodySize)}";
    }
  }
  server {
    listen 127.0.0.1:${o.statusPort} backlog=64;
    location / {
      stub_status;
    }
  }
}
`;
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    clockTicks = r.status === 0 && Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** user + system CPU of a process and its live children (nginx workers), microseconds; Linux /proc. */
function procCpuUs(pid: number): { user: number; system: number } {
  const tick = 1e6 / ticksPerSecond();
  const one = (p: number): [number, number] => {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after the ')' of the command name: state is field 3, utime 14, stime 15.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return [Number(f[11]) * tick, Number(f[12]) * tick];
    } catch {
      return [0, 0];
    }
  };
  let [user, system] = one(pid);
  let kids: number[] = [];
  try {
    kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    /* no children file: master_process off, or not Linux */
  }
  for (const k of kids) {
    const [u, s] = one(k);
    user += u;
    system += s;
  }
  return { user, system };
}

function getStatus(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve(text));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('nginx stub_status timed out')));
    req.on('error', reject);
  });
}

async function startNginx(bin: { path: string; version: string }, o: TlsLoopbackServerOptions, workers: number): Promise<TlsLoopbackServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uvfetch-bench-nginx-'));
  const removeDir = (): void => fs.rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  const [port, statusPort] = [await freePort(), await freePort()];
  fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig({ dir, port, statusPort, workers, keepAlive: o.keepAlive, bodySize: o.bodySize, cert: o.cert }));
  fs.writeFileSync(path.join(dir, 'resumed.log'), '');
  const pinnedTo = o.pin === false ? null : (o.pinTo ?? null);
  const cmd = [bin.path, '-p', dir, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf')];
  if (pinnedTo !== null) cmd.unshift('taskset', '-c', pinnedTo);
  // A small shell between us and nginx: it holds our stdin pipe and stops nginx when the pipe
  // closes, i.e. when this process ends for any reason (even SIGKILL). nginx has no parent watch.
  const quoted = cmd.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = `${quoted} </dev/null & pid=$!; echo $pid; read _; kill -TERM $pid 2>/dev/null; wait $pid`;
  const sh: ChildProcess = spawn('/bin/sh', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  sh.on('error', () => {});
  const exited = new Promise<void>((resolve) => sh.once('exit', () => resolve()));
  const errorLog = (): string => {
    try {
      return fs.readFileSync(path.join(dir, 'error.log'), 'utf8').trim().split('\n').slice(-5).join('\n');
    } catch {
      return '';
    }
  };
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    sh.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /^(\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    sh.once('exit', () => reject(new Error(`nginx did not start: ${errorLog()}`)));
  });
  const kill = (): void => {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    sh.kill('SIGKILL');
  };
  const onExit = (): void => kill();
  process.once('exit', onExit);

  // Ready when the status port answers; nginx that fails (port taken, bad config) exits first.
  const deadline = Date.now() + 10_000;
  let nginxDead = false;
  void exited.then(() => (nginxDead = true));
  for (;;) {
    try {
      await getStatus(statusPort);
      break;
    } catch (e) {
      if (nginxDead || Date.now() > deadline) {
        kill();
        process.off('exit', onExit);
        removeDir();
        throw new Error(`nginx did not start: ${errorLog() || (e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  let statusCalls = 1; // the readiness probe that succeeded
  // Neither the shell nor its pipes keep this process alive (the stdin pipe stays open).
  sh.unref();
  (sh.stdout as unknown as { unref?: () => void }).unref?.();
  (sh.stdin as unknown as { unref?: () => void }).unref?.();

  let closed = false;
  const stats = async (): Promise<LoopbackServerStats> => {
    if (closed) throw new Error('nginx is closed');
    const text = await getStatus(statusPort);
    statusCalls++;
    const active = /Active connections:\s*(\d+)/.exec(text);
    const m = /\n\s*(\d+)\s+(\d+)\s+(\d+)\s*\n/.exec(text);
    if (!active || !m) throw new Error(`unexpected nginx stub_status output: ${text}`);
    const resumed = Math.floor(fs.statSync(path.join(dir, 'resumed.log')).size / 2); // "r\n" per line
    // The status requests themselves count (each on its own connection): take them out.
    const connections = Number(m[1]) - statusCalls;
    return {
      requests: Number(m[3]) - statusCalls,
      connections,
      openConnections: Math.max(0, Number(active[1]) - 1),
      badRequests: 0,
      // Every TLS connection handshakes (a failed one does not reach `handled` requests, but is
      // accepted): an upper bound that equals the handshakes when the clients report no errors.
      tlsHandshakes: connections,
      tlsResumed: resumed,
      cpu: procCpuUs(pid),
    };
  };
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    sh.stdin!.end(); // the shell stops nginx and waits for it
    const timer = setTimeout(kill, 3000);
    await exited;
    clearTimeout(timer);
    process.off('exit', onExit);
    removeDir();
    process.off('exit', removeDir);
  };
  return {
    kind: 'nginx',
    label: `nginx ${bin.version}`,
    url: `https://127.0.0.1:${port}`,
    port,
    workers,
    pinnedTo,
    pids: [pid],
    transport: workers > 1 ? `${workers} workers` : 'single process',
    stats,
    close,
  };
}

// ---------------------------------------------------------------------------------------------
// Entry point.

/** Starts nginx (if found and not told otherwise), else the node:tls loopback server. */
export async function startTlsLoopbackServer(o: TlsLoopbackServerOptions): Promise<TlsLoopbackServer> {
  const prefer = o.prefer ?? 'auto';
  const nginx = prefer === 'node-https' ? null : findNginx();
  if (prefer === 'nginx' && nginx === null) throw new Error('nginx not found (Debian/Ubuntu: apt-get install nginx-light)');
  if (nginx !== null && process.platform === 'linux') {
    const workers = Math.max(1, Math.floor(o.workers ?? (os.availableParallelism() <= 3 ? 1 : Math.min(4, Math.floor(os.availableParallelism() / 2)))));
    return startNginx(nginx, o, workers);
  }
  const srv = await startLoopbackServer({
    bodySize: o.bodySize,
    keepAlive: o.keepAlive,
    workers: o.workers,
    tls: { cert: o.cert.certPem, key: o.cert.keyPem },
    ...(o.pinTo !== undefined ? { pinTo: o.pinTo } : { pin: o.pin !== false }),
  });
  return {
    kind: 'node-https',
    label: `node:tls ${process.version}`,
    url: srv.url,
    port: srv.port,
    workers: srv.workers,
    pinnedTo: srv.pinnedTo,
    pids: srv.pids,
    transport: srv.transport,
    stats: () => srv.stats(),
    close: () => srv.close(),
  };
}
