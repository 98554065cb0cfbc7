#include "kinds/seccomp.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace cf::kinds {
namespace {

// A program of |n| instructions, the last one allowing everything.
std::string Prog(int n, uint32_t tag) {
  std::vector<sock_filter> insns;
  for (int i = 0; i + 1 < n; ++i) insns.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, tag));
  insns.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  return std::string(reinterpret_cast<const char*>(insns.data()), insns.size() * sizeof(sock_filter));
}

// Three threads: two share the chain A <- B, the third has A <- C. The
// leader installs A for all; each thread the rest of its own.
TEST(Seccomp, ToArgsPlacesFiltersAndTheSharedChain) {
  img::Process p;
  for (auto [prog, parent] : {std::pair{Prog(1, 0), 0u}, {Prog(3, 4), 1u}, {Prog(2, 8), 1u}}) {
    img::SeccompFilter* f = p.add_seccomp_filters();
    f->set_prog(prog);
    f->set_parent(parent);
  }
  p.mutable_seccomp_filters(1)->set_flags(SECCOMP_FILTER_FLAG_LOG);
  for (uint32_t top : {2u, 2u, 3u}) {
    img::Thread* t = p.add_threads();
    t->set_seccomp_mode(SECCOMP_MODE_FILTER);
    t->set_seccomp_filter(top);
  }
  const uint64_t bytes = SeccompArgsBytes(p);
  EXPECT_EQ(bytes, 3 * sizeof(cf_rst_seccomp_filter) + 6 * sizeof(sock_filter));

  std::vector<uint64_t> block((sizeof(cf_rst_args) + bytes) / 8 + 1);
  auto* a = reinterpret_cast<cf_rst_args*>(block.data());
  a->seccomp_off = sizeof(cf_rst_args);
  ProcessArgs out{a, nullptr, nullptr, nullptr, nullptr, nullptr, 0};
  SeccompToArgs(p, &out);
  EXPECT_EQ(a->nr_seccomp, 3u);
  EXPECT_EQ(a->seccomp_common, 1u);
  const char* base = reinterpret_cast<const char*>(a);
  const auto* rec = reinterpret_cast<const cf_rst_seccomp_filter*>(base + a->seccomp_off);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(rec[i].len * sizeof(sock_filter), p.seccomp_filters(i).prog().size());
    EXPECT_EQ(rec[i].parent, p.seccomp_filters(i).parent());
    EXPECT_EQ(std::string(base + rec[i].prog_off, p.seccomp_filters(i).prog().size()), p.seccomp_filters(i).prog());
    EXPECT_LE(rec[i].prog_off + rec[i].len * sizeof(sock_filter), sizeof(cf_rst_args) + bytes);
  }
  EXPECT_EQ(rec[1].flags, static_cast<uint32_t>(SECCOMP_FILTER_FLAG_LOG));

  // A thread without filters: nothing is common.
  p.add_threads();
  SeccompToArgs(p, &out);
  EXPECT_EQ(a->seccomp_common, 0u);
  EXPECT_TRUE(UsesSeccomp(p));
}

// A child with two filters, seized: both are read, oldest first, once.
TEST(Seccomp, CollectsTheChainOfAThread) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    static sock_filter first[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    static sock_filter second[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    sock_fprog p1 = {1, first}, p2 = {2, second};
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(1);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p1) != 0) _exit(1);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG, &p2) != 0) _exit(1);
    const char c = 1;
    if (write(ready[1], &c, 1) != 1) _exit(1);
    for (;;) pause();
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  ASSERT_EQ(ptrace(PTRACE_SEIZE, child, nullptr, reinterpret_cast<void*>(PTRACE_O_SUSPEND_SECCOMP)), 0);
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, child, nullptr, nullptr), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, __WALL), child);

  img::Process p;
  for (int i = 0; i < 2; ++i) {  // the same thread twice: its chain is stored once
    img::Thread* t = p.add_threads();
    t->set_tid(child);
    t->set_seccomp_mode(SECCOMP_MODE_FILTER);
  }
  const Status s = CollectSeccompFilters(child, &p);
  kill(child, SIGKILL);
  waitpid(child, &status, __WALL);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(p.seccomp_filters_size(), 2);
  EXPECT_EQ(p.seccomp_filters(0).prog().size(), sizeof(sock_filter));
  EXPECT_EQ(p.seccomp_filters(0).parent(), 0u);
  EXPECT_EQ(p.seccomp_filters(0).flags(), 0u);
  EXPECT_EQ(p.seccomp_filters(1).prog().size(), 2 * sizeof(sock_filter));
  EXPECT_EQ(p.seccomp_filters(1).parent(), 1u);
  EXPECT_EQ(p.seccomp_filters(1).flags(), static_cast<uint32_t>(SECCOMP_FILTER_FLAG_LOG));
  EXPECT_EQ(p.threads(0).seccomp_filter(), 2u);
  EXPECT_EQ(p.threads(1).seccomp_filter(), 2u);
}

}  // namespace
}  // namespace cf::kinds
