// A small Redis client built only on uvfetch's raw sockets (SocketPool + RawSocket): RESP2
// encoding and parsing, pipelined commands, pooled connections.
//
//   node examples/redis-ping.mjs                        # starts its own redis-server on 127.0.0.1
//   node examples/redis-ping.mjs --port 6379            # talks to a redis already listening there
//
// Without --port it starts `redis-server` (Debian package redis-server) on a free loopback port
// with persistence off (--save '' --appendonly no), and stops it at the end. Prints one line per
// step; exits non-zero on any failure.

import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { SocketPool } from 'uvfetch';

/** RESP2: an array of bulk strings. */
function encode(args) {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) {
    const b = Buffer.from(String(a));
    parts.push(`$${b.length}\r\n`, b, '\r\n');
  }
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
}

/** Parses one RESP2 value at buf[off]: [value, next offset], or undefined when incomplete. */
function parse(buf, off) {
  const eol = buf.indexOf('\r\n', off);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[off]);
  const line = buf.toString('utf8', off + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return [line, next];
    case '-':
      return [new Error(line), next];
    case ':':
      return [Number(line), next];
    case '$': {
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return undefined;
      return [buf.toString('utf8', next, next + n), next + n + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, next];
      const out = [];
      let at = next;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, at);
        if (r === undefined) return undefined;
        out.push(r[0]);
        at = r[1];
      }
      return [out, at];
    }
    default:
      throw new Error(`bad RESP type byte ${JSON.stringify(type)}`);
  }
}

/** One connection's command pipeline: replies come back in order. */
class RedisConnection {
  #sock;
  #buf = Buffer.alloc(0);
  #pending = [];

  constructor(sock) {
    this.#sock = sock;
    sock.on('data', (d) => this.#onData(d));
    sock.on('error', (e) => this.#failAll(e));
    sock.on('close', () => this.#failAll(new Error('connection closed')));
  }

  command(...args) {
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#sock.write(encode(args));
    });
  }

  #onData(d) {
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    let off = 0;
    for (;;) {
      const r = parse(this.#buf, off);
      if (r === undefined) break;
      off = r[1];
      const p = this.#pending.shift();
      if (r[0] instanceof Error) p?.reject(r[0]);
      else p?.resolve(r[0]);
    }
    this.#buf = this.#buf.subarray(off);
  }

  #failAll(err) {
    for (const p of this.#pending.splice(0)) p.reject(err);
  }
}

/** A tiny client over a SocketPool: each command borrows a connection, pipelines, gives it back. */
class Redis {
  #pool;
  #conns = new WeakMap();

  constructor(host, port) {
    this.#pool = new SocketPool({ connect: { host, port, timeout: 2_000 }, maxPerKey: 4, idleTimeout: 10_000 });
  }

  async command(...args) {
    const sock = await this.#pool.acquire();
    let c = this.#conns.get(sock);
    if (c === undefined) {
      c = new RedisConnection(sock);
      this.#conns.set(sock, c);
    }
    try {
      return await c.command(...args);
    } finally {
      this.#pool.release(sock);
    }
  }

  stats() {
    return this.#pool.stats();
  }

  close() {
    return this.#pool.close({ force: true });
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
    const onOut = (d) => {
      out += d;
      if (/ready to accept connections/i.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onOut);
    child.stderr.on('data', onOut);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}): ${out}`));
    });
  });
  return { port, stop: () => child.kill('SIGTERM') };
}

const argPort = process.argv.indexOf('--port');
let server;
let port;
if (argPort > 0) {
  port = Number(process.argv[argPort + 1]);
} else {
  server = await startRedis();
  port = server.port;
  console.log(`redis-server started on 127.0.0.1:${port}`);
}

const redis = new Redis('127.0.0.1', port);
try {
  console.log(`PING -> ${await redis.command('PING')}`);
  await redis.command('SET', 'uvfetch:greeting', 'hello from uvfetch');
  console.log(`GET uvfetch:greeting -> ${await redis.command('GET', 'uvfetch:greeting')}`);
  console.log(`GET uvfetch:missing -> ${await redis.command('GET', 'uvfetch:missing')}`);
  await redis.command('DEL', 'uvfetch:counter');
  const incrs = await Promise.all(Array.from({ length: 100 }, () => redis.command('INCR', 'uvfetch:counter')));
  console.log(`100 concurrent INCR -> ${Math.max(...incrs)} (${new Set(incrs).size} distinct replies)`);
  const st = redis.stats();
  console.log(`pool: ${st.created} connections created, ${st.reused} reuses`);
} finally {
  await redis.close();
  server?.stop();
}
