// A raw node:net server on 127.0.0.1 (ephemeral port) that answers with exact, scripted bytes.
//
// Every accepted connection gets a RawConn and is handed to a script: either one function for every
// connection, or an array of them (connection i runs scripts[i], connections past the end run the
// last one). Scripts read what the client sent (`readRequest()`), write bytes whole, in pieces,
// byte by byte, with delays, and end the connection gracefully (`end()`, a half-close: the server
// keeps reading), abortively (`reset()`, a TCP RST) or plainly (`destroy()`).
//
// The server counts connections, records every byte each connection received, and notices when
// the client closes a connection (`conn.closed` / `conn.clientEnded`). Script errors never
// escape as unhandled rejections: they are collected in `server.errors` (writes to a socket the
// client already reset are expected in hostile tests, so EPIPE/ECONNRESET are not recorded).
//
//   const srv = await startRawServer(async (c) => {
//     const req = await c.readRequest();
//     await c.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
//   });
//   ... srv.url('/x'), srv.connectionCount, srv.conns[0].received ...
//   await srv.close();

import * as net from 'node:net';
import { afterEach, expect } from 'vitest';
import { Session, UvfetchError, type SessionOptions } from '../../lib/index.js';

export interface RawRequest {
  method: string;
  target: string;
  /** Lower-cased names, in order. */
  headers: [string, string][];
  header(name: string): string | undefined;
  body: Buffer;
  /** The request exactly as received (head + body bytes). */
  raw: Buffer;
}

export type Script = (conn: RawConn) => unknown;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const immediate = () => new Promise<void>((r) => setImmediate(r));

export class RawConn {
  readonly index: number;
  readonly socket: net.Socket;
  /** Every byte received on this connection. */
  received: Buffer = Buffer.alloc(0);
  /** Bytes received but not yet consumed by readRequest(). */
  #pending: Buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  /** The client sent FIN (or the socket closed). */
  clientEnded = false;
  /** The socket is fully closed (either side). */
  isClosed = false;
  /** Set when the close was caused by an error (e.g. ECONNRESET from a client RST). */
  error: Error | undefined;
  /** Resolves once the socket is closed. */
  readonly closed: Promise<void>;
  /** Requests parsed so far by readRequest(). */
  readonly requests: RawRequest[] = [];

  constructor(index: number, socket: net.Socket) {
    this.index = index;
    this.socket = socket;
    socket.setNoDelay(true);
    this.closed = new Promise<void>((resolve) => {
      socket.on('close', () => {
        this.isClosed = true;
        this.clientEnded = true;
        this.#wake();
        resolve();
      });
    });
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.#pending = Buffer.concat([this.#pending, d]);
      this.#wake();
    });
    socket.on('end', () => {
      this.clientEnded = true;
      this.#wake();
    });
    socket.on('error', (e) => {
      this.error = e;
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  #more(): Promise<void> {
    return new Promise<void>((r) => this.#waiters.push(r));
  }

  /**
   * Waits for and parses the next complete request (head, then a Content-Length or chunked body).
   * Returns null when the client closes the connection before a complete request arrived.
   */
  async readRequest(): Promise<RawRequest | null> {
    for (;;) {
      const req = this.#tryParse();
      if (req !== undefined) {
        this.requests.push(req);
        return req;
      }
      if (this.clientEnded || this.isClosed) return null;
      await this.#more();
    }
  }

  /** Waits until at least n bytes have been received in total (or the connection ends). */
  async waitForBytes(n: number): Promise<boolean> {
    while (this.received.length < n) {
      if (this.clientEnded || this.isClosed) return false;
      await this.#more();
    }
    return true;
  }

  /** Parses one request from #pending; undefined when incomplete. */
  #tryParse(): RawRequest | undefined {
    const buf = this.#pending;
    const he = buf.indexOf('\r\n\r\n');
    if (he < 0) return undefined;
    const headText = buf.subarray(0, he).toString('latin1');
    const lines = headText.split('\r\n');
    const [method = '', target = ''] = lines[0]!.split(' ');
    const headers: [string, string][] = [];
    for (const line of lines.slice(1)) {
      const c = line.indexOf(':');
      headers.push([line.slice(0, c).trim().toLowerCase(), line.slice(c + 1).trim()]);
    }
    const header = (n: string) => headers.find(([k]) => k === n.toLowerCase())?.[1];
    let pos = he + 4;
    let body: Buffer;
    const te = header('transfer-encoding');
    const cl = header('content-length');
    if (te !== undefined && te.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const le = buf.indexOf('\r\n', pos);
        if (le < 0) return undefined;
        const size = parseInt(buf.subarray(pos, le).toString('latin1').split(';')[0]!, 16);
        if (size === 0) {
          // Last chunk: skip (empty) trailers.
          const end = buf.indexOf('\r\n\r\n', le);
          if (end < 0) return undefined;
          pos = end + 4;
          break;
        }
        if (buf.length < le + 2 + size + 2) return undefined;
        parts.push(buf.subarray(le + 2, le + 2 + size));
        pos = le + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else if (cl !== undefined) {
      const n = Number(cl);
      if (buf.length < pos + n) return undefined;
      body = Buffer.from(buf.subarray(pos, pos + n));
      pos += n;
    } else {
      body = Buffer.alloc(0);
    }
    const raw = Buffer.from(buf.subarray(0, pos));
    this.#pending = Buffer.from(buf.subarray(pos));
    return { method, target, headers, header, body, raw };
  }

  /** Writes bytes; resolves once handed to the kernel (or the socket is gone). */
  write(data: string | Buffer): Promise<void> {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.socket.write(b, () => resolve());
    });
  }

  /**
   * Writes data in pieces of `size` bytes, waiting between pieces: `delay` ms, or one setImmediate
   * turn when delay is 'immediate'. Stops early if the socket goes away.
   */
  async writePieces(data: string | Buffer, size: number, delay: number | 'immediate'): Promise<void> {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    for (let i = 0; i < b.length; i += size) {
      if (this.socket.destroyed || !this.socket.writable) return;
      await this.write(b.subarray(i, i + size));
      if (i + size < b.length) {
        if (delay === 'immediate') await immediate();
        else await sleep(delay);
      }
    }
  }

  /** Half-close: sends FIN after pending writes; keeps reading what the client sends. */
  end(data?: string | Buffer): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.socket.destroyed) return resolve();
      if (data !== undefined) this.socket.end(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, () => resolve());
      else this.socket.end(() => resolve());
    });
  }

  /** Closes at once (FIN; an RST if the kernel still holds unread client bytes). */
  destroy(): void {
    this.socket.destroy();
  }

  /** Abortive close: TCP RST. */
  reset(): void {
    if (this.socket.destroyed) return;
    try {
      this.socket.resetAndDestroy();
    } catch {
      this.socket.destroy();
    }
  }
}

