#include "ptrace/seize.h"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <set>
#include <vector>

#include "common/fault.h"
#include "common/log.h"
#include "ptrace/kill_guard.h"
#include "common/timer.h"
#include "proc/proc_parse.h"

namespace cf::tracing {
using namespace ::cf::proc;  // /proc parsing, the layer below
namespace {

constexpr int kMaxSignalStops = 64;
// How long a child that failed to be seized may take to finish exiting.
constexpr int kExitWaitMs = 2000;
constexpr int kExitPollMs = 5;

// An exited process not yet waited for. A thread-group leader that exited
// while other threads of its process run is in state Z too, but is not one.
bool IsZombie(pid_t pid, const ProcStat& st) {
  if (st.state != 'Z') return false;
  auto tids = ListThreads(pid);
  return tids.ok() && tids->size() <= 1;
}

// Without PTRACE_O_SUSPEND_SECCOMP, a call run in a thread under seccomp
// could be refused, or kill it (strict mode): such a thread is let go.
Status RefuseSeccomp(pid_t tid) {
  auto st = ReadStatus(tid, tid);
  if (st.ok() && st->seccomp == 0) return OkStatus();
  ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
  if (!st.ok()) return st.status();
  return Errorf("thread %d is under seccomp (mode %u) and criu-fast cannot suspend it (PTRACE_O_SUSPEND_SECCOMP "
                "needs CAP_SYS_ADMIN and a criu-fast not under seccomp itself)",
                tid, st->seccomp);
}

}  // namespace

Status CheckDumpable(pid_t pid, const ProcStat* known_stat) {
  if (pid == getpid()) return Error("cannot dump criu-fast itself");
  auto st = ReadStatus(pid);
  if (!st.ok()) {
    if (st.status().err() == ENOENT) return Errorf("process %d does not exist", pid);
    return st.status();
  }
  if (st->state == 'Z' || st->state == 'X') return Errorf("process %d is a zombie", pid);
  if (st->tgid != pid) return Errorf("%d is a thread of process %d: dump the process", pid, st->tgid);
  if (st->tracer_pid != 0) return Errorf("process %d is already traced by %d", pid, st->tracer_pid);
  ProcStat read_now;
  if (known_stat == nullptr) {
    ASSIGN_OR_RETURN(read_now, ReadStat(pid));
    known_stat = &read_now;
  }
  if (known_stat->flags & 0x00200000 /* PF_KTHREAD */) return Errorf("process %d is a kernel thread", pid);
  return OkStatus();
}

size_t FrozenTree::thread_count() const {
  size_t n = 0;
  for (const auto& p : processes_) n += p.threads.size();
  return n;
}

Status FrozenTree::StartSeize(pid_t tid) {
  // TRACESYSGOOD: remote system calls tell syscall stops from SIGTRAPs.
  // SUSPEND_SECCOMP: the kernel applies no seccomp rule of the thread to
  // the calls we run in it (kinds/seccomp.h).
  const long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_SUSPEND_SECCOMP;
  bool seized = suspend_seccomp_ && ptrace(PTRACE_SEIZE, tid, nullptr, reinterpret_cast<void*>(opts)) == 0;
  // EPERM: no CAP_SYS_ADMIN, or criu-fast under seccomp; EINVAL: a kernel
  // without CONFIG_CHECKPOINT_RESTORE.
  if (!seized && suspend_seccomp_ && (errno == EPERM || errno == EINVAL)) {
    suspend_seccomp_ = false;
    LOG_INFO("seize: PTRACE_O_SUSPEND_SECCOMP refused: threads under seccomp cannot be dumped");
  }
  if (!seized && ptrace(PTRACE_SEIZE, tid, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD)) != 0) {
    return ErrnoStatus("cannot seize thread " + std::to_string(tid));
  }
  if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) {
    Status s = ErrnoStatus("cannot interrupt thread " + std::to_string(tid));
    ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
    return s;
  }
  return OkStatus();
}

