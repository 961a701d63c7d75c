// `uvfetch bench`, child side: a forked process that runs one client for one segment (warm-up,
// then a measured window) and reports over IPC. It loads only its own client.

// ---------------------------------------------------------------------------------------------
// Child side: one client, one segment (warm-up + measured window).

import * as http from 'node:http';
import * as https from 'node:https';
import { createHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { CHILD_FLAG, type ClientName, ELD_RESOLUTION_MS, type HttpsTrust, errorCode } from './config.js';

export interface SegmentSpec {
  client: ClientName;
  url: string;
  concurrency: number;
  /** Do not reuse connections. */
  close: boolean;
  warmupS: number;
  durationS: number;
  /** Expected body size, -1 = do not check. */
  expectBytes: number;
  undiciEntry: string | null;
  /**
   * HTTPS: the CA to trust, either through each client's default trust store (the child runs
   * with NODE_EXTRA_CA_CERTS; 'env') or an explicit `ca` option ('option'). Every client runs
   * without TLS session resumption.
   */
  tls: { caPem: string; trust: HttpsTrust } | null;
}

export interface SegmentResult {
  requests: number;
  errors: number;
  errorCodes: Record<string, number>;
  elapsedS: number;
  rps: number;
  latencyMs: { p50: number; p99: number; max: number } | null;
  eventLoopP99Ms: number;
  rssBytes: number;
  clientCpuPercent: number;
}

export type ToChild = { t: 'start'; spec: SegmentSpec } | { t: 'go' };
export type FromChild = { t: 'warm' } | { t: 'result'; result: SegmentResult } | { t: 'error'; message: string };

export interface BenchClient {
  /** One GET; resolves to the number of body bytes read; rejects on failure or status != 200. */
  request(): Promise<number>;
  close(): Promise<void>;
}

export function statusError(status: number): Error {
  return Object.assign(new Error(`status ${status}`), { code: `HTTP_${status}` });
}

export async function makeClient(spec: SegmentSpec): Promise<BenchClient> {
  const { url, concurrency: C, close } = spec;
  const u = new URL(url);
  const https_ = spec.tls !== null;
  const ca = spec.tls !== null && spec.tls.trust === 'ca' ? spec.tls.caPem : undefined;
  switch (spec.client) {
    case 'uvfetch': {
      const { Session } = await import('uvfetch');
      // sessionCacheSize 0: no resumption, like the other clients (see makeClient's callers).
      const session = new Session({
        connections: C,
        connectionsPerHost: C,
        ...(https_ ? { tls: { ...(ca !== undefined ? { ca } : {}), sessionCacheSize: 0 } } : {}),
      });
      const opts = close ? { headers: { connection: 'close' } } : undefined;
      return {
        async request() {
          const res = await session.request(url, opts);
          if (res.status !== 200) throw statusError(res.status);
          return res.body.length; // request() buffers the whole body
        },
        close: () => session.close(),
      };
    }
    case 'undici-pool':
    case 'undici-agent': {
      if (spec.undiciEntry === null) throw new Error('undici is not installed');
      const mod = (await import(pathToFileURL(spec.undiciEntry).href)) as { default?: unknown };
      const undici = (mod.default ?? mod) as typeof import('undici');
      const reqPath = u.pathname + u.search;
      // maxCachedSessions 0: undici's connector otherwise resumes TLS sessions (cache of 100).
      const connect = https_ ? { connect: { ...(ca !== undefined ? { ca } : {}), maxCachedSessions: 0 } } : {};
      if (spec.client === 'undici-pool') {
        const pool = new undici.Pool(u.origin, { connections: C, pipelining: 1, ...connect });
        return {
          async request() {
            const { statusCode, body } = await pool.request({ path: reqPath, method: 'GET', reset: close });
            const ab = await body.arrayBuffer();
            if (statusCode !== 200) throw statusError(statusCode);
            return ab.byteLength;
          },
          close: () => pool.close(),
        };
      }
      const agent = new undici.Agent({ connections: C, pipelining: 1, ...connect });
      return {
        async request() {
          const { statusCode, body } = await undici.request(url, { dispatcher: agent, reset: close });
          const ab = await body.arrayBuffer();
          if (statusCode !== 200) throw statusError(statusCode);
          return ab.byteLength;
        },
        close: () => agent.close(),
      };
    }
    case 'node-http': {
      // keepAlive: false makes node:http send `Connection: close` and never reuse. HTTPS:
      // node:https with maxCachedSessions 0 (its default of 100 resumes sessions).
      const agent = https_
        ? new https.Agent({ keepAlive: !close, maxSockets: C, maxCachedSessions: 0, ...(ca !== undefined ? { ca } : {}) })
        : new http.Agent({ keepAlive: !close, maxSockets: C });
      const get = https_ ? https.get : http.get;
      return {
        request() {
          return new Promise<number>((resolve, reject) => {
            const req = get(url, { agent }, (res) => {
              const chunks: Buffer[] = [];
              let n = 0;
              res.on('data', (c: Buffer) => {
                chunks.push(c);
                n += c.length;
              });
              res.on('end', () => {
                if (res.statusCode !== 200) reject(statusError(res.statusCode ?? 0));
                else resolve(Buffer.concat(chunks, n).length);
              });
              res.on('error', reject);
            });
            req.on('error', reject);
          });
        },
        async close() {
          agent.destroy();
        },
      };
    }
    case 'uvfetch-fetch': {
      // uvfetch's fetch() on a Session sized like the uvfetch client's; a global Response per request.
      const { Session } = await import('uvfetch');
      const session = new Session({
        connections: C,
        connectionsPerHost: C,
        ...(https_ ? { tls: { ...(ca !== undefined ? { ca } : {}), sessionCacheSize: 0 } } : {}),
      });
      const init = close ? { headers: { connection: 'close' } } : undefined;
      return {
        async request() {
          const res = await session.fetch(url, init);
          const ab = await res.arrayBuffer();
          if (res.status !== 200) throw statusError(res.status);
          return ab.byteLength;
        },
        close: () => session.close(),
      };
    }
    case 'undici-fetch': {
      // undici 7's fetch() with its default global dispatcher (HTTPS: an Agent trusting `ca`, no resumption).
      if (spec.undiciEntry === null) throw new Error('undici is not installed');
      const mod = (await import(pathToFileURL(spec.undiciEntry).href)) as { default?: unknown };
      const undici = (mod.default ?? mod) as typeof import('undici');
      const init: Record<string, unknown> = close ? { headers: { connection: 'close' } } : {};
      if (https_) init.dispatcher = new undici.Agent({ connect: { ...(ca !== undefined ? { ca } : {}), maxCachedSessions: 0 } });
      return {
        async request() {
          const res = await undici.fetch(url, init);
          const ab = await res.arrayBuffer();
          if (res.status !== 200) throw statusError(res.status);
          return ab.byteLength;
        },
        async close() {},
      };
    }
    case 'fetch': {
      // Node's global fetch (its bundled undici, global dispatcher with default settings).
      // `connection: close` is passed through to undici, which then does not reuse the socket.
      let init: RequestInit | undefined = close ? { headers: { connection: 'close' } } : undefined;
      if (https_) init = { ...init, ...(await bundledUndiciDispatcher(ca)) } as RequestInit;
      return {
        async request() {
          const res = await fetch(url, init);
          const ab = await res.arrayBuffer();
          if (res.status !== 200) throw statusError(res.status);
          return ab.byteLength;
        },
        async close() {},
      };
    }
  }
}

/**
 * HTTPS for the global fetch: it takes neither a CA nor TLS options, only a dispatcher of its
 * own (Node's bundled) undici. The bundled Agent class is reachable through the global
 * dispatcher, which fetch installs on first use (a data: URL does that without any I/O). The
 * dispatcher made from it keeps no TLS sessions, like the other clients (and trusts `ca`).
 */
export async function bundledUndiciDispatcher(ca: string | undefined): Promise<{ dispatcher: unknown }> {
  await (await fetch('data:,')).arrayBuffer();
  const global = (globalThis as Record<symbol, unknown>)[Symbol.for('undici.globalDispatcher.1')] as
    | { constructor: new (opts: unknown) => unknown }
    | undefined;
  if (global === undefined || typeof global.constructor !== 'function') {
    throw Object.assign(new Error("cannot find the global fetch's dispatcher class"), { code: 'FETCH_NO_DISPATCHER' });
  }
  return { dispatcher: new global.constructor({ connect: { ...(ca !== undefined ? { ca } : {}), maxCachedSessions: 0 } }) };
}

export async function runPhase(
  client: BenchClient,
  spec: SegmentSpec,
  seconds: number,
  hist: ReturnType<typeof createHistogram> | null,
): Promise<{ done: number; errors: number; errorCodes: Record<string, number>; elapsedS: number }> {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  let done = 0;
  let errors = 0;
  const errorCodes: Record<string, number> = {};
  const worker = async (): Promise<void> => {
    while (process.hrtime.bigint() < deadline) {
      const t0 = process.hrtime.bigint();
      try {
        const n = await client.request();
        if (spec.expectBytes >= 0 && n !== spec.expectBytes) {
          throw Object.assign(new Error(`body of ${n} bytes`), { code: `BODY_${n}_BYTES` });
        }
        if (hist !== null) {
          const dt = process.hrtime.bigint() - t0;
          hist.record(dt > 0n ? dt : 1n);
        }
        done++;
      } catch (e) {
        errors++;
        const code = errorCode(e);
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        await new Promise((r) => setTimeout(r, 1)); // do not spin on a dead target
      }
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  return { done, errors, errorCodes, elapsedS: Number(process.hrtime.bigint() - t0) / 1e9 };
}

export function runChild(): void {
  const send = (m: FromChild): Promise<void> =>
    new Promise((resolve) => {
      if (!process.connected) return resolve();
      process.send!(m, undefined, undefined, () => resolve());
    });
  process.on('disconnect', () => process.exit(0));
  let client: BenchClient | null = null;
  let spec: SegmentSpec | null = null;

  process.on('message', (msg: ToChild) => {
    void (async () => {
      try {
        if (msg.t === 'start') {
          spec = msg.spec;
          client = await makeClient(spec);
          if (spec.warmupS > 0) await runPhase(client, spec, spec.warmupS, null);
          await send({ t: 'warm' });
        } else if (msg.t === 'go' && client !== null && spec !== null) {
          const hist = createHistogram();
          const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
          const cpu0 = process.cpuUsage();
          eld.enable();
          const r = await runPhase(client, spec, spec.durationS, hist);
          eld.disable();
          const cpu = process.cpuUsage(cpu0);
          const result: SegmentResult = {
            requests: r.done,
            errors: r.errors,
            errorCodes: r.errorCodes,
            elapsedS: r.elapsedS,
            rps: r.done / r.elapsedS,
            latencyMs: hist.count > 0 ? { p50: hist.percentile(50) / 1e6, p99: hist.percentile(99) / 1e6, max: hist.max / 1e6 } : null,
            // The histogram holds timer intervals (resolution included): report the lateness.
            eventLoopP99Ms: eld.count > 0 ? Math.max(0, eld.percentile(99) / 1e6 - ELD_RESOLUTION_MS) : 0,
            rssBytes: Math.max(process.memoryUsage.rss(), process.resourceUsage().maxRSS * 1024),
            clientCpuPercent: (100 * (cpu.user + cpu.system)) / 1e6 / r.elapsedS,
          };
          await send({ t: 'result', result });
          await Promise.race([client.close(), new Promise((r) => setTimeout(r, 2000))]);
          process.exit(0);
        }
      } catch (e) {
        await send({ t: 'error', message: e instanceof Error ? e.message : String(e) });
        process.exit(1);
      }
    })();
  });
}

// ---------------------------------------------------------------------------------------------
// Entry point of the forked client processes.

if (process.argv.includes(CHILD_FLAG) && typeof process.send === 'function') {
  runChild();
}
