// Per-process properties: one table, each entry with its read (dump) and its
// apply (restore), in the style of the per-thread table (kinds/thread_props.h).
//
// A property is read in one of two ways:
//   read    by criu-fast: /proc/PID (stat and status parsed once per process,
//           see ProcessSource), prlimit(), ptrace;
//   remote  by system calls run inside the frozen leader, described as data
//           (ProcessRemoteRead): the items to read (signals, itimers,
//           timers...), the calls for one item and how to decode what they
//           return. The dump runs the remote reads of every property one
//           after the other in one attach of the leader, the outputs of many
//           items read back at once (engine/collect_remote.cc).
// and applied in one of two ways:
//   in_task  by the restored process itself, before the restorer blob
//            (restore/task.cc), at one of two steps: before it creates its
//            children (session and group, which they inherit) or after;
//   to_args  into the restorer args block (cf_rst_args and its arrays,
//            blobs/restorer/restorer_abi.h), which the restorer applies.
// Each entry has exactly one read and one apply
// (kinds/process_props_test.cc). The memory of the process (VMAs, mm
// fields but brk) and its descriptors are not properties: they have their
// own stages and kinds.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "blobs/restorer/restorer_abi.h"
#include "common/status.h"
#include "criu_fast.pb.h"
#include "proc/proc_parse.h"

namespace cf::kinds {

// What criu-fast reads about a process from /proc, each file read once
// however many properties use it (the target is frozen: it does not change).
class ProcessSource {
 public:
  explicit ProcessSource(pid_t pid) : pid_(pid) {}
  pid_t pid() const { return pid_; }
  // /proc/PID/stat and /proc/PID/status, read on first use.
  Result<const proc::ProcStat*> StatFile();
  Result<const proc::ProcStatus*> StatusFile();

 private:
  pid_t pid_;
  std::optional<proc::ProcStat> stat_;
  std::optional<proc::ProcStatus> status_;
};

// One system call of a remote read, for one item.
struct RemoteCallSpec {
  long nr;
  const char* what;  // its name, for errors
  // Its arguments, given the item and the address of the item's output.
  std::array<uint64_t, 6> (*args)(int64_t item, uint64_t out);
};

// A property read by system calls run in the leader.
struct ProcessRemoteRead {
  // The items to read (a signal number, an itimer, a timer id), from what
  // criu-fast knows (|src|, and the threads already in |p|). May refuse, and
  // may store in |p| what criu-fast reads itself (a timer's clock).
  Status (*items)(ProcessSource& src, img::Process* p, std::vector<int64_t>* items);
  const char* item_name;  // for errors ("signal 10"), or nullptr
  uint32_t item_size;     // bytes the calls of one item write at its output
  uint32_t nr_calls;      // calls per item, in |calls|
  std::array<RemoteCallSpec, 2> calls;
  // Stores item number |index| (key |item|): |out| its output, |results|
  // its calls' results (none of them an error).
  void (*decode)(size_t index, int64_t item, const uint8_t* out, const long* results, img::Process* p);
};

// Where a process's properties go in the restorer args: the fixed part of
// the block and the arrays planned for it (ProcessArgsArrays).
struct ProcessArgs {
  cf_rst_args* args;
  cf_rst_thread* leader;             // record 0 (filled before the process's properties)
  cf_rst_posix_timer* posix_timers;  // room for every timer
  uint32_t* groups;                  // room for every supplementary group
  cf_rst_siginfo* siginfo;           // room for the process-wide queue
  uint32_t* nr_siginfo;              // records used so far in |siginfo|
  uint32_t max_siginfo;
};

// When the restored process applies an in_task property.
enum class TaskStep {
  kBeforeChildren,  // what the children inherit, or refusals
  kAfterChildren,   // the process's own, before its memory is premapped
};

struct ProcessProperty {
  const char* name;
  Status (*read)(ProcessSource& src, img::Process* out);
  const ProcessRemoteRead* remote;
  Status (*in_task)(const img::Process& p);
  TaskStep step;  // for in_task
  void (*to_args)(const img::Process& p, ProcessArgs* out);
  // |read| makes ptrace requests: only the thread that seized the process
  // may run it. The other reads read /proc and run on any thread.
  bool read_traced = false;
};

// The table, in the order the properties are read and applied.
std::span<const ProcessProperty> ProcessProperties();

// Runs the in_task applies of |step|, in table order.
Status ApplyInTask(const img::Process& p, TaskStep step);

// The process's root directory (chroot), once it opens nothing more by
// path: the paths of the image are criu-fast's, not the process's.
Status ApplyRoot(const img::Process& p);

// Records the process's properties need in the args block's arrays.
struct ProcessArrays {
  uint32_t posix_timers = 0;
  uint32_t siginfo = 0;  // the process-wide signal queue
  uint32_t groups = 0;
  uint64_t seccomp_bytes = 0;  // filters and their programs (kinds/seccomp.h)
};
ProcessArrays ProcessArgsArrays(const img::Process& p);

// PR_TIMER_CREATE_RESTORE_IDS is known to this kernel (timers can get their ids back).
bool KernelRestoresTimerIds();

// What the restored processes compare their image with, and have from
// criu-fast by fork (its credentials, loginuid, oom_score_adj; the
// kernel's last capability), read once by criu-fast before it forks the
// tree: each process then has the values with its memory instead of
// reading /proc again (~110 us a process). The applies keep the values
// current in each process, and its children inherit them so.
void ReadInheritedState();

}  // namespace cf::kinds
