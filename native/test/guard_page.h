// Test helper: memory whose last accessible byte is followed by a PROT_NONE page. Input placed
// with place() ends exactly at the guard, so reading even one byte past it faults (ASan does not
// catch reads past the end of a std::string's capacity; this does).
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace uvf_test {

class GuardedBuffer {
 public:
  explicit GuardedBuffer(size_t capacity) {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    data_len_ = (capacity + page - 1) / page * page;
    map_len_ = data_len_ + page;
    void* m = mmap(nullptr, map_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) std::abort();
    base_ = static_cast<char*>(m);
    if (mprotect(base_ + data_len_, page, PROT_NONE) != 0) std::abort();
  }
  ~GuardedBuffer() { munmap(base_, map_len_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  const char* place(const char* s, size_t n) {
    if (n > data_len_) std::abort();
    char* dst = base_ + data_len_ - n;
    if (n) std::memcpy(dst, s, n);
    return dst;
  }
  const char* place(const std::string& s) { return place(s.data(), s.size()); }

 private:
  char* base_ = nullptr;
  size_t data_len_ = 0;
  size_t map_len_ = 0;
};

}  // namespace uvf_test
