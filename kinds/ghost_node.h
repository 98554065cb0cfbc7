// Deleted files that hold no data of their own: a directory, a FIFO, a
// device node, a symlink. The dump saves what makes one like it (its type,
// permissions, owner, device number or symlink target: img::GhostNode);
// restore makes it again at its old path, or, when that name is taken, under
// a name of its own next to it, creating the directories above it that are
// gone too, opens it, and removes every name it made once the process's
// descriptors hold the node (RemoveRecreated). The process then holds a
// file of the same type whose name is removed, as before.
#pragma once

#include <sys/stat.h>

#include <map>
#include <string>

#include "common/status.h"
#include "criu_fast.pb.h"

namespace cf::kinds {

// Removes " (deleted)" from the end of a /proc link.
std::string StripDeleted(const std::string& link);

// |sb|'s type, permissions and owner, and |target| (a symlink's).
img::GhostNode GhostOf(const struct stat& sb, const std::string& target);

// Makes the node of |g| for |path| (|key| names it across the process's
// descriptors: the second call with one key returns the first one's path)
// and records every name it made in |made| (path by key), for
// RemoveRecreated.
Result<std::string> MakeGhostNode(const std::string& key, const std::string& path, const img::GhostNode& g,
                                  std::map<std::string, std::string>* made);

// Removes the names in |made| (values): files first, then directories,
// deepest first.
void RemoveRecreated(const std::map<std::string, std::string>& made);

}  // namespace cf::kinds
