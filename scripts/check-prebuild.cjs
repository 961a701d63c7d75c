// Checks that node-gyp-build, as an installed uvfetch would call it, picks the given prebuild and
// that it loads in this Node. Release workflow and by hand:
//   PREBUILDS_ONLY=1 node scripts/check-prebuild.cjs linux-x64/node.napi.glibc.node
// (PREBUILDS_ONLY=1 makes node-gyp-build ignore build/Release, as in a package without a build.)
'use strict';
const path = require('node:path');
const load = require('node-gyp-build');

const want = process.argv[2];
if (!want) {
  console.error('usage: node scripts/check-prebuild.cjs <platform-arch>/<file>.node');
  process.exit(2);
}
const root = path.join(__dirname, '..');
const expected = path.join(root, 'prebuilds', ...want.split('/'));
let chosen;
try {
  chosen = load.path(root);
} catch (err) {
  console.error(`node-gyp-build found nothing for Node ${process.version}: ${err.message}`);
  process.exit(1);
}
if (chosen !== expected) {
  console.error(`node-gyp-build picked ${chosen}, expected ${expected}`);
  process.exit(1);
}
const addon = require(chosen);
if (typeof addon.napiVersion !== 'number') {
  console.error(`${chosen} loaded but does not look like uvfetch's addon`);
  process.exit(1);
}
console.log(`Node ${process.version} (${process.platform}-${process.arch}): ${path.relative(root, chosen)}, N-API ${addon.napiVersion}`);
