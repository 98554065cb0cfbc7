// The parasite's thread calls (memdrain/thread_calls.h) in a process of 20
// threads, each blocked in read() with a marker of its own in an AVX
// register, its own alternate signal stack and a signal mask: a tracer
// process reads every thread's sigaltstack by the parasite, and either
// finishes (the results are the threads' stacks) or kills itself with
// SIGKILL while every thread waits in the parasite. Either way each thread
// must then finish its read as if nothing happened (same registers, mask,
// alternate stack) and the process must hold no descriptor more.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "memdrain/thread_calls.h"

namespace cf::memdrain {
namespace {

constexpr int kThreads = 20;
constexpr uint64_t kMarker = 0x0badcafe00000000ull;
constexpr size_t kAltstack = 16384;

struct Report {
  int index;
  pid_t tid;
  long read_result;
  uint64_t xmm8;
  uint64_t mask;
  uint64_t altstack_sp;
};

struct Target {
  int in[kThreads][2];
  int report[2];
  char* altstacks;  // kThreads * kAltstack
};

size_t CountFds(pid_t pid) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

Target* g_target;

// Thread |index| of the target: sets its alternate stack and mask, says it
// is ready, reads one byte keeping its marker in xmm8, and reports.
void* TargetThread(void* arg) {
  const int index = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  stack_t ss{};
  ss.ss_sp = g_target->altstacks + static_cast<size_t>(index) * kAltstack;
  ss.ss_size = kAltstack;
  sigaltstack(&ss, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  Report r{};
  r.index = index;
  r.tid = static_cast<pid_t>(syscall(SYS_gettid));
  (void)!write(g_target->report[1], &r, sizeof(r));  // ready
  char c = 0;
  long ret;
  const uint64_t marker = kMarker + static_cast<uint64_t>(index);
  __asm__ volatile(
      "movq %[marker], %%xmm8\n"
      "syscall\n"
      "movq %%xmm8, %[out]\n"
      : "=a"(ret), [out] "=m"(r.xmm8)
      : "a"(0L), "D"(static_cast<long>(g_target->in[index][0])), "S"(&c), "d"(1L), [marker] "r"(marker)
      : "rcx", "r11", "xmm8", "memory");
  r.read_result = ret;
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  memcpy(&r.mask, &now, sizeof(r.mask));
  stack_t cur{};
  sigaltstack(nullptr, &cur);
  r.altstack_sp = reinterpret_cast<uint64_t>(cur.ss_sp);
  (void)!write(g_target->report[1], &r, sizeof(r));
  return nullptr;
}

[[noreturn]] void RunTarget() {
  pthread_t threads[kThreads];
  for (int i = 1; i < kThreads; ++i) {
    if (pthread_create(&threads[i], nullptr, TargetThread, reinterpret_cast<void*>(static_cast<intptr_t>(i))) != 0) {
      _exit(3);
    }
  }
  TargetThread(nullptr);  // the leader is thread 0
  for (int i = 1; i < kThreads; ++i) pthread_join(threads[i], nullptr);  // each has reported
  _exit(0);
}

// The tracer: seizes every thread, reads each one's sigaltstack by the
// parasite; |die|: dies of SIGKILL while the threads wait in the parasite.
[[noreturn]] void RunTracer(pid_t target, const std::vector<pid_t>& tids, bool die) {
  for (pid_t tid : tids) {
    if (ptrace(PTRACE_SEIZE, tid, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD)) != 0) _exit(2);
    if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) _exit(3);
    int status;
    if (waitpid(tid, &status, __WALL) != tid) _exit(4);
  }
  auto leader = RemoteSyscall::Attach(target, target);
  if (!leader.ok() || !leader->guarded()) _exit(5);
  std::vector<std::unique_ptr<RemoteSyscall>> others;
  std::vector<RemoteSyscall*> threads{&*leader};
  for (pid_t tid : tids) {
    if (tid == target) continue;
    auto rs = RemoteSyscall::Attach(target, tid, &leader->sites(), RemoteSyscall::Guard::kNone);
    if (!rs.ok()) _exit(6);
    others.push_back(std::make_unique<RemoteSyscall>(std::move(*rs)));
    threads.push_back(others.back().get());
  }
  auto tc = ThreadCalls::Inject(&*leader, threads.size());
  if (!tc.ok()) {
    fprintf(stderr, "tracer: %s\n", tc.status().ToString().c_str());
    _exit(7);
  }
  std::vector<std::vector<ThreadCall>> calls(threads.size());
  for (size_t i = 0; i < threads.size(); ++i) calls[i].push_back({__NR_sigaltstack, {0, (*tc)->OutAddr(i), 0, 0, 0, 0}});
  if (die) {
    if (!(*tc)->StartRunForTest(threads, calls).ok()) _exit(8);
    // Leave everything as it is (the destructors would put it back).
    static auto* leaked_tc = tc->release();
    static auto* leaked_leader = new RemoteSyscall(std::move(*leader));
    static auto* leaked_others = new std::vector<std::unique_ptr<RemoteSyscall>>(std::move(others));
    (void)leaked_tc, (void)leaked_leader, (void)leaked_others;
    kill(getpid(), SIGKILL);
  }
  std::vector<long> results;
  std::vector<uint8_t> out;
  Status st = (*tc)->Run(threads, calls, &results, &out);
  if (!st.ok()) {
    fprintf(stderr, "tracer: %s\n", st.ToString().c_str());
    _exit(9);
  }
  // Each thread's own alternate stack (the threads are listed in tid
  // order, not in their index order: compare with the set of stacks).
  for (size_t i = 0; i < threads.size(); ++i) {
    if (results[i * ThreadCalls::kMaxCalls] != 0) _exit(10);
    stack_t ss;
    memcpy(&ss, out.data() + i * ThreadCalls::kOutBytes, sizeof(ss));
    const uint64_t sp = reinterpret_cast<uint64_t>(ss.ss_sp);
    const uint64_t base = reinterpret_cast<uint64_t>(g_target->altstacks);
    if (sp < base || sp >= base + kThreads * kAltstack || (sp - base) % kAltstack != 0 || ss.ss_size != kAltstack) {
      _exit(11);
    }
  }
  if (!(*tc)->Remove().ok()) _exit(12);
  _exit(0);
}

void RunScenario(bool die) {
  auto* t = static_cast<Target*>(mmap(nullptr, sizeof(Target), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(t, MAP_FAILED);
  g_target = t;
  for (auto& p : t->in) ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(pipe(t->report), 0);
  t->altstacks = static_cast<char*>(
      mmap(nullptr, kThreads * kAltstack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(t->altstacks, MAP_FAILED);
  const pid_t target = fork();
  ASSERT_GE(target, 0);
  if (target == 0) RunTarget();
  std::vector<pid_t> tids;
  for (int i = 0; i < kThreads; ++i) {
    Report r{};
    ASSERT_EQ(read(t->report[0], &r, sizeof(r)), static_cast<ssize_t>(sizeof(r)));
    tids.push_back(r.tid);
  }
  usleep(50000);  // let each block in read()
  const size_t fds_before = CountFds(target);

  const pid_t tracer = fork();
  ASSERT_GE(tracer, 0);
  if (tracer == 0) RunTracer(target, tids, die);
  int status = 0;
  ASSERT_EQ(waitpid(tracer, &status, 0), tracer);
  if (die) {
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "tracer did not reach the moment (exit " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << ")";
  } else {
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "tracer failed (exit " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << ")";
  }

  // The threads run on: give each its byte.
  usleep(50000);
  ASSERT_EQ(waitpid(target, &status, WNOHANG), 0) << "target died (signal "
                                                   << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << ")";
  const size_t fds_after = CountFds(target);
  for (int i = 0; i < kThreads; ++i) ASSERT_EQ(write(t->in[i][1], "x", 1), 1);
  for (int i = 0; i < kThreads; ++i) {
    Report r{};
    ASSERT_EQ(read(t->report[0], &r, sizeof(r)), static_cast<ssize_t>(sizeof(r)));
    EXPECT_EQ(r.read_result, 1) << "thread " << r.index;
    EXPECT_EQ(r.xmm8, kMarker + static_cast<uint64_t>(r.index)) << "thread " << r.index;
    EXPECT_EQ(r.mask, 1ull << (SIGUSR2 - 1)) << "thread " << r.index;
    EXPECT_EQ(r.altstack_sp, reinterpret_cast<uint64_t>(t->altstacks + static_cast<size_t>(r.index) * kAltstack))
        << "thread " << r.index;
  }
  // The watcher's pidfd is gone (closed by criu-fast, or by the watcher
  // itself once criu-fast died).
  EXPECT_EQ(fds_after, fds_before);
  ASSERT_EQ(waitpid(target, &status, 0), target);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (auto& p : t->in) close(p[0]), close(p[1]);
  close(t->report[0]);
  close(t->report[1]);
  munmap(t->altstacks, kThreads * kAltstack);
  munmap(t, sizeof(Target));
}

TEST(ThreadCallsTest, EveryThreadsCallsAndBackToItsOwnState) { RunScenario(false); }
TEST(ThreadCallsTest, TracerKilledWhileEveryThreadWaitsInTheParasite) { RunScenario(true); }

}  // namespace
}  // namespace cf::memdrain
