// The short soak (scripts/soak.mjs with 50,000 requests): keep-alive, new connections, server
// errors, refused connects, timeouts, aborts and half-read streams, in a child process. RSS
// after warm-up must stay within a bound, and open fds and libuv handles must return to the
// baseline once the session is closed. (`npm run soak` is the 1,000,000-request version.)

import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('soak (short)', () => {
  it('50,000 mixed requests: RSS flat after warm-up, fds and handles back to baseline', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--expose-gc', path.join(root, 'scripts', 'soak.mjs'), '--requests', '50000', '--interval', '1', '--warmup', '0.5', '--json'],
        { cwd: root, timeout: 120_000, maxBuffer: 16 << 20 },
        (err, stdout, stderr) => (err && !stdout ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      );
    });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    expect(r.requests).toBe(50_000);
    // 6 of every 50 requests take an error path on purpose (refused, timeout, abort, ...).
    expect(r.errors).toBeGreaterThan(0);
    expect(r.errors).toBeLessThanOrEqual(50_000 * 0.12);
    expect(r.rssGrowthMiB).toBeLessThan(64);
    expect(r.final.fds).toBeLessThanOrEqual(r.baseline.fds);
    expect(r.final.handles).toBeLessThanOrEqual(r.baseline.handles);
    expect(r.ok).toBe(true);
  }, 150_000);
});
