#!/usr/bin/env bash
# Builds the ASan+UBSan-instrumented addon with CMake in build-native/asan/ (the ASan unit tests'
# build dir; CMakeLists.txt's "addon" target, compiled as node-gyp compiles it; the normal build/ is
# left alone) and prints the path of the .node file. Used by test-asan-addon.sh and leak-check.sh. Incremental: a second run
# compiles only what changed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/build-native/asan"
mkdir -p "$out"
log="$out/addon-build.log"
{
  cmake -S "$root" -B "$out" -DUVF_SANITIZE=ON
  cmake --build "$out" -j"$(nproc 2>/dev/null || echo 2)" --target addon
} >"$log" 2>&1 || {
  tail -n 40 "$log" >&2
  echo "build-asan-addon: build failed (full log: $log)" >&2
  exit 1
}
echo "$out/uvfetch.node"
