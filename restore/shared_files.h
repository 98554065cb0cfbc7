// Restoring the kernel objects that descriptors may share across the tree:
// pipes, FIFOs, unix socket pairs, eventfds, timerfds, signalfds, inotify
// and epoll instances, and the open file descriptions of regular files and
// directories that several processes hold (one offset).
//
// A child inherits descriptors from its parent at fork, so an object is
// created by the lowest common ancestor of every process that holds it (its
// owner), before that process creates its children. The owner creates the
// object, puts its queued bytes back, and places one descriptor per open
// file description at a temporary number at or above |temp_base| (above
// every fd number of the tree, so nothing the restore uses later is in the
// way). Each process of the owner's subtree then dup2()s the descriptions it
// uses to their numbers (RestoreFds) and closes the others.
//
// An epoll instance is created empty by its owner; its targets are other
// fds of a process, so they are added by the one process whose Fd carries
// them, once all its fds are in place (AddEpollTargets, from RestoreFds).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "restore/images.h"

namespace cf::restore {

struct SharedObject {
  enum class Kind { kPipe, kUnixPair, kEventFd, kTimerFd, kSignalFd, kInotify, kEpoll, kFile };
  Kind kind = Kind::kPipe;
  pid_t owner = 0;
  const img::Pipe* pipe = nullptr;       // kPipe
  const img::UnixPair* pair = nullptr;   // kUnixPair
  // One Fd per open file description (the first one seen), by file_id.
  std::map<uint32_t, const img::Fd*> files;
};

struct SharedFilePlan {
  std::vector<SharedObject> objects;
  int temp_base = 0;
  // The shared memory objects criu-fast made (restore/shmem.h), which a
  // memfd description is reopened from; set once they exist.
  const std::map<uint32_t, int>* shmem = nullptr;
};

// The objects of |images| and their owners. Points into |images|, which
// must outlive the plan.
Result<SharedFilePlan> PlanSharedFiles(const ImageSet& images);

// Raises the soft RLIMIT_NOFILE so that descriptor number |top| can be used.
Status EnsureFdRoom(int top);

// The temporary descriptor of each open file description this process
// inherited or created: file_id -> fd.
using InheritedFiles = std::map<uint32_t, int>;

// Creates the objects that process |pid| owns (see above), adding their
// descriptions to |files|.
Status CreateOwnedFiles(const SharedFilePlan& plan, pid_t pid, InheritedFiles* files);

// Per kind (restore/pipes.cc, unix_sockets.cc, eventfd.cc): creates the
// object and returns one descriptor per description in |obj.files|.
using CreatedFiles = std::map<uint32_t, UniqueFd>;
Status CreatePipe(const SharedObject& obj, CreatedFiles* out);
Status CreateUnixPair(const SharedObject& obj, CreatedFiles* out);
Status CreateEventFd(const SharedObject& obj, CreatedFiles* out);
// restore/files.cc: a regular file or directory opened as it was (path,
// flags, offset), or a memfd reopened from its object in |shmem|.
Status CreateSharedFile(const SharedObject& obj, const std::map<uint32_t, int>* shmem, CreatedFiles* out);
Status CreateTimerFd(const SharedObject& obj, CreatedFiles* out);    // restore/timerfd.cc
Status CreateSignalFd(const SharedObject& obj, CreatedFiles* out);   // restore/signalfd.cc
Status CreateInotify(const SharedObject& obj, CreatedFiles* out);    // restore/inotify.cc
Status CreateEpoll(const SharedObject& obj, CreatedFiles* out);      // restore/epoll.cc

// Adds the targets saved on epoll fd |f| (placed at f.fd(), like every fd
// of this process) to it.
Status AddEpollTargets(const img::Fd& f);

}  // namespace cf::restore
