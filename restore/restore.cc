// The criu-fast side of a restore.
//
// Stages:
//   1. load     inventory, cores and pagemaps (checksums verified)
//   2. create   the root with its PID (clone3 set_tid), traced by criu-fast;
//               each process forks its children untraced and each child
//               asks criu-fast to seize it (restore/task.h), dying with its
//               parent until then
//   3. prepare  inside each new process (restore/task.h): session, the shared
//               objects it owns (restore/shared_files.h), children (each with
//               its PID), limits, cwd, premapped and filled memory,
//               descriptors; then the restorer blob puts memory in place,
//               sets what only the task can set, and stops on int3
//   4. finish   once every process is stopped there, criu-fast checks each
//               restorer's result, unmaps its region, loads registers, xstate
//               and signal mask by ptrace, queues the stop signal of each
//               process that was stopped (SIGSTOP for all with
//               --leave-stopped), and detaches them all together
// Any failure kills every process created so far (PTRACE_O_EXITKILL covers
// criu-fast itself dying, and the parent-death signal a child not yet
// seized), so a failed restore leaves nothing behind.
#include "restore/restore.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "common/interrupt.h"
#include "common/fault.h"
#include "common/fd.h"
#include "common/io.h"
#include "common/log.h"
#include "common/timer.h"
#include "pagemap/vma.h"
#include "proc/proc_parse.h"
#include "ptrace/kill_guard.h"
#include "ptrace/remote_syscall.h"
#include "kinds/cgroup.h"
#include "kinds/kind.h"
#include "kinds/net_lock.h"
#include "kinds/process_props.h"
#include "kinds/tcp_socket.h"
#include "kinds/netns.h"
#include "kinds/shmem.h"
#include "kinds/seccomp.h"
#include "kinds/thread_props.h"
#include "restore/images.h"
#include "blobs/restorer/restorer_abi.h"
#include "restore/clone.h"
#include "restore/fdtable.h"
#include "restore/ghosts.h"
#include "restore/shared_files.h"
#include "restore/shared_heap.h"
#include "restore/memory.h"
#include "restore/task.h"

namespace cf::restore {
using namespace ::cf::proc;  // /proc parsing, the layer below
namespace {

const char* StageName(int stage) {
  switch (stage) {
    case CF_RST_STAGE_START: return "start";
    case CF_RST_STAGE_UNMAP: return "unmapping criu-fast";
    case CF_RST_STAGE_MOVE_VMAS: return "moving memory into place";
    case CF_RST_STAGE_VDSO: return "moving the vDSO";
    case CF_RST_STAGE_RLIMITS: return "resource limits";
    case CF_RST_STAGE_PROTECT: return "setting protections";
    case CF_RST_STAGE_MM: return "PR_SET_MM_MAP";
    case CF_RST_STAGE_SIGACTIONS: return "sigactions";
    case CF_RST_STAGE_TIMERS: return "itimers";
    case CF_RST_STAGE_THREAD: return "thread state (sigaltstack, rseq)";
    case CF_RST_STAGE_CREDS: return "credentials";
    case CF_RST_STAGE_SIGNALS: return "pending signals";
    case CF_RST_STAGE_THREADS: return "creating threads";
    case CF_RST_STAGE_POSIX_TIMERS: return "POSIX timers";
    case CF_RST_STAGE_SECCOMP: return "seccomp";
    default: return "unknown";
  }
}

// Every process created so far: killed on destruction unless released.
class CreatedTree {
 public:
  ~CreatedTree() {
    if (released_) return;
    for (pid_t pid : pids_) kill(pid, SIGKILL);
    // Reap everything we trace or parent: a thread-group leader is reported
    // only after its threads, so wait for any until none is left.
    for (;;) {
      int status;
      if (waitpid(-1, &status, __WALL) < 0 && errno != EINTR) break;
    }
  }
  void Add(pid_t pid) { pids_.insert(pid); }
  void Release() { released_ = true; }

