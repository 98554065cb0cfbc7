#include "engine/page_dump.h"

#include <sys/mman.h>

#include <algorithm>
#include <optional>

#include "common/fault.h"
#include "common/log.h"
#include "common/timer.h"
#include "kinds/fork_cow.h"
#include "memdrain/page_reader.h"
#include "pagemap/scan.h"
#include "pagemap/uffd_track.h"

namespace cf::engine {
namespace {

using pagemap::PageRange;

// The pages of one tracked VMA: unwritten ones the parent holds come from
// it, the rest is read.
Status SplitTracked(pagemap::PageScanner& scanner, const img::Vma& v, pagemap::ScanMode mode,
                    const pagemap::RangeSet& save, const TrackScan& track, bool readable,
                    std::vector<sched::PageSource>* items) {
  FAULT_POINT("track-scan");
  ASSIGN_OR_RETURN(pagemap::RangeSet written, scanner.ScanWritten(v.start(), v.end(), mode, track.rearm));
  const pagemap::RangeSet unwritten = save.Subtract(written);
  const pagemap::RangeSet from_parent = unwritten.Intersect(track.parent->CoveredIn(v.start(), v.end()));
  const pagemap::RangeSet read = save.Subtract(from_parent);
  // Both lists are sorted and disjoint: merge them in address order.
  auto a = from_parent.begin(), b = read.begin();
  while (a != from_parent.end() || b != read.end()) {
    if (b == read.end() || (a != from_parent.end() && a->start < b->start)) {
      items->push_back({*a++, readable, true});
    } else {
      items->push_back({*b++, readable, false});
    }
  }
  return OkStatus();
}

// Whether VMA |v| is tracked by |track|'s userfaultfd since the parent's
// scan: it was registered for async write-protect before this dump touched
// it, and registering it with our userfaultfd again succeeds (another one
// would make it fail: EBUSY).
Result<bool> TrackedSinceParent(pagemap::PageScanner& scanner, const img::Vma& v, const TrackScan& track) {
  if (track.uffd < 0 || !track.inherited || track.parent == nullptr) return false;
  ASSIGN_OR_RETURN(bool registered, scanner.WpAsyncRegistered(v.start(), v.end()));
  if (!registered) return false;
  return pagemap::RegisterForTracking(track.uffd, v.start(), v.end());
}

// How a VMA's pages are found in its process's pagemap, or none: shared
// anonymous memory and memfds are saved once per object (kinds/shmem.h), not
// per process; shared file mappings live in their files; vDSO, vvar,
// vsyscall come from the kernel.
std::optional<pagemap::ScanMode> ScanModeOf(const img::Vma& v) {
  switch (v.kind()) {
    case img::Vma::ANON_PRIVATE: return pagemap::ScanMode::kAnonPrivate;
    case img::Vma::FILE_PRIVATE: return pagemap::ScanMode::kFilePrivate;
    default: return std::nullopt;
  }
}

// Droppable memory (MAP_DROPPABLE, VmFlag "dp") may lose its pages at any
// time, and its program must cope: it comes back empty, as with CRIU.
bool Droppable(const img::Vma& v) { return (" " + v.vmflags() + " ").find(" dp ") != std::string::npos; }

// Calls fn(k, range) for each range of |set| clipped to each VMA k of
// [first, last], in address order. |set| lies within those VMAs' span.
template <typename Fn>
void SplitByVma(const img::Process& proc, int first, int last, const pagemap::RangeSet& set, Fn&& fn) {
  const std::vector<PageRange>& rs = set.ranges();
  size_t r = 0;
  for (int k = first; k <= last; ++k) {
    const img::Vma& w = proc.vmas(k);
    while (r < rs.size() && rs[r].end <= w.start()) ++r;
    for (size_t q = r; q < rs.size() && rs[q].start < w.end(); ++q) {
      fn(k, PageRange{std::max(rs[q].start, w.start()), std::min(rs[q].end, w.end())});
    }
  }
}

// A VMA smaps showed with no page present, swapped or hugetlb (when the
// dump read it: images of pre-dumps and older dumps may not say).
bool Unpopulated(const img::Vma& v) { return v.has_resident_kb() && v.resident_kb() == 0; }

void AddGuard(img::PageMap* pagemap, const PageRange& r) {
  img::PageRange* g = pagemap->add_guards();
  g->set_vaddr(r.start);
  g->set_nr_pages(r.pages());
}

Result<std::vector<sched::PageSource>> ScanPagesOf(pid_t pid, const img::Process& proc, bool fallback,
                                                   img::PageMap* pagemap, const TrackScan* track,
                                                   DumpCounters* stats) {
  ASSIGN_OR_RETURN(pagemap::PageScanner scanner, pagemap::PageScanner::Open(pid, fallback));
  LOG_INFO("pagemap: process %d scanned with %s", pid,
           scanner.uses_pagemap_scan() ? "PAGEMAP_SCAN" : "/proc/PID/pagemap");
  std::vector<sched::PageSource> items;
  const int n = proc.vmas_size();
  for (int i = 0; i < n; ++i) {
    const img::Vma& v = proc.vmas(i);
    const std::optional<pagemap::ScanMode> mode = ScanModeOf(v);
    if (!mode) continue;
    if (!scanner.uses_pagemap_scan() && Unpopulated(v)) {
      // Nothing present or swapped: no entry to read (only guards to look for).
      if (scanner.guards_by_ioctl()) {
        ASSIGN_OR_RETURN(pagemap::RangeSet guards, scanner.ScanGuards(v.start(), v.end()));
        for (const PageRange& r : guards) AddGuard(pagemap, r);
      }
      continue;
    }
    if ((track == nullptr || track->uffd < 0) && !Droppable(v)) {
      // Without write tracking, a run of VMAs scanned alike (next to each
      // other in the image, so no other mapping lies between them) is one
      // walk of the pagemap and one of its guards, split by VMA afterwards:
      // a process with 60,000 small mappings needs a few calls, not 120,000.
      // The fallback walks holes page by page: there a run has none.
      auto joins = [&](int k) {
        const img::Vma& w = proc.vmas(k);
        return ScanModeOf(w) == mode && !Droppable(w) &&
               (scanner.skips_holes() || (w.start() == proc.vmas(k - 1).end() && !Unpopulated(w)));
      };
      int last = i;
      while (last + 1 < n && joins(last + 1)) ++last;
      const uint64_t start = v.start(), end = proc.vmas(last).end();
      pagemap::RangeSet set, guards;
      RETURN_IF_ERROR(scanner.ScanWithGuards(start, end, *mode, &set, &guards));
      SplitByVma(proc, i, last, set,
                 [&](int k, const PageRange& r) { items.push_back({r, (proc.vmas(k).prot() & PROT_READ) != 0}); });
      if (track != nullptr && track->parent != nullptr) stats->pages_untracked += set.pages();
      SplitByVma(proc, i, last, guards, [&](int, const PageRange& r) { AddGuard(pagemap, r); });
      i = last;
      continue;
    }
    pagemap::RangeSet set, guards;
    if (!Droppable(v)) {
      RETURN_IF_ERROR(scanner.ScanWithGuards(v.start(), v.end(), *mode, &set, &guards));
    } else {
      ASSIGN_OR_RETURN(guards, scanner.ScanGuards(v.start(), v.end()));
    }
    const bool readable = v.prot() & PROT_READ;
    bool tracked = false;
    if (track != nullptr && scanner.uses_pagemap_scan()) {
      if (!track->tracked.empty()) {
        tracked = track->tracked.at(static_cast<size_t>(i)) != 0;
      } else {
        ASSIGN_OR_RETURN(tracked, TrackedSinceParent(scanner, v, *track));
      }
    }
    if (tracked) {
      RETURN_IF_ERROR(SplitTracked(scanner, v, *mode, set, *track, readable, &items));
    } else {
      for (const PageRange& r : set) items.push_back({r, readable});
      if (track != nullptr && track->parent != nullptr) stats->pages_untracked += set.pages();
      if (track != nullptr && track->uffd >= 0 && track->rearm && scanner.uses_pagemap_scan()) {
        // Tracked from now on, for the next increment: register and
        // write-protect what is there. A VMA userfaultfd refuses stays
        // untracked (read in full each time).
        ASSIGN_OR_RETURN(bool ok, pagemap::RegisterForTracking(track->uffd, v.start(), v.end()));
        if (ok) RETURN_IF_ERROR(scanner.ScanWritten(v.start(), v.end(), *mode, true).status());
      }
    }
    for (const PageRange& r : guards) AddGuard(pagemap, r);
  }
  FAULT_POINT("scan");
  return items;
}

// Calls fn(vma, range) for each part of a source of |sources| that lies in a
// VMA of |proc| for which want(vma) holds. Sources taken from a parent image
// (from_parent: unwritten since the parent's scan) count too: a page shared
// with the parent process is INHERITED even where the image chain holds it,
// so that restore hands it down by fork instead of copying it.
template <typename Want, typename Fn>
void ForSourcesIn(const img::Process& proc, std::span<const sched::PageSource> sources, Want&& want, Fn&& fn) {
  int k = 0;
  for (const sched::PageSource& src : sources) {
    while (k < proc.vmas_size() && proc.vmas(k).end() <= src.range.start) ++k;
    for (int j = k; j < proc.vmas_size() && proc.vmas(j).start() < src.range.end; ++j) {
      const img::Vma& v = proc.vmas(j);
      if (!want(v)) continue;
      fn(v, PageRange{std::max(src.range.start, v.start()), std::min(src.range.end, v.end())});
    }
  }
}

}  // namespace

std::vector<PageRange> ForkCopiedPages(const img::Process& proc, std::span<const sched::PageSource> sources) {
  std::vector<PageRange> out;
  ForSourcesIn(proc, sources, kinds::ForkInherits, [&](const img::Vma&, const PageRange& r) { out.push_back(r); });
  return out;
}

std::vector<PageRange> InheritablePages(const img::Process& child, const img::Process& parent,
                                        std::span<const sched::PageSource> sources) {
  auto alike = [&](const img::Vma& v) {
    auto it = std::lower_bound(parent.vmas().begin(), parent.vmas().end(), v.start(),
                               [](const img::Vma& p, uint64_t a) { return p.start() < a; });
    return it != parent.vmas().end() && kinds::SameAfterFork(v, *it);
  };
  std::vector<PageRange> out;
  ForSourcesIn(child, sources, alike, [&](const img::Vma&, const PageRange& r) { out.push_back(r); });
  return out;
}

void RemovePages(const pagemap::RangeSet& pages, std::vector<sched::PageSource>* sources) {
  if (pages.empty()) return;
  std::vector<sched::PageSource> kept;
  kept.reserve(sources->size());
  for (const sched::PageSource& src : *sources) {
    pagemap::RangeSet one;
    one.Append(src.range);
    for (const PageRange& r : one.Subtract(pages.Clip(src.range.start, src.range.end))) {
      kept.push_back({r, src.readable, src.from_parent});
    }
  }
  sources->swap(kept);
}

void AddInherited(const pagemap::RangeSet& pages, img::PageMap* pm) {
  if (pages.empty()) return;
  std::vector<img::PageRange> all(pm->ranges().begin(), pm->ranges().end());
  for (const PageRange& r : pages) {
    img::PageRange x;
    x.set_vaddr(r.start);
    x.set_nr_pages(r.pages());
    x.set_kind(img::PageRange::INHERITED);
    all.push_back(std::move(x));
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const img::PageRange& a, const img::PageRange& b) { return a.vaddr() < b.vaddr(); });
  pm->clear_ranges();
  for (img::PageRange& r : all) *pm->add_ranges() = std::move(r);
}

