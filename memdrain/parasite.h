// The vmsplice drain parasite: a freestanding blob (blobs/parasite/)
// injected into a frozen process to put its pages into pipes.
//
// Inject() maps one anonymous area in the target by remote mmap (code, made
// read+exec, then the args block, a return frame (ptrace/sigframe.h) and a
// stack), writes the blob there with process_vm_writev, and opens a pidfd.
// Fill() runs one command on the leader thread (RemoteSyscall::RunCode,
// every signal blocked): the parasite creates one pipe per job, vmsplices
// the job's pages into it without copying them, and closes the write end;
// criu-fast takes each read end with pidfd_getfd while the parasite waits,
// then the parasite closes its copies and waits to be taken back. So between
// commands the target holds no descriptor of ours; and should criu-fast die
// during a command, the parasite closes what it made and returns the thread
// to its own code (parasite/parasite_abi.h). Cure() unmaps the area and puts
// the registers back: the target's maps and descriptor table are what they
// were. The destructor cures when Cure() was not called, so every path
// (errors, faults) removes the parasite.
//
// Only the leader thread runs the parasite; the other threads stay stopped.
// Pipes are made by the target, so they count against its user's pipe
// limits (fs.pipe-user-pages-soft: 64 MiB for an unprivileged user; root is
// exempt), and each holds at most fs.pipe-max-size (1 MiB here).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "ptrace/remote_syscall.h"
#include "pagemap/page_ranges.h"

struct cf_par_args;

namespace cf::memdrain {
using ::cf::tracing::RemoteSyscall;  // ptrace tooling, the layer below

// criu-fast's pid as the pid namespace of process |pid| numbers it, 0 when
// criu-fast is not visible there (a parasite then cannot watch for its
// death).
pid_t TracerPidFor(pid_t pid);

// Bytes one pipe may hold: fs.pipe-max-size, at most 2 MiB (one chunk),
// rounded down to a power of two.
uint64_t PipeCapacity();

class Parasite {
 public:
  static constexpr size_t kMaxJobs = 64;     // pipes per command (CF_PAR_MAX_JOBS)
  static constexpr size_t kMaxIovs = 4096;   // ranges per command (CF_PAR_MAX_IOVS)

  // Injects the parasite into process |pid|, whose leader thread must be in
  // a ptrace stop of ours.
  static Result<std::unique_ptr<Parasite>> Inject(pid_t pid);

  ~Parasite();
  Parasite(const Parasite&) = delete;
  Parasite& operator=(const Parasite&) = delete;

  pid_t pid() const { return pid_; }

  // Pins each job's pages in a pipe of its own: at most kMaxJobs jobs,
  // kMaxIovs ranges in all, PipeCapacity() bytes per job. Returns the read
  // ends (in criu-fast), one per job; each yields the job's bytes, then EOF.
  Result<std::vector<UniqueFd>> Fill(std::span<const std::vector<pagemap::PageRange>> jobs);

  // Closes the parasite's descriptors in the target, unmaps its area and
  // restores the leader's registers. Idempotent.
  Status Cure();

  // For tests: starts a Fill() command and returns while the parasite runs
  // (as a criu-fast killed at that instant would leave it). The object must
  // then only be destroyed by a process that is no longer the tracer.
  Status StartFillForTest(std::span<const std::vector<pagemap::PageRange>> jobs);

 private:
  Parasite(pid_t pid, RemoteSyscall rs) : pid_(pid), rs_(std::move(rs)) {}
  Status Run(cf_par_args* args, std::vector<UniqueFd>* out);
  Status PrepareFill(std::span<const std::vector<pagemap::PageRange>> jobs, cf_par_args* a);
  Status WriteArgs(cf_par_args* a);

  pid_t pid_;
  RemoteSyscall rs_;
  UniqueFd pidfd_;
  uint64_t area_ = 0;
  uint64_t area_size_ = 0;
  uint64_t args_addr_ = 0;
  uint64_t stack_top_ = 0;
  uint64_t frame_addr_ = 0;  // the return frame (ptrace/sigframe.h) in the area
  pid_t tracer_pid_ = 0;     // criu-fast's pid in the target's pid namespace
  bool cured_ = false;
};

}  // namespace cf::memdrain
