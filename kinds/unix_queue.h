// The queue of a unix socket: read at dump without consuming it, sent again
// at restore; and the socket options that go with it (kinds/socket_opts.h).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <map>

#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/unix_diag.h"

namespace cf::kinds {

// Descriptors in flight, by the index of the queue entry they came with:
// copies in criu-fast (made by peeking).
using InFlightFds = std::vector<std::pair<int, std::vector<UniqueFd>>>;

// Fills |out| (shutdown, the generic options, and the queue when
// |queue|) from |sock|, a copy of the socket described by |info|; the
// descriptors in flight go to |flight| (refused when null).
Status ReadUnixEnd(int sock, const UnixSocketInfo& info, img::UnixEnd* out, bool queue = true,
                   InFlightFds* flight = nullptr);

// The in-flight files made again at restore: file_id -> descriptor.
using InFlightFiles = std::map<uint32_t, int>;

// Sends |to|'s saved queue from |from| (to |addr| when not null: a bound
// datagram socket that |from| is not connected to), with the descriptors
// in flight from |files|; only |count| messages from |first| when count >= 0.
Status Requeue(int from, const img::UnixEnd& to, int type, const sockaddr* addr = nullptr, unsigned addr_len = 0,
               const InFlightFiles* files = nullptr, int first = 0, int count = -1);

// Shutdown bits and the generic options (kinds/socket_opts.h) of |e| on
// |sock|, once its queue is in place.
Status ApplyUnixEnd(int sock, const img::UnixEnd& e);

}  // namespace cf::kinds