Status CheckTracked(pid_t pid, const img::Process& proc, bool fallback, TrackScan* track) {
  track->tracked.clear();
  if (track->uffd < 0 || !track->inherited || track->parent == nullptr) return OkStatus();
  ASSIGN_OR_RETURN(pagemap::PageScanner scanner, pagemap::PageScanner::Open(pid, fallback));
  if (!scanner.uses_pagemap_scan()) return OkStatus();
  std::vector<uint8_t> tracked(static_cast<size_t>(proc.vmas_size()), 0);
  for (int i = 0; i < proc.vmas_size(); ++i) {
    const img::Vma& v = proc.vmas(i);
    if (!ScanModeOf(v)) continue;
    ASSIGN_OR_RETURN(bool t, TrackedSinceParent(scanner, v, *track));
    tracked[static_cast<size_t>(i)] = t;
  }
  track->tracked = std::move(tracked);
  return OkStatus();
}

Result<std::vector<sched::PageSource>> ScanPages(pid_t pid, const img::Process& proc, const PageDumpOptions& opts,
                                                 DumpCounters* stats, img::PageMap* pagemap,
                                                 const TrackScan* track) {
  std::vector<sched::PageSource> items;
  {
    ScopedTimer t(&stats->scan_ns);
    pagemap->clear_guards();
    ASSIGN_OR_RETURN(items, ScanPagesOf(pid, proc, opts.force_pagemap_fallback, pagemap, track, stats));
  }
  for (const auto& it : items) stats->pages_scanned += it.range.pages();
  return items;
}