 private:
  std::set<pid_t> pids_;
  bool released_ = false;
};

Status ReadRemote(pid_t pid, uint64_t addr, void* buf, size_t len, const char* what = "restorer result") {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(len)) {
    return ErrnoStatus(std::string("read ") + what + " of process " + std::to_string(pid));
  }
  return OkStatus();
}

// Loads what criu-fast sets in a stopped thread by ptrace (registers, xstate,
// signal mask: the properties of kinds/thread_props.h with a load).
Status LoadThread(pid_t tid, const img::Thread& th) {
  for (const kinds::ThreadProperty& p : kinds::ThreadProperties()) {
    if (p.load) RETURN_IF_ERROR(p.load(tid, th));
  }
  return OkStatus();
}

// The restorer stops on int3 with every signal blocked: the kernel then
// forces SIGTRAP and resets its action to the default. The process's own
// action for SIGTRAP is set again here, by a remote rt_sigaction whose
// argument is written over the args block (already read, about to go).
Status RestoreSigtrapAction(tracing::RemoteSyscall& rs, pid_t pid, uint64_t scratch, const img::Process& core) {
  if (core.sigactions_size() < SIGTRAP) return OkStatus();
  const img::SigAction& a = core.sigactions(SIGTRAP - 1);
  if (a.handler() == 0 && a.flags() == 0 && a.mask() == 0) return OkStatus();
  const uint64_t act[4] = {a.handler(), a.flags(), a.restorer(), a.mask()};  // the kernel's struct sigaction
  iovec local{const_cast<uint64_t*>(act), sizeof(act)};
  iovec remote{reinterpret_cast<void*>(scratch), sizeof(act)};
  if (process_vm_writev(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof(act))) {
    return ErrnoStatus("write the SIGTRAP action");
  }
  ASSIGN_OR_RETURN(long r, rs.Call(__NR_rt_sigaction, SIGTRAP, scratch, 0, 8));
  if (r != 0) return ErrnoStatus(static_cast<int>(-r), "set the SIGTRAP action");
  return OkStatus();
}

// Checks what the restorer of |pid| reported. The process is stopped on the
// restorer's int3.
Status CheckRestorer(pid_t pid, const TaskReport& report, const img::Process& core) {
  cf_rst_args result;
  RETURN_IF_ERROR(ReadRemote(pid, report.args, &result, sizeof(result)));
  if (result.stage != CF_RST_STAGE_DONE || result.error != 0) {
    const char* what = result.stage == CF_RST_STAGE_POSIX_TIMERS ? " (timer id "
                       : result.stage == CF_RST_STAGE_RLIMITS    ? " (resource "
                                                                 : " (address ";
    return Error(std::string("restorer of process ") + std::to_string(pid) + " failed at " +
                     StageName(result.stage) + what + std::to_string(result.error_addr) + ")",
                 static_cast<int>(-result.error));
  }
  if (result.rlimits_kept != 0) {
    LOG_WARN("restore: process %d: %u hard resource limits could not be raised to their dumped values (no "
             "CAP_SYS_RESOURCE): kept as they were", pid, result.rlimits_kept);
  }
  // Every thread's own result, the leader's (record 0) included: read
  // before the region goes.
  if (result.nr_threads != static_cast<uint32_t>(core.threads_size())) {
    return Errorf("restorer of process %d: %u thread records, %d threads", pid, result.nr_threads,
                  core.threads_size());
  }
  std::vector<cf_rst_thread> threads(static_cast<size_t>(result.nr_threads));
  RETURN_IF_ERROR(ReadRemote(pid, report.args + result.threads_off, threads.data(),
                             threads.size() * sizeof(cf_rst_thread)));
  for (const cf_rst_thread& t : threads) {
    if (t.stage != CF_RST_STAGE_DONE) return Errorf("restorer of thread %d did not set its state", t.tid);
    if (t.error != 0) {
      return Error("restorer of thread " + std::to_string(t.tid) + " failed at " + StageName(CF_RST_STAGE_THREAD) +
                       " (address " + std::to_string(t.error_addr) + ")",
                   static_cast<int>(-t.error));
    }
  }
  return OkStatus();
}

// A restored process whose restorer is done (CheckRestorer).
struct Done {
  pid_t pid;
  const TaskReport* report;
  const img::Process* core;
};

// The program calls its vDSO where it was at the dump: the restorer moved
// the vDSO block there. Checked (its ELF header) before the program runs, so
// that a vDSO left elsewhere fails the restore instead of the program's
// first clock_gettime. (Seen when the restorer moved the VMAs before the
// block, and one of them landed on the block: test_restore_vdso_moved.)
Status CheckVdso(pid_t pid, const img::Process& core) {
  for (const img::Vma& v : core.vmas()) {
    if (v.kind() != img::Vma::VDSO) continue;
    char head[4] = {};
    Status st = ReadRemote(pid, v.start(), head, sizeof(head), "vDSO");
    if (!st.ok() || memcmp(head, "\x7f" "ELF", 4) != 0) {
      // What the process has there and where its vDSO block went, for the
      // report.
      std::string seen;
      if (Result<std::vector<pagemap::VmaInfo>> maps = pagemap::ReadVmas(pid); maps.ok()) {
        for (const pagemap::VmaInfo& m : *maps) {
          const bool covers = m.start <= v.start() && v.start() < m.end;
          if (!covers && m.path != "[vdso]" && m.path != "[vvar]" && m.path != "[vvar_vclock]") continue;
          char line[96];
          snprintf(line, sizeof(line), "; %#lx-%#lx ", m.start, m.end);
          seen += line;
          seen += m.path.empty() ? "(anonymous)" : m.path;
        }
      }
      return Errorf("the vDSO is not at its dumped address %#lx after the restorer (%s)%s", v.start(),
                    st.ok() ? "no ELF header there" : st.ToString().c_str(), seen.c_str());
    }
  }
  return OkStatus();
}

// Processes whose region is unmapped at once (see FinishAll).
constexpr size_t kFinishGroup = 256;

// The threads other than the leader of a process whose restorer made them
// untraced (ThreadsTracedFromCreation false): they wait in a futex, their
// state set; each is seized and interrupted (all first, then each waited
// for, so that their stops overlap), with |options|.
Status SeizeParkedThreads(const img::Process& core, long options) {
  if (ThreadsTracedFromCreation(core)) return OkStatus();
  for (int i = 1; i < core.threads_size(); ++i) {
    const pid_t tid = core.threads(i).tid();
    if (ptrace(PTRACE_SEIZE, tid, nullptr, reinterpret_cast<void*>(options)) != 0) {
      return ErrnoStatus("seize restored thread " + std::to_string(tid));
    }
    if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) {
      return ErrnoStatus("interrupt restored thread " + std::to_string(tid));
    }
  }
  for (int i = 1; i < core.threads_size(); ++i) {
    const pid_t tid = core.threads(i).tid();
    for (;;) {
      int status = 0;
      if (waitpid(tid, &status, __WALL) != tid) {
        if (errno == EINTR) continue;
        return ErrnoStatus("wait for restored thread " + std::to_string(tid));
      }
      if (!WIFSTOPPED(status)) return Errorf("restored thread %d ended while criu-fast seized it", tid);
      if ((status >> 16) == PTRACE_EVENT_STOP) break;
      // A signal's stop first (every signal is blocked: SIGSTOP's kind):
      // passed on; the interrupt stays pending.
      ptrace(PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(WSTOPSIG(status))));
    }
  }
  return OkStatus();
}

