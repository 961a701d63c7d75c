// `uvfetch/fleet`: the Redis Streams worker (runWorker) and the pieces the CLI's batch and fleet
// commands share with it: input line parsing, result records, the lazy Redis client. Importing it
// loads no Redis client; ioredis (an optional dependency) is loaded when one is first needed.
export { runWorker, type WorkerOptions, type WorkerSummary } from './worker.js';
export { connectRedis, RedisUnavailableError, type RedisClient } from './redis.js';
export {
  type BodyPolicy,
  bodyFileName,
  errorRecord,
  type FetchRecord,
  originOf,
  type ParsedLine,
  parseJsonRequest,
  parseLine,
  responseRecord,
} from './records.js';
