// File locks held through a descriptor (flock, POSIX record locks, OFD
// locks): read from the fdinfo "lock:" lines at dump, taken again by the
// restored process once its descriptors are in place.
//
// As in CRIU, a dump refuses a process holding locks unless --file-locks
// says the locks are to be saved. Leases go with them (kinds/lease.h);
// delegations and mandatory locks are refused.
#pragma once

#include <string_view>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"

namespace cf::kinds {

// Parses the value of one fdinfo "lock:" line, such as
// "1: POSIX  ADVISORY  WRITE 66 fe:00:5337951 0 EOF".
Result<img::FileLock> ParseLockLine(std::string_view value);

// Stores in |f| the locks fdinfo shows for descriptor |s|; refuses them
// without --file-locks.
Status ReadLocks(const FdSight& s, const FdInfo& info, DumpContext& ctx, img::Fd* f);

// Takes the locks of |f| again on descriptor f.fd() (already in place), in
// the restored process: flock and OFD locks on its open file description,
// POSIX locks when this process owned them. Never waits: a lock that
// conflicts with one held elsewhere is an error.
Status ApplyLocks(const img::Fd& f);

}  // namespace cf::kinds