void AddPipelineStats(const sched::PagePipelineStats& ps, DumpCounters* stats) {
  stats->drain_ns += ps.drain_ns;
  stats->compress_ns += ps.compress_ns;
  stats->write_ns += ps.write_ns;
  stats->pages_ns += ps.wall_ns;
  stats->pages_zero += ps.pages_zero;
  stats->pages_written += ps.pages_written;
  stats->bytes_raw += ps.bytes_raw;
  stats->bytes_written += ps.bytes_written;
  stats->pages_parent_tracked += ps.pages_parent_tracked;
  stats->pages_parent_compared += ps.pages_parent_compared;
  stats->pages_vanished += ps.pages_vanished;
  stats->pages_dedup += ps.pages_dedup;
}

Status WritePages(pid_t pid, std::span<const sched::PageSource> items, const memdrain::PageDrain& reader,
                  const PageDumpOptions& opts, std::span<streams::ImageWriter* const> pages,
                  img::PageMap* pm, DumpCounters* stats) {
  uint64_t total_pages = 0;
  for (const auto& it : items) total_pages += it.range.pages();
  pm->set_pid(pid);
  std::optional<sched::Arena> own_arena;
  sched::Arena* arena = opts.arena;
  if (arena == nullptr) arena = &own_arena.emplace(opts.jobs);
  sched::PagePipelineOptions po;
  po.codec = opts.codec;
  po.chunk_pages = kChunkPages;
  po.hash_pages = opts.hash_pages;
  po.parent = opts.parent;
  po.skip_vanished = opts.skip_vanished;
  po.dedup = opts.dedup;
  po.pid = pid;
  sched::PagePipelineStats ps;
  Status st = sched::RunPagePipeline(*arena, reader, items, po, pages, pm, &ps);
  // Stage times are thread time summed over the pipeline's threads.
  AddPipelineStats(ps, stats);
  stats->jobs = arena->jobs();
  stats->compression = streams::CodecSpecName(opts.codec);
  RETURN_IF_ERROR(st);
  LOG_INFO("memdrain: process %d: %lu pages, %lu zero, %lu written in %lu chunks (%s, %.1f MB stored, %zu files), "
           "%d jobs, %.3f ms",
           pid, total_pages, ps.pages_zero, ps.pages_written, ps.chunks, stats->compression.c_str(),
           static_cast<double>(ps.bytes_written) / 1e6, pages.size(), arena->jobs(),
           static_cast<double>(ps.wall_ns) / 1e6);
  return OkStatus();
}

