// The CLI subcommands of lib/fleet: `fetch`, `worker`, `enqueue`, `results`, `fleet-stats`.
// lib/cli.ts registers them; the Redis ones load the Redis client (ioredis) only when run.

import { FleetUsageError } from './options.js';
import { RedisUnavailableError } from 'uvfetch/fleet';
import { fetchCommand, FETCH_USAGE } from './batch.js';
import { workerCommand, WORKER_USAGE, enqueueCommand, ENQUEUE_USAGE, resultsCommand, RESULTS_USAGE, fleetStatsCommand, FLEET_STATS_USAGE } from './tools.js';

export interface FleetCommand {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

/** Wraps a command so that its usage errors become the CLI's own (exit 2 with the usage). */
function wrap(c: FleetCommand, usageError: new (msg: string) => Error): FleetCommand {
  return {
    ...c,
    run: async (argv) => {
      try {
        return await c.run(argv);
      } catch (e) {
        if (e instanceof FleetUsageError) throw new usageError(e.message);
        if (e instanceof RedisUnavailableError) {
          process.stderr.write(`uvfetch ${c.name}: ${e.message}\n`);
          return 1;
        }
        throw e;
      }
    },
  };
}

export function fleetCommands(usageError: new (msg: string) => Error): FleetCommand[] {
  const list: FleetCommand[] = [
    { name: 'fetch', summary: 'fetch every URL of a file (or stdin) into JSON lines', usage: FETCH_USAGE, run: fetchCommand },
    { name: 'worker', summary: 'fetch from a Redis stream as one worker of a fleet', usage: WORKER_USAGE, run: workerCommand },
    { name: 'enqueue', summary: 'add the URLs of a file (or stdin) to a Redis stream', usage: ENQUEUE_USAGE, run: enqueueCommand },
    { name: 'results', summary: 'print a Redis results stream as JSON lines', usage: RESULTS_USAGE, run: resultsCommand },
    { name: 'fleet-stats', summary: "print a fleet's totals, workers and queues", usage: FLEET_STATS_USAGE, run: fleetStatsCommand },
  ];
  return list.map((c) => wrap(c, usageError));
}
