// Dumping the memory of one frozen process: scan, drain, write.
//
// 1. Scan: per VMA, the pages that must be saved (pagemap/scan.h): present
//    or swapped private anonymous pages but the zero page, the written (COW)
//    pages of private file mappings, and the present pages of shared
//    anonymous memory. Shared file mappings and the vDSO are not saved.
// 2. Drain: the page list, in address order, is read in batches of up to
//    kChunkPages pages (memdrain/page_reader.h).
// 3. Each batch drops its all-zero pages (recorded as ZERO ranges), and the
//    rest is written as one framed chunk of pages-PID.img; the pagemap
//    records DATA ranges in the same order.
#pragma once

#include <sys/types.h>

#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "engine/stats.h"
#include "pagemap/vma.h"
#include "streams/codec.h"
#include "streams/image_file.h"

namespace cf::engine {

inline constexpr uint64_t kChunkPages = 512;  // 2 MiB of raw data per chunk

struct PageDumpOptions {
  bool force_pagemap_fallback = false;
  streams::CodecSpec codec;
};

Status DumpPages(pid_t pid, const img::Process& proc, const PageDumpOptions& opts,
                 streams::ImageWriter* pages, img::PageMap* pagemap, DumpCounters* stats);

}  // namespace cf::engine
