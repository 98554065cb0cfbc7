// A shared mapping owned by criu-fast: unmapped when it goes away.
#pragma once

#include <sys/mman.h>

#include <cstdint>

#include "common/status.h"

namespace cf {

class SharedMapping {
 public:
  SharedMapping() = default;
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;
  ~SharedMapping() {
    if (addr_ != MAP_FAILED) munmap(addr_, len_);
  }

  // Maps |len| bytes of |fd| from |offset| with |prot|, MAP_SHARED (plus
  // |flags|, e.g. MAP_HUGETLB); with fd < 0, new shared anonymous memory.
  Status Map(int fd, uint64_t offset, uint64_t len, int prot, int flags = 0) {
    len_ = len;
    addr_ = fd < 0 ? mmap(nullptr, len, prot, MAP_SHARED | MAP_ANONYMOUS | flags, -1, 0)
                   : mmap(nullptr, len, prot, MAP_SHARED | flags, fd, static_cast<off_t>(offset));
    if (addr_ == MAP_FAILED) return ErrnoStatus("map shared memory");
    return OkStatus();
  }
  uint64_t base() const { return reinterpret_cast<uint64_t>(addr_); }

 private:
  void* addr_ = MAP_FAILED;
  uint64_t len_ = 0;
};

}  // namespace cf
