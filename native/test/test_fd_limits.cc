// fd_limits: reading, lowering and restoring RLIMIT_NOFILE; counting open descriptors.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/fd_limits.h"
#include "check.h"

TEST(fd_limits_read_and_count) {
  uvf::FdLimit l;
  CHECK_EQ(uvf::get_fd_limit(&l), 0);
  CHECK(l.soft > 0);
  CHECK(l.hard >= l.soft);
  int64_t before = uvf::count_open_fds();
  CHECK(before >= 3);
  int fd = open("/dev/null", O_RDONLY);
  CHECK_EQ(uvf::count_open_fds(), before + 1);
  close(fd);
  CHECK_EQ(uvf::count_open_fds(), before);
}

TEST(fd_limits_lower_then_restore_soft) {
  uvf::FdLimit l;
  CHECK_EQ(uvf::get_fd_limit(&l), 0);
  uint64_t lower = l.soft > 128 ? 128 : l.soft;
  CHECK_EQ(uvf::set_fd_soft_limit(lower), 0);
  uvf::FdLimit now;
  uvf::get_fd_limit(&now);
  CHECK_EQ(now.soft, lower);
  CHECK_EQ(now.hard, l.hard);
  CHECK_EQ(uvf::set_fd_soft_limit(l.soft), 0);
  uvf::get_fd_limit(&now);
  CHECK_EQ(now.soft, l.soft);
  CHECK_EQ(uvf::set_fd_soft_limit(0), EINVAL);
}
