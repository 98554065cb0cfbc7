// criu-fast killed in the middle of a remote system call or of a parasite
// command must leave the target running as before (issue: a target died of
// SIGTRAP when criu-fast was killed during a dump). Each test forks a target
// blocked in read() with a marker in an AVX register, an alternate signal
// stack and a signal mask, then a tracer process that seizes it, stops at
// the worst moment and kills itself with SIGKILL. The target is then fed a
// byte: it must finish its read as if nothing happened, with the same
// registers, mask and alternate stack, and no descriptor left behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "memdrain/parasite.h"
#include "ptrace/remote_syscall.h"

namespace cf::memdrain {
namespace {

constexpr uint64_t kMarker = 0x1234567890abcdefull;
constexpr size_t kTargetPages = 64;

struct Report {
  long read_result;
  uint64_t xmm8;
  uint64_t mask;
  uint64_t altstack_sp;
  char byte;
};

std::set<int> Fds(pid_t pid) {
  std::set<int> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    out.insert(std::stoi(e.path().filename().string()));
  }
  return out;
}

// The target: reads one byte with a raw syscall, keeping kMarker in xmm8
// across it, and reports what it sees afterwards.
[[noreturn]] void RunTarget(int in_fd, int report_fd, char* altstack, unsigned char* pages) {
  stack_t ss{};
  ss.ss_sp = altstack;
  ss.ss_size = SIGSTKSZ;
  sigaltstack(&ss, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  for (size_t i = 0; i < kTargetPages * 4096; ++i) pages[i] = static_cast<unsigned char>(i * 7);
  Report r{};
  char c = 0;
  (void)!write(report_fd, &r, sizeof(r));  // ready
  long ret;
  __asm__ volatile(
      "movq %[marker], %%xmm8\n"
      "syscall\n"
      "movq %%xmm8, %[out]\n"
      : "=a"(ret), [out] "=m"(r.xmm8)
      : "a"(0L), "D"(static_cast<long>(in_fd)), "S"(&c), "d"(1L), [marker] "r"(kMarker)
      : "rcx", "r11", "xmm8", "memory");
  r.read_result = ret;
  r.byte = c;
  sigset_t now;
  sigprocmask(SIG_BLOCK, nullptr, &now);
  memcpy(&r.mask, &now, sizeof(r.mask));
  stack_t cur{};
  sigaltstack(nullptr, &cur);
  r.altstack_sp = reinterpret_cast<uint64_t>(cur.ss_sp);
  (void)!write(report_fd, &r, sizeof(r));
  _exit(0);
}

enum class Moment {
  kMidCall,
  kBetweenCalls,
  kBetweenGroupCalls,
  kMidParasite,
  kDescriptorMade,           // CallClosing: at the exit stop of the call that made a descriptor
  kDescriptorMadeElsewhere,  // the same, the descriptor not the number expected
};

// The lowest descriptor number |pid| has free.
int LowestFree(pid_t pid) {
  for (int fd = 0;; ++fd) {
    if (!std::filesystem::exists("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd))) return fd;
  }
}

// The tracer: seizes |target|, gets to |moment| and dies of SIGKILL there.
[[noreturn]] void RunTracer(pid_t target, Moment moment, unsigned char* pages) {
  if (ptrace(PTRACE_SEIZE, target, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD)) != 0) _exit(2);
  if (ptrace(PTRACE_INTERRUPT, target, nullptr, nullptr) != 0) _exit(3);
  int status;
  if (waitpid(target, &status, __WALL) != target) _exit(4);
  if (moment == Moment::kMidParasite) {
    auto p = Parasite::Inject(target);
    if (!p.ok()) _exit(5);
    std::vector<std::vector<pagemap::PageRange>> jobs(2);
    const uint64_t base = reinterpret_cast<uint64_t>(pages), half = kTargetPages / 2 * 4096;
    jobs[0].push_back({base, base + half});
    jobs[1].push_back({base + half, base + 2 * half});
    // A first command completes (the target keeps no descriptor of it), the
    // second is abandoned while it runs.
    auto fds = (*p)->Fill(jobs);
    if (!fds.ok()) {
      fprintf(stderr, "tracer: %s\n", fds.status().ToString().c_str());
      _exit(6);
    }
    if (!(*p)->StartFillForTest(jobs).ok()) _exit(7);
  } else {
    auto rs = RemoteSyscall::Attach(target, target);
    if (!rs.ok() || !rs->guarded()) _exit(5);
    if (moment == Moment::kDescriptorMade || moment == Moment::kDescriptorMadeElsewhere) {
      // eventfd2 makes a descriptor; the tracer dies with it made and not
      // yet closed (where criu-fast takes its copy). When told another
      // number than the call gets, CallClosing must close the right one.
      int expect = LowestFree(target);
      if (moment == Moment::kDescriptorMadeElsewhere) expect += 3;
      (void)rs->CallClosing(__NR_eventfd2, {0, 0}, expect, [](long fd) -> Status {
        if (fd >= 0) kill(getpid(), SIGKILL);
        _exit(6);
      });
      _exit(7);
    }
    if (moment == Moment::kBetweenCalls || moment == Moment::kBetweenGroupCalls) {
      if (moment == Moment::kBetweenCalls) {
        auto r = rs->Call(__NR_getpid);
        if (!r.ok() || *r != target) _exit(6);
      } else {
        // A group call with more to come: the thread keeps the call's
        // registers (rip past libc's syscall, rsp on the return frame).
        RemoteSyscall* one[] = {&*rs};
        const std::array<uint64_t, 6> args[] = {{}};
        std::vector<long> results;
        if (!RemoteSyscall::CallInEach(one, __NR_getpid, args, &results, /*more=*/true).ok() ||
            results[0] != target) {
          _exit(6);
        }
      }
      // Leave the object alive (its destructor would put everything back).
      static RemoteSyscall* leaked = new RemoteSyscall(std::move(*rs));
      (void)leaked;
    } else if (!rs->StartCallForTest(__NR_getpid).ok()) {
      _exit(7);
    }
  }
  kill(getpid(), SIGKILL);
  _exit(8);
}

void RunScenario(Moment moment) {
  int in[2], rep[2];
  ASSERT_EQ(pipe(in), 0);
  ASSERT_EQ(pipe(rep), 0);
  auto* altstack = static_cast<char*>(mmap(nullptr, SIGSTKSZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  auto* pages = static_cast<unsigned char*>(
      mmap(nullptr, kTargetPages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(altstack, MAP_FAILED);
  ASSERT_NE(pages, MAP_FAILED);
  const pid_t target = fork();
  ASSERT_GE(target, 0);
  if (target == 0) {
    close(in[1]);
    close(rep[0]);
    RunTarget(in[0], rep[1], altstack, pages);
  }
  close(in[0]);
  close(rep[1]);
  Report r{};
  ASSERT_EQ(read(rep[0], &r, sizeof(r)), static_cast<ssize_t>(sizeof(r)));
  usleep(20000);  // let it block in read()
  const std::set<int> fds_before = Fds(target);

  const pid_t tracer = fork();
  ASSERT_GE(tracer, 0);
  if (tracer == 0) RunTracer(target, moment, pages);
  int status = 0;
  ASSERT_EQ(waitpid(tracer, &status, 0), tracer);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "tracer did not reach the moment (exit " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << ")";

  // The target runs on: give it its byte.
  usleep(50000);
  ASSERT_EQ(waitpid(target, &status, WNOHANG), 0) << "target died (signal "
                                                   << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << ")";
  const std::set<int> fds_after = Fds(target);
  ASSERT_EQ(write(in[1], "x", 1), 1);
  ASSERT_EQ(read(rep[0], &r, sizeof(r)), static_cast<ssize_t>(sizeof(r)));
  EXPECT_EQ(r.read_result, 1);
  EXPECT_EQ(r.byte, 'x');
  EXPECT_EQ(r.xmm8, kMarker);
  EXPECT_EQ(r.mask, 1ull << (SIGUSR2 - 1));
  EXPECT_EQ(r.altstack_sp, reinterpret_cast<uint64_t>(altstack));
  // The abandoned command closed what it made (pipes, pidfd).
  EXPECT_EQ(fds_after, fds_before);
  ASSERT_EQ(waitpid(target, &status, 0), target);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(in[1]);
  close(rep[0]);
  munmap(altstack, SIGSTKSZ);
  munmap(pages, kTargetPages * 4096);
}

TEST(TracerDeathTest, MidRemoteSyscall) { RunScenario(Moment::kMidCall); }
TEST(TracerDeathTest, BetweenRemoteSyscalls) { RunScenario(Moment::kBetweenCalls); }
TEST(TracerDeathTest, BetweenGroupCallsWithTheCallsRegisters) { RunScenario(Moment::kBetweenGroupCalls); }
TEST(TracerDeathTest, MidParasiteCommand) { RunScenario(Moment::kMidParasite); }
TEST(TracerDeathTest, DescriptorMadeByARemoteCallIsClosed) { RunScenario(Moment::kDescriptorMade); }
TEST(TracerDeathTest, DescriptorMadeUnderAnotherNumberIsClosed) { RunScenario(Moment::kDescriptorMadeElsewhere); }

}  // namespace
}  // namespace cf::memdrain
