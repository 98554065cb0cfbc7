// Termination signals: criu-fast stopped by SIGTERM (a scheduler's timeout),
// SIGINT (Ctrl-C) or SIGHUP rolls back like any other failure.
//
// The handler only records the signal; the work checks for it at its stage
// points (every fault point, common/fault.h, checks it too) and fails with
// "interrupted by SIGTERM", and the usual rollback runs: the tree is detached
// and runs on, partial images are removed. The handler is installed without
// SA_RESTART, so a blocking write to a stalled pipe returns EINTR instead of
// waiting for ever.
#pragma once

#include "common/status.h"

namespace cf {

// Installs the handler for SIGTERM, SIGINT and SIGHUP.
void CatchTerminationSignals();

// The termination signal received so far, 0 if none.
int TerminationSignal();

// OK, or an error naming the termination signal received. While deferred,
// always OK.
Status CheckTerminated();

// Past a point of no return (the tree was killed and only writing its image
// is left), a termination signal is recorded but no longer fails the work.
void DeferTermination();

// Gives SIGTERM, SIGINT and SIGHUP their default action back (once the work
// can no longer roll back); one received meanwhile is raised again.
void RestoreTerminationSignals();

}  // namespace cf
