#include "sched/page_pipeline.h"

#include <oneapi/tbb/parallel_pipeline.h>
#include <oneapi/tbb/task_group.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include <xxhash.h>

#include "common/log.h"
#include "common/timer.h"

namespace cf::sched {
namespace {

using pagemap::kPageSize;
using pagemap::PageRange;

constexpr uint64_t kMaxChunkPages = 1 << 16;  // 256 MiB: far below the codecs' limits

// A run of pages of one kind inside a batch, in address order.
struct Run {
  uint64_t vaddr;
  uint64_t pages;
  img::PageRange::Kind kind;
  DedupTable::Ref ref{};  // DUP: where the first page's bytes are stored
};

// oneTBB runs the stages of one batch one after another, and the calls of a
// serial stage one after another, on whichever workers are free; it orders
// them inside its own library, out of ThreadSanitizer's sight (tsan.sh).
// A release at the end of each step and an acquire at the start of the next
// make that order visible to it; one uncontended atomic a step, otherwise
// free.
class Handoff {
 public:
  void Begin() const { (void)seq_.load(std::memory_order_acquire); }
  void End() { seq_.fetch_add(1, std::memory_order_release); }

 private:
  std::atomic<uint64_t> seq_{0};
};

// One call of a serial stage: after the previous call, as oneTBB runs them.
class Turn {
 public:
  explicit Turn(Handoff& h) : h_(h) { h_.Begin(); }
  ~Turn() { h_.End(); }
  Turn(const Turn&) = delete;
  Turn& operator=(const Turn&) = delete;

 private:
  Handoff& h_;
};

// One batch in flight with the buffers it owns. Slots are made on first need
// (at most one per token) and reused for every later batch: after the first
// few chunks, the pipeline allocates nothing.
struct Slot {
  Handoff handoff;  // from one stage of this batch to the next
  // Set by the cut stage.
  uint64_t index = 0;
  bool readable = true;
  std::vector<PageRange> ranges;   // the pages to read
  std::vector<PageSource> all;     // every source of the batch, from_parent ones too
  // Set by the process stage.
  std::unique_ptr<uint8_t[]> raw;     // chunk_pages pages; the kept ones compacted to the front
  std::unique_ptr<uint8_t[]> stored;  // compressed bytes (only with a codec)
  size_t stored_cap = 0;
  size_t stored_size = 0;  // 0: the chunk is stored raw
  streams::ChunkFrame frame;  // headers and checksum of the chunk record
  std::vector<Run> runs;
  std::vector<pagemap::PageHash> hashes;  // of the DATA and PARENT pages, in order
  std::vector<pagemap::ParentPages::Run> parent_runs;  // scratch of TakeFromParent
  uint64_t kept = 0;
  uint64_t zero = 0;
  uint64_t parent_tracked = 0;
  uint64_t parent_compared = 0;
  uint64_t vanished = 0;
  uint64_t dup = 0;  // pages recorded as DUP
  std::unique_ptr<DedupTable::Cache> dedup_cache;  // dedup: stored pages read again
  uint64_t drain_ns = 0;
  uint64_t compress_ns = 0;
  uint64_t frame_ns = 0;
  bool ok = false;
  // Set by the write stage with several files: where the chunk goes.
  streams::ImageWriter* put_to = nullptr;
  uint64_t put_at = 0;

  // What the chunk record stores, and with which codec.
  std::span<const uint8_t> payload() const {
    return stored_size > 0 ? std::span<const uint8_t>(stored.get(), stored_size)
                           : std::span<const uint8_t>(raw.get(), kept * kPageSize);
  }
  streams::Codec codec(const streams::CodecSpec& spec) const {
    return stored_size > 0 ? spec.codec : streams::Codec::kNone;
  }
};

class SlotPool {
 public:
  SlotPool(size_t max_slots, uint64_t chunk_pages, size_t stored_cap)
      : max_slots_(max_slots), chunk_pages_(chunk_pages), stored_cap_(stored_cap) {}
  // After the pipeline: every slot's last stage (a batch dropped by a
  // cancelled pipeline included) comes before its buffers are freed here.
  ~SlotPool() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : slots_) s->handoff.Begin();
  }