export interface RawServer {
  readonly port: number;
  url(path?: string): string;
  /** Connections accepted so far. */
  readonly connectionCount: number;
  readonly conns: RawConn[];
  /** Currently open server-side sockets. */
  readonly openCount: number;
  /** Unexpected errors thrown by scripts. */
  readonly errors: unknown[];
  /** Resolves when connection `i` has been accepted. */
  connection(i: number): Promise<RawConn>;
  /** Destroys every socket and stops listening. */
  close(): Promise<void>;
}

const EXPECTED = new Set(['EPIPE', 'ECONNRESET', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

export async function startRawServer(scripts: Script | Script[]): Promise<RawServer> {
  const list = Array.isArray(scripts) ? scripts : [scripts];
  const conns: RawConn[] = [];
  const errors: unknown[] = [];
  const accepted: ((c: RawConn) => void)[][] = [];
  const server = net.createServer({ allowHalfOpen: true });
  server.on('connection', (socket) => {
    const i = conns.length;
    const c = new RawConn(i, socket);
    conns.push(c);
    for (const f of accepted[i] ?? []) f(c);
    const script = list[Math.min(i, list.length - 1)]!;
    Promise.resolve()
      .then(() => script(c))
      .catch((e: unknown) => {
        const code = (e as { code?: string } | null)?.code;
        if (code === undefined || !EXPECTED.has(code)) errors.push(e);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: (p = '/') => `http://127.0.0.1:${port}${p}`,
    get connectionCount() {
      return conns.length;
    },
    conns,
    get openCount() {
      return conns.filter((c) => !c.isClosed).length;
    },
    errors,
    connection(i: number) {
      if (conns[i] !== undefined) return Promise.resolve(conns[i]!);
      return new Promise<RawConn>((r) => (accepted[i] ??= []).push(r));
    },
    async close() {
      for (const c of conns) c.socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A complete response with a Content-Length body. */
export function okResponse(body = 'ok', extra = ''): string {
  return `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n${extra}\r\n${body}`;
}

/**
 * Runs `respond` for every request on the connection until the client closes it (keep-alive
 * server). `respond` gets the request and the connection and writes whatever it likes.
 */
export async function serveEach(c: RawConn, respond: (req: RawRequest, c: RawConn) => unknown): Promise<void> {
  for (;;) {
    const req = await c.readRequest();
    if (req === null) return;
    await respond(req, c);
    if (c.isClosed || c.socket.destroyed) return;
  }
}

/** Waits until cond() holds, polling every 5 ms, for at most `ms`. Returns the final cond(). */
export async function waitFor(cond: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return cond();
    await sleep(5);
  }
  return true;
}

export { sleep };

/**
 * Per-file kit for tests against raw servers: sessions (short default timeouts) and servers
 * made through it are destroyed/closed after each test; failure() awaits a rejection and
 * returns it as a UvfetchError (failing the test on a response).
 */
export function rawServerKit(): {
  session: (opts?: SessionOptions) => Session;
  server: (script: Script | Script[]) => Promise<RawServer>;
  failure: (p: Promise<unknown>) => Promise<UvfetchError>;
} {
  const sessions: Session[] = [];
  const servers: RawServer[] = [];
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.destroy()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  return {
    session(opts = {}) {
      const s = new Session({ timeout: { connect: 5000, headers: 5000, body: 5000 }, ...opts });
      sessions.push(s);
      return s;
    },
    async server(script) {
      const srv = await startRawServer(script);
      servers.push(srv);
      return srv;
    },
    async failure(p) {
      const r = await p.then(
        (v) => ({ ok: true as const, v }),
        (e: unknown) => ({ ok: false as const, e }),
      );
      if (r.ok) throw new Error(`expected a rejection, got status ${String((r.v as { status?: number })?.status)}`);
      expect(r.e).toBeInstanceOf(UvfetchError);
      return r.e as UvfetchError;
    },
  };
}
