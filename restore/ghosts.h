// Deleted files that several processes of the tree hold, each through a
// description or a mapping of its own (zdtm's write_read10: a parent and
// a child that opened one file twice before it was unlinked). Each process
// recreates the deleted files it holds from their ghost images by itself
// (kinds/regular_file.cc) and unlinks them once its descriptors are in
// place: two processes would get two files where there was one.
//
// So criu-fast recreates each such file once, before the tree: it opens it,
// unlinks its name at once (the file was deleted) and keeps the descriptor,
// at or above temp_base, which every process of the tree inherits as one
// of its InheritedFiles, under an id of its own above every file_id. Each
// process then finds the file at /proc/self/fd/N (in its recreated files,
// RestoreContext::recreated), which opens the same file again; the
// descriptor is closed with the other inherited ones (RestoreFds).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"
#include "restore/images.h"
#include "restore/shared_files.h"

namespace cf::restore {

// Ids of the inherited descriptors of shared deleted files: above every
// file_id a dump hands out.
constexpr uint32_t kSharedGhostIdBase = 0xfff00000u;

// The ghost images more than one process holds (by descriptors or
// mappings), each with its id.
std::map<std::string, uint32_t> SharedGhosts(const ImageSet& images);

// criu-fast, before the tree: recreates each shared deleted file, keeps a
// descriptor of it at or above |temp_base| and unlinks its name again.
Result<InheritedFiles> MakeSharedGhosts(const ImageSet& images, int temp_base);

// In a restored process: where the shared deleted files it inherited are,
// added to |recreated| (ghost image -> /proc/self/fd/N).
// |shared| is SharedGhosts(images), computed once by criu-fast (each process
// of a large tree walking the whole tree's images would be quadratic).
void UseSharedGhosts(const std::map<std::string, uint32_t>& shared, const InheritedFiles& inherited,
                     std::map<std::string, std::string>* recreated);

}  // namespace cf::restore