  // Never fails while at most |max_slots| slots are out: the pipeline's token
  // count guarantees it.
  Slot* Acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      Slot* s = free_.back();
      free_.pop_back();
      return s;
    }
    if (slots_.size() >= max_slots_) return nullptr;
    auto s = std::make_unique<Slot>();
    s->raw = std::make_unique_for_overwrite<uint8_t[]>(chunk_pages_ * kPageSize);
    if (stored_cap_ > 0) {
      s->stored = std::make_unique_for_overwrite<uint8_t[]>(stored_cap_);
      s->stored_cap = stored_cap_;
    }
    s->ranges.reserve(64);
    s->all.reserve(64);
    s->runs.reserve(64);
    s->hashes.reserve(chunk_pages_);
    slots_.push_back(std::move(s));
    return slots_.back().get();
  }

  void Release(Slot* s) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(s);
  }

  size_t made() const { return slots_.size(); }

 private:
  const size_t max_slots_;
  const uint64_t chunk_pages_;
  const size_t stored_cap_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<Slot*> free_;
};

bool PageIsZero(const uint8_t* p) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  uint64_t acc = 0;
  for (size_t i = 0; i < kPageSize / 8; i += 8) {
    acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
    if (acc) return false;
  }
  return true;
}

// Adjacent pages of one kind make one run; DUP pages only where their
// references are adjacent too (same process, next page).
void AddRun(std::vector<Run>* runs, uint64_t vaddr, uint64_t pages, img::PageRange::Kind kind,
            const DedupTable::Ref& ref = {}) {
  if (!runs->empty()) {
    Run& last = runs->back();
    if (last.kind == kind && last.vaddr + last.pages * kPageSize == vaddr &&
        (kind != img::PageRange::DUP ||
         (last.ref.pid == ref.pid && last.ref.vaddr + last.pages * kPageSize == ref.vaddr))) {
      last.pages += pages;
      return;
    }
  }
  runs->push_back({vaddr, pages, kind, ref});
}

void AddRun(std::vector<Run>* runs, uint64_t vaddr, img::PageRange::Kind kind, const DedupTable::Ref& ref = {}) {
  AddRun(runs, vaddr, 1, kind, ref);
}

// Appends a run to the pagemap, merging it with the last range when
// adjacent and of the same kind (DUP: with adjacent references).
void AddRange(img::PageMap* pm, const Run& run) {
  if (run.pages == 0) return;
  const bool dup = run.kind == img::PageRange::DUP;
  if (pm->ranges_size() > 0) {
    img::PageRange* last = pm->mutable_ranges(pm->ranges_size() - 1);
    if (last->kind() == run.kind && last->vaddr() + last->nr_pages() * kPageSize == run.vaddr &&
        (!dup || (last->ref_pid() == run.ref.pid &&
                  last->ref_vaddr() + last->nr_pages() * kPageSize == run.ref.vaddr))) {
      last->set_nr_pages(last->nr_pages() + run.pages);
      return;
    }
  }
  img::PageRange* r = pm->add_ranges();
  r->set_vaddr(run.vaddr);
  r->set_nr_pages(run.pages);
  r->set_kind(run.kind);
  if (dup) {
    r->set_ref_pid(run.ref.pid);
    r->set_ref_vaddr(run.ref.vaddr);
  }
}

// Pages the parent holds unchanged: PARENT runs (ZERO where the parent has
// zeros), their hashes taken from the parent. Nothing is read; the parent is
// looked up per run, not per page (an increment takes most of a large
// process from its parent).
Status TakeFromParent(const pagemap::ParentPages& parent, bool hash_pages, const PageRange& r, Slot* s) {
  std::vector<pagemap::ParentPages::Run>& runs = s->parent_runs;
  parent.RunsIn(r.start, r.end, &runs);
  for (const pagemap::ParentPages::Run& p : runs) {
    const uint64_t pages = (p.end - p.start) / kPageSize;
    switch (p.kind) {
      case pagemap::ParentPages::Kind::kAbsent:
        return Errorf("sched: page 0x%lx was taken from the parent image, which does not hold it", p.start);
      case pagemap::ParentPages::Kind::kZero:
        AddRun(&s->runs, p.start, pages, img::PageRange::ZERO);
        s->zero += pages;
        break;
      case pagemap::ParentPages::Kind::kContent:
        AddRun(&s->runs, p.start, pages, img::PageRange::PARENT);
        if (hash_pages) {
          // A parent without hashes gives zero hashes (as Find does).
          if (p.hashes != nullptr) {
            s->hashes.insert(s->hashes.end(), p.hashes, p.hashes + pages);
          } else {
            s->hashes.resize(s->hashes.size() + pages);
          }
        }
        s->parent_tracked += pages;
        break;
    }
  }
  return OkStatus();
}

