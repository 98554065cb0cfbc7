// State only the task itself can report, read by syscalls run in the frozen
// target (ptrace/remote_syscall.h). Process-wide: sigactions, itimers and
// brk, in the leader. Per thread: the properties of kinds/thread_props.h
// read by a remote call (sigaltstack, clear_child_tid), for every thread,
// the leader included, by one path: in groups, each call run in all the
// threads of a group at once. Results land in scratch memory of each thread
// and are read back in one process_vm_readv per thread.
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "engine/collect.h"
#include "kinds/thread_props.h"
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
};

// A process may have thousands of threads: their remote calls run in groups
// of this many, all threads of a group at once.
constexpr size_t kGroup = 256;

Status CheckCall(long r, const char* what, pid_t pid) {
  if (r < 0 && r > -4096) return ErrnoStatus(static_cast<int>(-r), std::string(what) + " in " + std::to_string(pid));
  return OkStatus();
}

}  // namespace

Status CollectByRemoteCalls(tracing::RemoteSyscall& rs, img::Process* proc) {
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
  proc->mutable_mm()->set_brk(static_cast<uint64_t>(brk));
  return OkStatus();
}


namespace {

// The remote-read properties of one group of threads: |threads[i]| is
// filled by calls in the thread of |rs[i]|. Each property's output has its
// place in one scratch block per thread.
Status CollectGroup(std::span<tracing::RemoteSyscall* const> rs, std::span<img::Thread* const> threads) {
  std::vector<const kinds::RemoteRead*> reads;
  std::vector<const char*> names;
  std::vector<uint64_t> offs;
  uint64_t size = 0;
  for (const kinds::ThreadProperty& p : kinds::ThreadProperties()) {
    if (!p.remote) continue;
    reads.push_back(p.remote);
    names.push_back(p.name);
    offs.push_back(size);
    size += (p.remote->size + 7) & ~uint64_t{7};
  }
  if (reads.empty()) return OkStatus();
  std::vector<uint64_t> base(rs.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    ASSIGN_OR_RETURN(base[i], rs[i]->Scratch(size));
  }
  std::vector<std::array<uint64_t, 6>> args(rs.size());
  std::vector<long> r;
  for (size_t k = 0; k < reads.size(); ++k) {
    for (size_t i = 0; i < rs.size(); ++i) args[i] = reads[k]->args(base[i] + offs[k]);
    RETURN_IF_ERROR(tracing::RemoteSyscall::CallInEach(rs, reads[k]->nr, args, &r));
    for (size_t i = 0; i < r.size(); ++i) {
      RETURN_IF_ERROR(CheckCall(r[i], (std::string("remote read of ") + names[k] + " of thread").c_str(),
                                threads[i]->tid()));
    }
  }
  std::vector<uint8_t> out(size);
  for (size_t i = 0; i < rs.size(); ++i) {
    RETURN_IF_ERROR(rs[i]->ReadScratch(base[i], out.data(), out.size()));
    for (size_t k = 0; k < reads.size(); ++k) reads[k]->decode(out.data() + offs[k], threads[i]);
  }
  return OkStatus();
}

}  // namespace

Status CollectThreadsByRemoteCalls(tracing::RemoteSyscall& leader, const tracing::RemoteSites& sites,
                                   img::Process* proc) {
  const pid_t pid = proc->pid();
  const size_t n = static_cast<size_t>(proc->threads_size());
  for (size_t first = 0; first < n; first += kGroup) {
    const size_t end = std::min(n, first + kGroup);
    // The leader (thread 0) is already attached: it joins the first group.
    std::vector<tracing::RemoteSyscall> attached;
    attached.reserve(end - first);
    std::vector<tracing::RemoteSyscall*> rs;
    std::vector<img::Thread*> threads;
    for (size_t i = first; i < end; ++i) {
      img::Thread* t = proc->mutable_threads(static_cast<int>(i));
      if (i == 0) {
        rs.push_back(&leader);
      } else {
        ASSIGN_OR_RETURN(tracing::RemoteSyscall trs, tracing::RemoteSyscall::Attach(pid, t->tid(), &sites));
        attached.push_back(std::move(trs));
        rs.push_back(&attached.back());
      }
      threads.push_back(t);
    }
    RETURN_IF_ERROR(CollectGroup(rs, threads));
    for (tracing::RemoteSyscall& t : attached) RETURN_IF_ERROR(t.Restore());
  }
  return OkStatus();
}

}  // namespace cf::engine
