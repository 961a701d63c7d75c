#!/usr/bin/env node
// The one rule for which C++ files make up the native build, used by both build descriptions:
// binding.gyp expands `<!@(node scripts/native-sources.js addon)` at install time (node-gyp), and
// CMakeLists.txt reads the same sets with execute_process. Ships in the npm package (a fallback
// build from source needs it). Paths are relative to the package root, '/'-separated, sorted.
//
//   addon       every native/core/**/*.cc and native/binding/*.cc: the addon (uvfetch.node)
//   core        every native/core/**/*.cc
//   core-pure   the core without the libuv-bound layers (native/core/{net,client,loop}/ and any
//               *_uv.cc): what the C++ unit tests and the fuzzers link, without libuv or Node
//   core-uv     the libuv-bound rest of the core (core minus core-pure)
//   binding     native/binding/*.cc (node-addon-api; only the addon compiles these)
//
//   node scripts/native-sources.js <set> [--sep=;]    one path per line (or joined by --sep)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Every *.cc under dir (relative to root), recursively when deep; '/'-separated paths. */
function ccFiles(dir, deep) {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  const out = [];
  for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) {
      if (deep) out.push(...ccFiles(rel, true));
    } else if (e.isFile() && e.name.endsWith('.cc')) {
      out.push(rel);
    }
  }
  return out;
}

const UV_BOUND = /^native\/core\/(net|client|loop)\/|_uv\.cc$/;

export function nativeSources(set) {
  const core = ccFiles('native/core', true);
  const binding = ccFiles('native/binding', false);
  const sets = {
    addon: [...core, ...binding],
    core,
    'core-pure': core.filter((f) => !UV_BOUND.test(f)),
    'core-uv': core.filter((f) => UV_BOUND.test(f)),
    binding,
  };
  const list = sets[set];
  if (!list) throw new Error(`unknown set "${set}" (known: ${Object.keys(sets).join(', ')})`);
  return list.sort();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [set, ...rest] = process.argv.slice(2);
  const sep = (rest.find((a) => a.startsWith('--sep=')) ?? '--sep=\n').slice('--sep='.length);
  try {
    const list = nativeSources(set);
    if (list.length === 0) throw new Error(`no sources found for "${set}" under ${root}`);
    process.stdout.write(list.join(sep) + '\n');
  } catch (e) {
    process.stderr.write(`native-sources: ${e.message}\n`);
    process.exit(2);
  }
}
