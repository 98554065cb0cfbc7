// Seizing and freezing a process tree with ptrace, and giving it back.
//
// FrozenTree owns every thread it seized. Its destructor is the rollback of
// a failed dump: unless Commit*() ran, it detaches from every thread, which
// resumes them exactly where they were (a thread stopped inside a syscall
// restarts it). All ptrace requests for a thread must come from the OS
// thread that seized it, so a FrozenTree stays on one thread.
#pragma once

#include <sys/types.h>

#include <vector>

#include "common/status.h"
#include "proc/proc_parse.h"

namespace cf::tracing {

struct SeizedThread {
  pid_t tid = 0;
  bool group_stopped = false;  // the thread was in a job-control stop (SIGSTOP)
  int stop_signal = 0;         // when group_stopped: the signal that stopped it
};

struct SeizedProcess {
  pid_t pid = 0;
  pid_t parent = 0;  // the process of the tree it was found a child of (0: the root)
  std::vector<SeizedThread> threads;  // leader first
  // Children that exited and were not waited for. They are not seized (a
  // zombie cannot be traced) and cannot change: their parent is frozen.
  std::vector<pid_t> zombies;
};

class FrozenTree {
 public:
  FrozenTree() = default;
  ~FrozenTree();
  FrozenTree(const FrozenTree&) = delete;
  FrozenTree& operator=(const FrozenTree&) = delete;

  // Seizes and interrupts every thread of |pid|; repeats the thread scan until
  // a pass finds no new thread. On error, whatever was seized is released.
  // |stat| (optional): its /proc/PID/stat, read just before.
  Status SeizeProcess(pid_t pid, const proc::ProcStat* stat = nullptr);

  // Seizes |root| and every descendant, rescanning children until a pass
  // finds no new process. Zombie children are listed with their parent; so
  // is a child that exits while it is being seized.
  Status SeizeTree(pid_t root);

  // How long a thread may take to stop once seized (CRIU's --timeout,
  // 10 s by default); 0: no limit.
  void set_stop_timeout_ms(int ms) { stop_timeout_ms_ = ms; }

  const std::vector<SeizedProcess>& processes() const { return processes_; }
  size_t thread_count() const;

  // Lets every thread run on (dump -R, or rollback). Idempotent. With
  // |stop|, every process not stopped already gets SIGSTOP first, so it
  // stops as soon as it is detached (--leave-stopped). A process that was
  // in a job-control stop stays stopped either way: the kernel puts a
  // detached thread back into the group stop in effect.
  void Release(bool stop = false);
  // Kills the tree (the default end of a successful dump) and does not wait
  // for its death.
  void Kill();

 private:
  // Seizing a thread in two steps: PTRACE_SEIZE + PTRACE_INTERRUPT, then
  // the wait for its stop (so many threads can be asked at once).
  Status StartSeize(pid_t tid);
  Status FinishSeize(pid_t tid, SeizedThread* out);
  // The child |child| of processes_[parent] failed to be seized: if it
  // exited meanwhile, what was seized of it is let go and it is listed as
  // a zombie (true); false if it is still alive (the error stands).
  bool TakeAsZombie(size_t parent, pid_t child);

  std::vector<SeizedProcess> processes_;
  bool done_ = false;
  // Threads are seized with PTRACE_O_SUSPEND_SECCOMP while the kernel lets
  // us (CAP_SYS_ADMIN, criu-fast not under seccomp itself); after the first
  // refusal, without it, and a thread under seccomp is refused.
  bool suspend_seccomp_ = true;
  int stop_timeout_ms_ = 10000;
};

// Checks that |pid| exists, is not a zombie, not a kernel thread, not us, and
// not traced by someone else; gives the reason otherwise.
// |stat| (optional): its /proc/PID/stat, read just before.
Status CheckDumpable(pid_t pid, const proc::ProcStat* stat = nullptr);

}  // namespace cf::tracing
