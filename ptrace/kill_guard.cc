#include "ptrace/kill_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern "C" {
#include "blobs/syscall.h"
}

namespace cf::tracing {
namespace {

constexpr size_t kStackSize = 64 * 1024;

// The guard's whole life, in criu-fast's memory with criu-fast's thread
// pointer: raw system calls only, nothing instrumented.
__attribute__((noinline, no_sanitize("address", "undefined", "thread"))) int GuardMain(void* arg) {
  const auto* s = static_cast<const KillGuard::Shared*>(arg);
  cf_sys1(CF_NR_close, s->commit_w);  // its copy: the pipe ends with criu-fast's
  char c = 0;
  long n;
  do {
    n = cf_sys3(CF_NR_read, s->commit_r, &c, 1);
  } while (n == -EINTR);
  if (n == 1) return 0;  // committed
  for (size_t i = 0; i < s->count; ++i) {
    const KillGuard::Target& t = s->targets[i];
    if (t.pidfd >= 0) {
      cf_sys4(CF_NR_pidfd_send_signal, t.pidfd, s->sig, 0, 0);
    } else {
      cf_sys2(CF_NR_kill, t.pid, s->sig);
    }
  }
  return 0;
}

}  // namespace

Result<std::unique_ptr<KillGuard>> KillGuard::Start(const std::vector<pid_t>& pids, int sig) {
  std::unique_ptr<KillGuard> g(new KillGuard());
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe for the kill guard");
  g->commit_r_.reset(fds[0]);
  g->commit_w_.reset(fds[1]);
  g->targets_.reserve(pids.size());
  for (pid_t pid : pids) {
    g->targets_.push_back({static_cast<int>(syscall(SYS_pidfd_open, pid, 0)), pid});
  }
  g->shared_ = {fds[0], fds[1], g->targets_.data(), g->targets_.size(), sig};
  g->stack_ = mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (g->stack_ == MAP_FAILED) {
    g->stack_ = nullptr;
    return ErrnoStatus("stack for the kill guard");
  }
  // Created with every signal blocked (SIGINT from a terminal reaches the
  // whole process group), and no exit signal: reaped with __WALL.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  g->pid_ = clone(GuardMain, static_cast<char*>(g->stack_) + kStackSize, CLONE_VM | CLONE_UNTRACED, &g->shared_);
  const int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (g->pid_ < 0) return ErrnoStatus(err, "start the kill guard");
  return g;
}

void KillGuard::Finish(bool commit) {
  if (pid_ > 0) {
    if (commit) {
      const char c = 'c';
      while (write(commit_w_.get(), &c, 1) < 0 && errno == EINTR) {
      }
    }
    commit_w_.reset();  // without a commit, the guard reads the end and kills
    while (waitpid(pid_, nullptr, __WALL) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  commit_w_.reset();
  commit_r_.reset();
  for (Target& t : targets_) {
    if (t.pidfd >= 0) close(t.pidfd);
    t.pidfd = -1;
  }
  if (stack_ != nullptr) munmap(stack_, kStackSize);
  stack_ = nullptr;
}

void KillGuard::Commit() { Finish(true); }

KillGuard::~KillGuard() { Finish(false); }

}  // namespace cf::tracing
