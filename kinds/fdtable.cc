#include "kinds/fdtable.h"

#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "common/log.h"
#include "proc/proc_parse.h"

namespace cf::kinds {
namespace {

// kcmp's answer for two processes' tables: 0 same, 1 first below, 2 above.
Result<long> CompareTables(pid_t a, pid_t b) {
  const long r = syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0);
  if (r < 0) return ErrnoStatus("kcmp the descriptor tables of " + std::to_string(a) + " and " + std::to_string(b));
  return r;
}

}  // namespace

Result<FdTables> FdTables::Read(const std::vector<pid_t>& pids) {
  FdTables t;
  if (pids.size() < 2) return t;
  std::vector<pid_t> sorted = pids;
  Status failed;
  std::sort(sorted.begin(), sorted.end(), [&](pid_t a, pid_t b) {
    if (!failed.ok() || a == b) return false;
    auto r = CompareTables(a, b);
    if (!r.ok()) failed = r.status();
    return r.ok() && *r == 1;
  });
  RETURN_IF_ERROR(failed);
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i + 1;
    for (; j < sorted.size(); ++j) {
      ASSIGN_OR_RETURN(long same, CompareTables(sorted[i], sorted[j]));
      if (same != 0) break;
    }
    if (j - i > 1) {
      const std::set<pid_t> group(sorted.begin() + static_cast<long>(i), sorted.begin() + static_cast<long>(j));
      // The parents, only where tables are shared (most processes share
      // none: no /proc/PID/stat read for them).
      std::map<pid_t, pid_t> parent;
      for (pid_t pid : group) {
        ASSIGN_OR_RETURN(proc::ProcStat st, proc::ReadStat(pid));
        parent[pid] = st.ppid;
      }
      pid_t top = 0;
      for (pid_t pid : group) {
        if (group.count(parent[pid])) {
          t.shared_.insert(pid);
        } else if (top != 0) {
          return Errorf("processes %d and %d share a descriptor table but neither descends from the other through "
                        "processes sharing it: not supported",
                        top, pid);
        } else {
          top = pid;
        }
      }
      LOG_DEBUG("dump: %zu processes share the descriptor table of process %d", group.size(), top);
    }
    i = j;
  }
  return t;
}

void FdTables::Fill(img::Process* p) const {
  if (shared_.count(p->pid())) p->set_fdt_shared(true);
}

}  // namespace cf::kinds
