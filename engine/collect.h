// Collecting the state of one frozen process into its image message.
//
// Each Collect* function fills a part of img::Process from one source:
// /proc files, ptrace requests, or syscalls run inside the target.
#pragma once

#include <sys/types.h>

#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"
#include "kinds/process_props.h"
#include "ptrace/remote_syscall.h"
#include "pagemap/vma.h"
#include "streams/image_sink.h"

namespace cf::engine {

// The per-thread properties criu-fast reads itself (kinds/thread_props.h:
// registers, xstate, signal mask, pending signals, rseq, name), the same
// for the leader and every other thread.
Status CollectThread(pid_t pid, pid_t tid, img::Thread* out);

// VMAs (|vmas|: /proc/PID/smaps, read while frozen) and the mm fields of
// /proc/PID/stat, auxv and exe. Returns the parsed VMAs for the page scan.
// |known_stat| (optional): /proc/PID/stat read already (else read here).
Result<std::vector<pagemap::VmaInfo>> CollectMm(pid_t pid, img::Process* out,
                                                Result<std::vector<pagemap::VmaInfo>> vmas,
                                                const proc::ProcStat* known_stat = nullptr);

// A dump may list the VMAs from /proc/PID/maps (no VmFlags: cheap) to scan
// and read the pages while /proc/PID/smaps is read beside it (it walks the
// page tables). Then, still frozen, |smaps| must list the same mappings as
// |out|'s VMAs (addresses, protection, sharing, file) and hold no VmFlag
// that changes how a VMA's pages are found or described (droppable "dp",
// hugetlb "ht"): then |out|'s VMAs get what only smaps tells (VmFlags,
// resident size, MAP_GROWSDOWN, may_share) and this returns true. Else it
// returns false with the first difference in |why|, |out| unchanged.
// With |droppable| given, a droppable VMA (not hugetlb) is adopted too and
// its index added there: the caller takes its pages out of what the scan
// found (a dump saves none of a droppable VMA's pages, only its guards).
bool AdoptSmaps(const std::vector<pagemap::VmaInfo>& smaps, img::Process* out, std::string* why,
                std::vector<int>* droppable = nullptr);

class SharedFiles;
// Descriptors, each handled by its kind (kinds/kind.h) with |ctx|; those of
// shared kinds are taken from |shared| (which also adds the objects this
// process carries: pipes, socket pairs).
Status CollectFds(pid_t pid, kinds::DumpContext& ctx, const SharedFiles& shared, img::Process* out);

// The per-process properties criu-fast reads itself (kinds/process_props.h:
// ids, name, umask, credentials, seccomp, rlimits, cwd and root,
// personality, the process-wide signal queue), and the pid.
// |part|: all of them, or those read from /proc only (any thread may read
// them: engine/dump.cc reads them ahead on a worker), or the others.
enum class PropsPart { kAll, kUntraced, kTraced };
Status CollectProcessProps(kinds::ProcessSource& src, img::Process* out, PropsPart part = PropsPart::kAll);

// A zombie child (exited, not waited for): its ids, name, real uid and
// gid, and how it died (the wait status of /proc/PID/stat), all it has left.
Status CollectZombie(pid_t pid, img::Zombie* out);

// The per-process properties read by syscalls run in the leader, which |rs|
// drives (kinds/process_props.h: sigactions, itimers, brk, POSIX timers),
// every property's calls in this one attach. Needs the threads in |proc|.
Status CollectProcessByRemoteCalls(tracing::RemoteSyscall& rs, kinds::ProcessSource& src, img::Process* proc);
// The per-thread properties read by a syscall run in the thread
// (kinds/thread_props.h: sigaltstack, clear_child_tid), for every thread of
// |proc|, the leader included, by one path: in groups of 256 threads, the
// threads of a group running their calls at once. |leader| drives the leader
// (already attached, it joins the first group; the caller restores it).
Status CollectThreadsByRemoteCalls(tracing::RemoteSyscall& leader, const tracing::RemoteSites& sites,
                                   img::Process* proc);

// One process of a CollectRemoteGroup.
struct RemoteTarget {
  tracing::RemoteSyscall* leader;  // attached to its leader (the caller restores it)
  const tracing::RemoteSites* sites;
  kinds::ProcessSource* src;
  img::Process* proc;  // its threads already collected
};
// What the two above read, for several processes at once: each thread of
// each process runs its calls one after another (its process's calls and
// its own), all threads at once (RemoteSyscall::RunSequences), so that the
// round trips to the processes overlap instead of adding up. A process
// with many threads (read by the parasite's thread calls) or with more
// output than one block (thousands of timers) is read alone, as above.
Status CollectRemoteGroup(std::span<const RemoteTarget> targets);

}  // namespace cf::engine
