// Dumping the memory of one frozen process: scan, then the page pipeline.
//
// 1. Scan (on the calling thread): per VMA, the pages that must be saved
//    (pagemap/scan.h): present or swapped private anonymous pages but the zero
//    page, the written (COW) pages of private file mappings, and the present
//    pages of shared anonymous memory. Shared file mappings and the vDSO are
//    not saved.
// 2. The page list, in address order, goes through the page pipeline
//    (sched/page_pipeline.h) on --jobs threads: batches of up to kChunkPages
//    pages are drained (memdrain/page_reader.h), their all-zero pages dropped
//    (recorded as ZERO ranges), the rest compressed with --compress and
//    written as one framed chunk of pages-PID.img; the pagemap records DATA
//    ranges in the same order.
// No ptrace request is made here: draining uses process_vm_readv and
// /proc/PID/mem only, which any thread may do.
#pragma once

#include <sys/types.h>

#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "engine/stats.h"
#include "pagemap/vma.h"
#include "sched/arena.h"
#include "sched/page_pipeline.h"
#include "streams/codec.h"
#include "streams/image_file.h"

namespace cf::engine {

inline constexpr uint64_t kChunkPages = sched::kChunkPages;  // 2 MiB of raw data per chunk

struct PageDumpOptions {
  bool force_pagemap_fallback = false;
  streams::CodecSpec codec;
  int jobs = 0;                    // threads of the page pipeline (0: number of CPUs)
  sched::Arena* arena = nullptr;   // run there (shared by the processes of a dump); null: an own one of |jobs|
};

Status DumpPages(pid_t pid, const img::Process& proc, const PageDumpOptions& opts,
                 streams::ImageWriter* pages, img::PageMap* pagemap, DumpCounters* stats);

}  // namespace cf::engine
