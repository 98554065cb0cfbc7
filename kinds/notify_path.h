// Paths to the files that inotify watches and fanotify marks name: fdinfo
// gives a file handle and a mount id, not a path. Shared by kinds/inotify.cc
// and kinds/fanotify.cc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace cf::kinds {

// A path, in our mount namespace, to the file with inode |ino| on device
// |dev| (st_dev) and file handle (|type|, |handle|), seen from |pid|: for
// each mount of |pid| with that device, open_by_handle_at() on the mount's
// root gives the file, and /proc/self/fd/N its path; the path is kept when
// stat() on it finds the same device and inode.
Result<std::string> PathByHandle(pid_t pid, uint64_t ino, dev_t dev, int32_t type, const std::string& handle);

// The mount point of mount |mnt_id| of |pid| (its mountinfo), as a path in
// our mount namespace.
Result<std::string> MountPoint(pid_t pid, uint32_t mnt_id);

}  // namespace cf::kinds
