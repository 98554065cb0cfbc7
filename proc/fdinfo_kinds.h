// Parsers for the per-kind lines of /proc/PID/fdinfo/FD of timerfds,
// signalfds, inotify and epoll instances (FdInfo::extra, see proc_parse.h).
// They only turn text into numbers; the dumpers (engine/dump_*.cc) decide
// what the numbers mean. Kernel formats (fs/timerfd.c, fs/signalfd.c,
// fs/notify/fdinfo.c, fs/eventpoll.c):
//   clockid: 1 / ticks: 0 / settime flags: 01 (octal) / it_value: (s, ns) / it_interval: (s, ns)
//   sigmask: 0000000000000801 (hex, signal n is bit n-1)
//   inotify wd:2 ino:35d sdev:fe00000 mask:84000002 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:5d03...
//   tfd:        7 events: 80000019 data:  123456789abcdef  pos:0 ino:40f sdev:10
// Numbers are hex but for clockid, ticks, tfd, pos and the timer values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "proc/proc_parse.h"

namespace cf::proc {

// The value of extra line |key| of |info|, or null.
const std::string* FdInfoExtra(const FdInfo& info, const char* key);

struct TimerFdInfo {
  int32_t clockid = 0;
  uint64_t ticks = 0;
  uint32_t settime_flags = 0;
  uint64_t value_ns = 0;     // time left (0: disarmed, or expired and not yet forwarded)
  uint64_t interval_ns = 0;
};
Result<TimerFdInfo> ParseTimerFdInfo(const FdInfo& info);

Result<uint64_t> ParseSignalFdMask(const FdInfo& info);

struct InotifyWatchInfo {
  uint32_t wd = 0;
  uint64_t ino = 0;
  uint32_t sdev = 0;         // the kernel's dev_t (major << 20 | minor), not st_dev
  uint32_t mask = 0;
  uint32_t ignored_mask = 0;
  int32_t fhandle_type = 0;
  std::string fhandle;       // the handle's bytes (f_handle, fhandle-bytes long)
};
// Every watch of an inotify instance, sorted by wd.
Result<std::vector<InotifyWatchInfo>> ParseInotifyWatches(const FdInfo& info);

struct EpollTargetInfo {
  int32_t tfd = 0;
  uint32_t events = 0;
  uint64_t data = 0;
  uint64_t ino = 0;
  uint32_t sdev = 0;
};
// The targets of an epoll instance, in the kernel's order (the order in
// which kcmp(KCMP_EPOLL_TFD) counts its |toff|).
Result<std::vector<EpollTargetInfo>> ParseEpollTargets(const FdInfo& info);

// fanotify: "fanotify flags:10 event-flags:0", then one line per mark:
//   fanotify ino:35d sdev:fe00000 mflags:0 mask:3b ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:5d03...
//   fanotify mnt_id:1a mflags:40 mask:40000030 ignored_mask:3
//   fanotify sdev:fe00000 mflags:0 mask:3b ignored_mask:0      (a filesystem mark)
struct FanotifyMarkInfo {
  enum Kind { kInode, kMount, kFilesystem } kind = kInode;
  uint64_t ino = 0;
  uint32_t sdev = 0;         // the kernel's dev_t
  uint32_t mnt_id = 0;
  uint32_t mflags = 0;       // FAN_MARK_IGNORED_SURV_MODIFY, FAN_MARK_EVICTABLE, FAN_MARK_IGNORE
  uint32_t mask = 0;
  uint32_t ignored_mask = 0;
  int32_t fhandle_type = 0;
  std::string fhandle;
};
struct FanotifyInfo {
  uint32_t flags = 0;        // fanotify_init() flags
  uint32_t event_flags = 0;  // fanotify_init() event_f_flags
  std::vector<FanotifyMarkInfo> marks;
};
Result<FanotifyInfo> ParseFanotify(const FdInfo& info);

}  // namespace cf::proc
