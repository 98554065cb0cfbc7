// Deleted regular files mapped into memory. kinds/regular_file.cc saves the
// contents of such a file in the same ghost image (ghost-DEV-INO.img) as a
// descriptor of it would, and restore recreates it under the same key of
// RestoreContext::recreated: a mapping and the fds of one deleted file share
// one recreated file again, which goes away once the fds are in place.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"

namespace cf::kinds {

// Saves the ghost of every deleted file that a VMA of |core| (pid |pid|,
// its VMAs collected) maps, and records it in the VMA (Vma.ghost).
Status SaveMappedGhosts(pid_t pid, DumpContext& ctx, img::Process* core);

// Recreates the files of |core|'s VMAs that have a ghost (before the memory
// is mapped); MappedGhostPath then says where each is.
Status RecreateMappedGhosts(const img::Process& core, RestoreContext& ctx);
// The path of the file recreated for VMA |v|, or its own path when it has
// no ghost.
std::string MappedGhostPath(const img::Vma& v, const std::map<std::string, std::string>* recreated);

}  // namespace cf::kinds
