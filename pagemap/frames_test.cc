#include "pagemap/frames.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace cf::pagemap {
namespace {

constexpr uint64_t P = kPageSize;

// Four pages written before a fork; the child rewrites page 1 and stops
// (SIGSTOP to itself); the parent rewrites page 2 afterwards. Pages 0 and 3
// stay shared.
TEST(FrameMapTest, FindsPagesSharedAfterFork) {
  auto* mem = static_cast<uint8_t*>(mmap(nullptr, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(mem, MAP_FAILED);
  memset(mem, 0x5a, 4 * P);
  const uint64_t base = reinterpret_cast<uint64_t>(mem);
  const std::vector<PageRange> all = {{base, base + 4 * P}};

  auto self = FrameMap::Read(getpid(), all);
  ASSERT_TRUE(self.ok()) << self.status().ToString();
  if (self->FrameAt(base) == 0) GTEST_SKIP() << "page frames are hidden here (no CAP_SYS_ADMIN)";

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    mem[P] = 1;
    raise(SIGSTOP);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, WUNTRACED), child);
  ASSERT_TRUE(WIFSTOPPED(status));
  mem[2 * P] = 2;

  auto mine = FrameMap::Read(getpid(), all);
  auto theirs = FrameMap::Read(child, all);
  ASSERT_TRUE(mine.ok() && theirs.ok());
  EXPECT_EQ(mine->pages(), 4u);
  const RangeSet shared = theirs->SharedWith(*mine);
  EXPECT_TRUE(shared.Contains(base));
  EXPECT_FALSE(shared.Contains(base + P));
  EXPECT_FALSE(shared.Contains(base + 2 * P));
  EXPECT_TRUE(shared.Contains(base + 3 * P));
  EXPECT_EQ(shared.pages(), 2u);

  // A page read outside the ranges has no frame; nor has one not present.
  EXPECT_EQ(mine->FrameAt(base + 4 * P), 0u);
  madvise(mem + 3 * P, P, MADV_DONTNEED);
  auto after = FrameMap::Read(getpid(), all);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->FrameAt(base + 3 * P), 0u);
  EXPECT_FALSE(theirs->SharedWith(*after).Contains(base + 3 * P));

  kill(child, SIGKILL);
  waitpid(child, &status, 0);
  munmap(mem, 4 * P);
}

TEST(FrameMapTest, RefusesRangesOutOfOrder) {
  const std::vector<PageRange> bad = {{0x20000, 0x21000}, {0x10000, 0x11000}};
  EXPECT_FALSE(FrameMap::Read(getpid(), bad).ok());
}

}  // namespace
}  // namespace cf::pagemap
