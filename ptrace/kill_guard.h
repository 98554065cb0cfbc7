// A step over a whole tree, all or nothing, even if criu-fast is killed
// half-way through it.
//
// Some last steps take one system call per process or thread: a restore
// lets its tree go with one PTRACE_DETACH per thread, a dump without -R
// kills its tree with one kill() per process. criu-fast killed half-way
// through (SIGKILL, nothing to catch) would leave half a program: the
// restored processes already detached running and the rest killed
// (PTRACE_O_EXITKILL); the dumped processes not yet killed running on,
// detached by the kernel, beside an image of the whole tree. A KillGuard
// closes that gap: a small process, started just before the step, that
// holds a pidfd of each process of the tree and kills them all unless
// criu-fast commits once the step is done. It learns of criu-fast's death
// from its pipe, which then reads as ended.
//
// The signal may be another than SIGKILL where the step sends another: a
// dump with --leave-stopped queues SIGSTOP to each process of its complete
// image before letting them go, and a guard sending SIGSTOP finishes that
// step (a process stopped already stays so).
//
// The guard shares criu-fast's memory (CLONE_VM: nothing of a large address
// space is copied), runs raw system calls only (it has no thread of its own
// for libc: errno and the like belong to the thread that made it) and
// blocks every signal but SIGKILL.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <memory>
#include <vector>

#include "common/fd.h"
#include "common/status.h"

namespace cf::tracing {

class KillGuard {
 public:
  // Starts the guard of |pids|, the processes of a tree (thread-group
  // leaders), that sends them |sig| unless committed. A process whose pidfd
  // cannot be opened (a low RLIMIT_NOFILE) is signalled by its pid instead.
  static Result<std::unique_ptr<KillGuard>> Start(const std::vector<pid_t>& pids, int sig = SIGKILL);

  // The step is done: the guard exits without killing any process. Returns
  // once it is gone.
  void Commit();

  // Without a commit the guard signals every process (a restore's own
  // rollback kills them too); either way it is reaped here.
  ~KillGuard();

  KillGuard(const KillGuard&) = delete;
  KillGuard& operator=(const KillGuard&) = delete;

  // What the guard reads, never written once it runs (it shares this
  // memory); public for its entry function only.
  struct Target {
    int pidfd;  // -1: by pid
    pid_t pid;
  };
  struct Shared {
    int commit_r;
    int commit_w;  // the guard closes its own copy (its table is a copy)
    const Target* targets;
    size_t count;
    int sig;
  };

 private:
  KillGuard() = default;
  void Finish(bool commit);

  std::vector<Target> targets_;
  Shared shared_{-1, -1, nullptr, 0, SIGKILL};
  UniqueFd commit_r_;
  UniqueFd commit_w_;
  void* stack_ = nullptr;
  pid_t pid_ = -1;
};

}  // namespace cf::tracing
