// Runs every registered TEST and prints "native: N passed, N failed" (CI counts that line).
//   native_tests [name-substring]
#include "check.h"

// Sanitizer defaults when the binary is built with them (ASan, TSan dirs); ASAN_OPTIONS,
// UBSAN_OPTIONS, TSAN_OPTIONS in the environment still take precedence. Unused in a plain build.
extern "C" const char* __asan_default_options() { return "detect_leaks=1:abort_on_error=0"; }
extern "C" const char* __ubsan_default_options() { return "print_stacktrace=1"; }
extern "C" const char* __tsan_default_options() { return "halt_on_error=1:second_deadlock_stack=1"; }

int main(int argc, char** argv) {
  const char* only = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  for (auto& c : uvf_test::registry()) {
    if (only && !std::strstr(c.name, only)) continue;
    uvf_test::failures_in_case() = 0;
    c.fn();
    if (uvf_test::failures_in_case() == 0) {
      ++passed;
    } else {
      ++failed;
      std::fprintf(stderr, "FAIL %s\n", c.name);
    }
  }
  std::printf("native: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
