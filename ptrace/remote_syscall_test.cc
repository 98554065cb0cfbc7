#include "ptrace/remote_syscall.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <dirent.h>
#include <pthread.h>
#include <string>
#include <vector>

namespace cf::tracing {
namespace {

int g_report_fd = -1;

// In the child: report what the signal carried (si_code, si_value).
void OnSignal(int, siginfo_t* si, void*) {
  long out[2] = {si->si_code, static_cast<long>(reinterpret_cast<uintptr_t>(si->si_value.sival_ptr))};
  (void)!write(g_report_fd, out, sizeof(out));
}

// A signal that arrives while remote calls run (here: queued while the
// child is stopped, so the first single-step meets it) is held back and
// queued again when the thread is given back, with its siginfo: a POSIX
// timer's or sigqueue's si_code and si_value must survive a dump with -R.
// (They used to come back as a plain tgkill: si_code SI_TKILL, no value.)
TEST(RemoteSyscallTest, HeldSignalKeepsItsSiginfo) {
  const int sig = SIGRTMIN + 1;
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(p[0]);
    g_report_fd = p[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = OnSignal;
    sa.sa_flags = SA_SIGINFO;
    sigaction(sig, &sa, nullptr);
    const long ready[2] = {0, 0};
    (void)!write(p[1], ready, sizeof(ready));
    for (int i = 0; i < 600; ++i) pause();
    _exit(0);
  }
  close(p[1]);
  long msg[2];
  ASSERT_EQ(read(p[0], msg, sizeof(msg)), static_cast<ssize_t>(sizeof(msg)));

  ASSERT_EQ(ptrace(PTRACE_SEIZE, child, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD)), 0) << strerror(errno);
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, child, nullptr, nullptr), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, __WALL), child);
  ASSERT_TRUE(WIFSTOPPED(status));

  sigval value;
  value.sival_ptr = reinterpret_cast<void*>(0x7ea1);
  ASSERT_EQ(sigqueue(child, sig, value), 0);
  {
    auto rs = RemoteSyscall::Attach(child, child);
    ASSERT_TRUE(rs.ok()) << rs.status().ToString();
    auto r = rs->Call(__NR_getpid);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, child);
    ASSERT_TRUE(rs->Restore().ok());
  }
  ASSERT_EQ(ptrace(PTRACE_DETACH, child, nullptr, nullptr), 0);

  ASSERT_EQ(read(p[0], msg, sizeof(msg)), static_cast<ssize_t>(sizeof(msg)));
  EXPECT_EQ(msg[0], SI_QUEUE);
  EXPECT_EQ(msg[1], 0x7ea1);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(p[0]);
}

void* Sleeper(void*) {
  for (;;) pause();
  return nullptr;
}

std::vector<pid_t> Tids(pid_t pid) {
  std::vector<pid_t> out;
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  while (dirent* e = d ? readdir(d) : nullptr) {
    if (e->d_name[0] != '.') out.push_back(static_cast<pid_t>(atoi(e->d_name)));
  }
  if (d) closedir(d);
  return out;
}

// One call in many threads at once: each thread runs its own call with its
// own arguments (gettid answers with the thread's own id; getpid with the
// process's), and every thread has its own registers back afterwards (the
// child's threads sleep on in pause() and the child exits normally).
// A child with |extra| sleeping threads beside its main one, once they
// have all started; -1 if fork failed.
pid_t StartSleepers(int extra) {
  int p[2];
  if (pipe(p) != 0) return -1;
  const pid_t child = fork();
  if (child == 0) {
    close(p[0]);
    for (int i = 0; i < extra; ++i) {
      pthread_t t;
      pthread_create(&t, nullptr, Sleeper, nullptr);
    }
    (void)!write(p[1], "r", 1);
    for (int i = 0; i < 600; ++i) pause();
    _exit(0);
  }
  close(p[1]);
  char c;
  const bool ready = child > 0 && read(p[0], &c, 1) == 1;
  close(p[0]);
  return ready ? child : -1;
}

