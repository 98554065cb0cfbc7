// The per-thread property table (kinds/thread_props.h): for each property,
// its read at dump and its apply at restore.
#include "kinds/thread_props.h"

#include <elf.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/io.h"
#include "common/log.h"
#include "proc/proc_parse.h"

namespace cf::kinds {
namespace {

constexpr size_t kXstateMax = 16384;
constexpr int kPeekBatch = 32;
constexpr int kSchedDeadline = 6;  // <linux/sched.h>; glibc's <sched.h> lacks it

std::string Who(pid_t tid) { return "thread " + std::to_string(tid); }

// ---- registers (NT_PRSTATUS) ---------------------------------------------

Status ReadRegs(pid_t, pid_t tid, img::Thread* out) {
  user_regs_struct r;
  iovec iov{&r, sizeof(r)};
  if (ptrace(PTRACE_GETREGSET, tid, NT_PRSTATUS, &iov) != 0) return ErrnoStatus("GETREGSET NT_PRSTATUS of " + Who(tid));
  img::UserRegs* o = out->mutable_regs();
  o->set_r15(r.r15);
  o->set_r14(r.r14);
  o->set_r13(r.r13);
  o->set_r12(r.r12);
  o->set_rbp(r.rbp);
  o->set_rbx(r.rbx);
  o->set_r11(r.r11);
  o->set_r10(r.r10);
  o->set_r9(r.r9);
  o->set_r8(r.r8);
  o->set_rax(r.rax);
  o->set_rcx(r.rcx);
  o->set_rdx(r.rdx);
  o->set_rsi(r.rsi);
  o->set_rdi(r.rdi);
  o->set_orig_rax(r.orig_rax);
  o->set_rip(r.rip);
  o->set_cs(r.cs);
  o->set_eflags(r.eflags);
  o->set_rsp(r.rsp);
  o->set_ss(r.ss);
  o->set_fs_base(r.fs_base);
  o->set_gs_base(r.gs_base);
  o->set_ds(r.ds);
  o->set_es(r.es);
  o->set_fs(r.fs);
  o->set_gs(r.gs);
  out->set_in_syscall(static_cast<int64_t>(r.orig_rax) >= 0);
  return OkStatus();
}

// Loading the registers as they were (orig_rax and an -ERESTART* rax
// included) lets the kernel restart an interrupted syscall on detach,
// exactly as after a signal.
Status LoadRegs(pid_t tid, const img::Thread& t) {
  const img::UserRegs& r = t.regs();
  user_regs_struct o;
  o.r15 = r.r15(), o.r14 = r.r14(), o.r13 = r.r13(), o.r12 = r.r12(), o.rbp = r.rbp(), o.rbx = r.rbx();
  o.r11 = r.r11(), o.r10 = r.r10(), o.r9 = r.r9(), o.r8 = r.r8(), o.rax = r.rax(), o.rcx = r.rcx();
  o.rdx = r.rdx(), o.rsi = r.rsi(), o.rdi = r.rdi(), o.orig_rax = r.orig_rax(), o.rip = r.rip();
  o.cs = r.cs(), o.eflags = r.eflags(), o.rsp = r.rsp(), o.ss = r.ss(), o.fs_base = r.fs_base();
  o.gs_base = r.gs_base(), o.ds = r.ds(), o.es = r.es(), o.fs = r.fs(), o.gs = r.gs();
  if (ptrace(PTRACE_SETREGS, tid, nullptr, &o) != 0) return ErrnoStatus("set registers of " + Who(tid));
  return OkStatus();
}

// ---- FPU/SSE/AVX state (NT_X86_XSTATE) -----------------------------------

Status ReadXstate(pid_t, pid_t tid, img::Thread* out) {
  // One buffer per thread of criu-fast, not a fresh zeroed one per thread
  // read (thousands of threads).
  thread_local std::unique_ptr<uint8_t[]> xstate(new uint8_t[kXstateMax]);
  iovec iov{xstate.get(), kXstateMax};
  if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) != 0) {
    return ErrnoStatus("GETREGSET NT_X86_XSTATE of " + Who(tid));
  }
  out->set_xstate(xstate.get(), iov.iov_len);
  return OkStatus();
}

