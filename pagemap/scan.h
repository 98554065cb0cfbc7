// Finding the pages of a process that must be dumped.
//
// The fast path is the PAGEMAP_SCAN ioctl on /proc/PID/pagemap (Linux 6.7+),
// one call per batch of VMAs, returning ranges with categories. The fallback
// reads /proc/PID/pagemap entries (8 bytes per page) in large batches.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "pagemap/page_ranges.h"

namespace cf::pagemap {

// Page categories, as PAGEMAP_SCAN reports them (linux/fs.h PAGE_IS_*).
enum PageCategory : uint64_t {
  kPageWpAllowed = 1u << 0,
  kPageWritten = 1u << 1,
  kPageFile = 1u << 2,      // page cache or shmem page (also shared anon)
  kPagePresent = 1u << 3,
  kPageSwapped = 1u << 4,
  kPagePfnZero = 1u << 5,   // the shared zero page
  kPageHuge = 1u << 6,
  kPageSoftDirty = 1u << 7,
  kPageGuard = 1u << 8,     // MADV_GUARD_INSTALL marker (Linux 6.15+); also reads as swapped
};

struct CategorizedRange {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t categories = 0;
};

// What to report for a VMA.
enum class ScanMode {
  kAnonPrivate,  // present or swapped pages, excluding the zero page
  kFilePrivate,  // pages that are no longer the file's (COW copies), present or swapped
  kShared,       // present or swapped pages of shmem / shared anon / memfd
};

class PageScanner {
 public:
  // Opens /proc/PID/pagemap and probes PAGEMAP_SCAN (unless force_fallback).
  static Result<PageScanner> Open(pid_t pid, bool force_fallback = false);

  bool uses_pagemap_scan() const { return use_scan_; }
  // Whether Scan and ScanGuards cost nothing for unmapped holes in their
  // range (PAGEMAP_SCAN skips them; the fallback reads 8 bytes per page of
  // a hole too).
  bool skips_holes() const;
  // Whether ScanGuards asks PAGEMAP_SCAN (also with the fallback forced):
  // it skips holes; reading pagemap entries does not.
  bool guards_by_ioctl() const;

  // Ranges in [start, end) holding pages to dump, per |mode|, sorted and merged.
  Result<RangeSet> Scan(uint64_t start, uint64_t end, ScanMode mode);

  // Guard regions (MADV_GUARD_INSTALL) in [start, end), sorted and merged.
  Result<RangeSet> ScanGuards(uint64_t start, uint64_t end);
  // Scan and ScanGuards of [start, end) at once: one walk of the page
  // tables where PAGEMAP_SCAN reports guard entries (they match Scan's
  // filter but for the GUARD category, which tells them apart), else both.
  Status ScanWithGuards(uint64_t start, uint64_t end, ScanMode mode, RangeSet* pages, RangeSet* guards);

  // Write tracking (pagemap/uffd_track.h): whether every page of [start,
  // end) lies in VMAs registered with a userfaultfd in write-protect async
  // mode (PAGEMAP_SCAN with PM_SCAN_CHECK_WPASYNC). Needs PAGEMAP_SCAN.
  Result<bool> WpAsyncRegistered(uint64_t start, uint64_t end);
  // The pages of Scan(start, end, mode) written since they were last
  // write-protected (PAGE_IS_WRITTEN). With |rearm|, they are write-protected
  // again in the same call (PM_SCAN_WP_MATCHING): the next call reports only
  // what was written after this one. Fails with EPERM where a VMA is not
  // registered for write tracking.
  Result<RangeSet> ScanWritten(uint64_t start, uint64_t end, ScanMode mode, bool rearm);

  // Pages of [start, end) whose page table entry has no userfaultfd
  // write-protect bit (PAGE_IS_WRITTEN alone: the kernel's fast path, one
  // bit test per entry); works for synchronous write-protect too. May also
  // report pages not present (nothing to protect there). Needs PAGEMAP_SCAN.
  Result<RangeSet> ScanUnprotected(uint64_t start, uint64_t end);

  // Raw categorized ranges (present/swapped/file/pfnzero) for tests and tools.
  // Every present or swapped page, categories limited to PRESENT | SWAPPED |
  // FILE | PFNZERO | HUGE | WRITTEN; adjacent pages with equal categories
  // merge. The fallback cannot see HUGE (THP) and never reports it.
  Result<std::vector<CategorizedRange>> ScanRaw(uint64_t start, uint64_t end);

  // PAGEMAP_SCAN ioctls or pagemap preads issued so far.
  uint64_t syscalls() const { return syscalls_; }

 private:
  // Which pages a walk reports, with PAGEMAP_SCAN's matching rule: a page
  // matches when, with c = categories ^ inverted, (c & mask) == mask and
  // (anyof == 0 || (c & anyof) != 0). Reported categories are & return_mask.
  struct Filter {
    uint64_t anyof = 0;
    uint64_t inverted = 0;
    uint64_t mask = 0;
    uint64_t return_mask = 0;
    uint64_t flags = 0;  // PM_SCAN_* (PAGEMAP_SCAN only)
  };

  PageScanner(pid_t pid, UniqueFd fd, bool use_scan) : pid_(pid), fd_(std::move(fd)), use_scan_(use_scan) {}
  Filter FilterFor(ScanMode mode) const;
  // The matching pages of [start, end) as sorted, merged ranges, by
  // PAGEMAP_SCAN (|use_ioctl|) or by pagemap entries.
  Result<RangeSet> Ranges(uint64_t start, uint64_t end, const Filter& f, bool use_ioctl);
  // Both call emit(start, end, categories) for matching runs, in address order.
  template <typename Emit>
  Status WalkIoctl(uint64_t start, uint64_t end, const Filter& f, Emit&& emit);
  template <typename Emit>
  Status WalkEntries(uint64_t start, uint64_t end, const Filter& f, Emit&& emit);

  pid_t pid_;
  UniqueFd fd_;
  bool use_scan_;
  uint64_t syscalls_ = 0;
  std::vector<uint64_t> buf_;               // reusable buffer of fallback entries
  std::vector<CategorizedRange> regions_;   // reusable PAGEMAP_SCAN output vector
};

// True when the running kernel supports PAGEMAP_SCAN.
bool PagemapScanSupported();

}  // namespace cf::pagemap
