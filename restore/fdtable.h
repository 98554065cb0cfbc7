// Restoring a descriptor table that processes share (kinds/fdtable.h).
//
// A process marked fdt_shared is cloned by its parent with CLONE_FILES, so
// the group's topmost process (its owner) and every member work in one
// table from the start. Only the owner places descriptors (RestoreFds);
// the members keep to numbers nobody else uses meanwhile, in two phases
// that criu-fast orders at the memory fill wait ('P', restore/task.h):
//   1. until its 'P', a member may open temporary descriptors (the objects
//      it owns, files it maps) and closes them; the owner is held at its
//      own 'P' wait until every member of its group has reached its 'P';
//   2. then the owner replaces the table's content with the image's, and
//      each member is held at its 'P' wait until the owner's restorer is
//      done; afterwards a member opens only what its restorer closes.
// A member reports through its own duplicate of the message pipe, at a
// number above every descriptor of the tree, which the owner keeps.
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <vector>

#include "restore/images.h"

namespace cf::restore {

class SharedTableOrder {
 public:
  explicit SharedTableOrder(const ImageSet& images);
  // |pid|'s memory is filled and it is stopped: the processes that may go
  // on now (|pid| itself unless it is held, and a held owner it released).
  std::vector<pid_t> Filled(pid_t pid);
  // |pid|'s restorer is done: the members it held may go on.
  std::vector<pid_t> RestorerDone(pid_t pid);

 private:
  std::map<pid_t, pid_t> owner_;             // member -> its group's owner
  std::map<pid_t, size_t> unfilled_;         // owner -> members not yet filled
  std::set<pid_t> owner_waiting_;            // owners filled, held for their members
  std::map<pid_t, std::vector<pid_t>> held_;  // owner -> its members filled and held
};

// True when a child of process |index| of |images| shares its table (the
// family linked: LinkFamily).
bool HasTableSharers(const ImageSet& images, size_t index);

}  // namespace cf::restore
