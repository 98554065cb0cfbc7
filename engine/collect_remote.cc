// State only the task itself can report, read by syscalls run in the frozen
// target (ptrace/remote_syscall.h): sigactions, itimers, brk, sigaltstack
// and the clear_child_tid address. Results land in a scratch page of the
// target and are read back in one process_vm_readv.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <cstring>
#include <vector>

#include "engine/collect.h"
#include "proc/proc_parse.h"

namespace cf::engine {
using namespace ::cf::proc;  // /proc parsing, the layer below
namespace {

constexpr int kNumSignals = 64;

struct KernelSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

struct Scratch {
  KernelSigaction sigactions[kNumSignals + 1];
  struct itimerval itimers[3];
  stack_t altstack;
  uint64_t tid_address;
};

Status CheckCall(long r, const char* what, pid_t pid) {
  if (r < 0 && r > -4096) return ErrnoStatus(static_cast<int>(-r), std::string(what) + " in " + std::to_string(pid));
  return OkStatus();
}

}  // namespace

Status CollectByRemoteCalls(tracing::RemoteSyscall& rs, img::Process* proc, img::Thread* thread) {
  const pid_t pid = proc->pid();
  // Only signals with a handler or ignored (SigCgt, SigIgn) are asked for,
  // and SIGCHLD, whose flags matter even with the default action
  // (SA_NOCLDWAIT, SA_NOCLDSTOP); the others have the default action and no
  // flag that changes anything. Each remote call is a few tens of µs of
  // frozen time.
  ASSIGN_OR_RETURN(ProcStatus st, ReadStatus(pid));
  const uint64_t asked = st.sig_cgt | st.sig_ign | (1ull << (SIGCHLD - 1));
  ASSIGN_OR_RETURN(uint64_t base, rs.Scratch(sizeof(Scratch)));
  const uint64_t sa_base = base + offsetof(Scratch, sigactions);
  const std::vector<uint8_t> zeros(sizeof(Scratch::sigactions), 0);
  RETURN_IF_ERROR(rs.WriteScratch(sa_base, zeros.data(), zeros.size()));
  for (int sig = 1; sig <= kNumSignals; ++sig) {
    if (!(asked & (1ull << (sig - 1)))) continue;
    ASSIGN_OR_RETURN(long r, rs.Call(__NR_rt_sigaction, static_cast<uint64_t>(sig), 0,
                                     sa_base + sizeof(KernelSigaction) * static_cast<uint64_t>(sig), 8));
    RETURN_IF_ERROR(CheckCall(r, "rt_sigaction", pid));
  }
  const int kWhich[3] = {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF};
  for (int i = 0; i < 3; ++i) {
    ASSIGN_OR_RETURN(long r, rs.Call(__NR_getitimer, static_cast<uint64_t>(kWhich[i]),
                                     base + offsetof(Scratch, itimers) + sizeof(itimerval) * static_cast<uint64_t>(i)));
    RETURN_IF_ERROR(CheckCall(r, "getitimer", pid));
  }
  ASSIGN_OR_RETURN(long r, rs.Call(__NR_sigaltstack, 0, base + offsetof(Scratch, altstack)));
  RETURN_IF_ERROR(CheckCall(r, "sigaltstack", pid));
  ASSIGN_OR_RETURN(r, rs.Call(__NR_prctl, PR_GET_TID_ADDRESS, base + offsetof(Scratch, tid_address)));
  RETURN_IF_ERROR(CheckCall(r, "prctl(PR_GET_TID_ADDRESS)", pid));
  ASSIGN_OR_RETURN(long brk, rs.Call(__NR_brk, 0));

  Scratch s;
  RETURN_IF_ERROR(rs.ReadScratch(base, &s, sizeof(s)));
  for (int sig = 1; sig <= kNumSignals; ++sig) {
    img::SigAction* a = proc->add_sigactions();
    a->set_signo(static_cast<uint32_t>(sig));
    a->set_handler(s.sigactions[sig].handler);
    a->set_flags(s.sigactions[sig].flags);
    a->set_restorer(s.sigactions[sig].restorer);
    a->set_mask(s.sigactions[sig].mask);
  }
  for (int i = 0; i < 3; ++i) {
    img::ITimer* t = proc->add_itimers();
    t->set_which(static_cast<uint32_t>(kWhich[i]));
    t->set_interval_sec(static_cast<uint64_t>(s.itimers[i].it_interval.tv_sec));
    t->set_interval_usec(static_cast<uint64_t>(s.itimers[i].it_interval.tv_usec));
    t->set_value_sec(static_cast<uint64_t>(s.itimers[i].it_value.tv_sec));
    t->set_value_usec(static_cast<uint64_t>(s.itimers[i].it_value.tv_usec));
  }
  thread->mutable_altstack()->set_sp(reinterpret_cast<uint64_t>(s.altstack.ss_sp));
  thread->mutable_altstack()->set_flags(s.altstack.ss_flags);
  thread->mutable_altstack()->set_size(s.altstack.ss_size);
  thread->set_clear_child_tid(s.tid_address);
  proc->mutable_mm()->set_brk(static_cast<uint64_t>(brk));
  return OkStatus();
}

}  // namespace cf::engine

namespace cf::engine {

Status CollectThreadsByRemoteCalls(std::span<tracing::RemoteSyscall* const> rs, pid_t pid,
                                   std::span<img::Thread* const> threads) {
  struct Out {
    stack_t altstack;
    uint64_t tid_address;
  };
  std::vector<uint64_t> base(rs.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    ASSIGN_OR_RETURN(base[i], rs[i]->Scratch(sizeof(Out)));
  }
  // Each call runs in every thread at once (RemoteSyscall::CallInEach).
  std::vector<std::array<uint64_t, 6>> args(rs.size());
  std::vector<long> r;
  for (size_t i = 0; i < rs.size(); ++i) args[i] = {0, base[i] + offsetof(Out, altstack), 0, 0, 0, 0};
  RETURN_IF_ERROR(tracing::RemoteSyscall::CallInEach(rs, __NR_sigaltstack, args, &r));
  for (long v : r) RETURN_IF_ERROR(CheckCall(v, "sigaltstack", pid));
  for (size_t i = 0; i < rs.size(); ++i) args[i] = {PR_GET_TID_ADDRESS, base[i] + offsetof(Out, tid_address), 0, 0, 0, 0};
  RETURN_IF_ERROR(tracing::RemoteSyscall::CallInEach(rs, __NR_prctl, args, &r));
  for (long v : r) RETURN_IF_ERROR(CheckCall(v, "prctl(PR_GET_TID_ADDRESS)", pid));
  for (size_t i = 0; i < rs.size(); ++i) {
    Out s{};
    RETURN_IF_ERROR(rs[i]->ReadScratch(base[i], &s, sizeof(s)));
    img::Thread* thread = threads[i];
    thread->mutable_altstack()->set_sp(reinterpret_cast<uint64_t>(s.altstack.ss_sp));
    thread->mutable_altstack()->set_flags(s.altstack.ss_flags);
    thread->mutable_altstack()->set_size(s.altstack.ss_size);
    thread->set_clear_child_tid(s.tid_address);
  }
  return OkStatus();
}

}  // namespace cf::engine
