#include "kinds/netns.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

namespace cf::kinds {
namespace {

ino_t InoOf(int fd) {
  struct stat sb {};
  return fstat(fd, &sb) == 0 ? sb.st_ino : 0;
}

ino_t OurNetns() {
  struct stat sb {};
  return stat("/proc/self/ns/net", &sb) == 0 ? sb.st_ino : 0;
}

TEST(Netns, JoinSpecs) {
  auto by_pid = OpenJoinNetns("net:" + std::to_string(getpid()));
  ASSERT_TRUE(by_pid.ok()) << by_pid.status().ToString();
  EXPECT_EQ(InoOf(by_pid->get()), OurNetns());
  auto by_path = OpenJoinNetns("net:/proc/self/ns/net");
  ASSERT_TRUE(by_path.ok()) << by_path.status().ToString();
  EXPECT_EQ(InoOf(by_path->get()), OurNetns());
  EXPECT_FALSE(OpenJoinNetns("mnt:/proc/self/ns/mnt").ok());
  EXPECT_FALSE(OpenJoinNetns("net").ok());
  // A namespace file of another type.
  auto uts = OpenJoinNetns("net:/proc/self/ns/uts");
  ASSERT_FALSE(uts.ok());
  EXPECT_NE(uts.status().message().find("not a network namespace"), std::string::npos);
}

TEST(Netns, TreeInOurNamespaceIsNone) {
  auto ns = TreeNetns::Find({getpid()});
  ASSERT_TRUE(ns.ok()) << ns.status().ToString();
  EXPECT_EQ(ns->get(), nullptr);
}

// A socket made in a new namespace is in it, not in ours; the tree check
// follows SetTreeNetns.
TEST(Netns, SocketInAnotherNamespace) {
  img::NetNs empty;
  auto made = MakeNetns(empty, "");
  if (!made.ok()) GTEST_SKIP() << "cannot make a network namespace: " << made.status().ToString();
  EXPECT_NE(InoOf(made->get()), OurNetns());
  auto s = SocketIn(made->get(), AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(CheckTreeNetns(s->get()).ok());
  SetTreeNetns(made->get());
  EXPECT_TRUE(CheckTreeNetns(s->get()).ok());
  SetTreeNetns(-1);
  auto here = SocketIn(-1, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_TRUE(here.ok());
  EXPECT_TRUE(CheckTreeNetns(here->get()).ok());
}

}  // namespace
}  // namespace cf::kinds
