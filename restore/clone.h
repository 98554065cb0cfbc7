// Creating a process with a chosen PID (clone3 with set_tid), and zombies.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <set>

#include "common/status.h"
#include "criu_fast.pb.h"

namespace cf::restore {

// Forks a child whose PID is |pid| (returns 0 in the child, |pid| in the
// parent), that sends |exit_signal| to its parent when it dies, with extra
// clone |flags|. A PID still held by a zombie or a process that is exiting
// is waited for, bounded (orphans are reaped late on this kind of machine;
// a dump kills its tree without waiting for its teardown); one held by a
// live process is an error.
Result<pid_t> CloneWithPid(pid_t pid, int exit_signal = SIGCHLD, uint64_t flags = 0);

// Recreates the zombie children of the calling process (|self|'s zombies):
// each is cloned with its pid, put in its process group and session, takes
// its name, uid and gid, and dies the way it died (exit code or signal).
// It is not waited for, so the parent's wait() finds it as before; the call
// returns once each is dead and checked. A group led by no process of the
// image (|tree|: the pids of every process and zombie) and empty now gets
// a helper process at the leader's pid while the zombie joins it, then
// the helper exits and is reaped: the zombie keeps the group alive.
Status CreateZombies(const img::Process& self, const std::set<pid_t>& tree);

}  // namespace cf::restore
