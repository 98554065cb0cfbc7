// A few system calls run by every thread of a process at once, by the
// parasite (blobs/parasite/, "thread calls" in parasite_abi.h).
//
// The properties only a thread can tell (its alternate signal stack, its
// clear_child_tid address, its parent-death signal) are read by system calls
// made in the thread itself. One remote call (RemoteSyscall::CallInEach)
// costs two ptrace stops of the thread; a thread of a process with thousands
// runs all of its calls in one go here instead: criu-fast points each thread
// at the parasite's thread entry, lets the group run, and takes the threads
// back once each has written its results (one stop per thread).
//
// Killed criu-fast: the leader (the watcher) waits on a pidfd of criu-fast
// and the others on a futex it wakes, so that should criu-fast die, every
// thread returns to its own registers, signal mask and FPU state through a
// return frame of its own (ptrace/sigframe.h), and the watcher closes its
// pidfd. The one descriptor the parasite makes (that pidfd) is closed by
// criu-fast with a remote close() made from the watcher's stop, whose
// registers lead through a return frame (RemoteSyscall::StopCode
// |left_open|): the target keeps it at no instant of criu-fast's death.
//
// Inject() maps one area in the target (code, a group header, one slot per
// thread: calls, output, return frame, stack); Remove() (or the destructor)
// unmaps it. Needs criu-fast visible in the target's pid namespace (the
// watcher's pidfd_open); Inject() fails otherwise, and the caller uses remote
// calls.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/status.h"
#include "ptrace/remote_syscall.h"

namespace cf::memdrain {
using ::cf::tracing::RemoteSyscall;  // ptrace tooling, the layer below

struct ThreadCall {
  long nr;
  std::array<uint64_t, 6> args;
};

class ThreadCalls {
 public:
  static constexpr size_t kMaxCalls = 4;    // per thread (CF_PAR_THREAD_CALLS)
  static constexpr size_t kOutBytes = 256;  // output bytes per thread (CF_PAR_THREAD_OUT)

  // Maps the area in the process of |leader| (its leader thread, in a stop
  // of ours, attached with a guard) for groups of up to |max_threads|.
  static Result<std::unique_ptr<ThreadCalls>> Inject(RemoteSyscall* leader, size_t max_threads);

  ~ThreadCalls();
  ThreadCalls(const ThreadCalls&) = delete;
  ThreadCalls& operator=(const ThreadCalls&) = delete;

  // Where the output bytes of the thread at |slot| of a group are in the
  // target (for the calls' pointer arguments).
  uint64_t OutAddr(size_t slot) const;

  // Runs |calls[i]| (at most kMaxCalls) in |threads[i]|, all threads at once;
  // threads[0] must be the leader given to Inject(), the others attached
  // (their registers, mask and xstate known: the return frames are built
  // from them). |results| gets kMaxCalls raw results (-errno) per thread,
  // |out| kOutBytes per thread. Every thread is back in its own registers
  // when this returns, also on an error.
  Status Run(std::span<RemoteSyscall* const> threads, std::span<const std::vector<ThreadCall>> calls,
             std::vector<long>* results, std::vector<uint8_t>* out);

  // Unmaps the area. Idempotent.
  Status Remove();

  // After a Run() that failed: true when only because the leader could not
  // watch criu-fast (no pidfd: the process is at its descriptor limit);
  // no other thread ran, and remote calls can do the work instead.
  bool watch_failed() const { return watch_failed_; }

  // For tests: Run() up to the point where every thread has made its calls
  // and waits in the parasite (as a criu-fast killed at that instant would
  // leave them). The object must then only be destroyed by a process that
  // is no longer the tracer.
  Status StartRunForTest(std::span<RemoteSyscall* const> threads, std::span<const std::vector<ThreadCall>> calls);

 private:
  explicit ThreadCalls(RemoteSyscall* leader) : leader_(leader) {}
  uint64_t SlotAddr(size_t i) const { return slots_ + i * slot_size_; }
  Status Launch(std::span<RemoteSyscall* const> threads, std::span<const std::vector<ThreadCall>> calls,
                size_t* started);
  Status WaitDone(std::span<RemoteSyscall* const> threads, size_t first);

  RemoteSyscall* leader_;
  pid_t pid_ = 0;
  pid_t tracer_pid_ = 0;
  uint64_t area_ = 0;
  uint64_t area_size_ = 0;
  uint64_t group_ = 0;  // the cf_par_group
  uint64_t slots_ = 0;
  uint64_t slot_size_ = 0;
  uint64_t frame_off_ = 0;  // of the return frame in a slot
  size_t max_threads_ = 0;
  bool watch_failed_ = false;
};

}  // namespace cf::memdrain