namespace {

uint64_t PipesFor(uint64_t bytes) {
  const uint64_t cap = memdrain::PipeCapacity();
  return (bytes + cap - 1) / cap;
}

uint64_t BatchBytes(const std::vector<PageRange>& ranges) {
  uint64_t b = 0;
  for (const auto& r : ranges) b += r.bytes();
  return b;
}

// A command for the parasite being put together: jobs (one pipe each) and
// the batches they belong to.
class PinCommand {
 public:
  PinCommand(memdrain::Parasite& parasite, memdrain::PinnedPages* out) : parasite_(parasite), out_(out) {}

  // Adds a readable batch, cut into pipe-sized jobs; sends the command first
  // when the batch would not fit in it.
  Status AddBatch(const std::vector<PageRange>& ranges) {
    std::vector<std::vector<PageRange>> jobs;
    const uint64_t cap = memdrain::PipeCapacity();
    uint64_t in_job = cap;
    for (PageRange r : ranges) {
      while (!r.empty()) {
        if (in_job == cap) {
          jobs.emplace_back();
          in_job = 0;
        }
        const uint64_t take = std::min(r.bytes(), cap - in_job);
        jobs.back().push_back({r.start, r.start + take});
        in_job += take;
        r.start += take;
      }
    }
    size_t iovs = 0;
    for (const auto& j : jobs) iovs += j.size();
    if (jobs_.size() + jobs.size() > memdrain::Parasite::kMaxJobs || iovs_ + iovs > memdrain::Parasite::kMaxIovs) {
      RETURN_IF_ERROR(Send());
    }
    batches_.push_back({ranges.front().start, BatchBytes(ranges), jobs.size()});
    for (auto& j : jobs) jobs_.push_back(std::move(j));
    iovs_ += iovs;
    return OkStatus();
  }

