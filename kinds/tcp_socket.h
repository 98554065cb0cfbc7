// TCP sockets (kinds/tcp_socket.cc): what restore calls beyond the registry.
#pragma once

#include <sys/types.h>

#include "common/status.h"
#include "criu_fast.pb.h"

namespace cf::kinds {

// Restore, once the network lock is gone and before the tree runs again:
// each established connection among the descriptors of |process| (process
// |pid|, stopped and traced by us) sends a window probe (by entering and
// leaving repair mode), so that its peer answers at once: with its window
// and where its sequence stands, or with a reset where the peer's socket
// is gone (CRIU gets the same by leaving repair mode only after the
// unlock). The restored connections left repair mode while the lock still
// dropped their packets: without it, a connection with nothing to send
// would never learn that its peer vanished meanwhile, and one that waits
// for its peer's window would wait for its backed-off probe timer.
// |tcp_close|: the connections came back closed; nothing to probe.
Status ProbeRestoredConnections(pid_t pid, const img::Process& process, bool tcp_close);

}  // namespace cf::kinds
