// The order criu-fast lets processes sharing a descriptor table go on in
// (restore/fdtable.h), and which deleted files are made once for several
// processes (restore/ghosts.h).
#include "restore/fdtable.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "restore/ghosts.h"

namespace cf::restore {
namespace {

// 10 owns the table; 11 and 12 (a child of 11) share it; 13, a child of
// 11, has a copy of its own.
ImageSet Tree() {
  ImageSet s;
  auto add = [&](pid_t pid, pid_t ppid, bool shared) {
    ProcessImages p;
    p.core.set_pid(pid);
    p.core.set_ppid(ppid);
    p.core.set_fdt_shared(shared);
    s.processes.push_back(std::move(p));
  };
  add(10, 1, false);
  add(11, 10, true);
  add(12, 11, true);
  add(13, 11, false);
  LinkFamily(&s);
  return s;
}

TEST(SharedTableOrder, OwnerWaitsForMembersAndMembersForItsRestorer) {
  const ImageSet s = Tree();
  SharedTableOrder order(s);
  EXPECT_TRUE(HasTableSharers(s, 0));
  EXPECT_TRUE(HasTableSharers(s, 1));
  EXPECT_FALSE(HasTableSharers(s, 3));
  EXPECT_EQ(order.Filled(13), std::vector<pid_t>{13});  // not in the group
  EXPECT_TRUE(order.Filled(10).empty());                // waits for 11 and 12
  EXPECT_TRUE(order.Filled(12).empty());                // held
  EXPECT_EQ(order.Filled(11), std::vector<pid_t>{10});  // the last member releases the owner
  EXPECT_TRUE(order.RestorerDone(13).empty());
  std::vector<pid_t> go = order.RestorerDone(10);
  std::sort(go.begin(), go.end());
  EXPECT_EQ(go, (std::vector<pid_t>{11, 12}));
}

TEST(SharedTableOrder, OwnerFilledLastGoesOnAtOnce) {
  SharedTableOrder order(Tree());
  EXPECT_TRUE(order.Filled(11).empty());
  EXPECT_TRUE(order.Filled(12).empty());
  EXPECT_EQ(order.Filled(10), std::vector<pid_t>{10});
}

TEST(SharedGhosts, OnlyFilesSeveralProcessesHold) {
  ImageSet s;
  auto ghost = [](img::Fd* f, const char* name) {
    f->mutable_reg()->set_deleted(true);
    f->mutable_reg()->set_ghost_file(name);
  };
  for (pid_t pid : {10, 11}) {
    ProcessImages p;
    p.core.set_pid(pid);
    ghost(p.core.add_fds(), "ghost-1-5.img");
    ghost(p.core.add_fds(), pid == 10 ? "ghost-1-6.img" : "ghost-1-7.img");
    s.processes.push_back(std::move(p));
  }
  ghost(s.processes[1].core.add_vmas()->mutable_ghost(), "ghost-1-6.img");  // mapped by 11
  const std::map<std::string, uint32_t> ids = SharedGhosts(s);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_TRUE(ids.count("ghost-1-5.img"));
  EXPECT_TRUE(ids.count("ghost-1-6.img"));
  for (const auto& [name, id] : ids) EXPECT_GE(id, kSharedGhostIdBase);
  InheritedFiles inherited{{ids.at("ghost-1-5.img"), 40}};
  std::map<std::string, std::string> recreated;
  UseSharedGhosts(ids, inherited, &recreated);
  EXPECT_EQ(recreated, (std::map<std::string, std::string>{{"ghost-1-5.img", "/proc/self/fd/40"}}));
}

}  // namespace
}  // namespace cf::restore
