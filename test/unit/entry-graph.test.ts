// What an import loads, checked at run time on freshly compiled output: the pure modules (policies,
// proxy, core) load no addon, and the package entry loads no tooling (tools/: CLI, benchmarks,
// loopback servers). The same rules hold statically in .dependency-cruiser.cjs (npm run lint:deps).
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixture = path.join(root, 'test', 'unit', 'fixtures', 'load-graph.mjs');
const run = promisify(execFile);
let out: string; // compiled lib/ (under the repo, so node_modules resolves)
let scratch: string;

interface Graph {
  loaded: string[];
  addon: string[];
  nodeGypBuild: boolean;
  webGlobals: string[];
}

// The addon the package itself would load (node-gyp-build's choice: build/Release, or the prebuild
// CI makes, which moves the built file to prebuilds/).
const addonPath: string = createRequire(import.meta.url)('node-gyp-build').path(root);

async function load(...modules: string[]): Promise<Graph> {
  const { stdout } = await run(process.execPath, [fixture, ...modules.map((m) => path.join(out, m))], {
    cwd: root,
    // The compiled copy lives apart from build/: name the addon explicitly (lib/native/binding.ts).
    env: { ...process.env, UVFETCH_ADDON: addonPath },
    timeout: 30_000,
  });
  return JSON.parse(stdout) as Graph;
}

const rel = (g: Graph) => g.loaded.filter((u) => u.startsWith('file:')).map((u) => path.relative(out, fileURLToPath(u)));

beforeAll(() => {
  scratch = mkdtempSync(path.join(root, '.scratch-entry-graph-'));
  out = path.join(scratch, 'dist');
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json'), '--outDir', out, '--sourceMap', 'false', '--declaration', 'false'], {
    cwd: root,
    stdio: 'inherit',
  });
}, 120_000);

afterAll(() => {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

describe('import graph at run time', () => {
  it('the pure modules (retry, redirect, rate-limit, cookies, proxy, errors, headers) load no addon', async () => {
    const g = await load(
      'policies/retry.js',
      'policies/redirect.js',
      'policies/rate-limit.js',
      'policies/cookies.js',
      'net/proxy.js',
      'core/errors.js',
      'core/headers.js',
      'core/options.js',
    );
    expect(rel(g)).toContain('policies/retry.js');
    expect(rel(g).filter((f) => f.startsWith('native/'))).toEqual([]);
    expect(g.addon).toEqual([]);
    expect(g.nodeGypBuild).toBe(false);
  });

  it('the check sees an addon when one is loaded (control)', async () => {
    const g = await load('core/errors.js', 'native/errors.js');
    expect(g.addon.map((f) => path.basename(f))).toEqual([path.basename(addonPath)]);
  });

  it("the entry (import 'uvfetch') loads lib's layers and nothing of tools/", async () => {
    const g = await load('index.js');
    const files = rel(g);
    expect(files).toContain('session/session.js');
    expect(files).toContain('raw/socket-pool.js');
    expect(files.filter((f) => f.startsWith('..') || /(^|\/)(tools|cli|bench|bench-hooks|loopback-server|tls-loopback)(\/|\.js$)/.test(f))).toEqual([]);
    // The optional entries and their peer dependency stay out.
    expect(files.filter((f) => f.startsWith('otel/') || f.startsWith('testing/'))).toEqual([]);
    expect(g.loaded.filter((u) => u.includes('@opentelemetry'))).toEqual([]);
    // Node's fetch implementation (undici inside Node, ~10 ms and ~4 MiB on Node 20, where it is
    // lazy) loads at the first fetch(), not at import.
    expect(g.webGlobals).toEqual([]);
  });

  it("a data: URL fetched after globalThis.fetch = uvfetch's fetch (Node's fetch never loaded before) neither loops nor undoes the replacement", async () => {
    const { stdout } = await run(process.execPath, [path.join(root, 'test', 'unit', 'fixtures', 'data-url-replaced.mjs'), path.join(out, 'index.js')], {
      cwd: root,
      env: { ...process.env, UVFETCH_ADDON: addonPath },
      timeout: 30_000,
    });
    expect(JSON.parse(stdout)).toEqual({ text: 'hi there', viaGlobal: 'again', stillReplaced: true });
  });

  // Node 20 defines these globals as lazy accessors; Node 22 and 24 define them eagerly (nothing
  // to save there, and nothing for the check to see).
  const lazyResponse = Object.getOwnPropertyDescriptor(globalThis, 'Response')?.get !== undefined;
  it.skipIf(!lazyResponse)('the check sees a lazy web global read at load (control)', async () => {
    const g = await load('../../test/unit/fixtures/touch-response.mjs');
    expect(g.webGlobals).toEqual(['Response']);
  });

  it("'uvfetch/otel' is what loads @opentelemetry/api (control)", async () => {
    const g = await load('otel/index.js');
    expect(g.loaded.some((u) => u.includes('@opentelemetry/api'))).toBe(true);
  });
});
