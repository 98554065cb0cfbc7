// Running system calls inside a frozen target thread.
//
// The thread must be in a ptrace stop of ours, seized with
// PTRACE_O_TRACESYSGOOD (syscall stops are told from SIGTRAPs by it). A call sets the registers to
// a syscall number and arguments, points rip at a `syscall` instruction that
// already exists in the target, and resumes the thread with PTRACE_SYSCALL:
// it stops on entry to the call and again on exit, where criu-fast reads the
// result and puts the thread's own registers back at once. No instruction
// of the target is written and the thread is never single-stepped (a trap
// flag left set would kill it with SIGTRAP if criu-fast died).
//
// criu-fast may die at any instant (SIGKILL, OOM killer): the kernel then
// detaches the thread and it runs from whatever registers it has. Between
// two calls those are its own, and a thread left at a syscall-exit stop
// still gets the kernel's restart of an interrupted call (detaching sets
// TIF_SIGPENDING, which runs the restart logic on the way out). During a
// call the registers are ours; to make that window harmless too, the call
// runs at a `syscall; ret` sequence of the target's code (libc has several)
// with rsp pointing at a return frame (ptrace/sigframe.h) written below
// the thread's stack (under the red zone, as the kernel places a signal
// frame), whose first word is the address of a `mov $15,%rax; syscall`
// sequence (libc's __restore_rt). If criu-fast dies mid-call, the call
// completes, `ret` jumps to rt_sigreturn, and the frame gives the thread
// back its registers, signal mask and FPU state. The bytes under the stack
// are put back by Restore(). Where the target has no such sequences or the
// stack has no room (`guarded()` false), calls run at any `syscall` and the
// window is the call itself.
//
// Scratch memory: Scratch() gives memory for calls that return data through
// pointers: below the frame on the stack when it fits there, else an
// anonymous mapping made by remote mmap; Restore() gives both back. Data
// moves with process_vm_readv/writev.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/user.h>

#include <cstddef>
#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/status.h"

namespace cf::pagemap {
struct VmaInfo;
}

namespace cf::tracing {

// Addresses of instruction sequences in a process that remote calls use.
struct RemoteSites {
  uint64_t syscall_insn = 0;  // any `syscall` (0f 05)
  uint64_t syscall_ret = 0;   // `syscall; ret` (0f 05 c3)
  uint64_t sigreturn = 0;     // `mov $15,%rax; syscall` (48 c7 c0 0f 00 00 00 0f 05)
};

// Searches the executable mappings of |pid| (libc first, the vDSO, then the
// rest). Fails only when there is no `syscall` at all. |vmas|: its mappings
// as the caller read them (else /proc/PID/maps is read).
Result<RemoteSites> FindRemoteSites(pid_t pid);
Result<RemoteSites> FindRemoteSites(pid_t pid, const std::vector<pagemap::VmaInfo>& vmas);

// What this process ran inside targets so far (for --display-stats): some
// thread's registers were ours for |ns| in all (calls run in several
// threads at once count once); |unguarded_ns| of it was not covered by a
// return frame, the time when a criu-fast killed would have harmed the
// target.
struct InjectionTotals {
  uint64_t calls = 0;  // remote system calls
  uint64_t code_runs = 0;  // parasite commands
  uint64_t ns = 0;
  uint64_t unguarded = 0;  // calls and code runs without a return frame
  uint64_t unguarded_ns = 0;
};
InjectionTotals ReadInjectionTotals();

class RemoteSyscall {
 public:
  enum class Guard {
    kReturnFrame,  // a return frame under the stack (see above), when possible
    kNone,         // none: for restore, whose tracee dies with criu-fast anyway
  };

  // Prepares calls in stopped thread |tid| of process |pid|. |sites| may be
  // given when several threads of one process are attached (found once).
  static Result<RemoteSyscall> Attach(pid_t pid, pid_t tid, const RemoteSites* sites = nullptr,
                                      Guard guard = Guard::kReturnFrame);

  RemoteSyscall(RemoteSyscall&& o) noexcept;
  RemoteSyscall& operator=(RemoteSyscall&&) = delete;
  RemoteSyscall(const RemoteSyscall&) = delete;
  ~RemoteSyscall();

  pid_t pid() const { return pid_; }
  pid_t tid() const { return tid_; }
  // The registers the thread had when we took it.
  const user_regs_struct& saved_regs() const { return saved_; }
  // True when a death of criu-fast during a call leaves the thread intact.
  bool guarded() const { return frame_addr_ != 0; }
  const RemoteSites& sites() const { return sites_; }

  // Runs syscall |nr| in the target; returns its raw result (-errno on error).
  Result<long> Call(long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                    uint64_t a4 = 0, uint64_t a5 = 0);

  // Call() without the "remote-syscall" fault point: for cleanup, which must
  // run even while faults are injected.
  Result<long> CleanupCall(long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                           uint64_t a4 = 0, uint64_t a5 = 0);

