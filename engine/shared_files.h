// Descriptors whose kernel object the processes of a tree may share: pipes,
// FIFOs, unix socket pairs, eventfds, timerfds, signalfds, inotify and epoll
// instances; and regular files and directories whose open file description
// (offset, flags) several processes share.
//
// One pass over every process of the (frozen) tree, before the per-process
// collection, because what one fd is depends on the others: two fds, in one
// process or two, share an open file description when kcmp(KCMP_FILE) says
// so (they get one file_id); both ends of a pipe share the pipe (its inode);
// a unix socket is dumpable only when its peer is held by the tree too. The
// queued bytes (pipe data, socket queues) are read without consuming them,
// through a copy of the descriptor taken with pidfd_getfd, so a dump with -R
// leaves them in place. Each object is saved once, in the core of the first
// process that holds it. An epoll instance's targets are checked last, once
// every process is known (see CollectEpolls).
#pragma once

#include <sys/types.h>

#include <map>

#include "proc/open_file_index.h"
#include <string>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "criu_fast.pb.h"
#include "proc/fdinfo_kinds.h"
#include "proc/proc_parse.h"

namespace cf::engine {
using namespace ::cf::proc;  // /proc parsing, the layer below

// What sock_diag tells about a unix socket.
struct UnixSocketInfo {
  uint32_t type = 0;       // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
  uint32_t state = 0;      // the kernel's sk_state
  bool connected = false;  // state TCP_ESTABLISHED
  uint64_t peer = 0;       // the peer's inode (0: none)
  std::string name;        // empty: unnamed; "@..." abstract
  uint32_t shutdown = 0;   // sk_shutdown: 1 receive, 2 send
  uint32_t rqueue = 0;     // bytes queued (SOCK_DGRAM: of the first message)
};

class SharedFiles {
 public:
  // Walks the descriptors of |pids| (the whole tree, root first).
  Status Collect(const std::vector<pid_t>& pids);

  // The record of fd |fd| of |pid|, when it is of a kind this pass takes;
  // null otherwise (CollectFds handles or refuses it).
  const img::Fd* Find(pid_t pid, int fd) const;
  // Adds the objects saved with |pid| (pipes, socket pairs) to its core.
  void AddObjects(pid_t pid, img::Process* out) const;

 private:
  struct Ref {  // one fd of one process
    pid_t pid;
    int fd;
  };
  struct Description {
    Ref first;
    uint64_t dev, inode;
  };
  struct Socket {  // a unix socket the tree holds
    std::vector<Ref> refs;
    UnixSocketInfo info;
  };
  Status CollectProcess(pid_t pid);
  Status CompleteSharedFiles();
  Result<uint32_t> DescriptionId(pid_t pid, int fd, uint64_t dev, uint64_t inode);
  Status CollectSocket(pid_t pid, int fd, const std::string& link, uint64_t inode);
  Status ReadState(pid_t pid, int fd, const FdInfo& info, uint32_t id, img::Fd* f);
  Status CollectPipes();
  Status CollectSockets();
  Status CollectEpolls();
  Status ReadEnd(uint64_t inode, img::UnixEnd* out) const;

  std::map<std::pair<pid_t, int>, img::Fd> fds_;
  std::vector<Description> descriptions_;  // file_id - 1 -> where it was first seen
  OpenFileIndex open_files_;  // file ids by open file description
  std::map<pid_t, std::vector<img::Pipe>> pipes_;         // by carrier process
  std::map<pid_t, std::vector<img::UnixPair>> pairs_;     // by carrier process
  std::map<uint64_t, Socket> sockets_;                    // by inode
  struct Epoll {  // an epoll description: where it is held, what it watches
    std::vector<Ref> refs;  // root first, then by fd
    std::vector<EpollTargetInfo> targets;
  };
  std::map<uint32_t, Epoll> epolls_;                      // by file_id
  std::vector<pid_t> order_;                              // processes, root first
};

// Per-kind readers (engine/dump_pipe.cc, dump_unix.cc, dump_eventfd.cc,
// dump_timerfd.cc, dump_signalfd.cc, dump_inotify.cc, dump_epoll.cc).

// A copy, in criu-fast, of fd |fd| of |pid|: the same open file description.
Result<UniqueFd> TakeFd(pid_t pid, int fd);

// The capacity and queued bytes of the pipe behind fd |fd| of |pid| (|flags|
// from its fdinfo), read without consuming them.
Status ReadPipe(pid_t pid, int fd, uint32_t flags, img::Pipe* out);

// sock_diag's view of unix socket |inode| (ENOENT: no such socket).
Result<UnixSocketInfo> QueryUnixSocket(uint64_t inode);
// Shutdown bits, buffer sizes, peek offset and queued messages of one end,
// read without consuming through |sock|, a copy of it.
Status ReadUnixEnd(int sock, const UnixSocketInfo& info, img::UnixEnd* out);

// The counter and mode of eventfd |fd| of |pid| into |out|.
Status ReadEventFd(pid_t pid, int fd, const FdInfo& info, img::Fd* out);

// Clock, setting and pending expirations of timerfd |fd| of |pid|.
Status ReadTimerFd(pid_t pid, int fd, img::Fd* out);

// The signal mask of a signalfd.
Status ReadSignalFd(pid_t pid, int fd, const FdInfo& info, img::Fd* out);

// The watches of an inotify instance, each with a path to its file.
Status ReadInotify(pid_t pid, int fd, const FdInfo& info, img::Fd* out);

// OK when every target of epoll fd |efd| of |pid| is, in |pid|, the file
// at the fd number it was added with (and not an epoll instance itself).
Status CheckEpollTargets(pid_t pid, int efd, const std::vector<EpollTargetInfo>& targets);

}  // namespace cf::engine
