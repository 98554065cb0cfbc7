// Time namespaces (unshare(CLONE_NEWTIME): clocks with offsets). criu-fast
// does not save or make them: a process that lives in a time namespace
// other than criu-fast's, or whose children would be made in one
// (/proc/PID/ns/time_for_children), is refused at dump, as CRIU refuses
// one that is about to give its children another time namespace.
#pragma once

#include <sys/types.h>

#include <vector>

#include "common/status.h"
#include "kinds/kind.h"

namespace cf::kinds {

// Refuses the first of |pids| (the frozen tree) in or making another time
// namespace than ours. A kernel without time namespaces has nothing to refuse.
Status RefuseTimeNamespaces(const std::vector<pid_t>& pids);

// The kernel has time namespaces (`check --feature timens`).
ProbeResult ProbeTimeNamespaces();

}  // namespace cf::kinds
