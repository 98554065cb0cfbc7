// Unix sockets other than connected pairs of unnamed ones: bound (to a path,
// also relative or deleted, or an abstract name), listening with clients
// waiting to be accepted, connected across names, datagram sockets
// connected to a bound one. They are saved and created again in groups
// (img::UnixGroup): the sockets that connections link, created together
// by one process at restore, so that every name a connect() needs is bound
// when it runs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

#include "common/fd.h"
#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/unix_diag.h"
#include "kinds/unix_queue.h"

namespace cf::kinds {

// One socket of the tree, as the dump sees it.
struct UnixSockSight {
  pid_t pid = 0;       // a holder
  int fd = 0;
  UnixSocketInfo info;
};

// Fills |out| from |s|: type, state, name (and for a path: its directory
// when relative, whether it was deleted, the file's mode and owner), the
// queue, shutdown bits and options. The links between sockets (peer,
// listener, pending) are the caller's.
// Descriptors in flight in its queue go to |flight|.
Status ReadUnixSock(const UnixSockSight& s, img::UnixSock* out, InFlightFds* flight);

// Creates every socket of |g|, bound, listening and connected as saved,
// with its queue: inode -> descriptor.
// |files|: the group's in-flight files, made already.
Status CreateUnixGroup(const img::UnixGroup& g, const InFlightFiles& files, std::map<uint64_t, UniqueFd>* out);

// "socket:[INODE] (NAME)", for messages.
std::string UnixSockName(const img::UnixSock& s);

}  // namespace cf::kinds
