#include "engine/page_dump.h"

#include <sys/mman.h>

#include <cstring>

#include "common/fault.h"
#include "common/log.h"
#include "common/timer.h"
#include "memdrain/page_reader.h"
#include "pagemap/scan.h"

namespace cf::engine {
namespace {

using pagemap::kPageSize;
using pagemap::PageRange;

struct ScanItem {
  PageRange range;
  bool readable;
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

void AddRange(img::PageMap* pm, uint64_t vaddr, uint64_t pages, img::PageRange::Kind kind) {
  if (pages == 0) return;
  if (pm->ranges_size() > 0) {
    img::PageRange* last = pm->mutable_ranges(pm->ranges_size() - 1);
    if (last->kind() == kind && last->vaddr() + last->nr_pages() * kPageSize == vaddr) {
      last->set_nr_pages(last->nr_pages() + pages);
      return;
    }
  }
  img::PageRange* r = pm->add_ranges();
  r->set_vaddr(vaddr);
  r->set_nr_pages(pages);
  r->set_kind(kind);
}

Result<std::vector<ScanItem>> ScanPages(pid_t pid, const img::Process& proc, bool fallback) {
  ASSIGN_OR_RETURN(pagemap::PageScanner scanner, pagemap::PageScanner::Open(pid, fallback));
  LOG_INFO("pagemap: process %d scanned with %s", pid,
           scanner.uses_pagemap_scan() ? "PAGEMAP_SCAN" : "/proc/PID/pagemap");
  std::vector<ScanItem> items;
  for (const img::Vma& v : proc.vmas()) {
    pagemap::ScanMode mode;
    switch (v.kind()) {
      case img::Vma::ANON_PRIVATE: mode = pagemap::ScanMode::kAnonPrivate; break;
      case img::Vma::FILE_PRIVATE: mode = pagemap::ScanMode::kFilePrivate; break;
      case img::Vma::ANON_SHARED: mode = pagemap::ScanMode::kShared; break;
      default: continue;  // shared file mappings, vDSO, vvar, vsyscall
    }
    ASSIGN_OR_RETURN(pagemap::RangeSet set, scanner.Scan(v.start(), v.end(), mode));
    const bool readable = v.prot() & PROT_READ;
    for (const PageRange& r : set) items.push_back({r, readable});
  }
  FAULT_POINT("scan");
  return items;
}

}  // namespace

Status DumpPages(pid_t pid, const img::Process& proc, const PageDumpOptions& opts,
                 streams::ImageWriter* pages, img::PageMap* pm, DumpCounters* stats) {
  std::vector<ScanItem> items;
  {
    ScopedTimer t(&stats->scan_ns);
    ASSIGN_OR_RETURN(items, ScanPages(pid, proc, opts.force_pagemap_fallback));
  }
  uint64_t total_pages = 0;
  for (const auto& it : items) total_pages += it.range.pages();
  stats->pages_scanned += (total_pages);

  ASSIGN_OR_RETURN(memdrain::PageReader reader, memdrain::PageReader::Open(pid));
  std::vector<uint8_t> buf(kChunkPages * kPageSize);
  std::vector<uint8_t> stored;
  std::vector<PageRange> batch;
  pm->set_pid(pid);

  // Walk the items in order, cutting batches of at most kChunkPages pages
  // that share one readability (so a batch reads with one method).
  size_t idx = 0;
  uint64_t offset_in_item = 0;
  while (idx < items.size()) {
    batch.clear();
    uint64_t batch_pages = 0;
    const bool readable = items[idx].readable;
    while (idx < items.size() && batch_pages < kChunkPages && items[idx].readable == readable) {
      const PageRange& r = items[idx].range;
      const uint64_t left = r.pages() - offset_in_item;
      const uint64_t take = std::min(left, kChunkPages - batch_pages);
      const uint64_t start = r.start + offset_in_item * kPageSize;
      batch.push_back({start, start + take * kPageSize});
      batch_pages += take;
      offset_in_item += take;
      if (offset_in_item == r.pages()) {
        ++idx;
        offset_in_item = 0;
      }
    }
    {
      ScopedTimer t(&stats->drain_ns);
      RETURN_IF_ERROR(reader.Read(batch, buf.data(), readable));
    }
    // Drop zero pages, compacting the others to the front of the buffer.
    uint64_t kept = 0;
    uint64_t zero = 0;
    const uint8_t* src = buf.data();
    for (const PageRange& r : batch) {
      for (uint64_t a = r.start; a < r.end; a += kPageSize, src += kPageSize) {
        if (PageIsZero(src)) {
          AddRange(pm, a, 1, img::PageRange::ZERO);
          ++zero;
          continue;
        }
        uint8_t* dst = buf.data() + kept * kPageSize;
        if (dst != src) memcpy(dst, src, kPageSize);
        AddRange(pm, a, 1, img::PageRange::DATA);
        ++kept;
      }
    }
    stats->pages_zero += (zero);
    if (kept == 0) continue;
    std::span<const uint8_t> raw(buf.data(), kept * kPageSize);
    streams::Codec codec = streams::Codec::kNone;
    std::span<const uint8_t> payload = raw;
    if (opts.codec.codec != streams::Codec::kNone) {
      ScopedTimer t(&stats->compress_ns);
      ASSIGN_OR_RETURN(codec, streams::Compress(opts.codec, raw, &stored));
      payload = stored;
    }
    img::ChunkRef* c = pm->add_chunks();
    c->set_file_offset(pages->offset());
    c->set_nr_pages(kept);
    c->set_stored_size(payload.size());
    {
      ScopedTimer t(&stats->write_ns);
      RETURN_IF_ERROR(pages->WriteChunk(codec, raw.size(), payload));
    }
    pm->set_data_pages(pm->data_pages() + kept);
    stats->pages_written += (kept);
    stats->bytes_raw += (raw.size());
    stats->bytes_written += (payload.size() + sizeof(streams::RecordHeader) +
                             sizeof(streams::ChunkHeader));
  }
  LOG_INFO("memdrain: process %d: %lu pages scanned, %lu zero, %lu written", pid, total_pages,
           stats->pages_zero, pm->data_pages());
  return OkStatus();
}

}  // namespace cf::engine