// Removes the restore region of every process of |done| and loads the
// saved thread states. The unmaps of a group of processes run side by side
// (RemoteSyscall::CallInEach): one round trip for the group, not one each.
Status FinishAll(const std::vector<Done>& done, const kinds::CgroupPlan& cgroups, long options) {
  FAULT_POINT("restore-finish");
  for (size_t first = 0; first < done.size(); first += kFinishGroup) {
    const size_t end = std::min(done.size(), first + kFinishGroup);
    std::vector<tracing::RemoteSyscall> rs;
    rs.reserve(end - first);
    std::vector<tracing::RemoteSyscall*> ptrs;
    std::vector<std::array<uint64_t, 6>> args;
    for (size_t i = first; i < end; ++i) {
      const Done& d = done[i];
      const std::string ctx = "restore of process " + std::to_string(d.pid);
      RETURN_IF_ERROR(SeizeParkedThreads(*d.core, options).WithContext(ctx));
      // No return frame: the stack is in the region being unmapped, and a
      // restored tree dies with criu-fast anyway (PTRACE_O_EXITKILL).
      // At a `syscall` of the restorer blob, where the process stops: the
      // call's exit stop comes before the return into the unmapped region.
      tracing::RemoteSites sites;
      sites.syscall_insn = RestorerSyscallSite(d.report->region);
      auto attached = tracing::RemoteSyscall::Attach(d.pid, d.pid, sites.syscall_insn ? &sites : nullptr,
                                                     tracing::RemoteSyscall::Guard::kNone);
      if (!attached.ok()) return attached.status().WithContext(ctx);
      rs.push_back(std::move(*attached));
      RETURN_IF_ERROR(RestoreSigtrapAction(rs.back(), d.pid, d.report->args, *d.core).WithContext(ctx));
      ptrs.push_back(&rs.back());
      args.push_back({d.report->region, d.report->region_len, 0, 0, 0, 0});
    }
    std::vector<long> r;
    RETURN_IF_ERROR(tracing::RemoteSyscall::CallInEach(ptrs, __NR_munmap, args, &r));
    for (size_t i = first; i < end; ++i) {
      const Done& d = done[i];
      const std::string ctx = "restore of process " + std::to_string(d.pid);
      if (const long res = r[i - first]; res != 0) {
        return ErrnoStatus(static_cast<int>(-res), "unmap the restore region").WithContext(ctx);
      }
      RETURN_IF_ERROR(rs[i - first].Restore().WithContext(ctx));
      RETURN_IF_ERROR(CheckVdso(d.pid, *d.core).WithContext(ctx));
      for (const img::Thread& t : d.core->threads()) RETURN_IF_ERROR(LoadThread(t.tid(), t).WithContext(ctx));
      RETURN_IF_ERROR(kinds::MoveThreads(cgroups, *d.core).WithContext(ctx));
    }
  }
  return OkStatus();
}

