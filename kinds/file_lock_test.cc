#include "kinds/file_lock.h"
#include "kinds/lease.h"

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

// The lines fdinfo shows for leases (Linux 6.18): a breaking lease with
// the type it is being broken to.
TEST(ParseLeaseLine, ActiveAndBreaking) {
  EXPECT_TRUE(IsLeaseLine("1: LEASE  ACTIVE    WRITE 3748 fe:00:11026554 0 EOF"));
  EXPECT_FALSE(IsLeaseLine("1: FLOCK  ADVISORY  WRITE 66 fe:00:5337959 0 EOF"));
  auto w = ParseLeaseLine("1: LEASE  ACTIVE    WRITE 3748 fe:00:11026554 0 EOF");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->type(), img::Lease::WRITE);
  EXPECT_FALSE(w->breaking());
  auto u = ParseLeaseLine("1: LEASE  BREAKING  UNLCK 3748 fe:00:11026551 0 EOF");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->type(), img::Lease::UNLOCK);
  EXPECT_TRUE(u->breaking());
  auto r = ParseLeaseLine("1: LEASE  BREAKING  READ 3748 fe:00:11026552 0 EOF");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->type(), img::Lease::READ);
  EXPECT_TRUE(r->breaking());
}

TEST(ParseLeaseLine, Refuses) {
  EXPECT_FALSE(ParseLeaseLine("1: DELEG  ACTIVE    READ 66 fe:00:1 0 EOF").ok());
  EXPECT_FALSE(ParseLeaseLine("1: LEASE  ACTIVE    UNLCK 66 fe:00:1 0 EOF").ok());
  EXPECT_FALSE(ParseLeaseLine("1: LEASE  BREAKER   READ 66 fe:00:1 0 EOF").ok());
  EXPECT_FALSE(ParseLeaseLine("1: LEASE  ACTIVE").ok());
}

}  // namespace
}  // namespace cf::kinds
