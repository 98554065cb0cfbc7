// The options every socket kind shares: SOL_SOCKET options, an attached
// classic BPF filter, and the IP-level options of inet sockets, carried in
// Fd.socket_opts (img::SocketOpts). A socket kind reads them at dump from
// its copy of the socket and applies them to the socket it creates at
// restore, in two steps around bind():
//
//   socket() -> ApplyBindOpts -> bind/connect/refill queues -> ApplySocketOpts
#pragma once

#include <string>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"

namespace cf::kinds {

// The protocol name the kernel gives the socket |s| ("UDP", "TCPv6",
// "UNIX-STREAM", "PACKET", "NETLINK"...: getxattr system.sockprotoname of
// its file), without taking the socket; empty when it cannot be read.
std::string SocketProtocolName(const FdSight& s);

// Reads the options of |sock| (criu-fast's copy of a target's socket).
// Options the kernel does not offer for this socket are left unset; a
// filter that cannot be read back (an eBPF program) is an error.
Status ReadSocketOpts(int sock, img::SocketOpts* out);

// Before bind(): the options that decide whether the saved address can be
// bound again (SO_REUSEADDR, SO_REUSEPORT, SO_BINDTODEVICE, IPV6_V6ONLY,
// IP_TRANSPARENT), and IP_FREEBIND on for the bind whatever its saved value
// (a socket may have bound a foreign address and cleared it since);
// ApplySocketOpts puts the saved value back.
Status ApplyBindOpts(int sock, const img::SocketOpts& o);

// Once the socket is bound, connected and its queues refilled: every
// option (again: what ApplyBindOpts set is compared and left alone), the
// buffer sizes and their locks, the filter, then SO_LOCK_FILTER.
Status ApplySocketOpts(int sock, const img::SocketOpts& o);

// The options that differ from a fresh socket's defaults, for `show`:
// "reuseaddr=1 sndbuf=4608 filter=4 insns" (empty when none is known).
std::string DescribeSocketOpts(const img::SocketOpts& o);

}  // namespace cf::kinds
