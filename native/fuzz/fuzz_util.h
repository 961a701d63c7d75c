// Shared helpers for the libFuzzer targets: an invariant check that aborts (so libFuzzer records
// the input), and the fuzzer-controlled split plan used to feed bytes in pieces.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

// Not assert(): it must stay on in every build, and say which invariant broke.
#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace uvf_fuzz {

// Piece lengths for feeding one input in several calls. Seeded by two input bytes, so the fuzzer
// picks the split pattern independently of the payload. Lengths are log-uniform in [1, 128]: many
// one-byte pieces (every state boundary) and some long ones (the bulk paths).
class Splitter {
 public:
  explicit Splitter(uint16_t seed) : s_((uint32_t{seed} << 8) ^ 0x9e3779b9u) {}
  size_t next_piece() {
    uint32_t shift = next() % 8;
    return 1 + next() % (1u << shift);
  }

 private:
  uint32_t next() {  // xorshift32; the state is never 0 (the seed's high byte is 0x9e)
    s_ ^= s_ << 13;
    s_ ^= s_ >> 17;
    s_ ^= s_ << 5;
    return s_;
  }
  uint32_t s_;
};

}  // namespace uvf_fuzz
