// A real nginx (Debian package nginx-light or nginx) for tests: one worker, started on loopback
// ports in a temp directory, logging one line per request with the connection's serial number
// and whether its TLS session was resumed, so a test can count the connections that carried
// requests. Stopped by `cleanup`.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Cleanup, closedPort, sleep } from './http-servers.js';

export function nginxPath(): string | null {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx']) if (fs.existsSync(p)) return p;
  try {
    return execFileSync('which', ['nginx'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

export interface NginxOptions {
  /** PEM certificate and key: https on every port when given. */
  tls?: { cert: string; key: string };
  /** TLS 1.3 session tickets sent after each full or resumed handshake (ssl_conf_command NumTickets). */
  tickets?: number;
  /** Requests served on one connection before nginx closes it. */
  keepaliveRequests?: number;
  /** How many listening ports (origins) on 127.0.0.1. */
  ports?: number;
}

export interface Nginx {
  ports: number[];
  /**
   * Per-request log lines: `{ conn, resumed, port }`. nginx logs a request just after sending its
   * response, so with `atLeast` this waits (up to 3 s) until that many lines are there.
   */
  requests(atLeast?: number): Promise<Array<{ conn: string; resumed: boolean; port: number }>>;
}

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

export async function startNginx(cleanup: Cleanup, o: NginxOptions = {}): Promise<Nginx> {
  const bin = nginxPath();
  if (bin === null) throw new Error('nginx is not installed (Debian: apt-get install nginx-light)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uvfetch-nginx-'));
  fs.mkdirSync(path.join(dir, 'tmp'));
  const ports: number[] = [];
  // Distinct ports: a port closedPort() just freed can come back on the next call (seen under
  // load: nginx then refuses "a duplicate listen").
  while (ports.length < (o.ports ?? 1)) {
    const p = await closedPort();
    if (!ports.includes(p)) ports.push(p);
  }
  const ssl = o.tls !== undefined;
  if (ssl) {
    fs.writeFileSync(path.join(dir, 'cert.pem'), o.tls!.cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), o.tls!.key);
  }
  const conf = `worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  log_format conns '$connection $ssl_session_reused $server_port';
  access_log ${dir}/access.log conns;
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp;
  fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp;
  scgi_temp_path ${dir}/tmp;
  keepalive_requests ${o.keepaliveRequests ?? 1000};
  keepalive_timeout 30s;
  server {
${ports.map((p) => `    listen 127.0.0.1:${p}${ssl ? ' ssl' : ''};`).join('\n')}
${
  ssl
    ? `    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    ssl_protocols TLSv1.3;
    ssl_session_tickets on;
    ssl_session_cache off;
    ssl_conf_command NumTickets ${o.tickets ?? 2};`
    : ''
}
    location / { default_type text/plain; return 200 "ok\\n"; }
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const proc = spawn(bin, ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  cleanup.add(async () => {
    proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 50));
    if (proc.exitCode === null) proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  let up = false;
  for (let i = 0; i < 100 && !up; i++) {
    up = await canConnect(ports[0]!);
    if (!up) {
      if (proc.exitCode !== null) break;
      await sleep(30);
    }
  }
  if (!up)
    throw new Error(`nginx did not start: ${stderr}${fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : ''}`);
  return {
    ports,
    async requests(atLeast = 0) {
      const file = path.join(dir, 'access.log');
      const read = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
      let text = read();
      for (let i = 0; i < 100 && text.split('\n').length - 1 < atLeast; i++) {
        await sleep(30);
        text = read();
      }
      return text
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const [conn, reused, port] = l.split(' ');
          return { conn: conn!, resumed: reused === 'r', port: Number(port) };
        });
    },
  };
}

/**
 * A TCP relay in front of `port` that holds back everything the server sends after the client's
 * second flight (its TLS Finished) for `delayMs`: TLS 1.3 session tickets then arrive late, while
 * the connection may already sit idle in the client's pool. Order is preserved.
 */
export async function lateTicketRelay(cleanup: Cleanup, port: number, delayMs: number): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    let clientWrites = 0;
    let holdUntil = 0;
    let queue: Promise<void> = Promise.resolve();
    client.on('data', (d) => {
      clientWrites++;
      if (clientWrites === 2) holdUntil = Date.now() + delayMs;
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      const wait = holdUntil - Date.now();
      if (wait <= 0 && clientWrites < 2) {
        client.write(d);
        return;
      }
      queue = queue.then(async () => {
        const w = holdUntil - Date.now();
        if (w > 0) await sleep(w);
        if (!client.destroyed) client.write(d);
      });
    });
    const end = () => {
      void queue.then(() => {
        client.destroy();
        upstream.destroy();
      });
    };
    client.on('close', () => upstream.destroy());
    upstream.on('close', end);
    client.on('error', () => upstream.destroy());
    upstream.on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.add(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return (server.address() as net.AddressInfo).port;
}
