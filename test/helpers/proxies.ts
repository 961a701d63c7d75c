// Local proxies for the tests (127.0.0.1 only): an HTTP proxy (absolute-form forwarding and
// CONNECT tunnels, optional Basic auth) and a SOCKS5 proxy (RFC 1928 + RFC 1929), both written
// here with node:net / node:http, recording what they were asked.

import * as http from 'node:http';
import * as net from 'node:net';

export interface ProxyLog {
  /** "CONNECT host:port" or "GET http://..." per request the proxy received. */
  requests: string[];
  /** Proxy-Authorization values seen (undefined when absent). */
  auth: (string | undefined)[];
  /** SOCKS5: the targets asked for ("host:port") and the methods offered. */
  socksTargets: string[];
  socksMethods: number[][];
  /** Client connections accepted. */
  connections: number;
}

export interface TestProxy extends ProxyLog {
  port: number;
  url(creds?: string): string;
  close(): Promise<void>;
}

function track(server: net.Server): Set<net.Socket> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return sockets;
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as net.AddressInfo).port;
}

/**
 * HTTP proxy. `auth`: required "user:pass" (407 otherwise). `refuse`: answer CONNECT with this
 * status instead of tunnelling.
 */
export async function startHttpProxy(opts: { auth?: string; refuse?: number } = {}): Promise<TestProxy> {
  const log: ProxyLog = { requests: [], auth: [], socksTargets: [], socksMethods: [], connections: 0 };
  const expected = opts.auth ? `Basic ${Buffer.from(opts.auth).toString('base64')}` : undefined;
  const server = http.createServer((req, res) => {
    log.requests.push(`${req.method} ${req.url}`);
    log.auth.push(req.headers['proxy-authorization']);
    if (expected && req.headers['proxy-authorization'] !== expected) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"' }).end();
      return;
    }
    const target = new URL(req.url!);
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const up = http.request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers }, (upRes) => {
      res.writeHead(upRes.statusCode!, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  server.on('connection', () => log.connections++);
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    log.requests.push(`CONNECT ${req.url}`);
    log.auth.push(req.headers['proxy-authorization']);
    client.on('error', () => {});
    if (expected && req.headers['proxy-authorization'] !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (opts.refuse) {
      client.end(`HTTP/1.1 ${opts.refuse} Refused\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const [host, port] = splitHostPort(req.url!);
    const up = net.connect(port, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
  });
  const sockets = track(server);
  const port = await listen(server);
  return Object.assign(log, {
    port,
    url: (creds?: string) => `http://${creds ? `${creds}@` : ''}127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  });
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  let host = s.slice(0, i);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return [host, Number(s.slice(i + 1))];
}

/** SOCKS5 proxy. `auth`: required "user:pass" (method 2); without it, method 0 only. */
export async function startSocksProxy(opts: { auth?: string } = {}): Promise<TestProxy> {
  const log: ProxyLog = { requests: [], auth: [], socksTargets: [], socksMethods: [], connections: 0 };
  const server = net.createServer((client) => {
    log.connections++;
    client.on('error', () => {});
    let buf = Buffer.alloc(0);
    let step: 'greet' | 'auth' | 'connect' | 'done' = 'greet';
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (step === 'greet') {
          if (buf.length < 2 || buf.length < 2 + buf[1]!) return;
          const methods = [...buf.subarray(2, 2 + buf[1]!)];
          log.socksMethods.push(methods);
          buf = buf.subarray(2 + buf[1]!);
          if (opts.auth) {
            if (!methods.includes(2)) return void client.end(Buffer.from([5, 0xff]));
            client.write(Buffer.from([5, 2]));
            step = 'auth';
          } else {
            if (!methods.includes(0)) return void client.end(Buffer.from([5, 0xff]));
            client.write(Buffer.from([5, 0]));
            step = 'connect';
          }
        } else if (step === 'auth') {
          if (buf.length < 2) return;
          const ulen = buf[1]!;
          if (buf.length < 3 + ulen) return;
          const plen = buf[2 + ulen]!;
          if (buf.length < 3 + ulen + plen) return;
          const got = `${buf.subarray(2, 2 + ulen).toString()}:${buf.subarray(3 + ulen, 3 + ulen + plen).toString()}`;
          buf = buf.subarray(3 + ulen + plen);
          log.auth.push(got);
          if (got !== opts.auth) return void client.end(Buffer.from([1, 1]));
          client.write(Buffer.from([1, 0]));
          step = 'connect';
        } else if (step === 'connect') {
          if (buf.length < 5) return;
          const atyp = buf[3]!;
          let host: string;
          let end: number;
          if (atyp === 1) {
            end = 4 + 4;
            host = [...buf.subarray(4, 8)].join('.');
          } else if (atyp === 4) {
            end = 4 + 16;
            host = buf.subarray(4, 20).toString('hex').match(/.{4}/g)!.join(':');
          } else {
            end = 5 + buf[4]!;
            host = buf.subarray(5, end).toString();
          }
          if (buf.length < end + 2) return;
          const port = buf.readUInt16BE(end);
          buf = buf.subarray(end + 2);
          log.socksTargets.push(`${host}:${port}`);
          log.requests.push(`SOCKS ${host}:${port}`);
          step = 'done';
          client.off('data', onData);
          client.pause();
          const up = net.connect(port, host, () => {
            client.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, (port >> 8) & 255, port & 255]));
            if (buf.length) up.write(buf);
            up.pipe(client);
            client.pipe(up);
            client.resume();
          });
          up.on('error', () => client.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0])));
          client.on('close', () => up.destroy());
          return;
        } else {
          return;
        }
      }
    };
    client.on('data', onData);
  });
  const sockets = track(server);
  const port = await listen(server);
  return Object.assign(log, {
    port,
    url: (creds?: string) => `socks5://${creds ? `${creds}@` : ''}127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  });
}