// |child|, detached, still runs (sleeping, untraced): a SIGTERM ends it
// normally (default action).
void ExpectRunsUntilSigterm(pid_t child) {
  usleep(20000);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, WNOHANG), 0);
  kill(child, SIGTERM);
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

// Seizes thread |tid| and waits for its interrupt stop.
void SeizeStopped(pid_t tid) {
  ASSERT_EQ(ptrace(PTRACE_SEIZE, tid, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD)), 0);
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr), 0);
  int status;
  ASSERT_EQ(waitpid(tid, &status, __WALL), tid);
}

TEST(RemoteSyscallTest, CallInEachRunsInEveryThread) {
  const pid_t child = StartSleepers(7);
  ASSERT_GT(child, 0);
  usleep(20000);
  const std::vector<pid_t> tids = Tids(child);
  ASSERT_EQ(tids.size(), 8u);
  for (pid_t t : tids) ASSERT_NO_FATAL_FAILURE(SeizeStopped(t));
  {
    auto sites = FindRemoteSites(child);
    ASSERT_TRUE(sites.ok()) << sites.status().ToString();
    std::vector<RemoteSyscall> rs;
    rs.reserve(tids.size());
    std::vector<RemoteSyscall*> ptrs;
    for (pid_t t : tids) {
      auto r = RemoteSyscall::Attach(child, t, &*sites);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      rs.push_back(std::move(*r));
      ptrs.push_back(&rs.back());
    }
    std::vector<std::array<uint64_t, 6>> args(tids.size(), {0, 0, 0, 0, 0, 0});
    std::vector<long> results;
    ASSERT_TRUE(RemoteSyscall::CallInEach(ptrs, __NR_gettid, args, &results).ok());
    for (size_t i = 0; i < tids.size(); ++i) EXPECT_EQ(results[i], tids[i]);
    ASSERT_TRUE(RemoteSyscall::CallInEach(ptrs, __NR_getpid, args, &results).ok());
    for (size_t i = 0; i < tids.size(); ++i) EXPECT_EQ(results[i], child);
    for (RemoteSyscall& r : rs) ASSERT_TRUE(r.Restore().ok());
  }
  for (pid_t t : tids) ASSERT_EQ(ptrace(PTRACE_DETACH, t, nullptr, nullptr), 0);
  ASSERT_NO_FATAL_FAILURE(ExpectRunsUntilSigterm(child));
}

