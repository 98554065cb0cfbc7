// Parsers for the /proc files dump and restore read: stat, status, fdinfo, auxv,
// timers.
// Each takes the file's text (so unit tests feed it strings) and there is a
// Read* wrapper that reads the live file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cf::proc {

// /proc/PID/stat (fields per proc(5); comm may hold spaces and parentheses).
struct ProcStat {
  pid_t pid = 0;
  std::string comm;
  char state = 0;
  pid_t ppid = 0;
  pid_t pgid = 0;
  pid_t sid = 0;
  uint32_t flags = 0;
  int64_t num_threads = 0;
  uint64_t start_time = 0;
  uint64_t start_code = 0, end_code = 0, start_stack = 0;
  uint64_t start_data = 0, end_data = 0, start_brk = 0;
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  int exit_signal = 0;
  uint32_t exit_code = 0;  // field 52 (Linux >= 3.5): a zombie's wait status
};
Result<ProcStat> ParseStat(std::string_view text);
Result<ProcStat> ReadStat(pid_t pid, pid_t tid = 0);  // tid != 0: /proc/PID/task/TID/stat

// /proc/PID/status: the fields a dump needs.
struct ProcStatus {
  std::string name;
  char state = 0;
  uint32_t umask = 0;
  pid_t tgid = 0, pid = 0, ppid = 0, tracer_pid = 0;
  uint32_t uid[4] = {};   // real, effective, saved, fs
  uint32_t gid[4] = {};
  std::vector<uint32_t> groups;
  pid_t nspid = 0;        // last NSpid entry
  int threads = 0;
  uint64_t sig_pnd = 0, shd_pnd = 0, sig_blk = 0, sig_ign = 0, sig_cgt = 0;
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  uint32_t no_new_privs = 0;
  uint32_t seccomp = 0;
  int thp_enabled = -1;   // "THP_enabled:" (0 after PR_SET_THP_DISABLE); -1: line absent
  int64_t vm_rss_kb = -1;     // "VmRSS:" (resident memory); -1: line absent (a kernel thread)
  int64_t hugetlb_kb = -1;    // "HugetlbPages:" (hugetlb memory mapped); -1: line absent
};
Result<ProcStatus> ParseStatus(std::string_view text);
Result<ProcStatus> ReadStatus(pid_t pid, pid_t tid = 0);

// /proc/PID/fdinfo/FD: common fields plus the per-kind extra lines.
struct FdInfo {
  uint64_t pos = 0;
  uint32_t flags = 0;     // octal in the file; includes O_CLOEXEC (02000000) when set
  uint32_t mnt_id = 0;
  uint64_t ino = 0;
  // Extra "key: value" lines (eventfd-count, tfd, inotify wd..., epoll tfd...),
  // kept in order as raw text for the per-kind dumpers.
  std::vector<std::pair<std::string, std::string>> extra;
};
Result<FdInfo> ParseFdInfo(std::string_view text);
Result<FdInfo> ReadFdInfo(pid_t pid, int fd);

// /proc/PID/auxv: (key, value) pairs up to and including AT_NULL.
Result<std::vector<uint64_t>> ParseAuxv(std::string_view bytes);
Result<std::vector<uint64_t>> ReadAuxv(pid_t pid);

// /proc/PID/timers: one entry per POSIX timer (timer_create), four lines
// each ("ID: 3", "signal: 34/00000000000000a1", "notify: signal/tid.1234",
// "ClockID: 1"). The kernel lists them in no useful order; the result is
// sorted by id.
struct PosixTimerInfo {
  int32_t id = 0;
  int32_t signo = 0;
  uint64_t sigev_value = 0;  // sigev_value, printed as a pointer
  int32_t notify = 0;        // SIGEV_SIGNAL, SIGEV_NONE or SIGEV_THREAD, | SIGEV_THREAD_ID for "tid"
  pid_t notify_pid = 0;      // the process ("pid") or thread ("tid") signalled
  int32_t clock_id = 0;
};
Result<std::vector<PosixTimerInfo>> ParsePosixTimers(std::string_view text);
Result<std::vector<PosixTimerInfo>> ReadPosixTimers(pid_t pid);

// /proc/PID/limits: one line per resource limit, in the kernel's RLIMIT_*
// order, read by anyone who may read the file (prlimit() on a process of
// another uid needs CAP_SYS_RESOURCE). "unlimited" is RLIM_INFINITY.
struct RlimitInfo {
  uint32_t resource = 0;  // RLIMIT_*
  uint64_t cur = 0, max = 0;
};
Result<std::vector<RlimitInfo>> ParseLimits(std::string_view text);
Result<std::vector<RlimitInfo>> ReadLimits(pid_t pid);

// Thread ids from /proc/PID/task, sorted, leader first.
Result<std::vector<pid_t>> ListThreads(pid_t pid);
// Child pids from /proc/PID/task/*/children, sorted. |tids| (optional):
// the threads, known already (a frozen process's), else listed here.
Result<std::vector<pid_t>> ListChildren(pid_t pid, const std::vector<pid_t>* tids = nullptr);
// Open fd numbers from /proc/PID/fd, sorted.
Result<std::vector<int>> ListFds(pid_t pid);

// The memfd name in a /proc link or maps path ("/memfd:NAME (deleted)"), or
// false when |path| is not a memfd's.
bool ParseMemfdPath(const std::string& path, std::string* name);

}  // namespace cf::proc
