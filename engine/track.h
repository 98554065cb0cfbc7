// Who holds the write tracking of a tree between two dumps.
//
// Write tracking (pagemap/uffd_track.h) lasts as long as a descriptor of
// the target's userfaultfd is open. The target must not hold it (it would
// see a new descriptor, and could close or reuse its number), and criu-fast
// exits after each dump. So a dump that leaves tracking armed (pre-dump, or
// dump --track-mem -R) hands the descriptors to a keeper: a small process
// forked from criu-fast, in a session of its own, that holds them and
// listens on an abstract unix socket named after the image's id (recorded
// in the inventory). The next dump made against that image connects, takes
// the descriptors (the keeper checks that the peer is root or its own user,
// and the dump that the keeper is), and the keeper exits. A keeper also
// exits when every process it tracks is gone. If the keeper is gone (killed,
// reboot), the next dump finds no one there and compares hashes instead:
// slower, never wrong.
//
// A userfaultfd is made inside the target, frozen, by a remote system call
// (userfaultfd(UFFD_USER_MODE_ONLY), allowed to unprivileged processes);
// criu-fast takes a copy with pidfd_getfd and closes the target's at once
// (RemoteSyscall::CallClosing: closed also should criu-fast die between the
// two calls).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

#include "common/fd.h"
#include "common/status.h"

namespace cf::engine {

// A userfaultfd made inside |pid| (seized and stopped) by a remote
// userfaultfd(|flags|): criu-fast's copy (pidfd_getfd); the target's own
// descriptor is closed before returning, whatever happened.
Result<UniqueFd> MakeUserfaultfdIn(pid_t pid, int flags);

class WriteTracking {
 public:
  // Takes the descriptors held by the keeper at |name| (a parent image's
  // Inventory.tracker); empty when no keeper answers.
  static WriteTracking FromKeeper(const std::string& name);

  // The userfaultfd of process |pid| with start time |start_time| taken from
  // the keeper, or -1.
  int Inherited(pid_t pid, uint64_t start_time) const;
  // A new userfaultfd for |pid| (seized and stopped), made inside it; it
  // replaces any inherited one.
  Result<int> Create(pid_t pid, uint64_t start_time);

  bool empty() const { return fds_.empty(); }
  size_t size() const { return fds_.size(); }

  // Hands every descriptor to a new keeper listening at |name|.
  Status Keep(const std::string& name);

  // The keeper's socket name for the image |image_id|.
  static std::string KeeperName(const std::string& image_id);

 private:
  struct Entry {
    uint64_t start_time = 0;
    UniqueFd uffd;
  };
  std::map<pid_t, Entry> fds_;
};

}  // namespace cf::engine
