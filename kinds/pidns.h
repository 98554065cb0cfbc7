// PID namespaces: criu-fast neither saves nor makes them. It names every
// process by the pid criu-fast's own PID namespace gives it, and a restored
// process gets that pid back in criu-fast's namespace; a process that lives
// in a namespace below criu-fast's (where it has other pids) would come
// back with its outer pids only. Such a tree is refused at dump, and so is
// a process that unshared CLONE_NEWPID (its next children would go to a
// namespace of their own).
#pragma once

#include <sys/types.h>

#include <vector>

#include "common/status.h"
#include "kinds/kind.h"

namespace cf::kinds {

// Refuses the first of |pids| (the frozen tree) in, or making children in,
// a PID namespace other than criu-fast's.
Status RefusePidNamespaces(const std::vector<pid_t>& pids);

// The kernel shows the namespaces a process has pids in (/proc/PID/ns/pid,
// the NSpid line of /proc/PID/status): what the refusal above reads.
ProbeResult ProbePidNamespaces();

}  // namespace cf::kinds