Status FrozenTree::FinishSeize(pid_t tid, SeizedThread* out) {
  out->tid = tid;
  // Wait for the interrupt stop. A signal that arrives first shows up as a
  // signal-delivery stop: deliver it and wait on (the interrupt stays armed).
  // A thread that cannot stop (a vfork parent waits for its child to exec
  // or exit, and takes no ptrace stop meanwhile) fails the seize after a
  // while instead of holding the dump for ever. Most threads have stopped
  // already: the first look does not wait.
  const uint64_t deadline =
      stop_timeout_ms_ > 0 ? MonotonicNs() + static_cast<uint64_t>(stop_timeout_ms_) * 1000000ull : UINT64_MAX;
  Backoff backoff(1000, 2000000);
  for (int i = 0; i < kMaxSignalStops; ++i) {
    int status = 0;
    pid_t r = waitpid(tid, &status, __WALL | WNOHANG);
    if (r == 0) {
      if (MonotonicNs() > deadline) {
        // The interrupt stays pending; the kernel drops it once criu-fast
        // is no longer the tracer (the failed dump detaches or exits).
        return Errorf("thread %d did not stop within %d ms (--timeout; in vfork, or in an uninterruptible wait)",
                      tid, stop_timeout_ms_);
      }
      backoff.Wait();
      --i;
      continue;
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("wait for thread " + std::to_string(tid));
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      return Errorf("thread %d exited while being seized", tid);
    }
    if (!WIFSTOPPED(status)) continue;
    const int event = status >> 16;
    const int sig = WSTOPSIG(status);
    if (event == PTRACE_EVENT_STOP) {
      out->group_stopped = sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
      out->stop_signal = out->group_stopped ? sig : 0;
      return suspend_seccomp_ ? OkStatus() : RefuseSeccomp(tid);
    }
    // Signal-delivery stop: hand the signal back and keep waiting.
    ptrace(PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(event ? 0 : sig)));
  }
  ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
  return Errorf("thread %d did not stop after %d signals", tid, kMaxSignalStops);
}

Status FrozenTree::SeizeProcess(pid_t pid, const ProcStat* stat) {
  RETURN_IF_ERROR(CheckDumpable(pid, stat));
  SeizedProcess proc;
  proc.pid = pid;
  std::set<pid_t> seized;
  // Threads may be created while we seize: rescan until nothing is new.
  for (int pass = 0;; ++pass) {
    ASSIGN_OR_RETURN(std::vector<pid_t> tids, ListThreads(pid));
    // Every new thread is asked to stop before any is waited for: their
    // stops overlap (a process may have thousands of threads).
    std::vector<pid_t> started;
    Status failed;
    for (pid_t tid : tids) {
      if (seized.count(tid)) continue;
      Status s = StartSeize(tid);
      if (s.ok()) {
        started.push_back(tid);
      } else if (tid == pid || kill(tid, 0) == 0) {
        // A thread that exits while we seize is not an error; the leader is.
        failed = s;
        break;
      }
    }
    bool found_new = false;
    for (pid_t tid : started) {
      SeizedThread t;
      Status s = FinishSeize(tid, &t);
      if (!s.ok()) {
        if (tid != pid && kill(tid, 0) != 0) continue;
        if (failed.ok()) failed = s;
        continue;
      }
      seized.insert(tid);
      proc.threads.push_back(t);
      found_new = true;
    }
    if (!failed.ok()) {
      processes_.push_back(std::move(proc));
      return failed;
    }
    if (!found_new) break;
    if (pass > 1000) {
      processes_.push_back(std::move(proc));
      return Errorf("process %d keeps creating threads; cannot freeze it", pid);
    }
  }
  std::stable_partition(proc.threads.begin(), proc.threads.end(),
                        [pid](const SeizedThread& t) { return t.tid == pid; });
  LOG_INFO("seize: process %d frozen (%zu threads)", pid, proc.threads.size());
  processes_.push_back(std::move(proc));
  FAULT_POINT("seize");
  return OkStatus();
}

Status FrozenTree::SeizeTree(pid_t root) {
  RETURN_IF_ERROR(SeizeProcess(root));
  std::set<pid_t> known = {root};
  // A seized process is frozen and cannot fork any more, but a fork that was
  // under way when we seized its parent shows up in a later pass.
  for (bool found = true; found;) {
    found = false;
    for (size_t i = 0; i < processes_.size(); ++i) {
      const pid_t parent = processes_[i].pid;
      // Its threads are all seized (it can make no more): their children.
      std::vector<pid_t> tids;
      for (const SeizedThread& t : processes_[i].threads) tids.push_back(t.tid);
      ASSIGN_OR_RETURN(std::vector<pid_t> children, ListChildren(parent, &tids));
      for (pid_t child : children) {
        if (known.count(child)) continue;
        auto st = ReadStat(child);
        if (!st.ok() || st->state == 'X') continue;  // exited and reaped meanwhile
        known.insert(child);
        if (IsZombie(child, *st)) {
          LOG_INFO("seize: process %d has a zombie child %d", parent, child);
          processes_[i].zombies.push_back(child);
          continue;
        }
        Status s = SeizeProcess(child, &*st);
        if (s.ok()) processes_.back().parent = parent;
        if (!s.ok() && !TakeAsZombie(i, child)) return s;
        found = true;
      }
    }
  }
  return OkStatus();
}