  // Runs call |nr|, which makes a descriptor in the target, hands its result
  // to |take| at the call's exit stop (criu-fast takes its copy there, e.g.
  // pidfd_getfd), then closes the target's descriptor: the target ends with
  // the descriptor table it had, even if criu-fast dies at any instant. For
  // that the call returns through a second frame, under the guard's, that
  // runs close(|expect_fd|) before the guard's frame gives the thread its
  // own state back; criu-fast alive closes it by a call of its own and that
  // frame is never used. |expect_fd| must be the lowest descriptor number
  // free in the target (the one the call gets) while every thread that
  // shares its descriptor table is stopped; should the call return another
  // one, the frame is rewritten with it at the exit stop. Unguarded, or
  // with no room for the second frame, the window is the time between the
  // two calls. Returns the call's raw result (-errno on error).
  Result<long> CallClosing(long nr, const std::array<uint64_t, 6>& args, int expect_fd,
                           const std::function<Status(long)>& take);

  // A return frame (ptrace/sigframe.h) for code that criu-fast runs in the
  // thread: placed at |addr| and entered by rt_sigreturn with rsp = addr + 8,
  // it returns the thread to its own registers, signal mask and FPU state.
  std::vector<uint8_t> ReturnFrame(uint64_t addr) const;

  // Runs code already placed in the target: rip = |ip|, rsp = |sp|, rdi =
  // |arg|, with every signal blocked; the thread's registers and mask are
  // put back after. The code ends either by stopping on int3, or by blocking
  // in a system call once |ended| (called now and then while it runs) says
  // so: criu-fast then interrupts it. Signals that arrive meanwhile are held
  // and queued again by Restore(), as for Call(). Fails if the code has not
  // ended after |timeout_ms| (the thread is then interrupted), or with the
  // error of |ended|.
  // |guarded|: the code returns the thread to its own state by itself
  // should criu-fast die (it only counts in InjectionTotals).
  // |left_open|: called once the code has stopped, before the thread gets
  // its mask and registers back; it names a descriptor the code left open
  // (its watch on criu-fast), -1 for none. That one is closed from there by
  // a call whose registers lead through the return frame: should criu-fast
  // die at any instant, either the code (still waiting) or the frame (once
  // the call has begun) sees to it, and the target keeps no descriptor.
  // After an error it is still asked, and the descriptor closed once the
  // thread has its own registers back.
  using LeftOpen = std::function<Result<int>()>;
  Status RunCode(uint64_t ip, uint64_t sp, uint64_t arg, const std::function<Result<bool>()>& ended,
                 int timeout_ms, bool guarded, const LeftOpen& left_open = {});

  // RunCode() in parts, for code run in many threads at once: Start sets
  // the registers (rip = |ip|, rsp = |sp|, rdi = |arg|), blocks every signal
  // and resumes the thread; Running says whether it still runs (a signal
  // that stopped it is held back and the thread resumed; false once it
  // stopped on int3); Stop interrupts it unless it stopped already, waits
  // for the stop, and puts back the mask and registers. Stop must follow
  // every Start that succeeded, also after an error. |count|: counted in
  // InjectionTotals (threads that run the same code together count once);
  // |left_open| as for RunCode. InterruptCode() is Stop's first step alone:
  // many threads are interrupted first, then stopped, so that their stops
  // overlap.
  Status StartCode(uint64_t ip, uint64_t sp, uint64_t arg);
  Result<bool> CodeRunning();
  Status InterruptCode();
  Status StopCode(bool guarded, bool count = true, const LeftOpen& left_open = {});

  // Address of |size| bytes of scratch memory in the target.
  Result<uint64_t> Scratch(size_t size);
  Status ReadScratch(uint64_t addr, void* buf, size_t len);
  Status WriteScratch(uint64_t addr, const void* buf, size_t len);

  // Gives the scratch memory back (unmapped, or the stack bytes put back)
  // and restores the saved registers. Called by the destructor when not
  // called explicitly.
  Status Restore();

  // Runs one system call in each of several threads at once: every thread
  // is started before any is waited for, so the threads' round trips
  // overlap instead of adding up (a process with thousands of threads).
  // |args[i]| are the arguments for |threads[i]|; |results| gets the raw
  // results (-errno on error).
  // |more|: another CallInEach follows on the same threads; a thread whose
  // calls are guarded by a return frame then keeps the call's registers
  // until the next call sets its own (should criu-fast die in between, it
  // returns through the frame like after any call), saving a SETREGS.
  static Status CallInEach(std::span<RemoteSyscall* const> threads, long nr,
                           std::span<const std::array<uint64_t, 6>> args, std::vector<long>* results,
                           bool more = false);

