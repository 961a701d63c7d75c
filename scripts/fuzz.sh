#!/usr/bin/env bash
# Builds the native core's libFuzzer targets with CMake (build-native/fuzz/, clang with
# -fsanitize=fuzzer,address,undefined; CMakeLists.txt says which core files each one links) and runs
# each for N seconds on a temporary copy of its seed corpus (native/fuzz/corpus/<target>/, with
# native/fuzz/dict/<target>.dict when there is one). Any crash, sanitizer report, leak, timeout or
# OOM fails that target; its input is kept under build-native/fuzz/artifacts/. Prints
# "fuzz <target>: N execs, cov X, ft Y" per target, then "fuzz: P passed, F failed".
#
#   scripts/fuzz.sh [--seconds N | --minutes M] [target...]   (npm run fuzz -- --minutes 10)
#   targets: response_parser chunked_decoder request_encoder client_hello dns_cache content_decoder h2_session h2_connection
# Needs clang++ and its libFuzzer runtime (Debian 12: apt-get install clang libclang-rt-14-dev).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz_dir="$root/native/fuzz"
build_dir="$root/build-native/fuzz"
all_targets=(response_parser chunked_decoder request_encoder client_hello dns_cache content_decoder h2_session h2_connection)

seconds=60
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="${2:-}"; shift 2 ;;
    --seconds=*) seconds="${1#--seconds=}"; shift ;;
    --minutes|--minutes=*)
      if [ "$1" = --minutes ]; then m="${2:-}"; shift 2; else m="${1#--minutes=}"; shift; fi
      [[ "$m" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: --minutes needs a positive integer" >&2; exit 2; }
      seconds=$((m * 60)) ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz: --seconds needs a positive integer" >&2
  exit 2
fi
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  if [ ! -f "$fuzz_dir/fuzz_$t.cc" ]; then
    echo "fuzz: unknown target $t (known: ${all_targets[*]})" >&2
    exit 2
  fi
done

build() {
  cmake -S "$root" -B "$build_dir" -DUVF_FUZZERS=ON -DCMAKE_CXX_COMPILER=clang++ >/dev/null &&
    cmake --build "$build_dir" -j"$(nproc 2>/dev/null || echo 2)" --target "${targets[@]/#/fuzz_}"
}
if ! build; then
  echo "fuzz: build failed (clang++ with libFuzzer needed: apt-get install clang libclang-rt-14-dev)"
  echo "fuzz: 0 passed, ${#targets[@]} failed"
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/uvf-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
artifacts="$build_dir/artifacts"
mkdir -p "$artifacts"

passed=0
failed=0
for t in "${targets[@]}"; do
  corpus="$work/$t-corpus"
  mkdir -p "$corpus"
  cp "$fuzz_dir/corpus/$t/"* "$corpus/" 2>/dev/null || true
  dict=()
  [ -f "$fuzz_dir/dict/$t.dict" ] && dict=("-dict=$fuzz_dir/dict/$t.dict")
  log="$work/$t.log"
  # -timeout: one input running 10 s is a hang; leaks are reported (libFuzzer's default). A 64 MB
  # quarantine keeps RSS near 300 MB (the chunked target allocates every piece separately, and
  # with the default 256 MB the small blocks' overhead takes it to 1 GB).
  ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$build_dir/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 \
      -print_final_stats=1 -artifact_prefix="$work/$t-" "${dict[@]}" "$corpus" >"$log" 2>&1
  rc=$?
  execs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
  crash=$(find "$work" -maxdepth 1 -name "$t-*" -type f | head -n 1)
  if [ "$rc" -ne 0 ] || [ -n "$crash" ]; then
    failed=$((failed + 1))
    echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} execs"
    # The report: from the sanitizer / invariant message to the end, minus libFuzzer's chatter.
    grep -vE '^(#[0-9]+|INFO:|MS:|stat::)' "$log" | tail -n 60
    for f in "$work/$t-"*; do
      [ -f "$f" ] || continue
      cp "$f" "$artifacts/"
      echo "fuzz $t: input kept as build-native/fuzz/artifacts/$(basename "$f")" \
        "(replay: build-native/fuzz/fuzz_$t build-native/fuzz/artifacts/$(basename "$f"))"
    done
  else
    passed=$((passed + 1))
  fi
  echo "fuzz $t: ${execs:-0} execs, cov ${cov:-0}, ft ${ft:-0}"
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
