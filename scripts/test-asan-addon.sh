#!/usr/bin/env bash
# Builds the ASan+UBSan-instrumented addon (scripts/build-asan-addon.sh: CMake, in build-native/asan/;
# the normal build is left alone) and runs the integration, lifecycle and scale suites against it,
# with the sanitizer runtimes preloaded into Node. Any sanitizer report fails the run. Extra args go to vitest.
# Left out: the CLI/bench tests (timing-heavy child processes) and fetch-many (pure JS over the
# same native paths, with an RSS bound that ASan's quarantine inflates).
#   npm run test:asan [-- --reporter=json --outputFile=x.json]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
addon="$("$root/scripts/build-asan-addon.sh")"
out="$root/build-native/asan"

asan="$(gcc -print-file-name=libasan.so)"
ubsan="$(gcc -print-file-name=libubsan.so)"
log="$out/vitest.log"
set +e
UVFETCH_ADDON="$addon" \
LD_PRELOAD="$asan $ubsan" \
ASAN_OPTIONS=detect_leaks=0,verify_asan_link_order=0,abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1,halt_on_error=1 \
  npx vitest run test/integration test/lifecycle test/scale \
    --exclude test/integration/bench-cli.test.ts --exclude test/integration/cli.test.ts \
    --exclude test/integration/fetch-many.test.ts "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if grep -qE "ERROR: AddressSanitizer|runtime error:" "$log"; then
  echo "sanitizer reports found (see $log)" >&2
  exit 1
fi
exit "$rc"
