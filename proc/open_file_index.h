// Which descriptors share one open file description, found in O(log n)
// kcmp calls per descriptor.
//
// kcmp(KCMP_FILE) compares two descriptors' open file descriptions and also
// orders them (0: the same, 1: the first below the second, 2: above), so the
// descriptions seen so far are kept per (dev, inode), sorted in the kernel's
// order, and a new descriptor is binary-searched among them. Comparing with
// every description seen before was quadratic: 10,000 descriptors of one
// file took seconds.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cf::proc {

class OpenFileIndex {
 public:
  // If (pid, fd) shares its open file description with a descriptor added
  // before, returns that one's value; else adds (pid, fd) with |value| and
  // returns nullopt. |dev| and |inode| are those of the file (descriptors of
  // different files never share a description).
  Result<std::optional<uint32_t>> FindOrAdd(pid_t pid, int fd, uint64_t dev, uint64_t inode, uint32_t value);

 private:
  struct Entry {
    pid_t pid;
    int fd;
    uint32_t value;
  };
  std::map<std::pair<uint64_t, uint64_t>, std::vector<Entry>> by_inode_;
};

}  // namespace cf::proc