// Two processes, the threads of both given call lists of different lengths
// (one empty): each thread runs its own list in order, errors come back as
// results, and every thread has its own registers again at the end.
TEST(RemoteSyscallTest, RunSequencesRunsEachThreadsCallsInOrder) {
  pid_t kids[2];
  for (int k = 0; k < 2; ++k) {
    kids[k] = StartSleepers(2 * k + 1);
    ASSERT_GT(kids[k], 0);
  }
  usleep(20000);
  std::vector<std::pair<pid_t, pid_t>> threads;  // (pid, tid)
  for (pid_t kid : kids) {
    for (pid_t t : Tids(kid)) threads.push_back({kid, t});
  }
  ASSERT_EQ(threads.size(), 6u);
  for (const auto& [pid, t] : threads) ASSERT_NO_FATAL_FAILURE(SeizeStopped(t));
  {
    std::vector<RemoteSyscall> rs;
    rs.reserve(threads.size());
    std::vector<RemoteSyscall*> ptrs;
    std::vector<std::vector<RemoteSyscall::SeqCall>> calls;
    for (size_t i = 0; i < threads.size(); ++i) {
      auto r = RemoteSyscall::Attach(threads[i].first, threads[i].second);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      rs.push_back(std::move(*r));
      ptrs.push_back(&rs.back());
      // Thread i: i calls, alternating gettid, getpid and close(-1).
      std::vector<RemoteSyscall::SeqCall> c;
      const long nrs[] = {__NR_gettid, __NR_getpid, __NR_close};
      for (size_t k = 0; k < i; ++k) c.push_back({nrs[k % 3], {k % 3 == 2 ? ~uint64_t{0} : 0, 0, 0, 0, 0, 0}});
      calls.push_back(std::move(c));
    }
    std::vector<std::vector<long>> results;
    const Status st = RemoteSyscall::RunSequences(ptrs, calls, &results);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(results.size(), threads.size());
    for (size_t i = 0; i < threads.size(); ++i) {
      ASSERT_EQ(results[i].size(), i) << "thread " << i;
      for (size_t k = 0; k < i; ++k) {
        const long want = k % 3 == 0 ? threads[i].second : k % 3 == 1 ? threads[i].first : -EBADF;
        EXPECT_EQ(results[i][k], want) << "thread " << i << " call " << k;
      }
      user_regs_struct now;
      ASSERT_EQ(ptrace(PTRACE_GETREGS, threads[i].second, nullptr, &now), 0);
      EXPECT_EQ(now.rip, rs[i].saved_regs().rip) << "thread " << i;
      EXPECT_EQ(now.rsp, rs[i].saved_regs().rsp) << "thread " << i;
      EXPECT_EQ(now.rax, rs[i].saved_regs().rax) << "thread " << i;
    }
    for (RemoteSyscall& r : rs) ASSERT_TRUE(r.Restore().ok());
  }
  for (const auto& [pid, t] : threads) ASSERT_EQ(ptrace(PTRACE_DETACH, t, nullptr, nullptr), 0);
  for (pid_t kid : kids) ASSERT_NO_FATAL_FAILURE(ExpectRunsUntilSigterm(kid));
}

// A descriptor made by a remote call: criu-fast takes its copy at the
// exit stop, the target's is closed, and the target's table is as before
// (the copy works: an eventfd counts what is written to it).
TEST(RemoteSyscallTest, CallClosingLeavesTheTargetsTableAsItWas) {
  const pid_t child = StartSleepers(0);
  ASSERT_GT(child, 0);
  usleep(20000);
  auto fds = [&] {
    std::vector<std::string> names;
    DIR* d = opendir(("/proc/" + std::to_string(child) + "/fd").c_str());
    while (dirent* e = d ? readdir(d) : nullptr) names.push_back(e->d_name);
    if (d) closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  };
  const std::vector<std::string> before = fds();
  ASSERT_NO_FATAL_FAILURE(SeizeStopped(child));
  int copy = -1;
  {
    auto rs = RemoteSyscall::Attach(child, child);
    ASSERT_TRUE(rs.ok()) << rs.status().ToString();
    EXPECT_TRUE(rs->guarded());
    int expect = 0;
    while (std::find(before.begin(), before.end(), std::to_string(expect)) != before.end()) ++expect;
    bool seen = false;
    auto r = rs->CallClosing(__NR_eventfd2, {5, 0}, expect, [&](long fd) -> Status {
      seen = true;
      const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
      copy = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, static_cast<int>(fd), 0));
      close(pidfd);
      return OkStatus();
    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, expect);
    EXPECT_TRUE(seen);
    ASSERT_TRUE(rs->Restore().ok());
  }
  ASSERT_GE(copy, 0);
  uint64_t count = 0;
  ASSERT_EQ(read(copy, &count, sizeof(count)), static_cast<ssize_t>(sizeof(count)));
  EXPECT_EQ(count, 5u);
  close(copy);
  EXPECT_EQ(fds(), before);
  ASSERT_EQ(ptrace(PTRACE_DETACH, child, nullptr, nullptr), 0);
  ASSERT_NO_FATAL_FAILURE(ExpectRunsUntilSigterm(child));
}

}  // namespace
}  // namespace cf::tracing