Status LoadXstate(pid_t tid, const img::Thread& t) {
  if (t.xstate().empty()) return OkStatus();
  std::string xstate = t.xstate();
  iovec iov{xstate.data(), xstate.size()};
  if (ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, &iov) != 0) return ErrnoStatus("set xstate of " + Who(tid));
  return OkStatus();
}

// ---- blocked signal mask -------------------------------------------------

Status ReadBlocked(pid_t, pid_t tid, img::Thread* out) {
  uint64_t mask = 0;
  if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(mask), &mask) != 0) return ErrnoStatus("GETSIGMASK of " + Who(tid));
  out->set_blocked(mask);
  return OkStatus();
}

// The restorer runs with every signal blocked (the queued signals wait):
// the saved mask is loaded last, by criu-fast.
Status LoadBlocked(pid_t tid, const img::Thread& t) {
  uint64_t mask = t.blocked();
  if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(mask), &mask) != 0) return ErrnoStatus("set signal mask of " + Who(tid));
  return OkStatus();
}

// ---- the thread's own queue of pending signals ----------------------------

Status ReadPending(pid_t, pid_t tid, img::Thread* out) { return PeekSignals(tid, false, out->mutable_pending()); }

void PendingToArgs(const img::Thread& t, ThreadArgs* out) {
  for (const img::SigInfo& si : t.pending()) AddSigInfo(si, t.tid(), out);
}

// ---- rseq registration ---------------------------------------------------

// A thread stopped inside an rseq critical section (its ip between the
// section's start and its commit) is saved at the section's abort handler,
// as the kernel would have sent it there on its way back to user space:
// the restored thread then finds the section aborted and retries it, on
// whatever CPU it runs on, instead of committing with the CPU it read
// before the dump. A section that asks not to be restarted on signals
// (RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL) keeps the ip.
Status LeaveRseqCriticalSection(pid_t tid, uint64_t abi_pointer, img::Thread* out) {
  // struct rseq: u32 cpu_id_start, u32 cpu_id, u64 rseq_cs, ...
  // struct rseq_cs: u32 version, u32 flags, u64 start_ip,
  // u64 post_commit_offset, u64 abort_ip.
  struct {
    uint32_t version;
    uint32_t flags;
    uint64_t start_ip;
    uint64_t post_commit_offset;
    uint64_t abort_ip;
  } cs{};
  constexpr uint32_t kNoRestartOnSignal = 1u << 1;  // RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL
  uint64_t cs_ptr = 0;
  iovec local{&cs_ptr, sizeof(cs_ptr)};
  iovec remote{reinterpret_cast<void*>(abi_pointer + 8), sizeof(cs_ptr)};
  if (process_vm_readv(tid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof(cs_ptr))) {
    return ErrnoStatus("read the rseq area of " + Who(tid));
  }
  if (cs_ptr == 0) return OkStatus();
  local = {&cs, sizeof(cs)};
  remote = {reinterpret_cast<void*>(cs_ptr), sizeof(cs)};
  if (process_vm_readv(tid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof(cs))) {
    return ErrnoStatus("read the rseq critical section descriptor of " + Who(tid));
  }
  const uint64_t ip = out->regs().rip();
  if (ip < cs.start_ip || ip - cs.start_ip >= cs.post_commit_offset) return OkStatus();
  if (cs.version != 0) {
    return Errorf("%s is in an rseq critical section of version %u: not supported", Who(tid).c_str(), cs.version);
  }
  if (cs.flags & kNoRestartOnSignal) return OkStatus();
  LOG_INFO("%s is in an rseq critical section (ip %#lx): saved at its abort handler %#lx", Who(tid).c_str(),
           static_cast<unsigned long>(ip), static_cast<unsigned long>(cs.abort_ip));
  out->mutable_regs()->set_rip(cs.abort_ip);
  return OkStatus();
}

Status ReadRseq(pid_t, pid_t tid, img::Thread* out) {
  struct {
    uint64_t rseq_abi_pointer;
    uint32_t rseq_abi_size;
    uint32_t signature;
    uint32_t flags;
    uint32_t pad;
  } rseq{};
  // Kernels without PTRACE_GET_RSEQ_CONFIGURATION (before 5.13): none saved.
  if (ptrace(static_cast<__ptrace_request>(PTRACE_GET_RSEQ_CONFIGURATION), tid, sizeof(rseq), &rseq) > 0) {
    out->mutable_rseq()->set_abi_pointer(rseq.rseq_abi_pointer);
    out->mutable_rseq()->set_abi_size(rseq.rseq_abi_size);
    out->mutable_rseq()->set_signature(rseq.signature);
    out->mutable_rseq()->set_flags(rseq.flags);
    if (rseq.rseq_abi_pointer != 0) RETURN_IF_ERROR(LeaveRseqCriticalSection(tid, rseq.rseq_abi_pointer, out));
  }
  return OkStatus();
}