// Reads every complete message waiting in the (non-blocking) pipe, hands
// each to |on_message| in order, and keeps the latest message of each
// process.
template <typename OnMessage>
Status DrainMessages(int fd, std::map<pid_t, TaskMessage>* out, OnMessage&& on_message) {
  for (;;) {
    TaskMessage msg;
    ssize_t n = read(fd, &msg, sizeof(msg));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return OkStatus();
    if (n <= 0) return OkStatus();
    if (n != static_cast<ssize_t>(sizeof(msg))) return Error("short message from a restored process", EPROTO);
    msg.error[sizeof(msg.error) - 1] = 0;
    if (msg.tag == 'E') return Errorf("restore of process %d: %s", msg.pid, msg.error);
    RETURN_IF_ERROR(on_message(msg));
    (*out)[msg.pid] = msg;
  }
}

// SIGCHLD held in this thread and read from a signalfd while it lives:
// the tracer is told of every stop and exit of a traced process by one.
class ChildSignals {
 public:
  ChildSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    fd_.reset(signalfd(-1, &set_, SFD_NONBLOCK | SFD_CLOEXEC));
  }
  ~ChildSignals() {
    fd_.reset();
    if (!sigismember(&old_, SIGCHLD)) pthread_sigmask(SIG_UNBLOCK, &set_, nullptr);
  }
  int fd() const { return fd_.get(); }
  // Whether a signal was read (so some traced process changed state).
  bool Drain() {
    signalfd_siginfo si[16];
    bool any = false;
    while (fd_.valid() && read(fd_.get(), si, sizeof(si)) > 0) any = true;
    return any;
  }

 private:
  sigset_t set_, old_;
  UniqueFd fd_;
};

