// The Redis client of the fleet commands: ioredis, an optional dependency, loaded here only
// (dynamic import) so that `import 'uvfetch'` never needs it. Also the Lua script runner
// (EVALSHA, and EVAL once when the server's script cache is empty, e.g. after a restart).

import { createHash } from 'node:crypto';

/** The part of an ioredis client the fleet uses (ioredis' own types stay out of our .d.ts). */
export interface RedisClient {
  call(command: string, ...args: Array<string | number | Buffer>): Promise<unknown>;
  duplicate(): RedisClient;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  readonly status: string;
}

export class RedisUnavailableError extends Error {
  readonly code = 'ERR_REDIS_CLIENT_MISSING';
}

type RedisCtor = new (url: string, options: Record<string, unknown>) => RedisClient;
let ctor: Promise<RedisCtor> | undefined;

async function loadIoredis(): Promise<RedisCtor> {
  try {
    const mod = (await import('ioredis')) as unknown as { Redis?: RedisCtor; default?: RedisCtor };
    const c = mod.Redis ?? mod.default;
    if (typeof c !== 'function') throw new Error('ioredis has no Redis export');
    return c;
  } catch (cause) {
    ctor = undefined;
    throw new RedisUnavailableError(
      `the Redis commands need the optional dependency ioredis, which could not be loaded (${(cause as Error).message}); install it with: npm install ioredis`,
      { cause },
    );
  }
}

/**
 * Connects to `url` (redis://[user:pass@]host:port[/db], rediss://...). The client reconnects
 * by itself (50 ms, 100 ms, … up to 2 s apart, forever) and queues commands meanwhile: a worker
 * stalls while Redis is away and carries on when it is back.
 */
export async function connectRedis(url: string, name: string): Promise<RedisClient> {
  const Redis = await (ctor ??= loadIoredis());
  const client = new Redis(url, {
    connectionName: name,
    // RESP2: the reply shapes the fleet parses (ioredis 6 defaults to RESP3, where XREAD's map
    // reply comes back flattened differently).
    protocol: 2,
    maxRetriesPerRequest: null,
    enableAutoPipelining: true,
    retryStrategy: (times: number) => Math.min(50 * times, 2000),
  });
  // Connection errors are retried; without a listener ioredis would print each one.
  client.on('error', () => {});
  return client;
}

export function replyErrorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A Lua script run by SHA, loaded with EVAL when Redis does not know it (NOSCRIPT). */
export class Script {
  readonly source: string;
  readonly sha: string;

  constructor(source: string) {
    this.source = source;
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await client.call('EVALSHA', this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!replyErrorText(e).startsWith('NOSCRIPT')) throw e;
      return client.call('EVAL', this.source, keys.length, ...keys, ...args);
    }
  }
}
