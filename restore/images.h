// Loading a checkpoint's images for restore: the inventory and, per process,
// its core and pagemap, with every record's checksum verified.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"

namespace cf::restore {

struct ProcessImages {
  img::Process core;
  img::PageMap pagemap;
  std::string pages_path;  // pages-PID.img
};

struct ImageSet {
  std::string dir;
  img::Inventory inventory;
  std::vector<ProcessImages> processes;  // root first
  std::map<uint32_t, img::Shmem> shmems;  // shared memory objects, by id
};

// Fails with a clear message when the directory holds no complete image
// (no inventory.img: an interrupted dump) or a file is corrupt.
Result<ImageSet> LoadImages(const std::string& dir);

}  // namespace cf::restore
