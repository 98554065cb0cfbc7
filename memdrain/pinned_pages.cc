#include "memdrain/pinned_pages.h"

#include <unistd.h>

#include <cstring>

#include "common/fault.h"

namespace cf::memdrain {

void PinnedPages::AddPipes(uint64_t first, uint64_t bytes, std::vector<UniqueFd> pipes) {
  pipes_ += pipes.size();
  bytes_ += bytes;
  Batch& b = batches_[first];
  b.bytes = bytes;
  b.pipes = std::move(pipes);
}

void PinnedPages::AddCopy(uint64_t first, uint64_t bytes, std::unique_ptr<uint8_t[]> copy) {
  bytes_ += bytes;
  Batch& b = batches_[first];
  b.bytes = bytes;
  b.copy = std::move(copy);
}

void PinnedPages::AddView(uint64_t first, uint64_t bytes, const uint8_t* data) {
  bytes_ += bytes;
  Batch& b = batches_[first];
  b.bytes = bytes;
  b.view = data;
}

Status PinnedPages::Read(std::span<const pagemap::PageRange> ranges, uint8_t* out, bool /*readable*/) const {
  FAULT_POINT("drain");
  if (ranges.empty()) return OkStatus();
  uint64_t want = 0;
  for (const auto& r : ranges) want += r.bytes();
  auto it = batches_.find(ranges.front().start);
  if (it == batches_.end() || it->second.bytes != want) {
    return Errorf("vmsplice drain: no pinned batch of %lu bytes at %#lx", want, ranges.front().start);
  }
  const Batch& b = it->second;
  if (b.copy || b.view) {
    memcpy(out, b.copy ? b.copy.get() : b.view, want);
    return OkStatus();
  }
  uint64_t got = 0;
  for (UniqueFd& fd : b.pipes) {
    if (!fd.valid()) return Errorf("vmsplice drain: batch at %#lx read twice", ranges.front().start);
    for (;;) {
      // Once the batch is complete, one more byte (into |extra|) must be EOF.
      uint8_t extra;
      ssize_t n = got < want ? read(fd.get(), out + got, want - got) : read(fd.get(), &extra, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus("read of a pinned-pages pipe");
      if (n == 0) break;
      got += static_cast<uint64_t>(n);
      if (got > want) break;
    }
    fd.reset();  // drops the page references at once
    if (got > want) break;
  }
  if (got != want) {
    return Errorf("vmsplice drain: batch at %#lx gave %lu bytes, want %lu", ranges.front().start, got, want);
  }
  return OkStatus();
}

}  // namespace cf::memdrain
