// Letting a restored tree go, all or nothing.
//
// criu-fast lets the tree run with one PTRACE_DETACH per thread. Killed
// half-way through (SIGKILL, nothing to catch), it would leave the part
// already detached running and the rest killed (PTRACE_O_EXITKILL): half a
// program. A DetachGuard closes that gap: a small process, created just
// before the detaches, that holds a pidfd of each process of the tree and
// kills them all unless criu-fast tells it, after the last detach, that the
// tree is complete. It learns of criu-fast's death from its pipe, which
// then reads as ended.
//
// The guard shares criu-fast's memory (CLONE_VM: nothing of a large
// address space is copied), runs raw system calls only (it has no thread
// of its own for libc: errno and the like belong to the thread that made
// it) and blocks every signal but SIGKILL. About 10 us to start and 1 us a
// process for its pidfd.
#pragma once

#include <sys/types.h>

#include <memory>
#include <vector>

#include "common/fd.h"
#include "common/status.h"

namespace cf::restore {

class DetachGuard {
 public:
  // Starts the guard of |pids|, processes of the tree (thread-group
  // leaders). A process whose pidfd cannot be opened (a low RLIMIT_NOFILE)
  // is killed by its pid instead.
  static Result<std::unique_ptr<DetachGuard>> Start(const std::vector<pid_t>& pids);

  // The tree is complete: the guard exits without killing any of it.
  // Returns once it is gone.
  void Commit();

  // Without a commit the guard kills the tree (criu-fast's own rollback
  // kills it too); either way it is reaped here.
  ~DetachGuard();

  DetachGuard(const DetachGuard&) = delete;
  DetachGuard& operator=(const DetachGuard&) = delete;

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
  };

 private:
  DetachGuard() = default;
  void Finish(bool commit);

  std::vector<Target> targets_;
  Shared shared_{-1, -1, nullptr, 0};
  UniqueFd commit_r_;
  UniqueFd commit_w_;
  void* stack_ = nullptr;
  pid_t pid_ = -1;
};

}  // namespace cf::restore
