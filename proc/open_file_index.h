// Which descriptors share one open file description, found in O(log n)
// kcmp calls per descriptor.
//
// kcmp(KCMP_FILE) compares two descriptors' open file descriptions and also
// orders them (0: the same, 1: the first below the second, 2: above), so the
// descriptions seen so far are kept per key, sorted in the kernel's order,
// and a new descriptor is binary-searched among them. Comparing with every
// description seen before was quadratic: 10,000 descriptors of one file took
// seconds. The key holds what two descriptors of one description cannot
// differ in (the file, and the description's offset, flags and mount, read
// from fdinfo while the tree is frozen), so most descriptions of one file
// (each at its own offset) need no kcmp at all.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "common/status.h"
#include "proc/proc_parse.h"

namespace cf::proc {

// What two descriptors of one open file description always agree on.
struct DescriptionKey {
  uint64_t dev = 0;
  uint64_t inode = 0;
  uint64_t pos = 0;
  uint32_t flags = 0;  // fdinfo flags without O_CLOEXEC (a descriptor's own)
  uint32_t mnt_id = 0;
  auto operator<=>(const DescriptionKey&) const = default;
};

// The key of a descriptor whose file is |sb| and fdinfo |info|.
DescriptionKey KeyOf(const struct stat& sb, const FdInfo& info);

class OpenFileIndex {
 public:
  // If (pid, fd) shares its open file description with a descriptor added
  // before, returns that one's value; else adds (pid, fd) with |value| and
  // returns nullopt. Descriptors with different keys never share one.
  Result<std::optional<uint32_t>> FindOrAdd(pid_t pid, int fd, const DescriptionKey& key, uint32_t value);

 private:
  struct Entry {
    pid_t pid;
    int fd;
    uint32_t value;
  };
  std::map<DescriptionKey, std::vector<Entry>> by_key_;
};

}  // namespace cf::proc