// Runs the tree until every process stops on its restorer's int3: seizes
// each new process when it asks ('S'), fills the memory of each that
// premapped it ('P') and lets it go on (TaskContext::filled), resumes new
// threads, passes other signals on, fails when a process dies or reports an
// error. Nothing stops for a fork: the processes of the tree create theirs
// side by side while criu-fast fills others.
Status WaitForRestorers(const ImageSet& images, const std::set<pid_t>& expected, int msg_fd, int jobs,
                        long options, uint32_t* filled, CreatedTree* created, std::map<pid_t, TaskMessage>* msgs,
                        uint64_t* pages_copied) {
  std::map<pid_t, size_t> index;  // pid -> its process in images
  for (size_t i = 0; i < images.processes.size(); ++i) index[images.processes[i].core.pid()] = i;
  auto go_on = [&](pid_t pid) { SetFillWord(&filled[index.at(pid)], kFillDone); };
  std::set<pid_t> stopped;
  std::set<pid_t> seized;
  // A child that died between its fork and its 'S' (killed from outside)
  // is a zombie of its parent that criu-fast never hears of: looked for
  // when nothing happened for a while, instead of waiting for ever.
  auto check_unseized = [&]() -> Status {
    for (pid_t pid : expected) {
      if (seized.count(pid)) continue;
      auto st = proc::ReadStat(pid);
      const img::Process& core = images.processes[index.at(pid)].core;
      if (st.ok() && st->state == 'Z' && st->ppid == static_cast<pid_t>(core.ppid())) {
        return Errorf("restored process %d died before criu-fast could trace it", pid);
      }
    }
    return OkStatus();
  };
  uint64_t quiet_since = MonotonicNs();
  SharedTableOrder tables(images);  // processes sharing a descriptor table wait for each other
  Status seize_failed;  // reported unless the process's own error follows
  auto on_message = [&](const TaskMessage& m) -> Status {
    auto it = index.find(m.pid);
    if (it == index.end()) return Errorf("unexpected process %d in the restored tree", m.pid);
    if (m.tag == 'S') {
      const long opts = ThreadsTracedFromCreation(images.processes[it->second].core) ? options | PTRACE_O_TRACECLONE
                                                                                     : options;
      if (ptrace(PTRACE_SEIZE, m.pid, nullptr, reinterpret_cast<void*>(opts)) != 0) {
        if (seize_failed.ok()) seize_failed = ErrnoStatus("seize restored process " + std::to_string(m.pid));
        return OkStatus();
      }
      created->Add(m.pid);
      seized.insert(m.pid);
    } else if (m.tag == 'P') {
      // Premapped, waiting: fill its memory from here, then let it go on.
      const ProcessImages& p = images.processes[it->second];
      const TaskReport& report = m.report;
      if (report.plan_count > static_cast<uint64_t>(p.core.vmas_size())) {
        return Errorf("process %d reports %lu premapped vmas, its image has %d", m.pid, report.plan_count,
                      p.core.vmas_size());
      }
      std::vector<PremappedVma> slots(report.plan_count);
      RETURN_IF_ERROR(ReadRemote(m.pid, report.plan_addr, slots.data(), slots.size() * sizeof(PremappedVma),
                                 "premap plan"));
      UniqueFd copy_fd;
      if (report.has_copy_fd) {
        // Its userfaultfd, to copy pages into its by_copy slots.
        ASSIGN_OR_RETURN(copy_fd, kinds::TakeFd(m.pid, report.copy_fd));
      }
      RETURN_IF_ERROR(FillMemory(m.pid, slots, p.chain(), jobs, LineageOf(images, p), copy_fd.get(), pages_copied,
                                 &filled[it->second])
                          .WithContext("restore of process " + std::to_string(m.pid)));
      for (pid_t go : tables.Filled(m.pid)) go_on(go);
    }
    return OkStatus();
  };
  ChildSignals sigchld;
  if (sigchld.fd() < 0) return ErrnoStatus("signalfd");
  // Once every process closed its end of the message pipe, it reads as
  // hung up for ever: polled no more (or the loop would spin).
  bool msg_open = true;
  while (stopped.size() < expected.size()) {
    pollfd fds[2] = {{msg_open ? msg_fd : -1, POLLIN, 0}, {sigchld.fd(), POLLIN, 0}};
    // (The timeout only bounds a wake-up lost to another thread.)
    const int ready = poll(fds, 2, 50);
    if (ready < 0) {
      if (errno != EINTR) return ErrnoStatus("wait for the restored processes");
      RETURN_IF_ERROR(CheckTerminated());
      continue;
    }
    RETURN_IF_ERROR(CheckTerminated());  // a signal may come between two polls
    if ((fds[0].revents & (POLLHUP | POLLIN)) == POLLHUP) msg_open = false;
    // Each waitpid(-1) looks at every traced process: only when one of them
    // changed state (a message alone needs none).
    const bool changed = sigchld.Drain() || ready == 0;
    if (ready > 0) {
      quiet_since = MonotonicNs();
    } else if (MonotonicNs() - quiet_since > 500'000'000ull) {
      RETURN_IF_ERROR(check_unseized());
      quiet_since = MonotonicNs();
    }
    if (msg_open) RETURN_IF_ERROR(DrainMessages(msg_fd, msgs, on_message));
    RETURN_IF_ERROR(seize_failed);
    while (changed) {
      int status = 0;
      const pid_t pid = waitpid(-1, &status, __WALL | WNOHANG);
      if (pid == 0 || (pid < 0 && errno == ECHILD)) break;
      if (pid < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("wait for the restored processes");
      }
      created->Add(pid);
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        if (!expected.count(pid)) continue;
        RETURN_IF_ERROR(DrainMessages(msg_fd, msgs, on_message));  // its own error first
        return WIFEXITED(status) ? Errorf("restored process %d exited with %d", pid, WEXITSTATUS(status))
                                 : Errorf("restored process %d was killed by signal %d", pid, WTERMSIG(status));
      }
      if (!WIFSTOPPED(status)) continue;
      const int event = status >> 16;
      const int sig = WSTOPSIG(status);
      LOG_DEBUG("restore: process %d stopped: signal %d event %d", pid, sig, event);
      if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_STOP) {
        ptrace(PTRACE_CONT, pid, nullptr, nullptr);  // a new thread of the restorer
      } else if (sig == SIGTRAP && event == 0) {
        if (!expected.count(pid)) return Errorf("unexpected process %d in the restored tree", pid);
        stopped.insert(pid);
        for (pid_t go : tables.RestorerDone(pid)) go_on(go);
      } else if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL) {
        siginfo_t si{};
        ptrace(PTRACE_GETSIGINFO, pid, nullptr, &si);
        return Errorf("restored process %d got signal %d at %p while restoring", pid, sig, si.si_addr);
      } else {
        ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig)));
      }
    }
  }
  return DrainMessages(msg_fd, msgs, on_message);
}

Status CheckTree(const ImageSet& images) {
  std::set<pid_t> pids;
  for (const auto& p : images.processes) pids.insert(p.core.pid());
  for (size_t i = 1; i < images.processes.size(); ++i) {
    const img::Process& c = images.processes[i].core;
    if (!pids.count(c.ppid())) return Errorf("process %d: its parent %d is not in the image", c.pid(), c.ppid());
  }
  for (const auto& p : images.processes) {
    if (p.core.threads_size() < 1 || p.core.threads(0).tid() != p.core.pid()) {
      return Errorf("process %d: the first thread must be the leader", p.core.pid());
    }
  }
  return OkStatus();
}

