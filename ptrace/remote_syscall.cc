#include "ptrace/remote_syscall.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <elf.h>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/fault.h"
#include "common/log.h"
#include "common/timer.h"
#include "ptrace/sigframe.h"
#include "pagemap/vma.h"

namespace cf::tracing {
namespace {

constexpr size_t kScratchSize = 64 * 1024;
constexpr size_t kStackScratchMax = 32 * 1024;  // scratch taken from the stack at most
constexpr uint64_t kRedZone = 128;
constexpr size_t kXstateMax = 16384;
constexpr size_t kMaxScan = 8u << 20;  // bytes of one mapping searched for sites
// `mov $15,%rax; syscall`: rt_sigreturn.
constexpr uint8_t kSigreturn[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
constexpr int kSyscallStop = SIGTRAP | 0x80;  // with PTRACE_O_TRACESYSGOOD

Status ReadTarget(pid_t pid, uint64_t addr, void* buf, size_t len, const char* what) {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(len)) {
    return ErrnoStatus(std::string("read ") + what + " of " + std::to_string(pid));
  }
  return OkStatus();
}

Status WriteTarget(pid_t pid, uint64_t addr, const void* buf, size_t len, const char* what) {
  iovec local{const_cast<void*>(buf), len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  if (process_vm_writev(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(len)) {
    return ErrnoStatus(std::string("write ") + what + " of " + std::to_string(pid));
  }
  return OkStatus();
}

// Rank of a mapping in the search for sites: libc first (it has every
// sequence), then the dynamic loader, the vDSO and the rest.
int SiteRank(const pagemap::VmaInfo& v) {
  if (v.path.find("/libc.so") != std::string::npos || v.path.find("/libc-") != std::string::npos) return 0;
  if (v.path.find("/ld-") != std::string::npos || v.path.find("/ld-musl") != std::string::npos) return 1;
  if (v.path == "[vdso]") return 2;
  return 3;
}

std::atomic<uint64_t> g_calls{0}, g_code_runs{0}, g_ns{0}, g_unguarded{0}, g_unguarded_ns{0};

// |n| calls or code runs that took, together, the time since |start_ns|.
void CountInjection(bool code, bool guarded, uint64_t start_ns, uint64_t n = 1) {
  const uint64_t ns = MonotonicNs() - start_ns;
  (code ? g_code_runs : g_calls).fetch_add(n, std::memory_order_relaxed);
  g_ns.fetch_add(ns, std::memory_order_relaxed);
  if (!guarded) {
    g_unguarded.fetch_add(1, std::memory_order_relaxed);
    g_unguarded_ns.fetch_add(ns, std::memory_order_relaxed);
  }
}

}  // namespace

InjectionTotals ReadInjectionTotals() {
  InjectionTotals t;
  t.calls = g_calls.load();
  t.code_runs = g_code_runs.load();
  t.ns = g_ns.load();
  t.unguarded = g_unguarded.load();
  t.unguarded_ns = g_unguarded_ns.load();
  return t;
}

// The sites found last, and the mappings they were found in. The processes
// of a tree forked from one another map libc at the same address: the sites
// found in one are checked in the next (a few bytes read) instead of
// searched again (a megabyte read and scanned).
struct SitesCache {
  std::mutex mu;
  RemoteSites sites;
  std::vector<pagemap::VmaInfo> in;  // the mapping of each site, as in /proc/PID/maps
};
SitesCache g_sites;

bool SameMapping(const pagemap::VmaInfo& a, const pagemap::VmaInfo& b) {
  return a.start == b.start && a.end == b.end && a.prot == b.prot && a.pgoff == b.pgoff && a.inode == b.inode &&
         a.dev_major == b.dev_major && a.dev_minor == b.dev_minor && a.path == b.path;
}

// The cached sites, when |vmas| has the mappings they were found in and the
// bytes at each are still the instructions.
std::optional<RemoteSites> CachedSites(pid_t pid, const std::vector<pagemap::VmaInfo>& vmas) {
  std::lock_guard lock(g_sites.mu);
  // Only a search that found every site is reused (one that did not might
  // find more in another process's mappings).
  if (g_sites.in.empty() || !g_sites.sites.syscall_ret || !g_sites.sites.sigreturn) return std::nullopt;
  for (const pagemap::VmaInfo& c : g_sites.in) {
    if (std::none_of(vmas.begin(), vmas.end(), [&](const pagemap::VmaInfo& v) { return SameMapping(v, c); })) {
      return std::nullopt;
    }
  }
  const RemoteSites& s = g_sites.sites;
  static constexpr uint8_t kSyscallRet[] = {0x0f, 0x05, 0xc3};
  struct Want {
    uint64_t at;
    const uint8_t* bytes;
    size_t len;
  } wants[] = {{s.syscall_insn, kSyscallRet, 2}, {s.syscall_ret, kSyscallRet, 3}, {s.sigreturn, kSigreturn, 9}};
  // The bytes at every site in one read.
  uint8_t got[3][16];
  iovec local[3], remote[3];
  size_t n = 0;
  ssize_t total = 0;
  for (const Want& w : wants) {
    if (w.at == 0) continue;
    local[n] = {got[n], w.len};
    remote[n] = {reinterpret_cast<void*>(w.at), w.len};
    total += static_cast<ssize_t>(w.len);
    ++n;
  }
  if (process_vm_readv(pid, local, n, remote, n, 0) != total) return std::nullopt;
  n = 0;
  for (const Want& w : wants) {
    if (w.at != 0 && memcmp(got[n++], w.bytes, w.len) != 0) return std::nullopt;
  }
  return s;
}

void CacheSites(const RemoteSites& s, const std::vector<pagemap::VmaInfo>& vmas) {
  std::lock_guard lock(g_sites.mu);
  g_sites.sites = s;
  g_sites.in.clear();
  for (uint64_t at : {s.syscall_insn, s.syscall_ret, s.sigreturn}) {
    for (const pagemap::VmaInfo& v : vmas) {
      if (at != 0 && at >= v.start && at < v.end) g_sites.in.push_back(v);
    }
  }
}

Result<RemoteSites> FindRemoteSites(pid_t pid) {
  ASSIGN_OR_RETURN(auto vmas, pagemap::ReadVmas(pid));
  return FindRemoteSites(pid, vmas);
}

Result<RemoteSites> FindRemoteSites(pid_t pid, const std::vector<pagemap::VmaInfo>& vmas) {
  if (std::optional<RemoteSites> cached = CachedSites(pid, vmas)) return *cached;
  std::vector<const pagemap::VmaInfo*> order;
  for (const auto& v : vmas) {
    if ((v.prot & PROT_EXEC) && (v.prot & PROT_READ) && v.path != "[vsyscall]") order.push_back(&v);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto* a, const auto* b) { return SiteRank(*a) < SiteRank(*b); });
  // Read in pieces, which stop as soon as every site is found: the sites
  // are usually in the first part of libc, and a buffer of its whole text
  // (over a megabyte) would be faulted in for nothing. Pieces overlap by
  // the longest sequence, so none is missed at a boundary.
  constexpr size_t kPiece = 64 * 1024;
  constexpr size_t kOverlap = sizeof(kSigreturn);
  RemoteSites s;
  std::vector<uint8_t> buf(kPiece);
  for (const auto* v : order) {
    const uint64_t end = v->start + std::min<uint64_t>(v->size(), kMaxScan);
    for (uint64_t base = v->start; base < end && !(s.syscall_ret && s.sigreturn);) {
      const size_t len = static_cast<size_t>(std::min<uint64_t>(end - base, kPiece));
      iovec local{buf.data(), len};
      iovec remote{reinterpret_cast<void*>(base), len};
      const ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
      if (n <= 0) break;
      for (ssize_t i = 0; i + 1 < n; ++i) {
        const void* next = memchr(&buf[i], 0x0f, static_cast<size_t>(n - i - 1));
        if (next == nullptr) break;
        i = static_cast<const uint8_t*>(next) - buf.data();
        if (buf[i + 1] != 0x05) continue;
        const uint64_t at = base + static_cast<uint64_t>(i);
        if (!s.syscall_insn) s.syscall_insn = at;
        if (!s.syscall_ret && i + 2 < n && buf[i + 2] == 0xc3) s.syscall_ret = at;
        if (!s.sigreturn && i >= 7 && memcmp(&buf[i - 7], kSigreturn, sizeof(kSigreturn)) == 0) s.sigreturn = at - 7;
      }
      if (static_cast<size_t>(n) < len || base + len >= end) break;
      base += len - kOverlap;
    }
    if (s.syscall_ret && s.sigreturn) break;
  }
  if (!s.syscall_insn) return Errorf("no syscall instruction found in process %d", pid);
  CacheSites(s, vmas);
  return s;
}

Result<RemoteSyscall> RemoteSyscall::Attach(pid_t pid, pid_t tid, const RemoteSites* sites, Guard guard) {
  user_regs_struct regs;
  if (ptrace(PTRACE_GETREGS, tid, nullptr, &regs) != 0) {
    return ErrnoStatus("ptrace GETREGS of " + std::to_string(tid));
  }
  RemoteSites found;
  if (!sites) {
    ASSIGN_OR_RETURN(found, FindRemoteSites(pid));
    sites = &found;
  }
  RemoteSyscall rs(pid, tid, regs, *sites);
  RETURN_IF_ERROR(rs.SetUpGuard(guard));
  return rs;
}

// Writes the return frame under the thread's stack (below the red zone), or
// leaves the session unguarded when that cannot be done.
Status RemoteSyscall::SetUpGuard(Guard guard) {
  if (ptrace(PTRACE_GETSIGMASK, tid_, sizeof(sigmask_), &sigmask_) != 0) {
    return ErrnoStatus("ptrace GETSIGMASK of " + std::to_string(tid_));
  }
  thread_local std::unique_ptr<uint8_t[]> buf(new uint8_t[kXstateMax]);
  iovec iov{buf.get(), kXstateMax};
  if (ptrace(PTRACE_GETREGSET, tid_, NT_X86_XSTATE, &iov) != 0) {
    return ErrnoStatus("GETREGSET NT_X86_XSTATE of " + std::to_string(tid_));
  }
  xstate_.assign(buf.get(), buf.get() + iov.iov_len);
  if (guard == Guard::kNone) return OkStatus();
  if (!sites_.syscall_ret || !sites_.sigreturn) {
    LOG_DEBUG("remote: process %d has no syscall;ret or sigreturn sequence: calls in %d unguarded", pid_, tid_);
    return OkStatus();
  }
  const size_t len = SigFrameSize(xstate_.size());
  const uint64_t addr = (saved_.rsp - kRedZone - len) & ~uint64_t{63};
  std::vector<uint8_t> original(len);
  if (!ReadTarget(pid_, addr, original.data(), len, "stack").ok()) {
    LOG_DEBUG("remote: no room under the stack of %d (rsp %#llx): calls unguarded", tid_, saved_.rsp);
    return OkStatus();
  }
  const std::vector<uint8_t> frame = BuildSigFrame(addr, sites_.sigreturn, saved_, sigmask_, xstate_);
  if (!WriteTarget(pid_, addr, frame.data(), frame.size(), "stack").ok()) {
    LOG_DEBUG("remote: cannot write under the stack of %d: calls unguarded", tid_);
    return OkStatus();
  }
  frame_addr_ = addr;
  stack_low_ = addr;
  frame_end_ = addr + len;
  stack_saved_ = std::move(original);
  return OkStatus();
}

RemoteSyscall::RemoteSyscall(RemoteSyscall&& o) noexcept
    : pid_(o.pid_), tid_(o.tid_), saved_(o.saved_), sites_(o.sites_), sigmask_(o.sigmask_),
      xstate_(std::move(o.xstate_)), frame_addr_(o.frame_addr_), stack_low_(o.stack_low_),
      stack_saved_(std::move(o.stack_saved_)), frame_end_(o.frame_end_), stack_scratch_(o.stack_scratch_),
      stack_scratch_size_(o.stack_scratch_size_), scratch_(o.scratch_), scratch_size_(o.scratch_size_),
      held_signals_(std::move(o.held_signals_)), restored_(o.restored_) {
  o.restored_ = true;
}

RemoteSyscall::~RemoteSyscall() {
  if (!restored_) {
    Status s = Restore();
    if (!s.ok()) LOG_ERROR("remote: %s", s.ToString().c_str());
  }
}

std::vector<uint8_t> RemoteSyscall::ReturnFrame(uint64_t addr) const {
  return BuildSigFrame(addr, 0, saved_, sigmask_, xstate_);
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
  const int event = status >> 16;
  if (event == PTRACE_EVENT_STOP) return sig == SIGTRAP ? Stop::kInterrupt : Stop::kOther;
  if (event != 0) return Stop::kOther;
  if (sig == kSyscallStop) return Stop::kSyscall;
  siginfo_t info;
  memset(&info, 0, sizeof(info));
  if (ptrace(PTRACE_GETSIGINFO, tid_, nullptr, &info) != 0) info.si_signo = 0;
  if (sig == SIGTRAP && info.si_signo == SIGTRAP && info.si_code == SI_KERNEL) return Stop::kTrap;  // int3
  // A signal arrived for the target: it must not run a handler on our
  // registers. Hold it back, with its siginfo (a timer's si_timerid and
  // si_value, a sigqueue value), and queue it again in Restore().
  held_signals_.push_back({sig, info});
  LOG_DEBUG("remote: holding signal %d (si_code %d) of thread %d", sig, info.si_code, tid_);
  return Stop::kOther;
}

Status RemoteSyscall::SetCallRegs(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                  uint64_t a5, uint64_t frame) {
  call_entered_ = false;
  user_regs_struct regs = saved_;
  regs.rax = static_cast<uint64_t>(nr);
  regs.orig_rax = static_cast<uint64_t>(-1);  // no syscall-restart fixup on resume
  regs.rdi = a0;
  regs.rsi = a1;
  regs.rdx = a2;
  regs.r10 = a3;
  regs.r8 = a4;
  regs.r9 = a5;
  if (frame_addr_) {
    regs.rip = sites_.syscall_ret;
    regs.rsp = frame != 0 ? frame : frame_addr_;
  } else {
    regs.rip = sites_.syscall_insn;
  }
  if (ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0) return ErrnoStatus("ptrace SETREGS");
  return OkStatus();
}

Status RemoteSyscall::StepToSyscallExit(bool* at_exit) {
  *at_exit = false;
  ASSIGN_OR_RETURN(Stop stop, WaitStop(0));
  if (stop == Stop::kSyscall && !call_entered_) {
    // The first syscall stop after SetCallRegs is the entry of our call:
    // the thread was in a stop that is not a syscall stop, or at the exit
    // of the call before, and resumes at the `syscall` the registers point
    // at (nothing to read here).
    call_entered_ = true;
  } else if (stop == Stop::kSyscall) {
    __ptrace_syscall_info info;
    memset(&info, 0, sizeof(info));
    if (ptrace(PTRACE_GET_SYSCALL_INFO, tid_, sizeof(info), &info) <= 0) {
      return ErrnoStatus("ptrace GET_SYSCALL_INFO");
    }
    if (info.op != PTRACE_SYSCALL_INFO_EXIT) {
      return Errorf("thread %d: a second syscall-entry stop during one remote call", tid_);
    }
    *at_exit = true;
    exit_rval_ = static_cast<long>(info.exit.rval);
    return OkStatus();
  }
  if (ptrace(PTRACE_SYSCALL, tid_, nullptr, nullptr) != 0) return ErrnoStatus("ptrace SYSCALL");
  return OkStatus();
}

Status RemoteSyscall::RunToSyscallExit() {
  if (ptrace(PTRACE_SYSCALL, tid_, nullptr, nullptr) != 0) return ErrnoStatus("ptrace SYSCALL");
  for (bool at_exit = false; !at_exit;) RETURN_IF_ERROR(StepToSyscallExit(&at_exit));
  return OkStatus();
}

Result<long> RemoteSyscall::FinishCall(uint64_t start_ns, bool keep) {
  Status st;
  // The thread's own registers go back at once: it stays at the syscall-exit
  // stop, from where it can run on as it was if criu-fast dies. A guarded
  // call's registers may stay until the next call: they lead through the
  // return frame back to the same state.
  if (!(keep && frame_addr_ != 0) && ptrace(PTRACE_SETREGS, tid_, nullptr, &saved_) != 0) {
    st = ErrnoStatus("ptrace SETREGS");
  }
  if (start_ns) CountInjection(false, frame_addr_ != 0, start_ns);
  RETURN_IF_ERROR(st);
  return exit_rval_;
}

Result<long> RemoteSyscall::DoCall(bool fault_point, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                                   uint64_t a4, uint64_t a5) {
  if (fault_point) FAULT_POINT("remote-syscall");
  const uint64_t start = MonotonicNs();
  RETURN_IF_ERROR(SetCallRegs(nr, a0, a1, a2, a3, a4, a5));
  Status st = RunToSyscallExit();
  if (!st.ok()) {
    // Take the registers back whatever happened (the thread may be gone).
    (void)ptrace(PTRACE_SETREGS, tid_, nullptr, &saved_);
    CountInjection(false, frame_addr_ != 0, start);
    return st;
  }
  return FinishCall(start);
}

std::vector<uint8_t> RemoteSyscall::CloseFrame(uint64_t addr, int fd) const {
  user_regs_struct regs = saved_;
  regs.rip = sites_.syscall_ret;
  regs.rax = __NR_close;
  regs.orig_rax = static_cast<uint64_t>(-1);
  regs.rdi = static_cast<uint64_t>(fd);
  regs.rsp = frame_addr_;  // its `ret` leads through the guard's frame
  // Every signal blocked until the guard's frame puts the thread's mask back.
  return BuildSigFrame(addr, sites_.sigreturn, regs, ~uint64_t{0}, xstate_);
}

uint64_t RemoteSyscall::PlaceCloseFrame(int fd) {
  if (frame_addr_ == 0) return 0;
  const size_t len = SigFrameSize(xstate_.size());
  const uint64_t addr = (stack_low_ - len) & ~uint64_t{63};
  std::vector<uint8_t> below(stack_low_ - addr);
  if (!ReadTarget(pid_, addr, below.data(), below.size(), "stack").ok()) return 0;
  const std::vector<uint8_t> frame = CloseFrame(addr, fd);
  if (!WriteTarget(pid_, addr, frame.data(), frame.size(), "stack").ok()) return 0;
  below.insert(below.end(), stack_saved_.begin(), stack_saved_.end());
  stack_saved_ = std::move(below);
  stack_low_ = addr;
  return addr;
}

Result<long> RemoteSyscall::CallClosing(long nr, const std::array<uint64_t, 6>& a, int expect_fd,
                                        const std::function<Status(long)>& take) {
  FAULT_POINT("remote-syscall");
  const uint64_t start = MonotonicNs();
  const uint64_t chain = expect_fd >= 0 ? PlaceCloseFrame(expect_fd) : 0;
  if (chain == 0) LOG_DEBUG("remote: no closing frame in %d: a descriptor made there is unguarded", tid_);
  RETURN_IF_ERROR(SetCallRegs(nr, a[0], a[1], a[2], a[3], a[4], a[5], chain));
  if (Status st = RunToSyscallExit(); !st.ok()) {
    (void)ptrace(PTRACE_SETREGS, tid_, nullptr, &saved_);
    CountInjection(false, chain != 0, start);
    return st;
  }
  const long fd = exit_rval_;
  CountInjection(false, chain != 0, start);
  if (fd < 0) {
    // Nothing was made; the closing frame would only meet EBADF.
    RETURN_IF_ERROR(FinishCall(0).status());
    return fd;
  }
  if (chain != 0 && fd != expect_fd) {
    // Another thread sharing the table (outside the frozen tree) or an
    // io_uring worker took |expect_fd| meanwhile: the frame must close
    // the call's descriptor, not that one.
    LOG_DEBUG("remote: %d got descriptor %ld, not %d: closing frame rewritten", tid_, fd, expect_fd);
    const std::vector<uint8_t> frame = CloseFrame(chain, static_cast<int>(fd));
    if (!WriteTarget(pid_, chain, frame.data(), frame.size(), "stack").ok()) {
      (void)ptrace(PTRACE_SETREGS, tid_, nullptr, &saved_);  // never through that frame
    }
  }
  Status taken = take(fd);
  // The target's descriptor goes now, whatever |take| did.
  auto closed = CleanupCall(__NR_close, static_cast<uint64_t>(fd));
  RETURN_IF_ERROR(taken);
  RETURN_IF_ERROR(closed.status());
  return fd;
}

Status RemoteSyscall::CallInEach(std::span<RemoteSyscall* const> threads, long nr,
                                 std::span<const std::array<uint64_t, 6>> args, std::vector<long>* results,
                                 bool more) {
  if (args.size() != threads.size()) return Error("CallInEach: one argument set per thread", EINVAL);
  std::vector<std::vector<SeqCall>> calls;
  calls.reserve(threads.size());
  for (const auto& a : args) calls.push_back({SeqCall{nr, a}});
  std::vector<std::vector<long>> each;
  const Status st = RunLists(threads, calls, &each, more);
  results->assign(threads.size(), 0);
  for (size_t i = 0; i < each.size(); ++i) {
    if (!each[i].empty()) (*results)[i] = each[i][0];
  }
  return st;
}

Status RemoteSyscall::RunSequences(std::span<RemoteSyscall* const> threads,
                                   std::span<const std::vector<SeqCall>> calls,
                                   std::vector<std::vector<long>>* results) {
  return RunLists(threads, calls, results, false);
}

Status RemoteSyscall::RunLists(std::span<RemoteSyscall* const> threads, std::span<const std::vector<SeqCall>> calls,
                               std::vector<std::vector<long>>* results, bool keep) {
  FAULT_POINT("remote-syscall");
  if (calls.size() != threads.size()) return Error("RunSequences: one call list per thread", EINVAL);
  results->assign(threads.size(), {});
  const uint64_t start = MonotonicNs();
  std::vector<size_t> next(threads.size(), 0);  // the call each thread runs or runs next
  std::vector<char> busy(threads.size(), 0);    // in a call of ours
  Status first;
  size_t made = 0;
  // Starts the next call of thread |i|; on failure, its registers back.
  auto launch = [&](size_t i) {
    RemoteSyscall& r = *threads[i];
    const SeqCall& c = calls[i][next[i]];
    Status s = r.SetCallRegs(c.nr, c.args[0], c.args[1], c.args[2], c.args[3], c.args[4], c.args[5]);
    if (s.ok() && ptrace(PTRACE_SYSCALL, r.tid_, nullptr, nullptr) != 0) s = ErrnoStatus("ptrace SYSCALL");
    if (!s.ok()) {
      (void)ptrace(PTRACE_SETREGS, r.tid_, nullptr, &r.saved_);
      if (first.ok()) first = s;
    }
    busy[i] = s.ok();
  };
  for (size_t i = 0; i < threads.size() && first.ok(); ++i) {
    (*results)[i].reserve(calls[i].size());
    if (!calls[i].empty()) launch(i);
  }
  for (bool again = true; again;) {
    again = false;
    for (size_t i = 0; i < threads.size(); ++i) {
      if (!busy[i]) continue;
      RemoteSyscall& r = *threads[i];
      bool at_exit = false;
      Status s = r.StepToSyscallExit(&at_exit);
      if (!s.ok()) {
        (void)ptrace(PTRACE_SETREGS, r.tid_, nullptr, &r.saved_);
        busy[i] = 0;
        if (first.ok()) first = s;
        continue;
      }
      again = true;
      if (!at_exit) continue;
      ++made;
      (*results)[i].push_back(r.exit_rval_);
      // After an error, no thread starts another call.
      if (++next[i] < calls[i].size() && first.ok() && r.frame_addr_ != 0) {
        launch(i);  // from the exit stop: the call registers need not go back first
        continue;
      }
      busy[i] = 0;
      if (next[i] < calls[i].size() && first.ok()) {
        // Unguarded: the thread's own registers between two calls.
        if (ptrace(PTRACE_SETREGS, r.tid_, nullptr, &r.saved_) != 0) {
          first = ErrnoStatus("ptrace SETREGS");
          continue;
        }
        launch(i);
        continue;
      }
      auto res = r.FinishCall(0, keep && first.ok());
      if (!res.ok() && first.ok()) first = res.status();
    }
  }
  bool guarded = true;
  for (const RemoteSyscall* r : threads) guarded = guarded && r->frame_addr_ != 0;
  CountInjection(false, guarded, start, made);
  return first;
}

Status RemoteSyscall::StartCallForTest(long nr, uint64_t a0) {
  RETURN_IF_ERROR(SetCallRegs(nr, a0, 0, 0, 0, 0, 0));
  for (;;) {
    if (ptrace(PTRACE_SYSCALL, tid_, nullptr, nullptr) != 0) return ErrnoStatus("ptrace SYSCALL");
    ASSIGN_OR_RETURN(Stop stop, WaitStop(0));
    if (stop == Stop::kSyscall) break;
  }
  restored_ = true;  // nothing may be put back: the test abandons the thread here
  return OkStatus();
}

Status RemoteSyscall::StartCodeForTest(uint64_t ip, uint64_t sp, uint64_t arg) {
  user_regs_struct regs = saved_;
  regs.orig_rax = static_cast<uint64_t>(-1);
  regs.rip = ip;
  regs.rsp = sp;
  regs.rdi = arg;
  if (ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0) return ErrnoStatus("ptrace SETREGS");
  uint64_t all = ~0ull;
  if (ptrace(PTRACE_SETSIGMASK, tid_, sizeof(all), &all) != 0) return ErrnoStatus("ptrace SETSIGMASK");
  if (ptrace(PTRACE_CONT, tid_, nullptr, nullptr) != 0) return ErrnoStatus("ptrace CONT");
  restored_ = true;
  return OkStatus();
}

Status RemoteSyscall::RunCode(uint64_t ip, uint64_t sp, uint64_t arg, const std::function<Result<bool>()>& ended,
                              int timeout_ms, bool guarded, const LeftOpen& left_open) {
  Status st = StartCode(ip, sp, arg);
  if (st.ok()) {
    // The code makes only short, non-blocking calls before it ends: poll for
    // its end, sleeping a little longer each time, up to the deadline.
    const uint64_t deadline = MonotonicNs() + static_cast<uint64_t>(timeout_ms) * 1000000ull;
    Backoff backoff(2000, 1000000);
    for (;;) {
      Result<bool> running = CodeRunning();
      if (!running.ok()) {
        st = running.status();
        break;
      }
      if (!*running) break;  // stopped on int3
      // Ended: it waits in a blocking call (or must be stopped); StopCode
      // interrupts it.
      Result<bool> over = ended ? ended() : Result<bool>(false);
      if (!over.ok()) st = over.status();
      if (!over.ok() || *over) break;
      if (MonotonicNs() > deadline) {
        st = Errorf("code run in thread %d did not stop within %d ms", tid_, timeout_ms);
        break;
      }
      backoff.Wait();
    }
  }
  // The thread back, its own mask and registers at once.
  Status back = StopCode(guarded, true, left_open);
  return st.ok() ? back : st;
}

Status RemoteSyscall::StartCode(uint64_t ip, uint64_t sp, uint64_t arg) {
  code_start_ns_ = MonotonicNs();
  code_trapped_ = false;
  code_interrupted_ = false;
  code_resumed_ = false;
  // Registers first, mask second (and back in the reverse order): should
  // criu-fast die in between, the thread runs the code (which returns it to
  // its own state) with its own mask, never its own code with every signal
  // blocked.
  user_regs_struct regs = saved_;
  regs.orig_rax = static_cast<uint64_t>(-1);
  regs.rip = ip;
  regs.rsp = sp;
  regs.rdi = arg;
  uint64_t all = ~0ull;
  if (ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0) return ErrnoStatus("ptrace SETREGS of " + std::to_string(tid_));
  if (ptrace(PTRACE_SETSIGMASK, tid_, sizeof(all), &all) != 0) {
    return ErrnoStatus("ptrace SETSIGMASK of " + std::to_string(tid_));
  }
  if (ptrace(PTRACE_CONT, tid_, nullptr, nullptr) != 0) return ErrnoStatus("ptrace CONT of " + std::to_string(tid_));
  code_resumed_ = true;
  return OkStatus();
}

Result<bool> RemoteSyscall::CodeRunning() {
  if (code_trapped_) return false;
  for (;;) {
    ASSIGN_OR_RETURN(Stop stop, WaitStop(WNOHANG));
    if (stop == Stop::kNone) return true;
    if (stop == Stop::kTrap) {
      code_trapped_ = true;
      return false;
    }
    // A held signal or a stop of another kind: on with the code.
    if (ptrace(PTRACE_CONT, tid_, nullptr, nullptr) != 0) return ErrnoStatus("ptrace CONT of " + std::to_string(tid_));
  }
}

Status RemoteSyscall::InterruptCode() {
  // Not resumed (StartCode failed before): still in our stop.
  if (!code_resumed_ || code_trapped_ || code_interrupted_) return OkStatus();
  ASSIGN_OR_RETURN(bool running, CodeRunning());
  if (!running) return OkStatus();
  if (ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) != 0) {
    return ErrnoStatus("ptrace INTERRUPT of " + std::to_string(tid_));
  }
  code_interrupted_ = true;
  return OkStatus();
}

Status RemoteSyscall::StopCode(bool guarded, bool count, const LeftOpen& left_open) {
  Status st = InterruptCode();
  if (st.ok() && code_interrupted_) {
    for (;;) {
      Result<Stop> stop = WaitStop(0);
      if (!stop.ok()) {
        st = stop.status();
        break;
      }
      if (*stop == Stop::kInterrupt || *stop == Stop::kTrap) break;
      // A signal held back or another stop first: the interrupt stays
      // pending and comes once the thread runs again.
      if (ptrace(PTRACE_CONT, tid_, nullptr, nullptr) != 0) {
        st = ErrnoStatus("ptrace CONT of " + std::to_string(tid_));
        break;
      }
    }
  }
  code_trapped_ = false;
  code_interrupted_ = false;
  code_resumed_ = false;
  // Asked also after an error: what the code left open goes either way.
  int open_fd = -1;
  if (left_open) {
    Result<int> fd = left_open();
    if (fd.ok()) open_fd = *fd;
    if (!fd.ok() && st.ok()) st = fd.status();
  }
  auto closed = [&](Status s) {
    if (s.ok() && exit_rval_ < 0) {
      s = ErrnoStatus(static_cast<int>(-exit_rval_),
                      "close of descriptor " + std::to_string(open_fd) + " in " + std::to_string(tid_));
    }
    if (!s.ok() && st.ok()) st = s.WithContext("what the code left open");
  };
  if (open_fd >= 0 && frame_addr_ != 0 && st.ok()) {
    // Closed from the code's stop: until the call's registers are set the
    // code still watches criu-fast; from then on they lead through the
    // return frame, which also gives the thread its own mask back.
    Status s = SetCallRegs(__NR_close, static_cast<uint64_t>(open_fd), 0, 0, 0, 0, 0);
    if (s.ok()) s = RunToSyscallExit();
    closed(s);
    open_fd = -1;
  }
  if (ptrace(PTRACE_SETSIGMASK, tid_, sizeof(sigmask_), &sigmask_) != 0 && st.ok()) {
    st = ErrnoStatus("ptrace SETSIGMASK (put back)");
  }
  if (ptrace(PTRACE_SETREGS, tid_, nullptr, &saved_) != 0 && st.ok()) st = ErrnoStatus("ptrace SETREGS (put back)");
  if (open_fd >= 0) {
    // No return frame, or the code was not stopped as it should (an error
    // before): a plain call, the thread's own registers around it.
    auto r = CleanupCall(__NR_close, static_cast<uint64_t>(open_fd));
    closed(r.status());
  }
  if (count) CountInjection(true, guarded, code_start_ns_);
  return st;
}

Result<uint64_t> RemoteSyscall::Scratch(size_t size) {
  if (size > kScratchSize) return Errorf("remote scratch request too large (%zu)", size);
  if (stack_scratch_ && size <= stack_scratch_size_) return stack_scratch_;
  if (scratch_ && size <= scratch_size_) return scratch_;
  // Under the frame on the stack, when it has room there.
  if (frame_addr_ && !stack_scratch_ && size <= kStackScratchMax) {
    const uint64_t addr = (frame_addr_ - size) & ~uint64_t{63};
    // The bytes already saved (a closing frame's, CallClosing) stay saved.
    std::vector<uint8_t> below(addr < stack_low_ ? stack_low_ - addr : 0);
    if (below.empty() || ReadTarget(pid_, addr, below.data(), below.size(), "stack").ok()) {
      below.insert(below.end(), stack_saved_.begin(), stack_saved_.end());
      stack_saved_ = std::move(below);
      stack_low_ = std::min(stack_low_, addr);
      stack_scratch_ = addr;
      stack_scratch_size_ = frame_addr_ - addr;
      return stack_scratch_;
    }
  }
  if (scratch_ == 0) {
    ASSIGN_OR_RETURN(long r, Call(__NR_mmap, 0, kScratchSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                  static_cast<uint64_t>(-1), 0));
    if (r < 0 && r > -4096) return ErrnoStatus(static_cast<int>(-r), "remote mmap in " + std::to_string(pid_));
    scratch_ = static_cast<uint64_t>(r);
    scratch_size_ = kScratchSize;
  }
  return scratch_;
}

Status RemoteSyscall::ReadScratch(uint64_t addr, void* buf, size_t len) {
  return ReadTarget(pid_, addr, buf, len, "scratch");
}

Status RemoteSyscall::WriteScratch(uint64_t addr, const void* buf, size_t len) {
  return WriteTarget(pid_, addr, buf, len, "scratch");
}

Status RemoteSyscall::PutBackStack() {
  if (stack_saved_.empty()) return OkStatus();
  Status s = WriteTarget(pid_, stack_low_, stack_saved_.data(), stack_saved_.size(), "stack (put back)");
  stack_saved_.clear();
  frame_addr_ = 0;
  return s;
}

Status RemoteSyscall::Restore() {
  if (restored_) return OkStatus();
  Status result;
  if (scratch_) {
    // Bypass the fault point: cleanup must run even when faults are injected.
    auto r = CleanupCall(__NR_munmap, scratch_, scratch_size_);
    if (!r.ok()) result = r.status().WithContext("remote munmap of scratch area");
    scratch_ = 0;
  }
  restored_ = true;
  // Registers first: a thread may still hold a guarded call's registers
  // (CallInEach with |more|), which lead through the return frame; the
  // frame may go only once they are the thread's own.
  if (ptrace(PTRACE_SETREGS, tid_, nullptr, &saved_) != 0) {
    return ErrnoStatus("restore registers of " + std::to_string(tid_));
  }
  if (Status s = PutBackStack(); !s.ok() && result.ok()) result = s;
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

}  // namespace cf::tracing
