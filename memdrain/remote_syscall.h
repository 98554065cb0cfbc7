// Running system calls inside a frozen target thread.
//
// The thread must be in a ptrace stop of ours. A call sets the registers to
// a syscall number and arguments, points rip at a `syscall` instruction that
// already exists in the target (found in the vDSO, else in any executable
// mapping), and single-steps it: the kernel runs the syscall as the target
// and traps right after it. No byte of the target is ever written, so a
// dump with -R leaves its memory exactly as it was. Restore() puts the saved
// registers back; a thread stopped inside a syscall then restarts it on
// resume as the kernel would after a signal.
//
// Scratch memory: Alloc() maps an anonymous area in the target (remote mmap)
// for the calls that return data through pointers; it is unmapped by
// Restore(). Data moves with process_vm_readv/writev.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/user.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"

namespace cf::memdrain {

class RemoteSyscall {
 public:
  // Prepares calls in stopped thread |tid| of process |pid|.
  static Result<RemoteSyscall> Attach(pid_t pid, pid_t tid);

  RemoteSyscall(RemoteSyscall&& o) noexcept;
  RemoteSyscall& operator=(RemoteSyscall&&) = delete;
  RemoteSyscall(const RemoteSyscall&) = delete;
  ~RemoteSyscall();

  // The registers the thread had when we took it.
  const user_regs_struct& saved_regs() const { return saved_; }

  // Runs syscall |nr| in the target; returns its raw result (-errno on error).
  Result<long> Call(long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                    uint64_t a4 = 0, uint64_t a5 = 0);

  // Call() without the "remote-syscall" fault point: for cleanup, which must
  // run even while faults are injected.
  Result<long> CleanupCall(long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                           uint64_t a4 = 0, uint64_t a5 = 0);

  // Runs code already placed in the target: rip = |ip|, rsp = |sp|, rdi =
  // |arg|, with every signal blocked (the thread's mask is put back after),
  // until the code stops on int3. Signals that arrive meanwhile are held and
  // queued again by Restore(), as for Call(). Fails if the code has not
  // stopped after |timeout_ms| (the thread is then interrupted).
  Status RunCode(uint64_t ip, uint64_t sp, uint64_t arg, int timeout_ms);

  // Address of |size| bytes of scratch memory in the target (mapped on first use).
  Result<uint64_t> Scratch(size_t size);
  Status ReadScratch(uint64_t addr, void* buf, size_t len);
  Status WriteScratch(uint64_t addr, const void* buf, size_t len);

  // Unmaps the scratch area and restores the saved registers. Called by the
  // destructor when not called explicitly.
  Status Restore();

 private:
  Result<long> DoCall(bool fault_point, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                      uint64_t a5);
  enum class Stop { kTrap, kOther, kNone };
  // Waits for the thread's next stop (|wait_flags| may hold WNOHANG: kNone if
  // it is still running). kTrap: the SIGTRAP stop after a step or int3;
  // kOther: another stop (a signal, which is held back, or an event), after
  // which the caller resumes the thread.
  Result<Stop> WaitStop(int wait_flags);

  RemoteSyscall(pid_t pid, pid_t tid, const user_regs_struct& regs, uint64_t syscall_ip)
      : pid_(pid), tid_(tid), saved_(regs), syscall_ip_(syscall_ip) {}

  pid_t pid_;
  pid_t tid_;
  user_regs_struct saved_;
  uint64_t syscall_ip_;
  uint64_t scratch_ = 0;
  size_t scratch_size_ = 0;
  // Single-steps the `syscall` the registers point at, until the trap after
  // it; signals that arrive meanwhile are held back (held_signals_).
  Status StepOverSyscall();

  struct HeldSignal {
    int sig;
    siginfo_t info;  // si_signo 0: not available
  };
  std::vector<HeldSignal> held_signals_;  // signals that arrived during our calls
  bool restored_ = false;
};

}  // namespace cf::memdrain