void RseqToArgs(const img::Thread& t, ThreadArgs* out) {
  out->thread->rseq_ptr = t.rseq().abi_pointer();
  out->thread->rseq_len = t.rseq().abi_size();
  out->thread->rseq_sig = t.rseq().signature();
}

// ---- name ----------------------------------------------------------------
//
// Read with the credentials, from the same status file (its Name line).

void CommToArgs(const img::Thread& t, ThreadArgs* out) {
  snprintf(out->thread->comm, sizeof(out->thread->comm), "%s", t.comm().c_str());
}

// ---- sigaltstack (remote) ------------------------------------------------

const RemoteRead kAltstackRead = {
    __NR_sigaltstack,
    sizeof(stack_t),
    [](uint64_t out) { return std::array<uint64_t, 6>{0, out, 0, 0, 0, 0}; },
    [](const uint8_t* out, img::Thread* t) {
      stack_t s;
      memcpy(&s, out, sizeof(s));
      t->mutable_altstack()->set_sp(reinterpret_cast<uint64_t>(s.ss_sp));
      t->mutable_altstack()->set_flags(s.ss_flags);
      t->mutable_altstack()->set_size(s.ss_size);
    },
};

void AltstackToArgs(const img::Thread& t, ThreadArgs* out) {
  if ((t.altstack().flags() & SS_DISABLE) || t.altstack().size() == 0) return;
  out->thread->altstack_sp = t.altstack().sp();
  out->thread->altstack_flags = t.altstack().flags();
  out->thread->altstack_size = t.altstack().size();
}

// ---- clear_child_tid (remote) --------------------------------------------

const RemoteRead kClearChildTidRead = {
    __NR_prctl,
    sizeof(uint64_t),
    [](uint64_t out) { return std::array<uint64_t, 6>{PR_GET_TID_ADDRESS, out, 0, 0, 0, 0}; },
    [](const uint8_t* out, img::Thread* t) {
      uint64_t addr;
      memcpy(&addr, out, sizeof(addr));
      t->set_clear_child_tid(addr);
    },
};

void ClearChildTidToArgs(const img::Thread& t, ThreadArgs* out) { out->thread->clear_child_tid = t.clear_child_tid(); }

// ---- scheduling policy, RT priority and nice value ------------------------

// Policy (with SCHED_RESET_ON_FORK), priority and nice value in one
// sched_getattr() (glibc has no wrapper; struct sched_attr of
// <linux/sched/types.h>, first version).
Status ReadSched(pid_t, pid_t tid, img::Thread* out) {
  struct {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
  } attr{};
  static_assert(sizeof(attr) == 48, "SCHED_ATTR_SIZE_VER0");
  constexpr uint64_t kResetOnForkFlag = 0x01;  // SCHED_FLAG_RESET_ON_FORK
  if (syscall(SYS_sched_getattr, tid, &attr, sizeof(attr), 0) != 0) return ErrnoStatus("sched_getattr of " + Who(tid));
  if (attr.sched_policy == kSchedDeadline) {
    return Errorf("%s runs under SCHED_DEADLINE: not supported", Who(tid).c_str());
  }
  uint32_t policy = attr.sched_policy;
  if (attr.sched_flags & kResetOnForkFlag) policy |= SCHED_RESET_ON_FORK;
  int nice = attr.sched_nice;
  if (attr.sched_policy == SCHED_FIFO || attr.sched_policy == SCHED_RR) {
    // sched_getattr reports no nice value for a real-time thread; it still
    // has one (its own again should it leave real time).
    errno = 0;
    nice = getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
    if (nice == -1 && errno != 0) return ErrnoStatus("getpriority of " + Who(tid));
  }
  out->set_sched_policy(policy);
  out->set_sched_prio(attr.sched_priority);
  out->set_nice(nice);
  return OkStatus();
}

