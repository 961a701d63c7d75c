#!/usr/bin/env bash
# LeakSanitizer over a request-heavy run through the addon: builds the ASan+UBSan addon, runs
# scripts/leak-check.mjs with the sanitizer runtimes preloaded, and fails on any leak whose
# allocation stack passes through uvfetch.node (Node's own allocations that live until exit are
# reported by LSan too, and are not ours to judge). Prints "leaks: N passed, N failed".
#   npm run test:leaks
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# UVFETCH_ASAN_ADDON: use this instrumented addon instead (otherwise build-asan-addon.sh builds or
# reuses build-native/asan/uvfetch.node; after test:asan that is a no-op).
if [ -n "${UVFETCH_ASAN_ADDON:-}" ] && [ -f "$UVFETCH_ASAN_ADDON" ]; then
  addon="$UVFETCH_ASAN_ADDON"
else
  addon="$("$root/scripts/build-asan-addon.sh")" || { echo "leaks: 0 passed, 1 failed"; exit 1; }
fi
mkdir -p "$root/build-native/asan"
log="$root/build-native/asan/leaks.log"
run() {
  UVFETCH_ADDON="$addon" UVF_LEAK_SELFTEST="$1" \
  LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
  ASAN_OPTIONS=detect_leaks=1,verify_asan_link_order=0,abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1,halt_on_error=1 \
    node --expose-gc "$root/scripts/leak-check.mjs" >"$2" 2>&1
}
# Leak records allocated by our code: walking the stack up from the allocator, a frame of ours
# (symbolized source path or module) comes before any frame of V8, Node or JIT code. A V8 heap page
# allocated while our callback ran JS has our frame far below V8's and is not ours (LSan reports
# such pages when V8 is torn down at exit); an OpenSSL or zlib allocation made by our code is.
ours_in() {
  awk '/^(Direct|Indirect) leak/{blk=$0; next}
       blk!="" && /^    #[0-9]/ {
         if ($0 ~ /uvfetch\.node|\/native\/(core|binding)\/|uvf::/) { print blk; blk=""; next }
         if ($0 ~ /v8::|node::|Builtins_|napi_|<unknown module>/) { blk=""; next }
       }
       /^$/{blk=""}' "$1" | wc -l
}
# Self-test: one allocation leaked on purpose inside the addon must be caught.
# LeakSanitizer's own tracer sometimes dies (signal 11 while it stops the threads, seen on a busy
# machine); that says nothing about leaks, so a run that ends that way is made once more.
lsan_fatal() { grep -q "LeakSanitizer has encountered a fatal error" "$1"; }
(run 1 "$log.selftest") 2>/dev/null
if lsan_fatal "$log.selftest"; then
  echo "leak check self-test: LeakSanitizer's tracer failed; running it again"
  (run 1 "$log.selftest") 2>/dev/null
fi
if [ "$(ours_in "$log.selftest")" -lt 1 ]; then
  echo "leak check self-test: the planted leak was not detected (see $log.selftest)"
  echo "leaks: 0 passed, 1 failed"
  exit 1
fi
echo "leak check self-test: the planted leak was detected"
run 0 "$log"
rc=$?
if lsan_fatal "$log"; then
  echo "leak check: LeakSanitizer's tracer failed; running it again"
  run 0 "$log"
  rc=$?
fi
grep -v "^    #" "$log" | grep -v "^$" | grep -v "leak of" | head -20
ours=$(ours_in "$log")
total=$(grep -cE "^(Direct|Indirect) leak" "$log")
echo "LeakSanitizer: $total leak record(s) in all, $ours allocated by uvfetch's code"
if [ "$rc" -ne 0 ] || [ "$ours" -ne 0 ] || grep -qE "ERROR: AddressSanitizer|runtime error:" "$log" || ! grep -q "^leak-check: done" "$log"; then
  echo "leaks: 0 passed, 1 failed (see $log)"
  exit 1
fi
echo "leaks: 1 passed, 0 failed"
