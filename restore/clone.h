// Creating a process with a chosen PID (clone3 with set_tid).
#pragma once

#include <sys/types.h>

#include "common/status.h"

namespace cf::restore {

// Forks a child whose PID is |pid| (returns 0 in the child, |pid| in the
// parent). A PID still held by a zombie is waited for, bounded (orphans are
// reaped late on this kind of machine); one held by a live process is an error.
Result<pid_t> CloneWithPid(pid_t pid);

}  // namespace cf::restore
