// The CLI subcommands of lib/fleet: `fetch`, `worker`, `enqueue`, `results`, `fleet-stats`.
// lib/cli.ts registers them; the Redis ones load the Redis client (ioredis) only when run.

import { FleetUsageError } from './options.js';
import { fetchCommand, FETCH_USAGE } from './batch.js';

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
        throw e;
      }
    },
  };
}

export function fleetCommands(usageError: new (msg: string) => Error): FleetCommand[] {
  const list: FleetCommand[] = [
    { name: 'fetch', summary: 'fetch every URL of a file (or stdin) into JSON lines', usage: FETCH_USAGE, run: fetchCommand },
  ];
  return list.map((c) => wrap(c, usageError));
}