  Status Send() {
    if (jobs_.empty()) return OkStatus();
    ASSIGN_OR_RETURN(std::vector<UniqueFd> fds, parasite_.Fill(jobs_));
    size_t next = 0;
    for (const PendingBatch& b : batches_) {
      std::vector<UniqueFd> pipes;
      for (size_t i = 0; i < b.jobs; ++i) pipes.push_back(std::move(fds[next++]));
      out_->AddPipes(b.first, b.bytes, std::move(pipes));
    }
    jobs_.clear();
    batches_.clear();
    iovs_ = 0;
    return OkStatus();
  }

 private:
  struct PendingBatch {
    uint64_t first;
    uint64_t bytes;
    size_t jobs;
  };
  memdrain::Parasite& parasite_;
  memdrain::PinnedPages* out_;
  std::vector<std::vector<PageRange>> jobs_;
  std::vector<PendingBatch> batches_;
  size_t iovs_ = 0;
};

}  // namespace

uint64_t PipesNeeded(std::span<const sched::PageSource> sources) {
  sched::BatchCutter cut(sources, kChunkPages);
  std::vector<PageRange> ranges;
  bool readable = true;
  uint64_t pipes = 0;
  while (!cut.done()) {
    cut.Next(&ranges, &readable);
    if (readable) pipes += PipesFor(BatchBytes(ranges));
  }
  return pipes;
}

std::vector<std::vector<sched::PageSource>> SplitByPipes(std::span<const sched::PageSource> sources,
                                                         uint64_t max_pipes) {
  std::vector<std::vector<sched::PageSource>> windows(1);
  sched::BatchCutter cut(sources, kChunkPages);
  std::vector<PageRange> ranges;
  std::vector<sched::PageSource> all;
  bool readable = true;
  uint64_t pipes = 0;
  while (!cut.done()) {
    cut.Next(&ranges, &readable, &all);
    const uint64_t need = readable ? PipesFor(BatchBytes(ranges)) : 0;
    if (pipes > 0 && pipes + need > max_pipes) {
      windows.emplace_back();
      pipes = 0;
    }
    pipes += need;
    for (const sched::PageSource& src : all) windows.back().push_back(src);
  }
  return windows;
}

Status PinPages(pid_t pid, std::span<const sched::PageSource> sources, memdrain::Parasite& parasite,
                memdrain::PinnedPages* out, DumpCounters* stats) {
  ScopedTimer t(&stats->pin_ns);
  std::optional<memdrain::PageReader> reader;  // for unreadable VMAs only
  PinCommand cmd(parasite, out);
  sched::BatchCutter cut(sources, kChunkPages);
  std::vector<PageRange> ranges;
  bool readable = true;
  while (!cut.done()) {
    cut.Next(&ranges, &readable);
    if (ranges.empty()) continue;  // nothing to read: the parent image has these pages
    if (readable) {
      RETURN_IF_ERROR(cmd.AddBatch(ranges));
      continue;
    }
    if (!reader) {
      ASSIGN_OR_RETURN(memdrain::PageReader r, memdrain::PageReader::Open(pid));
      reader.emplace(std::move(r));
    }
    const uint64_t bytes = BatchBytes(ranges);
    auto copy = std::make_unique_for_overwrite<uint8_t[]>(bytes);
    RETURN_IF_ERROR(reader->Read(ranges, copy.get(), false));
    out->AddCopy(ranges.front().start, bytes, std::move(copy));
  }
  RETURN_IF_ERROR(cmd.Send());
  stats->pages_pinned += out->pages();
  LOG_INFO("memdrain: process %d: %lu pages pinned in %zu pipes", pid, out->pages(), out->pipes());
  return OkStatus();
}

}  // namespace cf::engine