// The signal that stops |core| again at the end of the restore (0: none):
// the one it was stopped by, or SIGSTOP where that one would not stop it
// now (blocked: a job-control stop signal other than SIGSTOP can be).
int StopSignal(const img::Process& core, bool leave_stopped) {
  const int sig = static_cast<int>(core.stop_signal());
  if (sig == 0) return leave_stopped ? SIGSTOP : 0;
  const bool valid = sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
  if (!valid) return SIGSTOP;
  const uint64_t bit = uint64_t{1} << (sig - 1);
  bool blocked = core.threads_size() > 0;
  for (const img::Thread& t : core.threads()) blocked = blocked && (t.blocked() & bit) != 0;
  return blocked ? SIGSTOP : sig;
}

Status WritePidfile(const std::string& path, pid_t pid) {
  const std::string text = std::to_string(pid) + "\n";
  UniqueFd f(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!f.valid()) return ErrnoStatus("write pidfile " + path);
  return WriteAll(f.get(), text.data(), text.size(), path);
}

void PrintStats(const std::map<pid_t, TaskMessage>& msgs, uint64_t total_ns, uint64_t load_ns, uint64_t pid_wait_ns,
                uint64_t finish_ns, size_t processes, uint64_t pages_copied) {
  auto ms = [](uint64_t ns) { return static_cast<double>(ns) / 1e6; };
  uint64_t premap = 0, fill = 0, files = 0, pages = 0, protected_early = 0;
  for (const auto& [pid, m] : msgs) {
    premap = std::max(premap, m.report.premap_ns);
    fill = std::max(fill, m.report.fill_ns);
    files = std::max(files, m.report.files_ns);
    pages += m.report.pages_filled;
    protected_early += m.report.vmas_protected_early;
  }
  printf("Restore statistics:\n");
  printf("  restore time:    %.3f ms\n", ms(total_ns));
  printf("  images load time: %.3f ms\n", ms(load_ns));
  printf("  pid wait time:   %.3f ms\n", ms(pid_wait_ns));
  printf("  premap time:     %.3f ms\n", ms(premap));
  printf("  fill time:       %.3f ms\n", ms(fill));
  printf("  files time:      %.3f ms\n", ms(files));
  printf("  finish time:     %.3f ms\n", ms(finish_ns));
  printf("  processes:       %zu\n", processes);
  printf("  pages restored:  %lu\n", pages);
  printf("  pages copied in: %lu (UFFDIO_COPY; the others written with process_vm_writev)\n", pages_copied);
  printf("  vmas protected during the fill: %lu\n", protected_early);
  printf("  fill rate:       %.2f GB/s\n", fill ? static_cast<double>(pages) * 4096.0 / static_cast<double>(fill) : 0.0);
  fflush(stdout);
}

}  // namespace

// Where a detached restore leaves its images for the exit. Not static: the
// compiler may drop a store to a function's static that nothing reads, and the
// images would then be a leak for LeakSanitizer rather than memory held to the
// end.
ImageSet* images_kept_until_exit = nullptr;

