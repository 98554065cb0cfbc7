// What a parent image holds for each page of one process: the lookup behind
// incremental dumps.
//
// An incremental dump (pre-dump, or dump --prev-images-dir) stores a page as
// a reference to its parent image instead of its bytes when it knows the
// parent holds the same bytes at the same address: either because the page
// was not written since the parent read it (write tracking), or because its
// bytes hash to the parent's hash of that page (content compare). Every
// image that may become a parent stores a 128-bit hash of each page with
// content (its DATA and PARENT pages, in address order) for that.
//
// Built from the parent's pagemap (sched/ converts the image message);
// kept free of the image format so the lookup is unit-tested on its own.
#pragma once

#include <cstdint>
#include <vector>

#include "pagemap/page_ranges.h"

namespace cf::pagemap {

struct PageHash {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const PageHash&) const = default;
};

class ParentPages {
 public:
  enum class Kind { kAbsent, kZero, kContent };

  struct Page {
    Kind kind = Kind::kAbsent;
    PageHash hash;  // kContent only
  };

  ParentPages() = default;

  // Ranges must come sorted by address, not overlapping. Content ranges
  // take their hashes from |hashes| in order; |hashes| may be empty (an
  // image without hashes: content pages are known, their hashes not).
  void AddZero(uint64_t start, uint64_t pages);
  void AddContent(uint64_t start, uint64_t pages);
  void SetHashes(std::vector<PageHash> hashes) { hashes_ = std::move(hashes); }

  // False when the hashes do not cover the content pages exactly (then
  // content compare cannot be used).
  bool has_hashes() const { return !hashes_.empty() && hashes_.size() == content_pages_; }
  uint64_t content_pages() const { return content_pages_; }
  bool empty() const { return ranges_.empty(); }

  // What the parent holds at |addr| (page aligned).
  Page Find(uint64_t addr) const;
  // [start, end) cut into runs of one kind, in order (a gap the parent does
  // not hold is a kAbsent run); a content run points at its pages' hashes
  // (nullptr without hashes). Replaces one Find per page for long ranges.
  struct Run {
    uint64_t start;
    uint64_t end;
    Kind kind;
    const PageHash* hashes;
  };
  void RunsIn(uint64_t start, uint64_t end, std::vector<Run>* out) const;
  // True when every page of [start, end) is zero or content in the parent.
  bool Covers(uint64_t start, uint64_t end) const;
  // The parts of [start, end) the parent covers (zero or content), in order.
  RangeSet CoveredIn(uint64_t start, uint64_t end) const;

 private:
  struct Range {
    uint64_t start;
    uint64_t end;
    bool zero;
    uint64_t first_hash;  // content: index of its first page's hash
  };
  void Add(uint64_t start, uint64_t pages, bool zero);
  // The first range that ends after |addr|.
  std::vector<Range>::const_iterator After(uint64_t addr) const;

  std::vector<Range> ranges_;
  std::vector<PageHash> hashes_;
  uint64_t content_pages_ = 0;
};

}  // namespace cf::pagemap
