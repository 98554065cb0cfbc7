// Per-thread state from ptrace: NT_PRSTATUS, NT_X86_XSTATE, the blocked mask,
// queued signals (PEEKSIGINFO), the rseq registration and the thread name.
#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/io.h"
#include "engine/collect.h"

namespace cf::engine {
namespace {

constexpr size_t kXstateMax = 16384;
constexpr int kPeekBatch = 32;

void FillRegs(const user_regs_struct& r, img::UserRegs* o) {
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
}

// Reads one signal queue (the thread's or, with |shared|, the process's).
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

}  // namespace

Status CollectThread(pid_t pid, pid_t tid, img::Thread* out) {
  const std::string who = "thread " + std::to_string(tid);
  out->set_tid(tid);

  user_regs_struct regs;
  iovec iov{&regs, sizeof(regs)};
  if (ptrace(PTRACE_GETREGSET, tid, NT_PRSTATUS, &iov) != 0) return ErrnoStatus("GETREGSET NT_PRSTATUS of " + who);
  FillRegs(regs, out->mutable_regs());
  out->set_in_syscall(static_cast<int64_t>(regs.orig_rax) >= 0);

  std::vector<uint8_t> xstate(kXstateMax);
  iov = {xstate.data(), xstate.size()};
  if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) != 0) return ErrnoStatus("GETREGSET NT_X86_XSTATE of " + who);
  out->set_xstate(xstate.data(), iov.iov_len);

  uint64_t mask = 0;
  if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(mask), &mask) != 0) return ErrnoStatus("GETSIGMASK of " + who);
  out->set_blocked(mask);

  RETURN_IF_ERROR(PeekSignals(tid, false, out->mutable_pending()));

  struct {
    uint64_t rseq_abi_pointer;
    uint32_t rseq_abi_size;
    uint32_t signature;
    uint32_t flags;
    uint32_t pad;
  } rseq{};
  if (ptrace(static_cast<__ptrace_request>(PTRACE_GET_RSEQ_CONFIGURATION), tid, sizeof(rseq), &rseq) > 0) {
    out->mutable_rseq()->set_abi_pointer(rseq.rseq_abi_pointer);
    out->mutable_rseq()->set_abi_size(rseq.rseq_abi_size);
    out->mutable_rseq()->set_signature(rseq.signature);
    out->mutable_rseq()->set_flags(rseq.flags);
  }

  auto comm = ReadFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  if (comm.ok()) {
    std::string c = *comm;
    while (!c.empty() && c.back() == '\n') c.pop_back();
    out->set_comm(c);
  }
  return OkStatus();
}

Status CollectSharedPending(pid_t tid, img::Process* out) {
  return PeekSignals(tid, true, out->mutable_shared_pending());
}

}  // namespace cf::engine
