// Sessions and terminals: the controlling terminal of a session led in the
// tree, the foreground group of that terminal, and a shell job's session
// and group outside the tree (--shell-job).
//
// A process keeps a controlling terminal from its parent at fork, and a
// session leader that takes one (TIOCSCTTY) gives it to no process that
// exists already. So the session leader takes its terminal before it
// creates its children (FdKind::BeforeChildren), and every process of its
// session gets it the way it did before the dump. The foreground group is
// set by its own leader (once it exists: TIOCSPGRP wants a group of the
// session), through /dev/tty, with SIGTTOU blocked (it is still in the
// background then).
//
// A shell job (--shell-job) has its session, and maybe its group, led
// outside the tree: restore leaves its processes in criu-fast's session
// (and group), as CRIU does, and gives the job criu-fast's terminal
// (kinds/tty.cc); when the job was in the foreground, its group is made
// the foreground one again.
#pragma once

#include <sys/types.h>

#include <set>

#include "common/status.h"
#include "criu_fast.pb.h"

namespace cf::kinds {

// |fd|: a description of the pair (a master: a slave is opened for it).
Status SetControllingTty(int fd, bool master);
// In process |core|: when it leads |fg|, the foreground group of the
// terminal of session |sid|, makes its group the foreground one.
// |external|: the terminal is criu-fast's (a failure only warns).
Status SetForeground(const img::Process& core, pid_t sid, pid_t fg, bool external);

// Dump, --shell-job: marks a session and group led outside |tree|.
void MarkOutsideIds(const std::set<pid_t>& tree, img::Process* p);

}  // namespace cf::kinds
