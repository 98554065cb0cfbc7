// Pages pinned by the drain parasite (parasite.h), read back by the page
// pipeline: the vmsplice drain backend.
//
// Pages are pinned per batch, the batches being the page pipeline's own
// (sched::BatchCutter), so a Read() always asks for exactly one batch: its
// pipes are read in order (each to EOF) into the pipeline's buffer and
// closed, which drops the page references as the dump goes. Batches of
// unreadable VMAs (PROT_NONE) cannot be vmspliced; they are copied out with
// /proc/PID/mem when pinned, so that every batch can be read after the
// target is gone.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "common/fd.h"
#include "memdrain/drain.h"

namespace cf::memdrain {

class PinnedPages : public PageDrain {
 public:
  // A batch starting at |first|, of |bytes|, held by |pipes| in order.
  void AddPipes(uint64_t first, uint64_t bytes, std::vector<UniqueFd> pipes);
  // A batch copied into |copy|.
  void AddCopy(uint64_t first, uint64_t bytes, std::unique_ptr<uint8_t[]> copy);
  // A batch copied into |data|, which the caller keeps until it is read.
  void AddView(uint64_t first, uint64_t bytes, const uint8_t* data);

  // Reads one batch added above (|ranges| must be that batch); each batch
  // can be read once. Thread-safe for distinct batches.
  Status Read(std::span<const pagemap::PageRange> ranges, uint8_t* out, bool readable) const override;

  size_t pipes() const { return pipes_; }
  uint64_t pages() const { return bytes_ / pagemap::kPageSize; }

 private:
  struct Batch {
    uint64_t bytes = 0;
    mutable std::vector<UniqueFd> pipes;
    std::unique_ptr<uint8_t[]> copy;
    const uint8_t* view = nullptr;
  };
  std::map<uint64_t, Batch> batches_;
  size_t pipes_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace cf::memdrain