Status Restore(const RestoreOptions& opts, int* exit_code) {
  const uint64_t start = MonotonicNs();
  // Loaded into memory the new processes share rather than copy
  // (restore/shared_heap.h): every process of the tree reads them.
  Result<ImageSet> loaded_images = [&] {
    SharedHeapScope shared;
    return LoadImages(opts.images_dir, opts.parent_base);
  }();
  const uint64_t load_ns = MonotonicNs() - start;
  ASSIGN_OR_RETURN(ImageSet images, std::move(loaded_images));
  RETURN_IF_ERROR(CheckTree(images));
  ASSIGN_OR_RETURN(SharedFilePlan files, PlanSharedFiles(images));
  ASSIGN_OR_RETURN(kinds::CgroupMode cg_mode, kinds::ParseCgroupMode(opts.manage_cgroups.c_str()));
  kinds::CgroupMounts cg_mounts;  // mounts made for the restore go with it
  {
    std::vector<img::Process*> all;
    for (auto& p : images.processes) all.push_back(&p.core);
    RETURN_IF_ERROR(kinds::MoveCgroupRoots(opts.cgroup_roots, &images.inventory, all));
  }
  std::vector<const img::Process*> cores;
  for (const auto& p : images.processes) cores.push_back(&p.core);
  ASSIGN_OR_RETURN(kinds::CgroupPlan cgroups, kinds::PrepareCgroups(images.inventory, cores, cg_mode, &cg_mounts));
  files.tcp_close = opts.tcp_close;
  const int jobs = opts.jobs > 0 ? opts.jobs : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const kinds::ShmemRestoreHooks hooks{
      EnsureFdRoom, [jobs](uint64_t addr, uint64_t len, const img::PageMap& pages, const std::string& path) {
        PremappedVma whole;
        whole.len = len;
        whole.premap = addr;
        whole.anonymous = true;  // fresh: zero pages need no writes
        return FillMemory(getpid(), {whole}, PageChain{{&pages, path}}, jobs);
      }};
  ASSIGN_OR_RETURN(kinds::ShmemObjects shmem, kinds::ShmemObjects::Create(images.shmems, images.huge_shmems,
                                                                          images.dir, files.temp_base, hooks));
  files.shmem = &shmem.fds();
  const pid_t root = images.processes[0].core.pid();
  std::set<pid_t> expected;  // every thread of every process
  for (const auto& p : images.processes) {
    for (const img::Thread& t : p.core.threads()) expected.insert(t.tid());
  }
  FAULT_POINT("restore-create");

  int go[2], msg[2];
  if (pipe2(go, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  UniqueFd go_r(go[0]), go_w(go[1]);
  if (pipe2(msg, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  UniqueFd msg_r(msg[0]), msg_w(msg[1]);
  fcntl(msg_r.get(), F_SETPIPE_SZ, 1 << 20);  // best effort: room for many messages
  fcntl(msg_r.get(), F_SETFL, O_NONBLOCK);
  fflush(stdout);
  fflush(stderr);

  // The tree's network namespace (kinds/netns.h): the one to join, or one
  // made like the dumped tree's; the root enters it first thing.
  UniqueFd netns;
  const bool joined = !opts.join_netns.empty();
  if (joined) {
    ASSIGN_OR_RETURN(netns, kinds::OpenJoinNetns(opts.join_netns));
  } else if (images.inventory.has_net_ns()) {
    ASSIGN_OR_RETURN(netns, kinds::MakeNetns(images.inventory.net_ns(), images.inventory.net_lock()));
  }
  // Deleted files several processes hold: made once, here (restore/ghosts.h).
  ASSIGN_OR_RETURN(InheritedFiles ghosts, MakeSharedGhosts(images, files.temp_base));
  const std::map<std::string, uint32_t> shared_ghosts = SharedGhosts(images);
  // TaskContext::filled: one word per process, shared with the whole tree.
  const size_t filled_len = (images.processes.size() * sizeof(uint32_t) + 4095) & ~size_t{4095};
  void* filled_map = mmap(nullptr, filled_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (filled_map == MAP_FAILED) return ErrnoStatus("map the fill words");
  struct Unmap {
    void* p;
    size_t len;
    ~Unmap() { munmap(p, len); }
  } filled_unmap{filled_map, filled_len};
  auto* filled = static_cast<uint32_t*>(filled_map);
  const uint64_t loaded = MonotonicNs();
  ForgetCachedBlocks();  // no shared block freed since the load is handed out again in the tree
  kinds::ReadInheritedState();  // once here, not in each process
  auto cloned = CloneWithPid(root);
  if (cloned.ok() && *cloned == 0) {
    // The root holds only its ends of the two pipes: with its own copy of
    // the go-ahead's write end, the read would never end should criu-fast
    // die before it writes (the root waits, untraced, for ever).
    go_w.reset();
    msg_r.reset();
    RunTask({&images, 0, images.dir, jobs, go_r.get(), msg_w.get(), &files, ghosts, &cgroups, netns.get(),
             &shared_ghosts, nullptr, filled});
  }
  // Tests: criu-fast killed between the root's clone and its go-ahead.
  if (cloned.ok() && FaultArmed("restore-die-before-go")) raise(SIGKILL);
  for (const auto& [id, fd] : ghosts) close(fd);
  RETURN_IF_ERROR(cloned.status());
  const uint64_t created_at = MonotonicNs();
  CreatedTree created;
  created.Add(root);
  go_r.reset();
  msg_w.reset();
  // The root, then each process when it asks (restore/task.h).
  // A tree under seccomp: the restorer installs the filters before its
  // last calls, and ours follow (kinds/seccomp.h); suspended until detach.
  // Threads are traced from their creation (PTRACE_O_TRACECLONE) only in
  // a process with a thread under strict seccomp (restore/task.h); the
  // others' are seized at the end (SeizeParkedThreads).
  long options = PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD;
  for (const auto& p : images.processes) {
    if (kinds::UsesSeccomp(p.core)) options |= PTRACE_O_SUSPEND_SECCOMP;
  }
  const long root_options =
      ThreadsTracedFromCreation(images.processes[0].core) ? options | PTRACE_O_TRACECLONE : options;
  if (ptrace(PTRACE_SEIZE, root, nullptr, reinterpret_cast<void*>(root_options)) != 0) {
    return ErrnoStatus("seize the restored process");
  }
  // The restorer stops (int3) criu-fast waits for: every thread's where
  // they are traced from their creation, else the leader's.
  std::set<pid_t> restorer_stops;
  for (const auto& p : images.processes) {
    const bool all = ThreadsTracedFromCreation(p.core);
    for (const img::Thread& t : p.core.threads()) {
      if (all || t.tid() == p.core.pid()) restorer_stops.insert(t.tid());
    }
  }
  char byte = 'g';
  RETURN_IF_ERROR(WriteAll(go_w.get(), &byte, 1, "go"));

  std::map<pid_t, TaskMessage> msgs;
  uint64_t pages_copied = 0;
  RETURN_IF_ERROR(
      WaitForRestorers(images, restorer_stops, msg_r.get(), jobs, options, filled, &created, &msgs, &pages_copied));
  const uint64_t finish_start = MonotonicNs();
  std::vector<Done> done;
  for (const auto& p : images.processes) {
    const pid_t pid = p.core.pid();
    auto it = msgs.find(pid);
    if (it == msgs.end()) return Errorf("restored process %d sent no report", pid);
    RETURN_IF_ERROR(
        CheckRestorer(pid, it->second.report, p.core).WithContext("restore of process " + std::to_string(pid)));
    done.push_back({pid, &it->second.report, &p.core});
  }
  RETURN_IF_ERROR(FinishAll(done, cgroups, options));
  if (!opts.pidfile.empty()) RETURN_IF_ERROR(WritePidfile(opts.pidfile, root));
  // A process that was stopped stops again, by the same signal, so its
  // parent's wait sees it stopped as before; with --leave-stopped every
  // process stops. Queued while the threads are held, the signal is the
  // first thing they handle once detached.
  for (const auto& p : images.processes) {
    const int sig = StopSignal(p.core, opts.leave_stopped);
    if (sig != 0 && kill(p.core.pid(), sig) != 0) {
      return ErrnoStatus("stop restored process " + std::to_string(p.core.pid()));
    }
  }
  // The connections are back: their packets may pass again (a failed
  // restore leaves the lock, so the dump can still be restored).
  // A tree of its own namespace has the lock in it: the joined one since
  // the dump, one made again since it was made.
  const int lock_ns = images.inventory.has_net_ns() ? netns.get() : -1;
  if (Status s = kinds::UnlockNetwork(images.inventory.net_lock(), lock_ns); !s.ok()) {
    LOG_ERROR("%s", s.ToString().c_str());
  }
  // Then each connection tells its peer where it stands (kinds/tcp_socket.h).
  for (const auto& p : images.processes) {
    if (Status s = kinds::ProbeRestoredConnections(p.core.pid(), p.core, opts.tcp_close); !s.ok()) {
      LOG_WARN("restore: window probe of the connections of process %d: %s", p.core.pid(), s.ToString().c_str());
    }
  }
  // Everything is in place: let the whole tree run, all of it or none
  // should criu-fast be killed meanwhile (ptrace/kill_guard.h).
  std::vector<pid_t> leaders;
  leaders.reserve(images.processes.size());
  for (const auto& p : images.processes) leaders.push_back(p.core.pid());
  auto guard = tracing::KillGuard::Start(leaders);
  if (!guard.ok()) LOG_WARN("restore: %s (the tree is let go unguarded)", guard.status().ToString().c_str());
  size_t detached = 0;
  for (pid_t pid : expected) {
    if (ptrace(PTRACE_DETACH, pid, nullptr, nullptr) != 0) return ErrnoStatus("detach from " + std::to_string(pid));
    // Tests: criu-fast killed with half the tree detached.
    if (++detached == expected.size() / 2 && FaultArmed("restore-die-mid-detach")) raise(SIGKILL);
  }
  if (guard.ok()) (*guard)->Commit();
  created.Release();
  cgroups.created.Keep();
  // The tree runs: from here a termination signal ends criu-fast as usual.
  RestoreTerminationSignals();
  if (opts.images_done) opts.images_done();
  const uint64_t end = MonotonicNs();
  LOG_INFO("restore: %zu processes run again (%.3f ms)", images.processes.size(), static_cast<double>(end - start) / 1e6);
  if (opts.display_stats) {
    PrintStats(msgs, end - start, load_ns, created_at - loaded, end - finish_start, images.processes.size(), pages_copied);
  }

  *exit_code = 0;
  if (opts.detached) {
    // criu-fast exits next: the images (16 MB of messages for 500
    // processes) go with it instead of being freed one message at a time.
    images_kept_until_exit = new ImageSet(std::move(images));
    return OkStatus();
  }
  int status = 0;
  while (waitpid(root, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus("wait for the restored process");
  }
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return OkStatus();
}

}  // namespace cf::restore