// Reads the batch one page at a time; |gone| marks the pages that failed.
Status ReadPageByPage(const memdrain::PageDrain& reader, Slot* s, std::vector<bool>* gone) {
  uint8_t* out = s->raw.get();
  for (const PageRange& r : s->ranges) {
    for (uint64_t a = r.start; a < r.end; a += kPageSize, out += kPageSize) {
      const PageRange one{a, a + kPageSize};
      gone->push_back(!reader.Read({&one, 1}, out, false).ok());
    }
  }
  return OkStatus();
}

// The process stage: drain, drop zero pages (compacting the others to the
// front of the buffer) and, in an incremental dump, pages whose hash is the
// parent's; compress.
Status ProcessBatch(const memdrain::PageDrain& reader, const PagePipelineOptions& opts, uint32_t record_flags,
                    Slot* s) {
  const uint64_t t0 = MonotonicNs();
  s->runs.clear();
  s->hashes.clear();
  s->kept = 0;
  s->zero = 0;
  s->parent_tracked = 0;
  s->parent_compared = 0;
  s->vanished = 0;
  s->dup = 0;
  s->stored_size = 0;
  s->compress_ns = 0;
  s->frame_ns = 0;
  std::vector<bool> gone;  // skip_vanished: pages that could not be read
  if (!s->ranges.empty()) {
    Status rs = reader.Read(s->ranges, s->raw.get(), s->readable);
    if (!rs.ok() && opts.skip_vanished) {
      LOG_DEBUG("sched: %s: reading the batch page by page", rs.ToString().c_str());
      rs = ReadPageByPage(reader, s, &gone);
    }
    RETURN_IF_ERROR(rs);
  }
  const bool compare = opts.parent != nullptr && opts.parent->has_hashes();
  if (opts.dedup != nullptr && !s->dedup_cache) s->dedup_cache = std::make_unique<DedupTable::Cache>();
  uint8_t* const buf = s->raw.get();
  const uint8_t* src = buf;
  size_t page = 0;
  for (const PageSource& source : s->all) {
    const PageRange& r = source.range;
    if (source.from_parent) {
      if (opts.parent == nullptr) return Error("sched: pages taken from a parent image, but there is none");
      RETURN_IF_ERROR(TakeFromParent(*opts.parent, opts.hash_pages, r, s));
      continue;
    }
    for (uint64_t a = r.start; a < r.end; a += kPageSize, src += kPageSize, ++page) {
      if (!gone.empty() && gone[page]) {
        ++s->vanished;
        continue;
      }
      if (PageIsZero(src)) {
        AddRun(&s->runs, a, img::PageRange::ZERO);
        ++s->zero;
        continue;
      }
      const bool full = opts.hash_pages || compare;
      pagemap::PageHash h;
      if (full) {
        h = HashPage(src);
        s->hashes.push_back(h);
        if (compare) {
          const pagemap::ParentPages::Page p = opts.parent->Find(a);
          if (p.kind == pagemap::ParentPages::Kind::kContent && p.hash == h) {
            AddRun(&s->runs, a, img::PageRange::PARENT);
            ++s->parent_compared;
            continue;
          }
        }
      }
      // Stored already in this dump (verified byte for byte), or entered
      // now as the page stored below. Without the full hash, a cheap key of
      // part of the page will do (sched/dedup.h).
      if (opts.dedup != nullptr) {
        const pagemap::PageHash key = opts.hash_pages ? h : DedupTable::SampleKey(src);
        if (auto ref = opts.dedup->Match(key, src, {opts.pid, a}, s->dedup_cache.get(), !opts.hash_pages)) {
          AddRun(&s->runs, a, img::PageRange::DUP, *ref);
          ++s->dup;
          continue;
        }
      }
      uint8_t* dst = buf + s->kept * kPageSize;
      if (dst != src) memcpy(dst, src, kPageSize);
      AddRun(&s->runs, a, img::PageRange::DATA);
      ++s->kept;
    }
  }
  const uint64_t t1 = MonotonicNs();
  s->drain_ns = t1 - t0;
  const streams::CodecSpec& codec = opts.codec;
  if (s->kept > 0 && codec.codec != streams::Codec::kNone) {
    ASSIGN_OR_RETURN(s->stored_size, streams::CompressInto(codec, {buf, s->kept * kPageSize},
                                                           {s->stored.get(), s->stored_cap}));
    s->compress_ns = MonotonicNs() - t1;
  }
  // Framing (the record's checksum) is done here too, so the write stage
  // only writes; its time counts as writing.
  if (s->kept > 0) {
    const uint64_t t2 = MonotonicNs();
    s->frame = streams::FrameChunk(s->codec(codec), s->kept * kPageSize, s->payload(), record_flags);
    s->frame_ns = MonotonicNs() - t2;
  }
  return OkStatus();
}

