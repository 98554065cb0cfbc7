// Leases (F_SETLEASE): held on an open file description, shown as "LEASE"
// lines of fdinfo (ACTIVE, or BREAKING with the type the break goes to).
// They are saved with --file-locks, like the other locks (kinds/file_lock.h).
//
// Restore takes an active lease again once the descriptor is in place. A
// breaking lease is taken at the type it had before the break (a read
// lease breaks only to none; a write lease to read, or to none; the
// access mode tells which a lease broken to none was), then broken the
// way a conflicting open breaks it: an open of the file for reading or
// writing, non-blocking, which fails with EWOULDBLOCK. The break signals
// the lease's owner (the restoring process itself): that signal is taken
// off its queue (the program had its own before the dump), and the owner
// the image names is set again, as a lease makes its setter the owner.
#pragma once

#include <string_view>

#include "common/status.h"
#include "criu_fast.pb.h"

namespace cf::kinds {

// True for the value of an fdinfo "lock:" line of a lease or delegation.
bool IsLeaseLine(std::string_view value);

// Parses such a value ("1: LEASE  BREAKING  UNLCK 66 fe:00:5337951 0 EOF").
Result<img::Lease> ParseLeaseLine(std::string_view value);

// Takes |f|'s lease again on f.fd() (in place), in the restored process.
Status ApplyLease(const img::Fd& f);

}  // namespace cf::kinds
