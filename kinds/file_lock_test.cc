#include "kinds/file_lock.h"

#include <gtest/gtest.h>

namespace cf::kinds {
namespace {

TEST(ParseLockLine, FlockPosixOfd) {
  auto f = ParseLockLine("1: FLOCK  ADVISORY  WRITE 66 fe:00:5337959 0 EOF");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->type(), img::FileLock::FLOCK);
  EXPECT_TRUE(f->write());
  EXPECT_EQ(f->pid(), 66);
  EXPECT_EQ(f->end(), -1);

  auto p = ParseLockLine("2: POSIX  ADVISORY  READ 4242 fe:00:12 100 199");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->type(), img::FileLock::POSIX);
  EXPECT_FALSE(p->write());
  EXPECT_EQ(p->pid(), 4242);
  EXPECT_EQ(p->start(), 100u);
  EXPECT_EQ(p->end(), 199);

  auto o = ParseLockLine("3: OFDLCK ADVISORY  WRITE -1 fe:00:5337969 50 EOF");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->type(), img::FileLock::OFD);
  EXPECT_EQ(o->pid(), -1);
  EXPECT_EQ(o->start(), 50u);
}

TEST(ParseLockLine, RefusesWhatRestoreCannotTakeBack) {
  EXPECT_FALSE(ParseLockLine("1: LEASE  ACTIVE    READ 66 fe:00:1 0 EOF").ok());
  EXPECT_FALSE(ParseLockLine("1: POSIX  MANDATORY WRITE 66 fe:00:1 0 EOF").ok());
  EXPECT_FALSE(ParseLockLine("1: POSIX  ADVISORY  WRITE 66 fe:00:1 10 5").ok());
  EXPECT_FALSE(ParseLockLine("1: POSIX  ADVISORY  WRITE 66").ok());
  EXPECT_FALSE(ParseLockLine("").ok());
}

}  // namespace
}  // namespace cf::kinds
