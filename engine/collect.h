// Collecting the state of one frozen process into its image message.
//
// Each Collect* function fills a part of img::Process from one source:
// /proc files, ptrace requests, or syscalls run inside the target.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"
#include "ptrace/remote_syscall.h"
#include "pagemap/vma.h"
#include "streams/image_sink.h"

namespace cf::engine {

// The per-thread properties criu-fast reads itself (kinds/thread_props.h:
// registers, xstate, signal mask, pending signals, rseq, name), the same
// for the leader and every other thread.
Status CollectThread(pid_t pid, pid_t tid, img::Thread* out);
// The process-wide pending signal queue.
Status CollectSharedPending(pid_t tid, img::Process* out);

// VMAs (from smaps) and the mm fields of /proc/PID/stat, auxv and exe.
// Returns the parsed VMAs for the page scan.
Result<std::vector<pagemap::VmaInfo>> CollectMm(pid_t pid, img::Process* out);

class SharedFiles;
// Descriptors, each handled by its kind (kinds/kind.h) with |ctx|; those of
// shared kinds are taken from |shared| (which also adds the objects this
// process carries: pipes, socket pairs).
Status CollectFds(pid_t pid, kinds::DumpContext& ctx, const SharedFiles& shared, img::Process* out);

// Ids, credentials, rlimits, cwd, root, personality, umask, name.
Status CollectProcessInfo(pid_t pid, img::Process* out);

// What only the task can tell about the whole process: sigactions, itimers
// and brk, by syscalls run in the (stopped) thread |rs| drives.
Status CollectByRemoteCalls(tracing::RemoteSyscall& rs, img::Process* proc);
// The per-thread properties read by a syscall run in the thread
// (kinds/thread_props.h: sigaltstack, clear_child_tid), for every thread of
// |proc|, the leader included, by one path: in groups of 256 threads, each
// call run in all threads of a group at once. |leader| drives the leader
// (already attached, it joins the first group; the caller restores it).
Status CollectThreadsByRemoteCalls(tracing::RemoteSyscall& leader, const tracing::RemoteSites& sites,
                                   img::Process* proc);

// POSIX timers: ids, clocks and notification from /proc/PID/timers, the
// time left, interval and overrun by timer_gettime/timer_getoverrun run in
// the target. Refuses what a restore could not recreate (engine/collect_timers.cc).
Status CollectPosixTimers(tracing::RemoteSyscall& rs, img::Process* proc);
// PR_TIMER_CREATE_RESTORE_IDS is known to this kernel (timers can get their ids back).
bool KernelRestoresTimerIds();

}  // namespace cf::engine
