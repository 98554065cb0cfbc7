// The page stream of one process: drain -> zero filter -> compress -> write,
// as a bounded tbb::parallel_pipeline inside an Arena.
//
//   cut      serial, in order   the next batch of up to kChunkPages pages of
//                               the scanned list (one readability per batch)
//   process  parallel           read it (process_vm_readv, or /proc/PID/mem
//                               for unreadable VMAs) into a pooled buffer,
//                               drop all-zero pages (and, incremental, those
//                               the parent holds; with a dedup table, those
//                               stored already in this dump), compress what is left,
//                               frame the chunk record (XXH3 checksum)
//   write    serial, in order   write the chunk record, append the batch's
//                               DATA/ZERO ranges to the PageMap
//
// With several pages files (a large process, see RunPagePipeline below) the
// write stage only places the chunk, in order (the next file, round robin,
// and the next offset in it; the PageMap as above), and a fourth stage,
// parallel, writes it there (pwritev): one inode lock per file, so K files
// take K writers at once, where writers of one file would queue on its lock.
//
// Memory is bounded: the pipeline runs with a fixed number of tokens (batches
// in flight), each bound to one buffer of a pool made up front and reused, so
// a dump of any size needs the same few MiB. Because the cut and write
// stages are in order, the image is exactly the one a serial loop would
// write: DATA ranges in address order, concatenated, are the chunks in file
// order; ZERO ranges are recorded; adjacent ranges of one kind merge
// (docs/image-format.md). The result does not depend on the number of jobs.
//
// Errors: the first error (in chunk order) is returned. Once a batch fails,
// the cut stage stops, batches in flight are dropped without being written,
// and the task group is cancelled; no chunk at or after a failed one reaches
// the file.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "memdrain/drain.h"
#include "pagemap/page_ranges.h"
#include "pagemap/parent_pages.h"
#include "sched/arena.h"
#include "sched/dedup.h"
#include "streams/codec.h"
#include "streams/image_file.h"

