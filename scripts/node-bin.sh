#!/usr/bin/env bash
# Prints the bin directory of a Node.js <major> (e.g. 22, 24, 26), installing it first if needed
# from the npm registry's node-linux-<arch> package (Node's official binary with its headers in
# include/node) into $UVFETCH_NODE_CACHE/<major> (default ~/.cache/uvfetch-node/<major>). A cached
# copy is reused as is; delete the directory to get the newest release of that major.
#   PATH="$(bash scripts/node-bin.sh 24):$PATH" npm test
set -euo pipefail
major="${1:?usage: node-bin.sh <major>}"
case "$major" in *[!0-9]*) echo "node-bin.sh: not a major version: $major" >&2; exit 2 ;; esac
case "$(uname -s)" in
  Linux) ;;
  *) echo "node-bin.sh: only Linux (node-linux-<arch> packages)" >&2; exit 2 ;;
esac
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "node-bin.sh: no node-linux package for $(uname -m)" >&2; exit 2 ;;
esac
cache="${UVFETCH_NODE_CACHE:-$HOME/.cache/uvfetch-node}/$major"
pkgdir="$cache/node_modules/node-linux-$arch"
if [ ! -x "$pkgdir/bin/node" ] || ! "$pkgdir/bin/node" -e "process.exit(process.versions.node.split('.')[0] === '$major' ? 0 : 1)"; then
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-audit --no-fund --loglevel=error "node-linux-$arch@$major" >&2
fi
"$pkgdir/bin/node" -e "process.exit(process.versions.node.split('.')[0] === '$major' ? 0 : 1)" || {
  echo "node-bin.sh: $pkgdir/bin/node is not Node $major" >&2
  exit 1
}
echo "$pkgdir/bin"
