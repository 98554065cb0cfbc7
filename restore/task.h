// The part of a restore that runs inside each new process, before the
// restorer blob: session, children, descriptors, cwd, limits, and memory.
// It ends by jumping into the blob and never returns. It talks to criu-fast
// through one pipe shared by the whole tree: each message is a single
// write() of a TaskMessage (smaller than PIPE_BUF, so never interleaved).
//
// A process forks its children untraced, so no fork stops it: each child
// first asks the kernel to kill it when its parent dies (PR_SET_PDEATHSIG),
// then asks criu-fast to trace it ('S'), and goes on at once. criu-fast
// seizes it with PTRACE_O_EXITKILL when it reads that message, which is
// always before it reads the child's 'P': so from its memory fill on, the
// child dies with criu-fast; before that, with its parent (the root is
// traced from its creation). The child drops the parent-death signal just
// before the restorer, which sets the image's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kinds/cgroup.h"
#include "restore/images.h"
#include "restore/memory.h"
#include "restore/shared_files.h"

namespace cf::restore {

// Where the restorer's args block sits, so criu-fast can read the
// restorer's result and unmap the region afterwards; and stage times.
struct TaskReport {
  uint64_t region;
  uint64_t region_len;
  uint64_t args;
  // 'P': the premap plan (PremappedVma[plan_count] in the new process's
  // memory, read by criu-fast with process_vm_readv while it is stopped).
  uint64_t plan_addr;
  uint64_t plan_count;
  // 'P': the process's userfaultfd that its by_copy slots are registered
  // with (RegisterCopyFill), where has_copy_fd.
  int32_t copy_fd;
  uint32_t has_copy_fd;
  uint64_t premap_ns;
  uint64_t fill_ns;
  uint64_t files_ns;
  uint64_t pages_filled;
  uint64_t vmas_protected_early;  // given their protection during the fill (EarlyProtect)
};

struct TaskMessage {
  int32_t pid;
  // 'S': new (not the root), to be traced; 'P': memory premapped, the
  //      process waits (its word of TaskContext::filled) for criu-fast to
  //      fill it, then goes on; 'R': ready to jump into the restorer;
  // 'E': failed (error valid) and exiting.
  char tag;
  char pad[3];
  TaskReport report;
  char error[1024];
};
static_assert(sizeof(TaskMessage) < 4096, "a message must be written atomically");

struct TaskContext {
  const ImageSet* images;
  size_t index;     // this process in images->processes
  std::string dir;
  int jobs;
  int go_fd;        // root only: criu-fast says go once it traces us (-1 otherwise)
  int report_fd;    // write end of the shared message pipe
  const SharedFilePlan* files;  // with files->shmem, the shared memory objects (kinds/shmem.h)
  // Shared objects' descriptions created by this process's ancestors (and,
  // before it forks, by itself): children inherit both the descriptors and
  // this map.
  InheritedFiles inherited;
  const kinds::CgroupPlan* cgroups;  // the cgroups to join, first thing
  int netns = -1;  // root only: the network namespace to enter, first thing (-1: stay)
  const std::map<std::string, uint32_t>* shared_ghosts = nullptr;  // SharedGhosts(*images) (restore/ghosts.h)
  // Set in a child whose parent premapped and filled its memory before the
  // fork (restore/memory.h, Inheritance): the parent's premapped VMAs, in
  // the parent's memory that the child has a copy of.
  const std::vector<PremappedVma>* parent_vmas = nullptr;
  // One word per process (by index), in memory the whole tree shares with
  // criu-fast (MAP_SHARED): criu-fast sets a process's word to kFillDone
  // and wakes it (futex) once its memory is filled and it may go on; before,
  // the chunks written so far (restore/memory.h, EarlyProtect).
  uint32_t* filled = nullptr;
  // The mappings the parent had when it forked this process (memory.h,
  // MapsForChildren), in the parent's memory the child has a copy of; null
  // where the parent forks one child only (it would read them for nothing).
  const KnownMaps* parent_maps = nullptr;
};

[[noreturn]] void RunTask(TaskContext ctx);

// Whether the restorer's threads of |core| are traced from their creation
// (PTRACE_O_TRACECLONE, each stops on int3): only when a thread has strict
// seccomp, which allows no futex wait. Otherwise they are made untraced and
// wait, their state set, until criu-fast seizes them (cf_rst_args,
// threads_untraced): a tracer with thousands of traced threads pays a scan
// of all of them in every waitpid(-1).
bool ThreadsTracedFromCreation(const img::Process& core);

}  // namespace cf::restore