namespace cf::sched {

inline constexpr uint64_t kChunkPages = 512;  // 2 MiB of raw data per chunk
inline constexpr int kMaxTokens = 16;         // at most 16 batches in flight
// Each batch in flight owns a 2 MiB page buffer, and with a codec a second
// one for the compressed bytes: at most 32 MiB (64 MiB compressing).

// One scanned range of pages to dump, in address order.
struct PageSource {
  pagemap::PageRange range;
  bool readable;  // the VMA has PROT_READ (else read through /proc/PID/mem)
  // Not written since the parent image read it (write tracking), and the
  // parent has every page of it: recorded as PARENT (or ZERO where the
  // parent had zeros) without being read.
  bool from_parent = false;
};

struct PagePipelineOptions {
  streams::CodecSpec codec;
  uint64_t chunk_pages = kChunkPages;
  int tokens = 0;  // batches in flight; 0: 2 x jobs, at most kMaxTokens
  // Incremental dumps: hash every page with content into PageMap.hashes;
  // with |parent|, a page read whose hash equals the parent's at the same
  // address is recorded as PARENT instead of stored.
  bool hash_pages = false;
  const pagemap::ParentPages* parent = nullptr;
  // The target runs while it is read (pre-dump): a batch that cannot be read
  // is read page by page, and pages gone by then are left out of the
  // pagemap (the next increment reads them, if they are back).
  bool skip_vanished = false;
  // Deduplication within the dump (sched/dedup.h): a page read whose bytes
  // equal a page stored as DATA in this dump (this process |pid| or another)
  // is recorded as DUP, referring to it. Only while the whole tree stays
  // frozen: the table reads the earlier page again to compare.
  DedupTable* dedup = nullptr;
  int32_t pid = 0;
};

// What the pipeline did. Stage times are thread time summed over all batches
// (with several jobs they add up to more than the wall time).
struct PagePipelineStats {
  uint64_t drain_ns = 0;     // reading pages and dropping zero pages
  uint64_t compress_ns = 0;  // compressing
  uint64_t write_ns = 0;     // framing (checksums) and writing chunk records
  uint64_t wall_ns = 0;      // the whole pipeline, start to end
  uint64_t batches = 0;      // batches cut (also those dropped after an error)
  uint64_t chunks = 0;       // chunk records written
  uint64_t pages_zero = 0;
  uint64_t pages_written = 0;
  uint64_t bytes_raw = 0;      // page bytes in the chunks written, uncompressed
  uint64_t bytes_written = 0;  // chunk records written, headers included
  uint64_t pages_parent_tracked = 0;   // from_parent sources recorded as PARENT
  uint64_t pages_parent_compared = 0;  // pages read whose hash matched the parent's
  uint64_t pages_vanished = 0;         // skip_vanished: pages left out
  uint64_t pages_dedup = 0;            // recorded as DUP (equal to a page stored in this dump)
  int tokens = 0;              // batches in flight allowed
};

// XXH3-128 of one page.
pagemap::PageHash HashPage(const uint8_t* page);

// The lookup of a parent image's pagemap (with its hashes, when it has them).
pagemap::ParentPages ParentPagesOf(const img::PageMap& pm);

// Cuts the sources, in order, into batches of at most |chunk_pages| pages
// that share one readability (so a batch reads with one method). The page
// pipeline cuts its batches with it; the vmsplice drain pins pages with the
// same cut, so that each batch the pipeline asks for is one pinned batch.
class BatchCutter {
 public:
  BatchCutter(std::span<const PageSource> sources, uint64_t chunk_pages);
  bool done() const { return idx_ >= sources_.size(); }
  // The next batch (call only while !done()): |ranges| are the pages to
  // read (at most chunk_pages), which share one readability. Sources taken
  // from a parent image (from_parent) ride along in the same batch, so that
  // a few written pages among many unchanged ones are still read in large
  // batches: |all|, when given, gets every source of the batch in order.
  void Next(std::vector<pagemap::PageRange>* ranges, bool* readable, std::vector<PageSource>* all = nullptr);

 private:
  void SkipEmpty();

  std::span<const PageSource> sources_;
  const uint64_t chunk_pages_;
  size_t idx_ = 0;
  uint64_t offset_ = 0;  // pages of sources_[idx_] already cut
};

// Dumps the pages of |sources| (sorted, not overlapping) through |reader|
// into |out|, appending ranges, chunks and data_pages to |pm|. Runs in
// |arena|; the calling thread takes part.
Status RunPagePipeline(Arena& arena, const memdrain::PageDrain& reader, std::span<const PageSource> sources,
                       const PagePipelineOptions& opts, streams::ImageWriter* out, img::PageMap* pm,
                       PagePipelineStats* stats);

// The same into several pages files: chunk j (in order) goes to file
// j % outs.size() (ChunkRef.file), written by positioned writes from the
// workers. |outs| must not be files of a stream. The pages of the image are
// the same as with one file; only where the chunks lie differs. On an error
// the files hold an unspecified part of the chunks: the caller removes them
// (a failed dump removes every file it wrote). The caller names the files
// after the first in pm->extra_pages_files.
Status RunPagePipeline(Arena& arena, const memdrain::PageDrain& reader, std::span<const PageSource> sources,
                       const PagePipelineOptions& opts, std::span<streams::ImageWriter* const> outs,
                       img::PageMap* pm, PagePipelineStats* stats);

// How many pages files (writers) a process with |pages| pages to read gets
// with |jobs| jobs: one unless it is large (kMultiWriterPages and more) and
// there are several jobs; at most kMaxWriters.
inline constexpr uint64_t kMultiWriterPages = 16384;  // 64 MiB
inline constexpr int kMaxWriters = 4;
int WritersFor(uint64_t pages, int jobs);

}  // namespace cf::sched
