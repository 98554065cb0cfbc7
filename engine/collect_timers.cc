// POSIX timers (timer_create) of a frozen process.
//
// /proc/PID/timers names each timer's id, clock and notification (signal,
// sigev_value, the process or thread signalled). The time left to the next
// expiry and the interval only the task can read: timer_gettime runs inside
// it (ptrace/remote_syscall.h) into the scratch area, in batches, and is
// read back with one process_vm_readv per batch; timer_getoverrun too. Both
// only read, so a dump with -R leaves the timers as they were.
//
// A restore recreates each timer under its id with PR_TIMER_CREATE_RESTORE_IDS
// (the restorer, blobs/restorer/restorer.c). Refused here, so that the
// target runs on: timers when this kernel lacks that prctl (a restore could
// not give them their ids back), timers on the CPU clock of another task
// (negative clock ids: that task's clock would have to exist first), and
// timers on a thread's own CPU clock in a multi-threaded process (which
// thread made it is not visible).
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#include <algorithm>
#include <csignal>

#include "engine/collect.h"
#include "proc/proc_parse.h"

namespace cf::engine {
using namespace ::cf::proc;  // /proc parsing, the layer below
namespace {

constexpr int kPrTimerCreateRestoreIds = 77;  // <linux/prctl.h>, newer than Debian 12's headers
constexpr int kPrTimerCreateRestoreIdsGet = 2;
constexpr size_t kBatch = 1024;  // itimerspecs per round trip: 32 KiB of the 64 KiB scratch

Status CheckTimer(const PosixTimerInfo& t, const img::Process& proc) {
  const pid_t pid = proc.pid();
  if (t.clock_id < 0) {
    return Errorf("process %d: POSIX timer %d runs on the CPU clock of another task (clock id %d): not supported",
                  pid, t.id, t.clock_id);
  }
  if (t.clock_id == CLOCK_THREAD_CPUTIME_ID && proc.threads_size() > 1) {
    return Errorf("process %d: POSIX timer %d runs on a thread's CPU clock in a process of %d threads: not supported",
                  pid, t.id, proc.threads_size());
  }
  if (t.notify & SIGEV_THREAD_ID) {
    const bool ours = std::any_of(proc.threads().begin(), proc.threads().end(),
                                  [&](const img::Thread& th) { return th.tid() == t.notify_pid; });
    if (!ours) {
      return Errorf("process %d: POSIX timer %d signals thread %d, which is not one of its threads", pid, t.id,
                    t.notify_pid);
    }
  }
  return OkStatus();
}

}  // namespace

bool KernelRestoresTimerIds() {
  return prctl(kPrTimerCreateRestoreIds, kPrTimerCreateRestoreIdsGet, 0, 0, 0) >= 0;
}

Status CollectPosixTimers(tracing::RemoteSyscall& rs, img::Process* proc) {
  const pid_t pid = proc->pid();
  ASSIGN_OR_RETURN(std::vector<PosixTimerInfo> timers, ReadPosixTimers(pid));
  if (timers.empty()) return OkStatus();
  if (!KernelRestoresTimerIds()) {
    return Errorf("process %d has %zu POSIX timers (the first id %d) and this kernel cannot recreate timer ids "
                  "(no PR_TIMER_CREATE_RESTORE_IDS, see `criu-fast check`): not supported",
                  pid, timers.size(), timers[0].id);
  }
  for (const PosixTimerInfo& t : timers) RETURN_IF_ERROR(CheckTimer(t, *proc));

  ASSIGN_OR_RETURN(uint64_t base, rs.Scratch(kBatch * sizeof(itimerspec)));
  std::vector<itimerspec> values(kBatch);
  for (size_t first = 0; first < timers.size(); first += kBatch) {
    const size_t n = std::min(kBatch, timers.size() - first);
    std::vector<int> overruns(n);
    for (size_t i = 0; i < n; ++i) {
      const auto id = static_cast<uint64_t>(timers[first + i].id);
      ASSIGN_OR_RETURN(long r, rs.Call(__NR_timer_gettime, id, base + i * sizeof(itimerspec)));
      if (r < 0) return ErrnoStatus(static_cast<int>(-r), "timer_gettime of timer " + std::to_string(id) +
                                                              " in process " + std::to_string(pid));
      ASSIGN_OR_RETURN(r, rs.Call(__NR_timer_getoverrun, id));
      if (r < 0) return ErrnoStatus(static_cast<int>(-r), "timer_getoverrun of timer " + std::to_string(id) +
                                                              " in process " + std::to_string(pid));
      overruns[i] = static_cast<int>(r);
    }
    RETURN_IF_ERROR(rs.ReadScratch(base, values.data(), n * sizeof(itimerspec)));
    for (size_t i = 0; i < n; ++i) {
      const PosixTimerInfo& t = timers[first + i];
      const itimerspec& v = values[i];
      img::PosixTimer* out = proc->add_posix_timers();
      out->set_id(t.id);
      out->set_clock_id(t.clock_id);
      out->set_signo(t.signo);
      out->set_notify(t.notify);
      if (t.notify & SIGEV_THREAD_ID) out->set_notify_tid(t.notify_pid);
      out->set_sigev_value(t.sigev_value);
      out->set_interval_sec(static_cast<uint64_t>(v.it_interval.tv_sec));
      out->set_interval_nsec(static_cast<uint64_t>(v.it_interval.tv_nsec));
      out->set_value_sec(static_cast<uint64_t>(v.it_value.tv_sec));
      out->set_value_nsec(static_cast<uint64_t>(v.it_value.tv_nsec));
      out->set_overrun(overruns[i]);
    }
  }
  return OkStatus();
}

}  // namespace cf::engine
