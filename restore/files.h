// Restoring descriptors, cwd and root of a process being restored (runs in
// the restored process itself, before the restorer).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "restore/memory.h"
#include "restore/shared_files.h"

namespace cf::restore {

// Opens every descriptor of |core| at its number with its flags, offset and
// close-on-exec bit; dup'ed descriptors share one open file again; deleted
// files are recreated from their ghost images in |dir| and unlinked again.
// Descriptors of shared objects (pipes, socket pairs, eventfds, timerfds,
// signalfds, inotify and epoll instances) are placed from |inherited|
// (created by this process or an ancestor, see shared_files.h), which are
// all closed afterwards; then the epoll instances whose targets this process
// re-adds get them.
// |keep| are descriptors of ours that must survive: they are moved above the
// target's highest fd first, and their new numbers are written back.
Status RestoreFds(const img::Process& core, const std::string& dir, const InheritedFiles& inherited,
                  const ShmemFds& shmem, std::vector<int*> keep);

}  // namespace cf::restore
