// Kernel feature probes for `criu-fast check`.
//
// Each probe exercises its feature on a real object the way dump or restore
// uses it (a forked child that is seized, read, scanned; a pipe; a ring), not
// by looking at version numbers or config files. Every child a probe creates
// is killed and reaped before the probe returns.
#pragma once

#include <string>

#include "kinds/kind.h"

namespace cf::engine {

// ok, or the step that failed and its errno text. The probes of what one
// descriptor kind needs are in that kind's file (kinds/*.cc, Probes());
// memfd_create's, with the shared memory objects (kinds/shmem.h).
using ProbeResult = kinds::ProbeResult;

ProbeResult ProbePtraceSeize();      // PTRACE_SEIZE + PTRACE_INTERRUPT a child, see the event stop
ProbeResult ProbeProcessVmReadv();   // read a value only the child wrote
ProbeResult ProbeProcMem();          // same value through pread of /proc/PID/mem
ProbeResult ProbePagemapScan();      // PAGEMAP_SCAN on the child's pagemap finds its written page
ProbeResult ProbeUffdWpAsync();      // userfaultfd + UFFDIO_API offering UFFD_FEATURE_WP_ASYNC
ProbeResult ProbeClone3SetTid();     // clone3 with set_tid gives a child the PID asked for
ProbeResult ProbePrSetMmMap();       // PR_SET_MM_MAP_SIZE is 104, PR_SET_MM_MAP accepted in a child
ProbeResult ProbeTimerRestoreIds();  // PR_TIMER_CREATE_RESTORE_IDS: a child's timer_create takes the id asked for
ProbeResult ProbeIoUring();          // io_uring_queue_init + one WRITE into a pipe
ProbeResult ProbePidfd();            // pidfd_open on a child + pidfd_getfd of one of its fds
ProbeResult ProbeLoginuid();         // /proc/self/loginuid exists (audit) and reads
ProbeResult ProbeMapFiles();         // open /proc/PID/map_files/<range> of the child's first mapping
ProbeResult ProbeGuardRegions();     // MADV_GUARD_INSTALL on a page of ours, and the scan finds that page
ProbeResult ProbeVmsplice();         // vmsplice a page into a pipe and read it back

}  // namespace cf::engine
