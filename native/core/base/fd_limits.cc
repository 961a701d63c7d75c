#include "base/fd_limits.h"

#include <dirent.h>
#include <sys/resource.h>

#include <cerrno>

namespace uvf {

int get_fd_limit(FdLimit* out) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return errno;
  out->soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(rl.rlim_cur);
  out->hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(rl.rlim_max);
  return 0;
}

int set_fd_soft_limit(uint64_t soft) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return errno;
  rlim_t want = static_cast<rlim_t>(soft);
  if (want == 0) return EINVAL;
  rl.rlim_cur = want;
  if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) rl.rlim_max = want;  // needs privilege
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return errno;
  return 0;
}

int64_t count_open_fds() {
#ifdef __linux__
  const char* dir = "/proc/self/fd";
#else
  const char* dir = "/dev/fd";
#endif
  DIR* d = opendir(dir);
  if (d == nullptr) return -1;
  int64_t n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // the descriptor opendir itself holds
}

}  // namespace uvf
