// `uvfetch bench --scenario fetch`: a short run of every fetch() client against the embedded
// server, checking that each ran without errors and that the text report states the ratio to
// the global fetch and fetch()'s cost over request(). Never asserts speed.

import { beforeAll, describe, expect, it } from 'vitest';
import { ensureCliBuilt, runCli } from '../helpers/run-cli.js';
import type { BenchReport } from '../../tools/bench.js';

beforeAll(ensureCliBuilt);

const ARGS = ['bench', '--scenario', 'fetch', '--duration', '0.5', '--warmup', '0.2', '--rounds', '1'];

describe('uvfetch bench --scenario fetch', () => {
  it('runs uvfetch fetch(), global fetch, undici fetch() and uvfetch request() by default, without errors', async () => {
    const r = await runCli([...ARGS, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as BenchReport;
    expect(rep.settings.clients).toEqual(['uvfetch-fetch', 'fetch', 'undici-fetch', 'uvfetch']);
    const sc = rep.scenarios[0]!;
    expect(sc.name).toBe('fetch');
    for (const c of sc.clients) {
      expect(c.errors, `${c.client}: ${JSON.stringify(c.errorCodes)}`).toBe(0);
      expect(c.requests).toBeGreaterThan(0);
    }
  });

  it('the text report gives the ratio to global fetch and the cost over request()', async () => {
    const r = await runCli([...ARGS, '--clients', 'uvfetch-fetch,fetch,uvfetch']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /uvfetch fetch\(\) \/ global fetch: [\d.]+x req\/s, [\d.]+x per client CPU second; fetch\(\) costs -?[\d.]+ µs\/request over request\(\) \(-?[\d.]+ µs of client CPU/,
    );
  });

  it('--help lists the fetch scenario', async () => {
    const r = await runCli(['bench', '--help']);
    expect(r.stdout).toMatch(/fetch \(uvfetch fetch\(\), global fetch, undici fetch\(\), uvfetch request\(\)\)/);
  });
});
