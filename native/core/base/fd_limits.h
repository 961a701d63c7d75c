// Process file-descriptor limits (RLIMIT_NOFILE) and the count of open descriptors.
// Plain POSIX: usable from the core's tests without Node.
#pragma once
#include <cstdint>

namespace uvf {

struct FdLimit {
  uint64_t soft = 0;
  uint64_t hard = 0;  // UINT64_MAX for "unlimited"
};

// Reads RLIMIT_NOFILE. Returns 0 or an errno value.
int get_fd_limit(FdLimit* out);
// Sets the soft limit to `soft` (raising the hard limit too when `soft` is above it, which needs
// privilege). Returns 0 or an errno value (EPERM when not permitted, EINVAL when out of range).
int set_fd_soft_limit(uint64_t soft);
// Number of open descriptors of this process (/proc/self/fd on Linux, /dev/fd elsewhere), or -1.
int64_t count_open_fds();

}  // namespace uvf