// Set by criu-fast (which may raise priorities: CAP_SYS_NICE) on the
// stopped thread, whatever credentials the thread has taken by then. The
// nice value is set apart: sched_setscheduler() leaves it alone.
Status LoadSched(pid_t tid, const img::Thread& t) {
  sched_param sp{};
  sp.sched_priority = static_cast<int>(t.sched_prio());
  if (sched_setscheduler(tid, static_cast<int>(t.sched_policy()), &sp) != 0) {
    return ErrnoStatus("sched_setscheduler(" + std::to_string(t.sched_policy()) + ") of " + Who(tid));
  }
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(tid), t.nice()) != 0) {
    return ErrnoStatus("setpriority(" + std::to_string(t.nice()) + ") of " + Who(tid));
  }
  return OkStatus();
}

// ---- robust futex list ---------------------------------------------------

Status ReadRobustList(pid_t, pid_t tid, img::Thread* out) {
  uint64_t head = 0;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, tid, &head, &len) != 0) return ErrnoStatus("get_robust_list of " + Who(tid));
  out->set_robust_list(head);
  out->set_robust_list_len(len);
  return OkStatus();
}

void RobustListToArgs(const img::Thread& t, ThreadArgs* out) {
  out->thread->robust_list = t.robust_list();
  out->thread->robust_list_len = t.robust_list_len();
}

// ---- parent-death signal (remote) ----------------------------------------

const RemoteRead kPdeathsigRead = {
    __NR_prctl,
    sizeof(int),
    [](uint64_t out) { return std::array<uint64_t, 6>{PR_GET_PDEATHSIG, out, 0, 0, 0, 0}; },
    [](const uint8_t* out, img::Thread* t) {
      int sig;
      memcpy(&sig, out, sizeof(sig));
      t->set_pdeathsig(static_cast<uint32_t>(sig));
    },
};

void PdeathsigToArgs(const img::Thread& t, ThreadArgs* out) { out->thread->pdeathsig = t.pdeathsig(); }

// ---- status: name and credentials ----------------------------------------
//
// Credentials are each thread's own: setresuid() and friends as system calls
// change the calling thread only (glibc's wrappers broadcast to every
// thread, raw calls do not), so threads of one process may differ. The
// thread's name comes from the same file (one read per thread, not two).

Status ReadStatusLines(pid_t pid, pid_t tid, img::Thread* out) {
  ASSIGN_OR_RETURN(proc::ProcStatus st, proc::ReadStatus(pid, tid));
  out->set_comm(st.name);
  img::Creds* c = out->mutable_creds();
  c->set_uid(st.uid[0]), c->set_euid(st.uid[1]), c->set_suid(st.uid[2]), c->set_fsuid(st.uid[3]);
  c->set_gid(st.gid[0]), c->set_egid(st.gid[1]), c->set_sgid(st.gid[2]), c->set_fsgid(st.gid[3]);
  c->set_cap_inh(st.cap_inh), c->set_cap_prm(st.cap_prm), c->set_cap_eff(st.cap_eff);
  c->set_cap_bnd(st.cap_bnd), c->set_cap_amb(st.cap_amb);
  // In the same file, and set in the same step of the restorer: seccomp
  // (its filters are read once the threads are known, kinds/seccomp.h).
  out->set_seccomp_mode(st.seccomp);
  out->set_no_new_privs(st.no_new_privs != 0);
  return OkStatus();
}

// criu-fast's credentials, which every restored thread starts with (a
// forked process's are its parent's): read once, before the tree is forked
// (ReadOwnCredentials), so that each process has them with its memory.
const Result<proc::ProcStatus>& OwnStatus() {
  static const Result<proc::ProcStatus> ours = proc::ReadStatus(getpid(), static_cast<pid_t>(syscall(SYS_gettid)));
  return ours;
}

