// A way back for a thread whose tracer may die at any moment.
//
// While criu-fast runs a system call or the drain parasite in a target
// thread, the thread's registers are not its own. If criu-fast is killed in
// that window (SIGKILL, the OOM killer), the kernel detaches the thread and
// it runs on from wherever its registers point. To make that harmless, every
// injected path ends in `rt_sigreturn` on a frame built here: the kernel then
// loads the thread's own registers, signal mask and FPU/AVX state from the
// frame, exactly as it does when a signal handler returns, and the thread
// carries on where it was stopped. When criu-fast lives, it takes the thread
// back before the frame is used, and the frame is never read.
//
// The frame is the kernel's x86-64 `struct rt_sigframe` (pretcode, ucontext,
// siginfo) followed by the xsave area (64-byte aligned, with the software
// bytes and the trailing magic that the kernel checks before it restores
// more than the legacy FXSAVE part). rt_sigreturn reads the frame at
// rsp - 8, i.e. the frame starts where a `ret` found its return address.
//
// Two details make the frame exact:
//  - a thread stopped inside a system call (rax = -ERESTART*, orig_rax = the
//    call) gets the same restart the kernel applies when no handler runs:
//    rax = the call (or restart_syscall) and rip back over the `syscall`;
//  - the alternate signal stack is left alone: rt_sigreturn applies
//    uc_stack through sigaltstack() and ignores its errors, so an invalid
//    ss_flags value makes it a no-op (criu-fast need not know the stack).
#pragma once

#include <sys/user.h>

#include <cstdint>
#include <span>
#include <vector>

namespace cf::tracing {

// The registers a thread stopped in a system call resumes with when no
// handler runs (see above); other registers are returned unchanged.
user_regs_struct RestartedRegs(const user_regs_struct& regs);

// Builds the bytes of a frame to be placed at |addr| (64-byte aligned) that
// returns the thread to |regs| (with RestartedRegs applied), signal mask
// |sigmask| and xsave state |xstate| (as PTRACE_GETREGSET NT_X86_XSTATE
// returns it; empty: FPU state reset, which callers avoid). |pretcode| is
// stored in the first word (the address a `ret` jumps to). The thread must
// execute rt_sigreturn with rsp = addr + 8.
std::vector<uint8_t> BuildSigFrame(uint64_t addr, uint64_t pretcode, const user_regs_struct& regs, uint64_t sigmask,
                                   std::span<const uint8_t> xstate);

// Size BuildSigFrame() gives for an xstate of |xstate_len| bytes.
size_t SigFrameSize(size_t xstate_len);

}  // namespace cf::tracing
