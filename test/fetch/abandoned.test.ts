// fetch() responses whose bodies the caller drops unread must not pin sockets forever: once the
// Response (and with it the web stream and the native stream) is garbage-collected, its request
// is aborted and the socket destroyed, as with session.stream(). The same for bodies undici's
// request() got through a UvfetchAgent (it lists its requests weakly).
import { expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

it.each([
  ['fetch() bodies', 'abandon-fetch.mjs'],
  ['undici.request() bodies through UvfetchAgent', 'abandon-agent.mjs'],
])(
  'unread %s that are garbage-collected free their sockets',
  (_what, fixture) => {
    const r = spawnSync(process.execPath, ['--expose-gc', path.join(here, 'fixtures', fixture)], {
      cwd: path.join(here, '..', '..'),
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: number; inFlightAfter: number; failed: number; serverOpen: number };
    // Pinned until collected: all 50 are in flight before they are dropped and collected.
    expect(out.before).toBe(50);
    expect(out.inFlightAfter).toBe(0);
    expect(out.failed).toBe(50);
    expect(out.serverOpen).toBe(0);
  },
  40_000,
);
