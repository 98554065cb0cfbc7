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
// What is created, and what happens once the fds are in place (an epoll
// instance's targets), is up to each kind (kinds/<kind>.cc).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "kinds/kind.h"
#include "restore/images.h"

namespace cf::restore {

using kinds::CreatedFiles;
using kinds::SharedObject;

struct SharedFilePlan {
  std::vector<SharedObject> objects;
  int temp_base = 0;
  // The shared memory objects criu-fast made (kinds/shmem.h), which a
  // memfd description is reopened from; set once they exist.
  const std::map<uint32_t, int>* shmem = nullptr;
  bool tcp_close = false;  // --tcp-close: TCP connections come back closed
};

// The objects of |images| and their owners. Points into |images|, which
// must outlive the plan.
Result<SharedFilePlan> PlanSharedFiles(const ImageSet& images);

// Raises the soft RLIMIT_NOFILE so that descriptor number |top| can be used.
Status EnsureFdRoom(int top);

// The temporary descriptor of each open file description this process
// inherited or created: file_id -> fd.
using InheritedFiles = std::map<uint32_t, int>;

// Creates the objects that process |pid| owns (see above), each by its kind
// (kinds/kind.h) with |ctx|, adding their descriptions to |files|.
Status CreateOwnedFiles(const SharedFilePlan& plan, pid_t pid, kinds::RestoreContext& ctx, InheritedFiles* files);

}  // namespace cf::restore
