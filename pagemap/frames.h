// The physical frames behind a process's pages, to find the pages a child
// still shares copy-on-write with its parent (fork): both map the same frame
// at the same address until one of them writes it.
//
// Frames come from /proc/PID/pagemap, whose PFN field only root (with
// CAP_SYS_ADMIN) sees; where it reads as 0 no page counts as shared, so a
// dump without the privilege stores every page (never a wrong sharing).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "pagemap/page_ranges.h"

namespace cf::pagemap {

class FrameMap {
 public:
  FrameMap() = default;

  // The frames of |pid|'s pages in |ranges| (sorted, not overlapping); 0 for
  // a page that is not present (or whose frame is hidden).
  static Result<FrameMap> Read(pid_t pid, std::span<const PageRange> ranges);

  // The frame of the page at |addr|, 0 where none was read.
  uint64_t FrameAt(uint64_t addr) const;

  // The pages of this map present at the same frame in |other| (the same
  // address in both): shared, neither has written them since the fork.
  RangeSet SharedWith(const FrameMap& other) const;

  uint64_t pages() const { return frames_.size(); }

 private:
  std::vector<PageRange> ranges_;
  std::vector<uint64_t> first_;  // per range: index of its first page in frames_
  std::vector<uint64_t> frames_;
};

}  // namespace cf::pagemap