  // One call of a sequence (RunSequences).
  struct SeqCall {
    long nr;
    std::array<uint64_t, 6> args;
  };
  // Runs |calls[i]| in the thread of |threads[i]|, in order, all threads at
  // once: a thread's next call starts as soon as its last one returns, and
  // while one thread is waited for the others run theirs. Given the threads
  // of many processes, their round trips overlap on every CPU instead of
  // adding up. |results[i]| gets one raw result (-errno on error) per call
  // of |calls[i]|. A guarded thread keeps the call registers from one of its
  // calls to the next (they lead through its return frame); every thread
  // has its own registers back when this returns, also after an error (the
  // first one is returned, once no thread is left in a call).
  static Status RunSequences(std::span<RemoteSyscall* const> threads, std::span<const std::vector<SeqCall>> calls,
                             std::vector<std::vector<long>>* results);

  // For tests: sets up call |nr| and runs the thread to the entry of the
  // call, then returns, leaving the thread in the middle of the call (as a
  // criu-fast killed at that instant would). The object must then only be
  // destroyed by a process that is no longer the tracer.
  Status StartCallForTest(long nr, uint64_t a0 = 0);
  // For tests: RunCode() up to the point where the code runs, then returns.
  Status StartCodeForTest(uint64_t ip, uint64_t sp, uint64_t arg);

 private:
  RemoteSyscall(pid_t pid, pid_t tid, const user_regs_struct& regs, const RemoteSites& sites)
      : pid_(pid), tid_(tid), saved_(regs), sites_(sites) {}

  Status SetUpGuard(Guard guard);
  // RunSequences and CallInEach: |keep|, a guarded thread keeps the
  // registers of its last call (another batch of calls follows).
  static Status RunLists(std::span<RemoteSyscall* const> threads, std::span<const std::vector<SeqCall>> calls,
                         std::vector<std::vector<long>>* results, bool keep);
  // |frame|: the return frame the call returns through (0: the guard's).
  Status SetCallRegs(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                     uint64_t frame = 0);
  // CallClosing: a frame under the stack bytes in use that runs close(|fd|)
  // and returns through the guard's frame; 0 when there is no room.
  uint64_t PlaceCloseFrame(int fd);
  std::vector<uint8_t> CloseFrame(uint64_t addr, int fd) const;
  Result<long> DoCall(bool fault_point, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                      uint64_t a5);
  // Resumes with PTRACE_SYSCALL until the exit of the call the registers
  // point at; signals that arrive meanwhile are held back.
  Status RunToSyscallExit();
  // One step of that: waits for the thread's next stop and resumes it
  // unless it is the exit of the call (then *at_exit is set).
  Status StepToSyscallExit(bool* at_exit);
  // After the exit stop: the result (from the exit stop's syscall info),
  // and the thread's own registers back unless |keep| (only when guarded);
  // counted in InjectionTotals from |start_ns| (0: the caller counts).
  Result<long> FinishCall(uint64_t start_ns, bool keep = false);

  enum class Stop { kSyscall, kTrap, kInterrupt, kOther, kNone };
  // Waits for the thread's next stop (|wait_flags| may hold WNOHANG: kNone if
  // it is still running). kSyscall: a syscall-entry or -exit stop; kTrap: a
  // breakpoint (int3); kInterrupt: the stop PTRACE_INTERRUPT asked for;
  // kOther: anything else (a signal, which is held back, or a group stop),
  // after which the caller resumes the thread.
  Result<Stop> WaitStop(int wait_flags);
  Status PutBackStack();

  pid_t pid_;
  pid_t tid_;
  user_regs_struct saved_;
  RemoteSites sites_;
  uint64_t sigmask_ = 0;
  std::vector<uint8_t> xstate_;
  // The return frame under the stack and the stack bytes it covers.
  uint64_t frame_addr_ = 0;
  uint64_t stack_low_ = 0;  // lowest stack byte in use (frame or scratch)
  std::vector<uint8_t> stack_saved_;  // original bytes of [stack_low_, frame end)
  uint64_t frame_end_ = 0;
  uint64_t stack_scratch_ = 0;
  size_t stack_scratch_size_ = 0;
  uint64_t scratch_ = 0;  // mapped scratch
  size_t scratch_size_ = 0;

  struct HeldSignal {
    int sig;
    siginfo_t info;  // si_signo 0: not available
  };
  std::vector<HeldSignal> held_signals_;  // signals that arrived during our calls
  bool restored_ = false;
  // The call set up last has reached its syscall-entry stop: the next
  // syscall stop is its exit (SetCallRegs clears it).
  bool call_entered_ = false;
  long exit_rval_ = 0;  // the result at the last syscall-exit stop
  // StartCode/StopCode: when the code started, and whether it has stopped
  // by itself (int3) since.
  uint64_t code_start_ns_ = 0;
  bool code_trapped_ = false;
  bool code_interrupted_ = false;
  bool code_resumed_ = false;  // StartCode got as far as resuming the thread
};

}  // namespace cf::tracing
