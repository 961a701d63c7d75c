// Runs every registered TEST and prints "N passed, N failed".
#include "check.h"

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
