// Page ranges: half-open [start, end) address ranges, page aligned, and
// sorted sets of them (merge, subtract, intersect, split into chunks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cf::pagemap {

inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kPageShift = 12;

// |x| rounded up to a whole page.
inline constexpr uint64_t PageUp(uint64_t x) { return (x + kPageSize - 1) & ~(kPageSize - 1); }

struct PageRange {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t pages() const { return (end - start) >> kPageShift; }
  uint64_t bytes() const { return end - start; }
  bool empty() const { return end <= start; }
  bool operator==(const PageRange&) const = default;
};

// A sorted list of non-overlapping, non-adjacent ranges.
class RangeSet {
 public:
  RangeSet() = default;
  // Builds from ranges in any order; overlapping and adjacent ones merge.
  static RangeSet FromUnsorted(std::vector<PageRange> ranges);

  // Appends a range that starts at or after the end of the last one (merges
  // with it when adjacent). Cheaper than Add() for sorted input.
  void Append(PageRange r);
  // Adds a range anywhere.
  void Add(PageRange r);

  RangeSet Subtract(const RangeSet& other) const;
  RangeSet Intersect(const RangeSet& other) const;
  // Ranges clipped to [lo, hi).
  RangeSet Clip(uint64_t lo, uint64_t hi) const;
  bool Contains(uint64_t addr) const;

  uint64_t pages() const;
  bool empty() const { return ranges_.empty(); }
  size_t size() const { return ranges_.size(); }
  const std::vector<PageRange>& ranges() const { return ranges_; }
  auto begin() const { return ranges_.begin(); }
  auto end() const { return ranges_.end(); }

 private:
  std::vector<PageRange> ranges_;
};

// Cuts the ranges, in order, into pieces of at most |max_pages| pages in total
// each; a piece may span several ranges. Every range is covered exactly once.
// Empty ranges are dropped; |max_pages| == 0 means no limit (one chunk).
std::vector<std::vector<PageRange>> SplitIntoChunks(const std::vector<PageRange>& ranges, uint64_t max_pages);

}  // namespace cf::pagemap
