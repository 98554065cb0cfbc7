#include "kinds/ghost_node.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

namespace cf::kinds {
namespace {

class GhostNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cf-ghost-node-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { rmdir(dir_.c_str()); }
  std::string dir_;
};

img::GhostNode Node(mode_t mode, const std::string& target = "") {
  img::GhostNode g;
  g.set_mode(mode);
  g.set_target(target);
  g.set_uid(getuid());
  g.set_gid(getgid());
  return g;
}

TEST(StripDeleted, OnlyTheSuffix) {
  EXPECT_EQ(StripDeleted("/a/b (deleted)"), "/a/b");
  EXPECT_EQ(StripDeleted("/a/b"), "/a/b");
  EXPECT_EQ(StripDeleted(" (deleted)"), " (deleted)");
}

// A directory below a removed one: both made again, removed deepest first.
TEST_F(GhostNodeTest, DirectoryWithMissingParent) {
  std::map<std::string, std::string> made;
  auto at = MakeGhostNode("d", dir_ + "/a/b", Node(S_IFDIR | 0750), &made);
  ASSERT_TRUE(at.ok()) << at.status().ToString();
  EXPECT_EQ(*at, dir_ + "/a/b");
  struct stat sb;
  ASSERT_EQ(stat(at->c_str(), &sb), 0);
  EXPECT_TRUE(S_ISDIR(sb.st_mode));
  EXPECT_EQ(sb.st_mode & 07777, 0750u);
  EXPECT_EQ(made.size(), 2u);
  // The same key: the same node.
  auto again = MakeGhostNode("d", dir_ + "/a/b", Node(S_IFDIR | 0750), &made);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *at);
  RemoveRecreated(made);
  EXPECT_NE(access((dir_ + "/a").c_str(), F_OK), 0);
}

// The old name is taken: a name of its own beside it; the taken one stays.
TEST_F(GhostNodeTest, TakenNameFifoAndSymlink) {
  const std::string taken = dir_ + "/f";
  ASSERT_EQ(mkdir(taken.c_str(), 0700), 0);
  std::map<std::string, std::string> made;
  auto fifo = MakeGhostNode("fifo", taken, Node(S_IFIFO | 0640), &made);
  ASSERT_TRUE(fifo.ok()) << fifo.status().ToString();
  EXPECT_NE(*fifo, taken);
  struct stat sb;
  ASSERT_EQ(lstat(fifo->c_str(), &sb), 0);
  EXPECT_TRUE(S_ISFIFO(sb.st_mode));
  EXPECT_EQ(sb.st_mode & 07777, 0640u);
  auto link = MakeGhostNode("link", dir_ + "/l", Node(S_IFLNK | 0777, "some/target"), &made);
  ASSERT_TRUE(link.ok()) << link.status().ToString();
  char buf[64] = {};
  ASSERT_EQ(readlink(link->c_str(), buf, sizeof(buf) - 1), 11);
  EXPECT_STREQ(buf, "some/target");
  RemoveRecreated(made);
  EXPECT_NE(access(fifo->c_str(), F_OK), 0);
  EXPECT_NE(lstat(link->c_str(), &sb), 0);
  EXPECT_EQ(access(taken.c_str(), F_OK), 0);
  rmdir(taken.c_str());
}

}  // namespace
}  // namespace cf::kinds