// The first error in batch order; once set, the cut stage stops.
class FirstError {
 public:
  explicit FirstError(tbb::task_group_context* ctx) : ctx_(ctx) {}

  void Record(uint64_t index, const Status& s) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++count_;
      if (index < index_) {
        if (!status_.ok()) LOG_DEBUG("sched: %s", status_.ToString().c_str());
        index_ = index;
        status_ = s;
      } else {
        LOG_DEBUG("sched: %s", s.ToString().c_str());
      }
    }
    failed_.store(true, std::memory_order_relaxed);
    // Batches in flight need not finish: the dump fails anyway.
    ctx_->cancel_group_execution();
  }

  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  Status status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }
  int count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

 private:
  tbb::task_group_context* ctx_;
  std::atomic<bool> failed_{false};
  mutable std::mutex mu_;
  Status status_;
  uint64_t index_ = std::numeric_limits<uint64_t>::max();
  int count_ = 0;
};

}  // namespace

pagemap::PageHash HashPage(const uint8_t* page) {
  const XXH128_hash_t h = XXH3_128bits(page, kPageSize);
  return {h.low64, h.high64};
}

pagemap::ParentPages ParentPagesOf(const img::PageMap& pm) {
  pagemap::ParentPages out;
  for (const img::PageRange& r : pm.ranges()) {
    // INHERITED pages are the parent process's (and have no hashes here):
    // an increment reads them again unless it finds them shared again.
    // DUP pages are content with a hash like DATA (their bytes are stored
    // at the reference; restore and merge resolve a PARENT page through it).
    if (r.kind() == img::PageRange::ZERO) {
      out.AddZero(r.vaddr(), r.nr_pages());
    } else if (r.kind() != img::PageRange::INHERITED) {
      out.AddContent(r.vaddr(), r.nr_pages());
    }
  }
  const std::string& raw = pm.hashes();
  if (!raw.empty() && raw.size() % sizeof(pagemap::PageHash) == 0) {
    std::vector<pagemap::PageHash> hashes(raw.size() / sizeof(pagemap::PageHash));
    memcpy(hashes.data(), raw.data(), raw.size());
    out.SetHashes(std::move(hashes));
  }
  return out;
}

BatchCutter::BatchCutter(std::span<const PageSource> sources, uint64_t chunk_pages)
    : sources_(sources), chunk_pages_(chunk_pages) {
  SkipEmpty();
}

void BatchCutter::Next(std::vector<PageRange>* ranges, bool* readable, std::vector<PageSource>* all) {
  ranges->clear();
  if (all) all->clear();
  *readable = sources_[idx_].readable;
  // Pages taken from the parent cost no buffer; a cap keeps batches small
  // enough to spread over the workers.
  const uint64_t parent_cap = 64 * chunk_pages_;
  uint64_t pages = 0;
  uint64_t parent_pages = 0;
  while (!done() && pages < chunk_pages_ && parent_pages < parent_cap && sources_[idx_].readable == *readable) {
    const PageSource& src = sources_[idx_];
    const PageRange& r = src.range;
    const uint64_t room = src.from_parent ? parent_cap - parent_pages : chunk_pages_ - pages;
    const uint64_t take = std::min(r.pages() - offset_, room);
    const uint64_t start = r.start + offset_ * kPageSize;
    const PageRange piece{start, start + take * kPageSize};
    if (src.from_parent) {
      parent_pages += take;
    } else {
      ranges->push_back(piece);
      pages += take;
    }
    if (all) all->push_back({piece, src.readable, src.from_parent});
    offset_ += take;
    if (offset_ == r.pages()) {
      ++idx_;
      offset_ = 0;
      SkipEmpty();
    }
  }
}

void BatchCutter::SkipEmpty() {
  while (idx_ < sources_.size() && sources_[idx_].range.empty()) ++idx_;
}

