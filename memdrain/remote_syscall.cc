#include "memdrain/remote_syscall.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <vector>

#include "common/fault.h"
#include "common/log.h"
#include "common/timer.h"
#include "pagemap/vma.h"

namespace cf::memdrain {
namespace {

constexpr size_t kScratchSize = 64 * 1024;

// Finds the address of a `syscall` instruction (0f 05) in the target: in the
// vDSO first (its fallback paths hold one), else in any executable mapping.
Result<uint64_t> FindSyscallInsn(pid_t pid) {
  ASSIGN_OR_RETURN(auto vmas, pagemap::ReadVmas(pid));
  std::vector<const pagemap::VmaInfo*> order;
  for (const auto& v : vmas) {
    if (v.path == "[vdso]") order.insert(order.begin(), &v);
    else if ((v.prot & PROT_EXEC) && (v.prot & PROT_READ) && v.path != "[vsyscall]") order.push_back(&v);
  }
  std::vector<uint8_t> buf;
  for (const auto* v : order) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(v->size(), 1 << 20));
    buf.resize(len);
    iovec local{buf.data(), len};
    iovec remote{reinterpret_cast<void*>(v->start), len};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    for (ssize_t i = 0; i + 1 < n; ++i) {
      if (buf[i] == 0x0f && buf[i + 1] == 0x05) return v->start + static_cast<uint64_t>(i);
    }
  }
  return Errorf("no syscall instruction found in process %d", pid);
}

}  // namespace

Result<RemoteSyscall> RemoteSyscall::Attach(pid_t pid, pid_t tid) {
  user_regs_struct regs;
  if (ptrace(PTRACE_GETREGS, tid, nullptr, &regs) != 0) {
    return ErrnoStatus("ptrace GETREGS of " + std::to_string(tid));
  }
  ASSIGN_OR_RETURN(uint64_t ip, FindSyscallInsn(pid));
  return RemoteSyscall(pid, tid, regs, ip);
}

RemoteSyscall::RemoteSyscall(RemoteSyscall&& o) noexcept
    : pid_(o.pid_), tid_(o.tid_), saved_(o.saved_), syscall_ip_(o.syscall_ip_),
      scratch_(o.scratch_), scratch_size_(o.scratch_size_), held_signals_(std::move(o.held_signals_)),
      restored_(o.restored_) {
  o.restored_ = true;
}

RemoteSyscall::~RemoteSyscall() {
  if (!restored_) {
    Status s = Restore();
    if (!s.ok()) LOG_ERROR("remote: %s", s.ToString().c_str());
  }
}

Result<long> RemoteSyscall::Call(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                 uint64_t a5) {
  return DoCall(true, nr, a0, a1, a2, a3, a4, a5);
}

Result<long> RemoteSyscall::CleanupCall(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                        uint64_t a5) {
  return DoCall(false, nr, a0, a1, a2, a3, a4, a5);
}

Result<RemoteSyscall::Stop> RemoteSyscall::WaitStop(int wait_flags) {
  int status = 0;
  pid_t r;
  while ((r = waitpid(tid_, &status, __WALL | wait_flags)) < 0 && errno == EINTR) {
  }
  if (r < 0) return ErrnoStatus("wait for thread " + std::to_string(tid_));
  if (r == 0) return Stop::kNone;  // WNOHANG: still running
  if (WIFEXITED(status) || WIFSIGNALED(status)) return Errorf("thread %d died while we ran code in it", tid_);
  if (!WIFSTOPPED(status)) return Stop::kNone;
  const int sig = WSTOPSIG(status);
  if (sig == SIGTRAP && (status >> 16) == 0) return Stop::kTrap;
  // A signal arrived for the target: it must not run a handler on our
  // registers. Hold it back, with its siginfo (a timer's si_timerid and
  // si_value, a sigqueue value), and queue it again in Restore(). (Event
  // stops, such as a group stop, are simply resumed.)
  if ((status >> 16) == 0) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    if (ptrace(PTRACE_GETSIGINFO, tid_, nullptr, &info) != 0) info.si_signo = 0;  // queued plainly
    held_signals_.push_back({sig, info});
    LOG_DEBUG("remote: holding signal %d (si_code %d) of thread %d", sig, info.si_code, tid_);
  }
  return Stop::kOther;
}

Result<long> RemoteSyscall::DoCall(bool fault_point, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                                   uint64_t a4, uint64_t a5) {
  if (fault_point) FAULT_POINT("remote-syscall");
  user_regs_struct regs = saved_;
  regs.rax = static_cast<uint64_t>(nr);
  regs.orig_rax = static_cast<uint64_t>(-1);  // no syscall-restart fixup on resume
  regs.rdi = a0;
  regs.rsi = a1;
  regs.rdx = a2;
  regs.r10 = a3;
  regs.r8 = a4;
  regs.r9 = a5;
  regs.rip = syscall_ip_;
  if (ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0) return ErrnoStatus("ptrace SETREGS");
  RETURN_IF_ERROR(StepOverSyscall());
  if (ptrace(PTRACE_GETREGS, tid_, nullptr, &regs) != 0) return ErrnoStatus("ptrace GETREGS");
  return static_cast<long>(regs.rax);
}

// Single-steps the `syscall` the registers point at, until the trap after it;
// a signal that arrives meanwhile is held back (WaitStop).
Status RemoteSyscall::StepOverSyscall() {
  for (;;) {
    if (ptrace(PTRACE_SINGLESTEP, tid_, nullptr, nullptr) != 0) return ErrnoStatus("ptrace SINGLESTEP");
    ASSIGN_OR_RETURN(Stop stop, WaitStop(0));
    if (stop == Stop::kTrap) break;
  }
  return OkStatus();
}

