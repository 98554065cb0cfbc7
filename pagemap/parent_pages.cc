#include "pagemap/parent_pages.h"

#include <algorithm>

namespace cf::pagemap {

void ParentPages::Add(uint64_t start, uint64_t pages, bool zero) {
  if (pages == 0) return;
  const uint64_t end = start + pages * kPageSize;
  if (!ranges_.empty()) {
    Range& last = ranges_.back();
    // Adjacent content ranges merge (their hashes follow each other);
    // zero ranges too.
    if (last.end == start && last.zero == zero) {
      last.end = end;
      if (!zero) content_pages_ += pages;
      return;
    }
  }
  ranges_.push_back({start, end, zero, zero ? 0 : content_pages_});
  if (!zero) content_pages_ += pages;
}

void ParentPages::AddZero(uint64_t start, uint64_t pages) { Add(start, pages, true); }

void ParentPages::AddContent(uint64_t start, uint64_t pages) { Add(start, pages, false); }

std::vector<ParentPages::Range>::const_iterator ParentPages::After(uint64_t addr) const {
  return std::upper_bound(ranges_.begin(), ranges_.end(), addr,
                          [](uint64_t a, const Range& r) { return a < r.end; });
}

ParentPages::Page ParentPages::Find(uint64_t addr) const {
  auto it = After(addr);
  if (it == ranges_.end() || it->start > addr) return {};
  if (it->zero) return {Kind::kZero, {}};
  Page p{Kind::kContent, {}};
  const uint64_t i = it->first_hash + ((addr - it->start) >> kPageShift);
  if (has_hashes()) p.hash = hashes_[i];
  return p;
}

void ParentPages::RunsIn(uint64_t start, uint64_t end, std::vector<Run>* out) const {
  out->clear();
  uint64_t at = start;
  for (auto it = After(start); it != ranges_.end() && it->start < end && at < end; ++it) {
    if (it->start > at) out->push_back({at, it->start, Kind::kAbsent, nullptr});
    const uint64_t s = std::max(it->start, at);
    const uint64_t e = std::min(it->end, end);
    const PageHash* h = nullptr;
    if (!it->zero && has_hashes()) h = hashes_.data() + it->first_hash + ((s - it->start) >> kPageShift);
    out->push_back({s, e, it->zero ? Kind::kZero : Kind::kContent, h});
    at = e;
  }
  if (at < end) out->push_back({at, end, Kind::kAbsent, nullptr});
}

RangeSet ParentPages::CoveredIn(uint64_t start, uint64_t end) const {
  RangeSet out;
  for (auto it = After(start); it != ranges_.end() && it->start < end; ++it) {
    out.Append({std::max(it->start, start), std::min(it->end, end)});
  }
  return out;
}

bool ParentPages::Covers(uint64_t start, uint64_t end) const {
  const RangeSet c = CoveredIn(start, end);
  return c.size() == 1 && c.ranges()[0] == PageRange{start, end};
}

}  // namespace cf::pagemap
