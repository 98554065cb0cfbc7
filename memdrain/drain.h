// The interface of a drain backend: where the page pipeline
// (sched/page_pipeline.h) gets the contents of a batch of pages.
//
//   read      PageReader (page_reader.h): process_vm_readv of the frozen
//             target, on every pipeline thread at once.
//   vmsplice  PinnedPages (pinned_pages.h): pages the drain parasite
//             (parasite.h) put into pipes, read out of the pipes; the target
//             may already be gone.
#pragma once

#include <cstdint>
#include <span>

#include "common/status.h"
#include "pagemap/page_ranges.h"

namespace cf::memdrain {

class PageDrain {
 public:
  virtual ~PageDrain() = default;

  // Reads |ranges| (in order) into |out|, which holds exactly their total
  // size. |readable|: the ranges lie in VMAs with PROT_READ. Must be safe to
  // call from several threads at once for different batches.
  virtual Status Read(std::span<const pagemap::PageRange> ranges, uint8_t* out, bool readable) const = 0;
};

}  // namespace cf::memdrain