Status RemoteSyscall::RunCode(uint64_t ip, uint64_t sp, uint64_t arg, int timeout_ms) {
  uint64_t old_mask = 0;
  if (ptrace(PTRACE_GETSIGMASK, tid_, sizeof(old_mask), &old_mask) != 0) return ErrnoStatus("ptrace GETSIGMASK");
  uint64_t all = ~0ull;
  if (ptrace(PTRACE_SETSIGMASK, tid_, sizeof(all), &all) != 0) return ErrnoStatus("ptrace SETSIGMASK");
  user_regs_struct regs = saved_;
  regs.orig_rax = static_cast<uint64_t>(-1);
  regs.rip = ip;
  regs.rsp = sp;
  regs.rdi = arg;
  Status st;
  if (ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0) {
    st = ErrnoStatus("ptrace SETREGS");
  } else {
    // The code makes only short, non-blocking calls: poll for its stop,
    // sleeping a little longer each time, up to the deadline.
    const uint64_t deadline = MonotonicNs() + static_cast<uint64_t>(timeout_ms) * 1000000ull;
    bool running = false;
    long pause_ns = 0;
    for (;;) {
      if (!running) {
        if (ptrace(PTRACE_CONT, tid_, nullptr, nullptr) != 0) {
          st = ErrnoStatus("ptrace CONT");
          break;
        }
        running = true;
      }
      auto stop = WaitStop(WNOHANG);
      if (!stop.ok()) {
        st = stop.status();
        break;
      }
      if (*stop == Stop::kTrap) break;
      if (*stop == Stop::kOther) {
        running = false;
        continue;
      }
      if (MonotonicNs() > deadline) {
        st = Errorf("code run in thread %d did not stop within %d ms", tid_, timeout_ms);
        // Take the thread back so that its registers can be restored.
        if (ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) == 0) {
          for (;;) {
            auto s2 = WaitStop(0);
            if (!s2.ok() || *s2 != Stop::kNone) break;
          }
        }
        break;
      }
      if (pause_ns > 0) {
        timespec ts{0, pause_ns};
        nanosleep(&ts, nullptr);
      }
      pause_ns = std::min<long>(pause_ns == 0 ? 2000 : pause_ns * 2, 1000000);
    }
  }
  if (ptrace(PTRACE_SETSIGMASK, tid_, sizeof(old_mask), &old_mask) != 0 && st.ok()) {
    st = ErrnoStatus("ptrace SETSIGMASK (put back)");
  }
  return st;
}

Result<uint64_t> RemoteSyscall::Scratch(size_t size) {
  if (size > kScratchSize) return Errorf("remote scratch request too large (%zu)", size);
  if (scratch_ == 0) {
    ASSIGN_OR_RETURN(long r, Call(__NR_mmap, 0, kScratchSize, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, static_cast<uint64_t>(-1), 0));
    if (r < 0 && r > -4096) return ErrnoStatus(static_cast<int>(-r), "remote mmap in " + std::to_string(pid_));
    scratch_ = static_cast<uint64_t>(r);
    scratch_size_ = kScratchSize;
  }
  return scratch_;
}

Status RemoteSyscall::ReadScratch(uint64_t addr, void* buf, size_t len) {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  if (process_vm_readv(pid_, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(len)) {
    return ErrnoStatus("process_vm_readv scratch");
  }
  return OkStatus();
}

Status RemoteSyscall::WriteScratch(uint64_t addr, const void* buf, size_t len) {
  iovec local{const_cast<void*>(buf), len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  if (process_vm_writev(pid_, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(len)) {
    return ErrnoStatus("process_vm_writev scratch");
  }
  return OkStatus();
}

Status RemoteSyscall::Restore() {
  if (restored_) return OkStatus();
  restored_ = true;
  Status result;
  if (scratch_) {
    // Bypass the fault point: cleanup must run even when faults are injected.
    user_regs_struct regs = saved_;
    regs.rax = __NR_munmap;
    regs.orig_rax = static_cast<uint64_t>(-1);
    regs.rdi = scratch_;
    regs.rsi = scratch_size_;
    regs.rip = syscall_ip_;
    // A signal may arrive here too: StepOverSyscall holds it like in Call().
    if (ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0) {
      result = ErrnoStatus("remote munmap of scratch area");
    } else if (Status s = StepOverSyscall(); !s.ok()) {
      result = s.WithContext("remote munmap of scratch area");
    }
    scratch_ = 0;
  }
  if (ptrace(PTRACE_SETREGS, tid_, nullptr, &saved_) != 0) {
    return ErrnoStatus("restore registers of " + std::to_string(tid_));
  }
  // Queued again with their siginfo where the kernel lets us (a negative
  // si_code other than SI_TKILL: timers, sigqueue, AIO...); what the kernel
  // or another task's kill() sent comes back as a plain tgkill.
  for (HeldSignal& h : held_signals_) {
    if (h.info.si_signo == h.sig &&
        syscall(SYS_rt_tgsigqueueinfo, pid_, tid_, h.sig, &h.info) == 0) {
      continue;
    }
    syscall(SYS_tgkill, pid_, tid_, h.sig);
  }
  held_signals_.clear();
  return result;
}

}  // namespace cf::memdrain