bool FrozenTree::TakeAsZombie(size_t parent, pid_t child) {
  // Its parent is frozen, so an exiting child ends as a zombie and stays.
  int waited = 0;
  for (;;) {
    auto st = ReadStat(child);
    if (!st.ok()) return false;
    if (IsZombie(child, *st)) break;
    if (st->state != 'Z' && !(st->flags & 0x4 /* PF_EXITING */)) return false;
    if (waited >= kExitWaitMs) return false;
    usleep(kExitPollMs * 1000);
    waited += kExitPollMs;
  }
  if (!processes_.empty() && processes_.back().pid == child) {
    // Threads seized before it died: let them go (ESRCH when gone), and
    // collect the exits we were told of as tracer, so that its parent is.
    for (const SeizedThread& t : processes_.back().threads) {
      ptrace(PTRACE_DETACH, t.tid, nullptr, nullptr);
      int status;
      waitpid(t.tid, &status, __WALL | WNOHANG);
    }
    processes_.pop_back();
  }
  LOG_INFO("seize: process %d exited while being seized: a zombie child of %d", child, processes_[parent].pid);
  processes_[parent].zombies.push_back(child);
  return true;
}

namespace {

// Sends |sig| to each of |pids| (thread-group leaders), all or nothing
// (ptrace/kill_guard.h): should criu-fast die half-way through, a guard
// sends the rest theirs. A guard that cannot start is warned about, and the
// signals go unguarded. |fault|: the fault point (tests) at which criu-fast
// kills itself with half of them sent.
void SignalAll(const std::vector<pid_t>& pids, int sig, const char* fault) {
  auto guard = KillGuard::Start(pids, sig);
  if (!guard.ok()) LOG_WARN("seize: %s (signal %d sent unguarded)", guard.status().ToString().c_str(), sig);
  size_t sent = 0;
  for (pid_t pid : pids) {
    kill(pid, sig);
    if (++sent == (pids.size() + 1) / 2 && FaultArmed(fault)) raise(SIGKILL);
  }
  if (guard.ok()) (*guard)->Commit();
}

}  // namespace

void FrozenTree::Release(bool stop) {
  if (done_) return;
  done_ = true;
  // Queued while the threads are still held: the first thing they do once
  // detached is to stop. All or nothing (ptrace/kill_guard.h): criu-fast
  // killed half-way through the loop would leave part of the tree stopped
  // and the rest running; the guard sends the rest their SIGSTOP. Once all
  // are queued, a detach by the kernel stops them as well as ours.
  std::vector<pid_t> to_stop;
  for (const auto& p : processes_) {
    const bool stopped =
        std::any_of(p.threads.begin(), p.threads.end(), [](const SeizedThread& t) { return t.group_stopped; });
    if (stop && !stopped) to_stop.push_back(p.pid);
  }
  if (!to_stop.empty()) SignalAll(to_stop, SIGSTOP, "dump-die-mid-stop");
  for (const auto& p : processes_) {
    for (const auto& t : p.threads) {
      // ESRCH: the thread died meanwhile (killed by someone else).
      if (ptrace(PTRACE_DETACH, t.tid, nullptr, nullptr) != 0 && errno != ESRCH) {
        LOG_WARN("seize: cannot detach from %d: %m", t.tid);
      }
    }
  }
}

void FrozenTree::Kill() {
  if (done_) return;
  done_ = true;
  // No wait for the deaths: SIGKILL cannot be blocked, so no thread of the
  // tree runs another instruction, and the kernel tears each one down
  // (exit_mmap of 60,000 mappings: ~90 ms; of a GiB resident: more) with
  // nobody waiting. When criu-fast exits, its tracees are detached
  // (exit_ptrace) and their real parents are told of their deaths as if
  // never traced. CRIU does the same (its dump returns once the signal is
  // sent); a restore that follows waits for each pid to be free
  // (restore/clone.cc).
  // All or nothing (ptrace/kill_guard.h): criu-fast killed half-way through
  // the loop would leave the rest of the tree running beside its image.
  std::vector<pid_t> pids;
  pids.reserve(processes_.size());
  for (const auto& p : processes_) pids.push_back(p.pid);
  SignalAll(pids, SIGKILL, "dump-die-mid-kill");
}

FrozenTree::~FrozenTree() { Release(); }

}  // namespace cf::tracing