// Compared with ours: a thread changes only what differs.
void CredsToArgs(const img::Thread& t, ThreadArgs* out) {
  const Result<proc::ProcStatus>& ours = OwnStatus();
  const img::Creds& c = t.creds();
  cf_rst_thread* r = out->thread;
  const uint32_t uid[4] = {c.uid(), c.euid(), c.suid(), c.fsuid()};
  const uint32_t gid[4] = {c.gid(), c.egid(), c.sgid(), c.fsgid()};
  memcpy(r->uid, uid, sizeof(uid));
  memcpy(r->gid, gid, sizeof(gid));
  r->cap_eff = c.cap_eff(), r->cap_prm = c.cap_prm(), r->cap_inh = c.cap_inh();
  r->cap_bnd = c.cap_bnd(), r->cap_amb = c.cap_amb();
  r->seccomp_mode = t.seccomp_mode();
  r->seccomp_filter = t.seccomp_filter();
  r->no_new_privs = t.no_new_privs();
  if (!ours.ok()) {
    r->change_creds = r->change_caps = 1;
    return;
  }
  r->change_creds = memcmp(ours->uid, uid, sizeof(uid)) != 0 || memcmp(ours->gid, gid, sizeof(gid)) != 0;
  r->change_caps = ours->cap_eff != c.cap_eff() || ours->cap_prm != c.cap_prm() || ours->cap_inh != c.cap_inh() ||
                   ours->cap_bnd != c.cap_bnd() || ours->cap_amb != c.cap_amb();
}

void StatusToArgs(const img::Thread& t, ThreadArgs* out) {
  CommToArgs(t, out);
  CredsToArgs(t, out);
}

// Read in this order at dump; loaded in this order at restore (the mask
// last). The restorer sets the to_args part in an order of its own
// (apply_thread in restorer.c: altstack, clear_child_tid, robust list,
// rseq, name, credentials, parent-death signal); sched is loaded first, before the
// registers.
constexpr ThreadProperty kProperties[] = {
    {"sched", ReadSched, nullptr, nullptr, LoadSched},
    {"regs", ReadRegs, nullptr, nullptr, LoadRegs},
    {"xstate", ReadXstate, nullptr, nullptr, LoadXstate},
    {"blocked", ReadBlocked, nullptr, nullptr, LoadBlocked},
    {"pending", ReadPending, nullptr, PendingToArgs, nullptr},
    {"rseq", ReadRseq, nullptr, RseqToArgs, nullptr},
    {"altstack", nullptr, &kAltstackRead, AltstackToArgs, nullptr},
    {"clear_child_tid", nullptr, &kClearChildTidRead, ClearChildTidToArgs, nullptr},
    {"robust_list", ReadRobustList, nullptr, RobustListToArgs, nullptr},
    {"pdeathsig", nullptr, &kPdeathsigRead, PdeathsigToArgs, nullptr},
    {"status", ReadStatusLines, nullptr, StatusToArgs, nullptr},
};

}  // namespace

void ReadOwnCredentials() { (void)OwnStatus(); }

std::span<const ThreadProperty> ThreadProperties() { return kProperties; }

uint32_t QueuedSignals(const img::Thread& t) { return static_cast<uint32_t>(t.pending_size()); }

Status PeekSignals(pid_t tid, bool shared, google::protobuf::RepeatedPtrField<img::SigInfo>* out) {
  for (uint64_t off = 0;; off += kPeekBatch) {
    siginfo_t infos[kPeekBatch];
    __ptrace_peeksiginfo_args args{off, shared ? static_cast<uint32_t>(PTRACE_PEEKSIGINFO_SHARED) : 0u, kPeekBatch};
    long n = ptrace(PTRACE_PEEKSIGINFO, tid, &args, infos);
    if (n < 0) return ErrnoStatus("ptrace PEEKSIGINFO of " + std::to_string(tid));
    for (long i = 0; i < n; ++i) {
      img::SigInfo* si = out->Add();
      si->set_signo(infos[i].si_signo);
      si->set_code(infos[i].si_code);
      si->set_shared(shared);
      si->set_raw(&infos[i], sizeof(siginfo_t));
    }
    if (n < kPeekBatch) return OkStatus();
  }
}

void AddSigInfo(const img::SigInfo& si, int32_t tid, ThreadArgs* out) {
  const uint32_t i = (*out->nr_siginfo)++;
  if (i >= out->max_siginfo) return;  // counted: the caller sees the overflow
  cf_rst_siginfo& d = out->siginfo[i];
  memset(&d, 0, sizeof(d));
  d.signo = si.signo();
  d.shared = si.shared();
  d.tid = tid;
  memcpy(d.info, si.raw().data(), std::min<size_t>(si.raw().size(), sizeof(d.info)));
}

}  // namespace cf::kinds
