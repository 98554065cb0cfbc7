// Page-range math on sorted vectors.
//
// A RangeSet keeps its ranges sorted by start, non-overlapping and
// non-adjacent (touching ranges are merged), so that set operations are
// linear two-pointer merges and membership is a binary search. Empty ranges
// are never stored.
#include "pagemap/page_ranges.h"

#include <algorithm>
#include <utility>

namespace cf::pagemap {

RangeSet RangeSet::FromUnsorted(std::vector<PageRange> ranges) {
  std::erase_if(ranges, [](const PageRange& r) { return r.empty(); });
  std::sort(ranges.begin(), ranges.end(),
            [](const PageRange& a, const PageRange& b) { return a.start < b.start; });
  // Merge in place: |out| is the last kept range.
  size_t out = 0;
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].start <= ranges[out].end) {
      ranges[out].end = std::max(ranges[out].end, ranges[i].end);
    } else {
      ranges[++out] = ranges[i];
    }
  }
  if (!ranges.empty()) ranges.resize(out + 1);
  RangeSet set;
  set.ranges_ = std::move(ranges);
  return set;
}

void RangeSet::Append(PageRange r) {
  if (r.empty()) return;
  if (ranges_.empty() || r.start > ranges_.back().end) {
    ranges_.push_back(r);
  } else if (r.start >= ranges_.back().start) {
    // Adjacent to (or overlapping) the last range.
    ranges_.back().end = std::max(ranges_.back().end, r.end);
  } else {
    Add(r);  // out of order: tolerate it, at Add()'s cost
  }
}

void RangeSet::Add(PageRange r) {
  if (r.empty()) return;
  // [first, last) are the ranges that overlap or touch r.
  auto first = std::lower_bound(ranges_.begin(), ranges_.end(), r.start,
                                [](const PageRange& x, uint64_t v) { return x.end < v; });
  auto last = std::upper_bound(first, ranges_.end(), r.end,
                               [](uint64_t v, const PageRange& x) { return v < x.start; });
  if (first == last) {
    ranges_.insert(first, r);
    return;
  }
  first->start = std::min(first->start, r.start);
  first->end = std::max((last - 1)->end, r.end);
  ranges_.erase(first + 1, last);
}

RangeSet RangeSet::Subtract(const RangeSet& other) const {
  RangeSet out;
  const std::vector<PageRange>& o = other.ranges_;
  size_t j = 0;
  for (const PageRange& r : ranges_) {
    uint64_t cur = r.start;
    while (j < o.size() && o[j].end <= cur) ++j;
    // o[j..] may cut holes into r; o[j] can also reach into the next range,
    // so j is not advanced past the last one that overlaps.
    for (size_t k = j; k < o.size() && o[k].start < r.end && cur < r.end; ++k) {
      if (o[k].start > cur) out.ranges_.push_back({cur, o[k].start});
      cur = std::max(cur, o[k].end);
    }
    if (cur < r.end) out.ranges_.push_back({cur, r.end});
  }
  return out;
}

RangeSet RangeSet::Intersect(const RangeSet& other) const {
  RangeSet out;
  const std::vector<PageRange>& a = ranges_;
  const std::vector<PageRange>& b = other.ranges_;
  size_t i = 0;
  size_t j = 0;
  while (i < a.size() && j < b.size()) {
    const uint64_t lo = std::max(a[i].start, b[j].start);
    const uint64_t hi = std::min(a[i].end, b[j].end);
    // Pieces of an intersection of two canonical sets are never adjacent.
    if (lo < hi) out.ranges_.push_back({lo, hi});
    if (a[i].end < b[j].end) {
      ++i;
    } else {
      ++j;
    }
  }
  return out;
}

RangeSet RangeSet::Clip(uint64_t lo, uint64_t hi) const {
  RangeSet out;
  if (lo >= hi) return out;
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), lo,
                             [](uint64_t v, const PageRange& x) { return v < x.end; });
  for (; it != ranges_.end() && it->start < hi; ++it) {
    out.ranges_.push_back({std::max(it->start, lo), std::min(it->end, hi)});
  }
  return out;
}

bool RangeSet::Contains(uint64_t addr) const {
  // The first range that starts after addr; the one before it may hold addr.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), addr,
                             [](uint64_t v, const PageRange& x) { return v < x.start; });
  if (it == ranges_.begin()) return false;
  return addr < (it - 1)->end;
}

uint64_t RangeSet::pages() const {
  uint64_t n = 0;
  for (const PageRange& r : ranges_) n += r.pages();
  return n;
}

std::vector<std::vector<PageRange>> SplitIntoChunks(const std::vector<PageRange>& ranges, uint64_t max_pages) {
  std::vector<std::vector<PageRange>> chunks;
  std::vector<PageRange> cur;
  uint64_t cur_pages = 0;
  for (const PageRange& r : ranges) {
    if (r.empty()) continue;
    if (max_pages == 0) {  // no limit: one chunk
      cur.push_back(r);
      continue;
    }
    uint64_t s = r.start;
    while (s < r.end) {
      // A partial last page counts as a page, so every piece makes progress.
      const uint64_t left = (r.end - s + kPageSize - 1) >> kPageShift;
      const uint64_t take = std::min(left, max_pages - cur_pages);
      const uint64_t piece_end = std::min(r.end, s + (take << kPageShift));
      cur.push_back({s, piece_end});
      cur_pages += take;
      s = piece_end;
      if (cur_pages == max_pages) {
        chunks.push_back(std::move(cur));
        cur.clear();
        cur_pages = 0;
      }
    }
  }
  if (!cur.empty()) chunks.push_back(std::move(cur));
  return chunks;
}

}  // namespace cf::pagemap
