// A tiny self-registering test harness for the native core (no dependencies, no Node).
// Usage:  TEST(name) { CHECK(x == 1); CHECK_EQ(a, b); }   and link with check_main.cc.
#pragma once
#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace uvf_test {

struct Case {
  const char* name;
  std::function<void()> fn;
};
inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}
inline int& failures_in_case() {
  static int n = 0;
  return n;
}
struct Registrar {
  Registrar(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

template <typename A, typename B>
void check_eq(const A& a, const B& b, const char* ea, const char* eb, const char* file, int line) {
  if (!(a == b)) {
    std::ostringstream os;
    os << a << " != " << b;
    std::fprintf(stderr, "  %s:%d: CHECK_EQ(%s, %s) failed: %s\n", file, line, ea, eb, os.str().c_str());
    ++failures_in_case();
  }
}

}  // namespace uvf_test

#define UVF_CAT2(a, b) a##b
#define UVF_CAT(a, b) UVF_CAT2(a, b)
#define TEST(name)                                                                           \
  static void UVF_CAT(test_fn_, name)();                                                     \
  static ::uvf_test::Registrar UVF_CAT(test_reg_, name)(#name, UVF_CAT(test_fn_, name));    \
  static void UVF_CAT(test_fn_, name)()

#define CHECK(cond)                                                                          \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);        \
      ++::uvf_test::failures_in_case();                                                      \
    }                                                                                        \
  } while (0)

#define CHECK_EQ(a, b) ::uvf_test::check_eq((a), (b), #a, #b, __FILE__, __LINE__)
