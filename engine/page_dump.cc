#include "engine/page_dump.h"

#include <sys/mman.h>

#include <optional>

#include "common/fault.h"
#include "common/log.h"
#include "common/timer.h"
#include "memdrain/page_reader.h"
#include "pagemap/scan.h"

namespace cf::engine {
namespace {

using pagemap::PageRange;

Result<std::vector<sched::PageSource>> ScanPages(pid_t pid, const img::Process& proc, bool fallback) {
  ASSIGN_OR_RETURN(pagemap::PageScanner scanner, pagemap::PageScanner::Open(pid, fallback));
  LOG_INFO("pagemap: process %d scanned with %s", pid,
           scanner.uses_pagemap_scan() ? "PAGEMAP_SCAN" : "/proc/PID/pagemap");
  std::vector<sched::PageSource> items;
  for (const img::Vma& v : proc.vmas()) {
    pagemap::ScanMode mode;
    switch (v.kind()) {
      case img::Vma::ANON_PRIVATE: mode = pagemap::ScanMode::kAnonPrivate; break;
      case img::Vma::FILE_PRIVATE: mode = pagemap::ScanMode::kFilePrivate; break;
      // Shared anonymous memory and memfds are saved once per object
      // (engine/shmem.h), not per process; shared file mappings live in
      // their files; vDSO, vvar, vsyscall come from the kernel.
      default: continue;
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
  std::vector<sched::PageSource> items;
  {
    ScopedTimer t(&stats->scan_ns);
    ASSIGN_OR_RETURN(items, ScanPages(pid, proc, opts.force_pagemap_fallback));
  }
  uint64_t total_pages = 0;
  for (const auto& it : items) total_pages += it.range.pages();
  stats->pages_scanned += (total_pages);

  ASSIGN_OR_RETURN(memdrain::PageReader reader, memdrain::PageReader::Open(pid));
  pm->set_pid(pid);
  std::optional<sched::Arena> own_arena;
  sched::Arena* arena = opts.arena;
  if (arena == nullptr) arena = &own_arena.emplace(opts.jobs);
  sched::PagePipelineOptions po;
  po.codec = opts.codec;
  po.chunk_pages = kChunkPages;
  sched::PagePipelineStats ps;
  Status st = sched::RunPagePipeline(*arena, reader, items, po, pages, pm, &ps);
  // Stage times are thread time summed over the pipeline's threads.
  stats->drain_ns += ps.drain_ns;
  stats->compress_ns += ps.compress_ns;
  stats->write_ns += ps.write_ns;
  stats->pages_ns += ps.wall_ns;
  stats->pages_zero += ps.pages_zero;
  stats->pages_written += ps.pages_written;
  stats->bytes_raw += ps.bytes_raw;
  stats->bytes_written += ps.bytes_written;
  stats->jobs = arena->jobs();
  stats->compression = streams::CodecSpecName(opts.codec);
  RETURN_IF_ERROR(st);
  LOG_INFO("memdrain: process %d: %lu pages scanned, %lu zero, %lu written in %lu chunks (%s, %.1f MB stored), "
           "%d jobs, %.3f ms",
           pid, total_pages, ps.pages_zero, pm->data_pages(), ps.chunks, stats->compression.c_str(),
           static_cast<double>(ps.bytes_written) / 1e6, arena->jobs(), static_cast<double>(ps.wall_ns) / 1e6);
  return OkStatus();
}

}  // namespace cf::engine
