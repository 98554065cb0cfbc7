#include "kinds/thread_props.h"

#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace cf::kinds {
namespace {

const ThreadProperty* Find(const char* name) {
  for (const ThreadProperty& p : ThreadProperties()) {
    if (std::string(p.name) == name) return &p;
  }
  return nullptr;
}

// Applies every to_args entry of the table to |t|, as restore/task.cc does.
void ToArgs(const img::Thread& t, ThreadArgs* out) {
  for (const ThreadProperty& p : ThreadProperties()) {
    if (p.to_args) p.to_args(t, out);
  }
}

TEST(ThreadProps, EachHasOneReadAndOneApply) {
  std::set<std::string> names;
  for (const ThreadProperty& p : ThreadProperties()) {
    EXPECT_TRUE(names.insert(p.name).second) << "twice: " << p.name;
    EXPECT_NE(p.read == nullptr, p.remote == nullptr) << p.name << ": needs exactly one of read and remote";
    EXPECT_NE(p.to_args == nullptr, p.load == nullptr) << p.name << ": needs exactly one of to_args and load";
    if (p.remote) {
      EXPECT_GT(p.remote->size, 0u) << p.name;
      EXPECT_NE(p.remote->args, nullptr) << p.name;
      EXPECT_NE(p.remote->decode, nullptr) << p.name;
    }
  }
  // Every per-thread field of the image has its property.
  for (const char* n : {"regs", "xstate", "blocked", "pending", "rseq", "status", "altstack", "clear_child_tid",
                        "sched", "robust_list", "pdeathsig"}) {
    EXPECT_NE(Find(n), nullptr) << n;
  }
  // The mask is loaded after the registers (the order of the table).
  size_t regs = 0, blocked = 0, i = 0;
  for (const ThreadProperty& p : ThreadProperties()) {
    if (std::string(p.name) == "regs") regs = i;
    if (std::string(p.name) == "blocked") blocked = i;
    ++i;
  }
  EXPECT_LT(regs, blocked);
}

// Scheduling and the robust list are read from any thread of ours, as
// criu-fast reads a frozen one.
TEST(ThreadProps, ReadsSchedAndRobustListOfAThread) {
  std::promise<pid_t> tid_p;
  std::promise<void> done;
  std::thread th([&] {
    setpriority(PRIO_PROCESS, 0, 4);
    tid_p.set_value(static_cast<pid_t>(syscall(SYS_gettid)));
    done.get_future().wait();
  });
  const pid_t tid = tid_p.get_future().get();
  img::Thread t;
  EXPECT_TRUE(Find("sched")->read(getpid(), tid, &t).ok());
  EXPECT_TRUE(Find("robust_list")->read(getpid(), tid, &t).ok());
  done.set_value();
  th.join();
  EXPECT_EQ(t.sched_policy(), static_cast<uint32_t>(SCHED_OTHER));
  EXPECT_EQ(t.nice(), 4);
  EXPECT_NE(t.robust_list(), 0u);  // glibc registers one in every thread
  EXPECT_GT(t.robust_list_len(), 0u);
}

TEST(ThreadProps, RemoteReadsDecodeWhatTheCallWrites) {
  img::Thread t;
  const ThreadProperty* alt = Find("altstack");
  ASSERT_NE(alt, nullptr);
  ASSERT_NE(alt->remote, nullptr);
  EXPECT_EQ(alt->remote->args(0x1000)[1], 0x1000u);  // sigaltstack(NULL, out)
  stack_t ss{};
  ss.ss_sp = reinterpret_cast<void*>(0x7f0000001000);
  ss.ss_flags = SS_ONSTACK;
  ss.ss_size = 65536;
  uint8_t buf[64] = {};
  memcpy(buf, &ss, sizeof(ss));
  alt->remote->decode(buf, &t);
  EXPECT_EQ(t.altstack().sp(), 0x7f0000001000u);
  EXPECT_EQ(t.altstack().flags(), SS_ONSTACK);
  EXPECT_EQ(t.altstack().size(), 65536u);

  const ThreadProperty* ctid = Find("clear_child_tid");
  ASSERT_NE(ctid, nullptr);
  ASSERT_NE(ctid->remote, nullptr);
  EXPECT_EQ(ctid->remote->args(0x2000)[1], 0x2000u);  // prctl(PR_GET_TID_ADDRESS, out)
  const uint64_t addr = 0x7f00deadbee0;
  memcpy(buf, &addr, sizeof(addr));
  ctid->remote->decode(buf, &t);
  EXPECT_EQ(t.clear_child_tid(), addr);
}

TEST(ThreadProps, ToArgsFillsTheThreadRecord) {
  img::Thread t;
  t.set_tid(1234);
  t.set_comm("worker-7");
  t.mutable_altstack()->set_sp(0x10000);
  t.mutable_altstack()->set_size(8192);
  t.mutable_altstack()->set_flags(SS_ONSTACK);
  t.set_clear_child_tid(0x5000);
  t.mutable_rseq()->set_abi_pointer(0x6000);
  t.mutable_rseq()->set_abi_size(32);
  t.mutable_rseq()->set_signature(0x53053053);
  t.set_robust_list(0x7000);
  t.set_robust_list_len(24);
  t.set_pdeathsig(SIGTERM);
  t.mutable_creds()->set_euid(54321);
  for (int v = 0; v < 3; ++v) {
    img::SigInfo* si = t.add_pending();
    si->set_signo(SIGRTMIN + 2);
    siginfo_t raw{};
    raw.si_signo = SIGRTMIN + 2;
    raw.si_code = SI_QUEUE;
    raw.si_value.sival_int = v;
    si->set_raw(&raw, sizeof(raw));
  }
  EXPECT_EQ(QueuedSignals(t), 3u);

  cf_rst_thread rec{};
  cf_rst_siginfo sig[3] = {};
  uint32_t nr = 0;
  ThreadArgs out{&rec, sig, &nr, 3};
  ToArgs(t, &out);
  EXPECT_STREQ(rec.comm, "worker-7");
  EXPECT_EQ(rec.altstack_sp, 0x10000u);
  EXPECT_EQ(rec.altstack_size, 8192u);
  EXPECT_EQ(rec.clear_child_tid, 0x5000u);
  EXPECT_EQ(rec.rseq_ptr, 0x6000u);
  EXPECT_EQ(rec.rseq_len, 32u);
  EXPECT_EQ(rec.rseq_sig, 0x53053053u);
  EXPECT_EQ(rec.robust_list, 0x7000u);
  EXPECT_EQ(rec.robust_list_len, 24u);
  EXPECT_EQ(rec.pdeathsig, static_cast<uint32_t>(SIGTERM));
  // Credentials that are not ours are changed by the thread.
  EXPECT_EQ(rec.change_creds, 1u);
  EXPECT_EQ(rec.uid[1], 54321u);
  ASSERT_EQ(nr, 3u);
  for (int v = 0; v < 3; ++v) {
    EXPECT_EQ(sig[v].tid, 1234);
    EXPECT_EQ(sig[v].shared, 0);
    siginfo_t raw;
    memcpy(&raw, sig[v].info, sizeof(raw));
    EXPECT_EQ(raw.si_value.sival_int, v);
  }
}

TEST(ThreadProps, DisabledAltstackIsNotSet) {
  img::Thread t;
  t.mutable_altstack()->set_flags(SS_DISABLE);
  t.mutable_altstack()->set_size(8192);
  cf_rst_thread rec{};
  uint32_t nr = 0;
  ThreadArgs out{&rec, nullptr, &nr, 0};
  ToArgs(t, &out);
  EXPECT_EQ(rec.altstack_size, 0u);
  EXPECT_EQ(rec.altstack_sp, 0u);
}

TEST(ThreadProps, SignalsBeyondTheRoomAreCountedNotWritten) {
  img::Thread t;
  t.set_tid(7);
  for (int i = 0; i < 5; ++i) t.add_pending()->set_signo(SIGRTMIN);
  cf_rst_thread rec{};
  cf_rst_siginfo sig[2] = {};
  uint32_t nr = 0;
  ThreadArgs out{&rec, sig, &nr, 2};
  ToArgs(t, &out);
  EXPECT_EQ(nr, 5u);  // the caller compares with the room it planned
  EXPECT_EQ(sig[1].tid, 7);
}

}  // namespace
}  // namespace cf::kinds
