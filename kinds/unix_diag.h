// What sock_diag (NETLINK_SOCK_DIAG) tells about one unix socket, asked by
// inode: type, state, name, peer, pending connections of a listener, the
// bound file, shutdown bits and queue lengths.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace cf::kinds {

constexpr uint32_t kUnixEstablished = 1;  // sk_state of a connected socket
constexpr uint32_t kUnixClose = 7;        // not connected
constexpr uint32_t kUnixListen = 10;

struct UnixSocketInfo {
  uint64_t inode = 0;
  uint32_t type = 0;       // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
  uint32_t state = 0;      // the kernel's sk_state
  // Connected: state kUnixEstablished for a stream or seqpacket socket;
  // having a peer for a datagram one (a bound datagram socket takes that
  // state once another one connects to it).
  bool connected = false;
  bool has_peer = false;   // a peer, maybe closed
  uint64_t peer = 0;       // the peer's inode (0: none, or closed)
  // The address as bound, raw: empty when unbound, a leading 0 byte for an
  // abstract name, else a path (no trailing 0).
  std::string raw_name;
  std::string name;        // for messages: abstract names with '@' for 0 bytes
  bool has_vfs = false;    // a path socket: the file it made at bind time
  uint64_t vfs_dev = 0;    // as userspace dev_t
  uint64_t vfs_ino = 0;
  std::vector<uint32_t> icons;  // a listener: its pending connections, in accept order
  uint32_t shutdown = 0;   // sk_shutdown: 1 receive, 2 send
  uint32_t rqueue = 0;     // bytes queued (SOCK_DGRAM: of the first message); a listener: pending count
  uint32_t wqueue = 0;     // bytes sent and not yet read; a listener: its backlog
};

// Asks sock_diag about the unix socket |inode| (ENOENT: no such socket).
Result<UnixSocketInfo> QueryUnixSocket(uint64_t inode);

}  // namespace cf::kinds
