// Which C++ files make up the addon is decided by one rule (scripts/native-sources.js), not written
// down per build: binding.gyp (node-gyp, install time) expands `<!@(node scripts/native-sources.js
// addon)` and CMakeLists.txt (developer/CI build) reads the same script. These tests fail when the
// rule misses a file, when binding.gyp lists sources by hand again, or when the two builds disagree.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function script(set: string): string[] {
  const out = execFileSync(process.execPath, [path.join(root, 'scripts', 'native-sources.js'), set], { cwd: os.tmpdir(), encoding: 'utf8' });
  return out.split('\n').filter(Boolean);
}

/** The documented rule, walked independently: every *.cc under native/core (any depth) and directly in native/binding. */
function onDisk(): string[] {
  const walk = (dir: string, deep: boolean): string[] =>
    readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) return deep ? walk(rel, true) : [];
      return e.name.endsWith('.cc') ? [rel] : [];
    });
  return [...walk('native/core', true), ...walk('native/binding', false)].sort();
}

/** binding.gyp's uvfetch sources as gyp sees them: `<!@(cmd)` runs cmd in the .gyp file's directory and splits its output on whitespace. */
function gypSources(): { entries: string[]; expanded: string[] } {
  // A .gyp file is a Python literal: drop its # comments, the rest of ours is JSON.
  const text = readFileSync(path.join(root, 'binding.gyp'), 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n');
  const gyp = JSON.parse(text) as { targets: { target_name: string; sources: string[] }[] };
  const target = gyp.targets.find((t) => t.target_name === 'uvfetch');
  if (!target) throw new Error('binding.gyp has no uvfetch target');
  const expanded = target.sources.flatMap((s) => {
    const m = /^<!@\((.*)\)$/s.exec(s);
    if (!m) return [s];
    const r = spawnSync('sh', ['-c', m[1]], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`binding.gyp: "${m[1]}" failed: ${r.stderr}`);
    return r.stdout.split(/\s+/).filter(Boolean);
  });
  return { entries: target.sources, expanded };
}

const hasCmake = spawnSync('cmake', ['--version']).status === 0;

describe('native source lists', () => {
  it('the rule covers every .cc under native/core and native/binding, and nothing else', () => {
    const addon = script('addon');
    expect(addon).toEqual(onDisk());
    expect(addon).toContain('native/core/http2/h2_session.cc');
    expect(addon).toContain('native/binding/addon.cc');
  });

  it('core-pure and core-uv split the core: disjoint, together the whole core, libuv-bound layers on one side', () => {
    const core = script('core');
    const pure = script('core-pure');
    const uv = script('core-uv');
    expect([...pure, ...uv].sort()).toEqual(core);
    expect(pure.filter((f) => uv.includes(f))).toEqual([]);
    expect(uv.every((f) => /^native\/core\/(net|client|loop)\/|_uv\.cc$/.test(f))).toBe(true);
    expect(pure).toContain('native/core/http1/response_parser.cc');
    expect(uv).toContain('native/core/dns/resolver_uv.cc');
    expect([...script('core'), ...script('binding')].sort()).toEqual(script('addon'));
  });

  it('binding.gyp lists no source by hand: its sources expand to the rule', () => {
    const { entries, expanded } = gypSources();
    expect(entries.every((s) => s.startsWith('<!@('))).toBe(true);
    expect([...expanded].sort()).toEqual(onDisk());
  });

  // CMake is the developer/CI build (CI installs it); a machine without it skips, CI never does.
  it.skipIf(!hasCmake && !process.env.CI)(
    'CMake compiles the same files into its addon target as node-gyp does',
    () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'uvf-cmake-sources-'));
      try {
        execFileSync('cmake', ['--log-level=WARNING', '-S', root, '-B', dir], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
        const cmake = readFileSync(path.join(dir, 'addon-sources.txt'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((f) => path.relative(root, f).split(path.sep).join('/'))
          .sort();
        expect(cmake).toEqual([...gypSources().expanded].sort());
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );
});
