// FdDir on descriptors of this process: the listing, the link and stat, and
// fdinfo, also when it is longer than one read (an epoll with many targets).
#include "proc/fd_dir.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <gtest/gtest.h>

namespace cf::proc {
namespace {

TEST(FdDirTest, ListLookAndInfo) {
  const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(lseek(fd, 123, SEEK_SET), 123);
  auto dir = FdDir::Open(getpid());
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  auto fds = dir->List();
  ASSERT_TRUE(fds.ok());
  EXPECT_TRUE(std::is_sorted(fds->begin(), fds->end()));
  EXPECT_NE(std::find(fds->begin(), fds->end(), fd), fds->end());
  std::string link;
  struct stat sb {}, want {};
  auto open_now = dir->Look(fd, &link, &sb);
  ASSERT_TRUE(open_now.ok());
  EXPECT_TRUE(*open_now);
  ASSERT_EQ(fstat(fd, &want), 0);
  EXPECT_EQ(sb.st_ino, want.st_ino);
  EXPECT_EQ(sb.st_dev, want.st_dev);
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe));
  ASSERT_GT(n, 0);
  EXPECT_EQ(link, std::string(exe, static_cast<size_t>(n)));
  auto info = dir->Info(fd);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->pos, 123u);
  EXPECT_TRUE(info->flags & O_CLOEXEC);
  close(fd);
  auto closed = dir->Look(fd, &link, &sb);
  ASSERT_TRUE(closed.ok());
  EXPECT_FALSE(*closed);  // closed meanwhile
  EXPECT_FALSE(dir->Info(fd).ok());
}

TEST(FdDirTest, InfoLongerThanOneRead) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  std::vector<int> targets;
  for (int i = 0; i < 400; ++i) {  // one "tfd:" line (~100 bytes) each: ~40 KB
    const int e = eventfd(0, EFD_CLOEXEC);
    ASSERT_GE(e, 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(i);
    ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev), 0);
    targets.push_back(e);
  }
  auto dir = FdDir::Open(getpid());
  ASSERT_TRUE(dir.ok());
  auto info = dir->Info(ep);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  size_t tfds = 0;
  for (const auto& [key, value] : info->extra) tfds += key == "tfd";
  EXPECT_EQ(tfds, targets.size());
  for (int e : targets) close(e);
  close(ep);
}

}  // namespace
}  // namespace cf::proc
