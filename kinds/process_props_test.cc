#include "kinds/process_props.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/io.h"

namespace cf::kinds {
namespace {

const ProcessProperty* Find(const char* name) {
  for (const ProcessProperty& p : ProcessProperties()) {
    if (std::string(p.name) == name) return &p;
  }
  return nullptr;
}

// Applies every to_args entry of the table to |p|, as restore/task.cc does.
void ToArgs(const img::Process& p, ProcessArgs* out) {
  for (const ProcessProperty& prop : ProcessProperties()) {
    if (prop.to_args) prop.to_args(p, out);
  }
}

// Decodes one remote item from |bytes| and |results|.
void Decode(const char* name, size_t index, int64_t key, const void* bytes, std::vector<long> results,
            img::Process* p) {
  const ProcessProperty* prop = Find(name);
  ASSERT_NE(prop, nullptr) << name;
  ASSERT_NE(prop->remote, nullptr) << name;
  uint8_t buf[64] = {};
  if (bytes) memcpy(buf, bytes, prop->remote->item_size);
  results.resize(2);
  prop->remote->decode(index, key, buf, results.data(), p);
}

TEST(ProcessProps, EachHasOneReadAndOneApply) {
  std::set<std::string> names;
  for (const ProcessProperty& p : ProcessProperties()) {
    EXPECT_TRUE(names.insert(p.name).second) << "twice: " << p.name;
    EXPECT_NE(p.read == nullptr, p.remote == nullptr) << p.name << ": needs exactly one of read and remote";
    EXPECT_NE(p.in_task == nullptr, p.to_args == nullptr) << p.name << ": needs exactly one of in_task and to_args";
    if (p.remote) {
      EXPECT_NE(p.remote->items, nullptr) << p.name;
      EXPECT_NE(p.remote->decode, nullptr) << p.name;
      EXPECT_GE(p.remote->nr_calls, 1u) << p.name;
      EXPECT_LE(p.remote->nr_calls, p.remote->calls.size()) << p.name;
      for (uint32_t c = 0; c < p.remote->nr_calls; ++c) {
        EXPECT_NE(p.remote->calls[c].args, nullptr) << p.name;
        EXPECT_NE(p.remote->calls[c].what, nullptr) << p.name;
      }
    }
  }
  // Every process-wide field of the image has its property.
  for (const char* n : {"ids", "seccomp", "comm", "umask", "personality", "rlimits", "cwd_root", "creds",
                        "shared_pending", "sigactions", "itimers", "brk", "posix_timers", "oom_score_adj",
                        "thp_disabled", "child_subreaper", "membarrier", "securebits"}) {
    EXPECT_NE(Find(n), nullptr) << n;
  }
  // The session comes before anything else the new process sets.
  const ProcessProperty* ids = Find("ids");
  ASSERT_NE(ids, nullptr);
  EXPECT_EQ(ids->step, TaskStep::kBeforeChildren);
  EXPECT_EQ(&ProcessProperties()[0], ids);
}

TEST(ProcessProps, ReadsThisProcess) {
  ProcessSource src(getpid());
  img::Process p;
  p.set_pid(getpid());
  for (const ProcessProperty& prop : ProcessProperties()) {
    // The signal queue is read by ptrace, from a tracer only.
    if (prop.read && std::string(prop.name) != "shared_pending") {
      ASSERT_TRUE(prop.read(src, &p).ok()) << prop.name;
    }
  }
  EXPECT_EQ(p.ppid(), getppid());
  EXPECT_EQ(p.sid(), getsid(0));
  EXPECT_EQ(p.pgid(), getpgid(0));
  EXPECT_FALSE(p.comm().empty());
  EXPECT_EQ(p.creds().euid(), geteuid());
  EXPECT_EQ(p.rlimits_size(), RLIM_NLIMITS);
  for (const img::Rlimit& l : p.rlimits()) {  // /proc/PID/limits says what getrlimit() says
    struct rlimit rl;
    ASSERT_EQ(getrlimit(static_cast<__rlimit_resource>(l.resource()), &rl), 0);
    EXPECT_EQ(l.cur(), rl.rlim_cur) << l.resource();
    EXPECT_EQ(l.max(), rl.rlim_max) << l.resource();
  }
  EXPECT_EQ(p.thp_disabled(), prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1);
  auto oom = ReadFile("/proc/self/oom_score_adj");
  ASSERT_TRUE(oom.ok());
  EXPECT_EQ(p.oom_score_adj(), atoi(oom->c_str()));
  EXPECT_EQ(p.root(), "/");
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
  EXPECT_EQ(p.cwd(), cwd);
}

// The remote reads of one result: the subreaper flag (written at its
// output), membarrier registrations and securebits (the call's result).
TEST(ProcessProps, OneValueRemoteReadsDecode) {
  img::Process p;
  const uint8_t one[8] = {1, 0, 0, 0};
  const long results[2] = {0x14, 0};
  for (const ProcessProperty& prop : ProcessProperties()) {
    if (prop.remote && prop.remote->decode && prop.remote->item_name == nullptr) {
      prop.remote->decode(0, 0, one, results, &p);
    }
  }
  EXPECT_TRUE(p.child_subreaper());
  EXPECT_EQ(p.membarrier_registrations(), 0x14u);
  EXPECT_EQ(p.creds().securebits(), 0x14u);
}

TEST(ProcessProps, SigactionsEverySignalAskedOnlyWhenSet) {
  ProcessSource src(getpid());
  img::Process p;
  std::vector<int64_t> items;
  const ProcessProperty* sa = Find("sigactions");
  ASSERT_NE(sa, nullptr);
  ASSERT_NE(sa->remote, nullptr);
  ASSERT_TRUE(sa->remote->items(src, &p, &items).ok());
  ASSERT_EQ(p.sigactions_size(), 64);  // every signal, in order
  for (int i = 0; i < 64; ++i) EXPECT_EQ(p.sigactions(i).signo(), static_cast<uint32_t>(i + 1));
  EXPECT_NE(std::find(items.begin(), items.end(), SIGCHLD), items.end());  // always asked

  const auto a = sa->remote->calls[0].args(SIGUSR1, 0x1000);
  EXPECT_EQ(sa->remote->calls[0].nr, __NR_rt_sigaction);
  EXPECT_EQ(a[0], static_cast<uint64_t>(SIGUSR1));
  EXPECT_EQ(a[1], 0u);       // no new action
  EXPECT_EQ(a[2], 0x1000u);  // the old one, out
  EXPECT_EQ(a[3], 8u);
  const uint64_t k[4] = {0x401000, 0x04000000, 0x402000, 1ull << (SIGUSR2 - 1)};
  Decode("sigactions", 0, SIGUSR1, k, {0}, &p);
  const img::SigAction& s = p.sigactions(SIGUSR1 - 1);
  EXPECT_EQ(s.handler(), 0x401000u);
  EXPECT_EQ(s.flags(), 0x04000000u);
  EXPECT_EQ(s.restorer(), 0x402000u);
  EXPECT_EQ(s.mask(), 1ull << (SIGUSR2 - 1));

  cf_rst_args args{};
  ProcessArgs out{&args, nullptr, nullptr, nullptr, nullptr, nullptr, 0};
  for (const ProcessProperty& prop : ProcessProperties()) {
    if (std::string(prop.name) == "sigactions") prop.to_args(p, &out);
  }
  EXPECT_EQ(args.sigactions[SIGUSR1].handler, 0x401000u);
  EXPECT_TRUE(args.sigaction_valid & (1ull << (SIGUSR1 - 1)));
  EXPECT_FALSE(args.sigaction_valid & (1ull << (SIGKILL - 1)));  // never set
}

// Resource limits go to the restorer, which sets them last.
TEST(ProcessProps, RlimitsGoToTheRestorer) {
  img::Process p;
  img::Rlimit* l = p.add_rlimits();
  l->set_resource(RLIMIT_NOFILE);
  l->set_cur(5);
  l->set_max(1024);
  l = p.add_rlimits();
  l->set_resource(RLIMIT_NPROC);
  l->set_cur(RLIM_INFINITY);
  l->set_max(RLIM_INFINITY);
  const ProcessProperty* prop = Find("rlimits");
  ASSERT_NE(prop, nullptr);
  EXPECT_EQ(prop->in_task, nullptr);  // not in the task: it would limit the restore itself
  cf_rst_args args{};
  ProcessArgs out{&args, nullptr, nullptr, nullptr, nullptr, nullptr, 0};
  prop->to_args(p, &out);
  ASSERT_EQ(args.nr_rlimits, 2u);
  EXPECT_EQ(args.rlimits[0].resource, static_cast<uint32_t>(RLIMIT_NOFILE));
  EXPECT_EQ(args.rlimits[0].cur, 5u);
  EXPECT_EQ(args.rlimits[0].max, 1024u);
  EXPECT_EQ(args.rlimits[1].resource, static_cast<uint32_t>(RLIMIT_NPROC));
  EXPECT_EQ(args.rlimits[1].cur, RLIM_INFINITY);
}

TEST(ProcessProps, ItimersBrkAndTimersDecode) {
  img::Process p;
  itimerval v{};
  v.it_interval.tv_usec = 50000;
  v.it_value.tv_sec = 1;
  Decode("itimers", 0, ITIMER_REAL, &v, {0}, &p);
  ASSERT_EQ(p.itimers_size(), 1);
  EXPECT_EQ(p.itimers(0).which(), static_cast<uint32_t>(ITIMER_REAL));
  EXPECT_EQ(p.itimers(0).interval_usec(), 50000u);
  EXPECT_EQ(p.itimers(0).value_sec(), 1u);

  Decode("brk", 0, 0, nullptr, {0x5555deadb000}, &p);
  EXPECT_EQ(p.mm().brk(), 0x5555deadb000u);

  img::PosixTimer* t = p.add_posix_timers();  // as its items step left it
  t->set_id(7);
  const ProcessProperty* pt = Find("posix_timers");
  ASSERT_NE(pt, nullptr);
  ASSERT_EQ(pt->remote->nr_calls, 2u);
  EXPECT_EQ(pt->remote->calls[0].nr, __NR_timer_gettime);
  EXPECT_EQ(pt->remote->calls[0].args(7, 0x3000)[0], 7u);
  EXPECT_EQ(pt->remote->calls[0].args(7, 0x3000)[1], 0x3000u);
  EXPECT_EQ(pt->remote->calls[1].nr, __NR_timer_getoverrun);
  itimerspec ts{};
  ts.it_interval.tv_nsec = 1000000;
  ts.it_value.tv_sec = 3;
  Decode("posix_timers", 0, 7, &ts, {0, 4}, &p);
  EXPECT_EQ(t->interval_nsec(), 1000000u);
  EXPECT_EQ(t->value_sec(), 3u);
  EXPECT_EQ(t->overrun(), 4);
}

TEST(ProcessProps, ToArgsFillsTheBlock) {
  img::Process p;
  p.set_pid(100);
  p.set_comm("server");
  p.mutable_mm()->set_brk(0x600000);
  img::ITimer* it = p.add_itimers();
  it->set_which(ITIMER_PROF);
  it->set_value_sec(5);
  img::PosixTimer* t = p.add_posix_timers();
  t->set_id(3);
  t->set_clock_id(CLOCK_MONOTONIC);
  t->set_signo(SIGRTMIN);
  t->set_value_sec(2);
  for (int v = 0; v < 2; ++v) {
    img::SigInfo* si = p.add_shared_pending();
    si->set_signo(SIGRTMIN + 1);
    si->set_shared(true);
    siginfo_t raw{};
    raw.si_signo = SIGRTMIN + 1;
    raw.si_value.sival_int = v;
    si->set_raw(&raw, sizeof(raw));
  }
  // Credentials that cannot be ours: the restorer is asked to change them.
  img::Creds* c = p.mutable_creds();
  c->set_uid(54321), c->set_euid(54321), c->set_suid(54321), c->set_fsuid(54321);
  c->set_gid(54321), c->set_egid(54321), c->set_sgid(54321), c->set_fsgid(54321);
  for (uint32_t g = 0; g < 100; ++g) c->add_groups(1000 + g);

  const ProcessArrays room = ProcessArgsArrays(p);
  EXPECT_EQ(room.posix_timers, 1u);
  EXPECT_EQ(room.siginfo, 2u);
  EXPECT_EQ(room.groups, 100u);

  cf_rst_args args{};
  cf_rst_thread leader{};
  cf_rst_posix_timer timers[1] = {};
  uint32_t groups[100] = {};
  cf_rst_siginfo sig[2] = {};
  uint32_t nr = 0;
  ProcessArgs out{&args, &leader, timers, groups, sig, &nr, 2};
  ToArgs(p, &out);
  EXPECT_STREQ(leader.comm, "server");  // the leader had no name of its own
  EXPECT_EQ(args.mm.brk, 0x600000u);
  EXPECT_EQ(args.itimers[ITIMER_PROF].value_sec, 5);
  ASSERT_EQ(args.nr_posix_timers, 1u);
  EXPECT_EQ(timers[0].id, 3);
  EXPECT_EQ(timers[0].clock_id, CLOCK_MONOTONIC);
  EXPECT_EQ(timers[0].value_sec, 2);
  ASSERT_EQ(nr, 2u);
  for (int v = 0; v < 2; ++v) {
    EXPECT_EQ(sig[v].shared, 1);
    EXPECT_EQ(sig[v].tid, 0);
    siginfo_t raw;
    memcpy(&raw, sig[v].info, sizeof(raw));
    EXPECT_EQ(raw.si_value.sival_int, v);
  }
  EXPECT_EQ(args.change_groups, 1u);  // the uids are each thread's (ThreadProps)
  ASSERT_EQ(args.nr_groups, 100u);
  EXPECT_EQ(groups[99], 1099u);
}

TEST(ProcessProps, LeaderNameIsKept) {
  img::Process p;
  p.set_comm("process");
  cf_rst_args args{};
  cf_rst_thread leader{};
  snprintf(leader.comm, sizeof(leader.comm), "%s", "own-name");
  uint32_t nr = 0;
  ProcessArgs out{&args, &leader, nullptr, nullptr, nullptr, &nr, 0};
  ToArgs(p, &out);
  EXPECT_STREQ(leader.comm, "own-name");
}

TEST(ProcessProps, InTaskAppliesAndRefusals) {
  img::Process p;
  p.set_pid(getpid());
  p.set_umask(027);
  const mode_t old = umask(022);
  const ProcessProperty* um = Find("umask");
  ASSERT_NE(um, nullptr);
  ASSERT_TRUE(um->in_task(p).ok());
  EXPECT_EQ(umask(old), 027u);

  p.set_root("/srv/jail");
  const ProcessProperty* cr = Find("cwd_root");
  ASSERT_NE(cr, nullptr);
  EXPECT_FALSE(cr->in_task(p).ok());  // another root: not supported
}

}  // namespace
}  // namespace cf::kinds
