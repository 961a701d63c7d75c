#!/usr/bin/env bash
# Builds an ASan+UBSan-instrumented copy of the addon in build-asan/ (the normal build is left
# alone) and prints the path of the .node file. Used by test-asan-addon.sh and leak-check.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/build-asan"
rm -rf "$out"
mkdir -p "$out"
cp -r "$root/binding.gyp" "$root/native" "$out/"
ln -s "$root/node_modules" "$out/node_modules"
sed -i 's/"cflags_cc": \["-std=c++17", "-O2",/"cflags_cc": ["-std=c++17", "-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all",/' "$out/binding.gyp"
sed -i 's/"xcode_settings"/"ldflags": ["-fsanitize=address,undefined"],\n      "xcode_settings"/' "$out/binding.gyp"
grep -q fsanitize "$out/binding.gyp" || { echo "could not instrument binding.gyp" >&2; exit 1; }
(cd "$out" && node-gyp rebuild >/dev/null)
echo "$out/build/Release/uvfetch.node"
