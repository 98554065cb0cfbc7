// Recreating the shared memory objects of an image (engine/shmem.h) before
// the tree is created.
//
// criu-fast itself creates each object (shared anonymous memory, reopened
// through /proc/self/map_files; or a memfd with its name), fills it from
// shmem-ID.img in parallel, applies the memfd's seals, and keeps one
// descriptor per object at a number at or above |temp_base| (above every fd
// number of the tree). The root process inherits them all, and so does each
// process it creates: premapping maps a shared (or private memfd) vma from
// its object, RestoreFds reopens memfd descriptors from it (new open file
// descriptions, like the originals, each with its flags and offset), and
// every process closes the objects' descriptors before it runs on.
#pragma once

#include <cstdint>
#include <map>

#include "common/fd.h"
#include "common/status.h"
#include "restore/images.h"
#include "restore/memory.h"

namespace cf::restore {

class ShmemObjects {
 public:
  // Creates and fills every object of |images|.
  static Result<ShmemObjects> Create(const ImageSet& images, int temp_base, int jobs);

  const ShmemFds& fds() const { return fds_; }

 private:
  std::map<uint32_t, UniqueFd> owned_;
  ShmemFds fds_;
};

}  // namespace cf::restore
