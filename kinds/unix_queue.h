// The queue of a unix socket: read at dump without consuming it, sent again
// at restore; and the buffer sizes and peek offset that go with it.
#pragma once

#include <sys/socket.h>

#include <cstdint>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/unix_diag.h"

namespace cf::kinds {

// Fills |out| (shutdown, buffer sizes, peek offset, and the queue when
// |queue|) from |sock|, a copy of the socket described by |info|.
Status ReadUnixEnd(int sock, const UnixSocketInfo& info, img::UnixEnd* out, bool queue = true);

// Sends |to|'s saved queue from |from| (to |addr| when not null: a bound
// datagram socket that |from| is not connected to).
Status Requeue(int from, const img::UnixEnd& to, int type, const sockaddr* addr = nullptr,
               unsigned addr_len = 0);

// Shutdown bits, buffer sizes and peek offset of |e| on |sock|.
Status ApplyUnixEnd(int sock, const img::UnixEnd& e);

Result<int> GetIntOpt(int sock, int opt, const char* name);

}  // namespace cf::kinds
