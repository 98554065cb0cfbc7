// OpenFileIndex on descriptors of this process: dups share a description,
// separate opens of one file do not, whatever their offsets.
#include "proc/open_file_index.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace cf::proc {
namespace {

struct Opened {
  int fd;
  DescriptionKey key;
};

Opened Open(const char* path, off_t pos) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(lseek(fd, pos, SEEK_SET), pos);
  auto info = ReadFdInfo(getpid(), fd);
  EXPECT_TRUE(info.ok());
  struct stat sb;
  EXPECT_EQ(fstat(fd, &sb), 0);
  return {fd, KeyOf(sb, *info)};
}

TEST(OpenFileIndexTest, DupsShareSeparateOpensDoNot) {
  OpenFileIndex index;
  Opened a = Open("/proc/self/exe", 0);
  Opened b = Open("/proc/self/exe", 0);  // same file and offset: told apart by kcmp
  Opened c = Open("/proc/self/exe", 7);  // another offset: another key
  const int a2 = dup(a.fd);              // no O_CLOEXEC: the key ignores it
  ASSERT_GE(a2, 0);
  auto info = ReadFdInfo(getpid(), a2);
  ASSERT_TRUE(info.ok());
  struct stat sb;
  ASSERT_EQ(fstat(a2, &sb), 0);
  EXPECT_FALSE(*index.FindOrAdd(getpid(), a.fd, a.key, 1));
  EXPECT_FALSE(*index.FindOrAdd(getpid(), b.fd, b.key, 2));
  EXPECT_FALSE(*index.FindOrAdd(getpid(), c.fd, c.key, 3));
  EXPECT_EQ(*index.FindOrAdd(getpid(), a2, KeyOf(sb, *info), 4), std::optional<uint32_t>(1));
  EXPECT_NE(a.key, c.key);
  for (int fd : {a.fd, b.fd, c.fd, a2}) close(fd);
}

}  // namespace
}  // namespace cf::proc