int WritersFor(uint64_t pages, int jobs) {
  if (pages < kMultiWriterPages || jobs < 2) return 1;
  return std::min(jobs, kMaxWriters);
}

Status RunPagePipeline(Arena& arena, const memdrain::PageDrain& reader, std::span<const PageSource> sources,
                       const PagePipelineOptions& opts, streams::ImageWriter* out, img::PageMap* pm,
                       PagePipelineStats* stats) {
  streams::ImageWriter* const outs[1] = {out};
  return RunPagePipeline(arena, reader, sources, opts, outs, pm, stats);
}

Status RunPagePipeline(Arena& arena, const memdrain::PageDrain& reader, std::span<const PageSource> sources,
                       const PagePipelineOptions& opts, std::span<streams::ImageWriter* const> outs,
                       img::PageMap* pm, PagePipelineStats* stats) {
  if (outs.empty()) return Error("sched: no pages file to write");
  const bool multi = outs.size() > 1;
  for (streams::ImageWriter* o : outs) {
    if (multi && o->in_stream()) return Error("sched: several pages files cannot go into a stream");
  }
  streams::ImageWriter* const out = outs[0];
  if (opts.chunk_pages == 0 || opts.chunk_pages > kMaxChunkPages) {
    return Errorf("sched: bad chunk size of %lu pages", opts.chunk_pages);
  }
  const int tokens = opts.tokens > 0 ? opts.tokens : std::min(2 * arena.jobs(), kMaxTokens);
  stats->tokens = tokens;
  const uint64_t raw_bytes = opts.chunk_pages * kPageSize;
  const size_t stored_cap = streams::CompressBound(opts.codec, raw_bytes);
  if (opts.codec.codec != streams::Codec::kNone && stored_cap == 0) {
    return Errorf("sched: %s cannot compress chunks of %lu bytes", streams::CodecName(opts.codec.codec), raw_bytes);
  }

  if (opts.hash_pages) {
    // A hash for every page with content: room for all of them at once
    // (an increment's hashes of a large process run to megabytes).
    uint64_t pages = 0;
    for (const PageSource& src : sources) pages += src.range.pages();
    pm->mutable_hashes()->reserve(pm->hashes().size() + pages * sizeof(pagemap::PageHash));
  }
  SlotPool pool(static_cast<size_t>(tokens), opts.chunk_pages, stored_cap);
  BatchCutter cutter(sources, opts.chunk_pages);
  tbb::task_group_context ctx;
  FirstError error(&ctx);
  uint64_t next_index = 0;  // only touched by the (serial) cut stage
  uint64_t placed = 0;      // chunks placed, only touched by the (serial) write stage
  std::atomic<uint64_t> put_ns{0};

  Handoff cut_turn, write_turn;  // from one call of a serial stage to the next
  auto cut = [&](tbb::flow_control& fc) -> Slot* {
    const Turn turn(cut_turn);
    if (cutter.done() || error.failed()) {
      fc.stop();
      return nullptr;
    }
    Slot* s = pool.Acquire();
    if (s == nullptr) {  // cannot happen: one slot per token
      error.Record(next_index, Error("sched: page buffer pool exhausted"));
      fc.stop();
      return nullptr;
    }
    s->index = next_index++;
    s->ok = false;
    cutter.Next(&s->ranges, &s->readable, &s->all);
    s->handoff.End();
    return s;
  };

  auto process = [&](Slot* s) -> Slot* {
    s->handoff.Begin();
    if (!error.failed()) {  // else dropped below
      Status st = ProcessBatch(reader, opts, out->record_flags(), s);
      if (st.ok()) {
        s->ok = true;
      } else {
        error.Record(s->index, st);
      }
    }
    s->handoff.End();
    return s;
  };

  // Returns whether the put stage still has the chunk to write (several
  // files); else the slot is released here.
  auto write = [&](Slot* s) -> bool {
    s->handoff.Begin();
    const Turn turn(write_turn);
    // A batch after a failed one is never written, so the file holds a
    // prefix of the chunks at most (with one file).
    if (s->ok && !error.failed()) {
      for (const Run& r : s->runs) AddRange(pm, r);
      if (opts.hash_pages && !s->hashes.empty()) {
        pm->mutable_hashes()->append(reinterpret_cast<const char*>(s->hashes.data()),
                                     s->hashes.size() * sizeof(pagemap::PageHash));
      }
      stats->pages_parent_tracked += s->parent_tracked;
      stats->pages_parent_compared += s->parent_compared;
      stats->pages_vanished += s->vanished;
      stats->pages_dedup += s->dup;
      stats->drain_ns += s->drain_ns;
      stats->compress_ns += s->compress_ns;
      stats->write_ns += s->frame_ns;
      stats->pages_zero += s->zero;
      if (s->kept > 0) {
        const uint64_t raw_size = s->kept * kPageSize;
        const std::span<const uint8_t> payload = s->payload();
        img::ChunkRef* c = pm->add_chunks();
        c->set_file_offset(out->offset());
        c->set_nr_pages(s->kept);
        c->set_stored_size(payload.size());
        Status st;
        if (multi) {
          // Placed here, in order; written by the put stage.
          const uint32_t file = static_cast<uint32_t>(placed++ % outs.size());
          s->put_to = outs[file];
          c->set_file(file);
          const uint64_t bytes = payload.size() + sizeof(streams::RecordHeader) + sizeof(streams::ChunkHeader);
          Result<uint64_t> at = s->put_to->Reserve(bytes);
          if (at.ok()) {
            s->put_at = *at;
            c->set_file_offset(*at);
          } else {
            st = at.status();
          }
        } else {
          ScopedTimer t(&stats->write_ns);
          st = out->WriteChunk(s->frame, payload);
        }
        if (st.ok()) {
          pm->set_data_pages(pm->data_pages() + s->kept);
          stats->chunks++;
          stats->pages_written += s->kept;
          stats->bytes_raw += raw_size;
          stats->bytes_written += payload.size() + sizeof(streams::RecordHeader) + sizeof(streams::ChunkHeader);
        } else {
          error.Record(s->index, st);
        }
      }
    }
    if (s->put_to != nullptr) {
      s->handoff.End();
      return true;
    }
    pool.Release(s);
    return false;
  };

  // Several files: the chunk placed by the write stage is written, in
  // parallel with other chunks (of other files, mostly).
  auto put = [&](Slot* s) {
    if (s == nullptr) return;
    s->handoff.Begin();
    if (!error.failed()) {
      const uint64_t t0 = MonotonicNs();
      const Status st = s->put_to->WriteChunkAt(s->put_at, s->frame, s->payload());
      put_ns.fetch_add(MonotonicNs() - t0, std::memory_order_relaxed);
      if (!st.ok()) error.Record(s->index, st);
    }
    s->put_to = nullptr;
    pool.Release(s);
  };

  const uint64_t start = MonotonicNs();
  arena.Execute([&] {
    auto head = tbb::make_filter<void, Slot*>(tbb::filter_mode::serial_in_order, cut) &
                tbb::make_filter<Slot*, Slot*>(tbb::filter_mode::parallel, process);
    // The filters are made before the pipeline's first call (cut_turn).
    if (multi) {
      auto place = [&](Slot* s) -> Slot* {
        s->handoff.Begin();
        return write(s) ? s : nullptr;
      };
      auto chain = head & tbb::make_filter<Slot*, Slot*>(tbb::filter_mode::serial_in_order, place) &
                   tbb::make_filter<Slot*, void>(tbb::filter_mode::parallel, put);
      cut_turn.End();
      tbb::parallel_pipeline(static_cast<size_t>(tokens), chain, ctx);
    } else {
      auto write_only = [&](Slot* s) {
        s->handoff.Begin();
        write(s);
      };
      auto chain = head & tbb::make_filter<Slot*, void>(tbb::filter_mode::serial_in_order, write_only);
      cut_turn.End();
      tbb::parallel_pipeline(static_cast<size_t>(tokens), chain, ctx);
    }
  });
  // The serial stages' last calls (they ran on workers) come before what
  // follows here.
  cut_turn.Begin();
  write_turn.Begin();
  stats->wall_ns += MonotonicNs() - start;
  stats->write_ns += put_ns.load();
  stats->batches += next_index;
  LOG_DEBUG("sched: page pipeline: %lu batches, %lu chunks, %d tokens, %zu buffers, %d jobs, %zu files", next_index,
            stats->chunks, tokens, pool.made(), arena.jobs(), outs.size());
  if (error.failed()) {
    if (error.count() > 1) LOG_INFO("sched: %d batches of pages failed; the first error is reported", error.count());
    return error.status();
  }
  return OkStatus();
}

}  // namespace cf::sched
