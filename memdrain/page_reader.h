// Reading page contents out of a frozen process: process_vm_readv with many
// remote iovecs per call, and /proc/PID/mem for what it cannot reach
// (PROT_NONE or write-only areas, which need the kernel's FOLL_FORCE).
//
// A PageReader holds no state but the target's pid and its /proc/PID/mem
// descriptor (read with pread only): Read() may run on many threads at once,
// which is how the page pipeline (sched/page_pipeline.h) drains in parallel.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>

#include "common/fd.h"
#include "common/status.h"
#include "memdrain/drain.h"
#include "pagemap/page_ranges.h"

namespace cf::memdrain {

class PageReader : public PageDrain {
 public:
  // |keep_shared|: every page is read through /proc/PID/mem, none with
  // process_vm_readv. That one pins the pages it reads (FOLL_PIN), and the
  // kernel gives a pinned page shared copy-on-write with another process
  // (after fork) a copy of its own first: a tree that runs on after the
  // read (pre-dump, dump -R) would lose that sharing and use more memory.
  // /proc/PID/mem only takes a reference, which leaves the sharing alone.
  static Result<PageReader> Open(pid_t pid, bool keep_shared = false);

  // Reads |ranges| (in order) into |out|, which holds exactly their total size.
  // |readable|: the ranges lie in VMAs with PROT_READ (else /proc/PID/mem).
  // Thread-safe.
  Status Read(std::span<const pagemap::PageRange> ranges, uint8_t* out, bool readable) const override;

 private:
  PageReader(pid_t pid, UniqueFd mem, bool keep_shared)
      : pid_(pid), mem_(std::move(mem)), keep_shared_(keep_shared) {}
  Status ReadMem(uint64_t addr, uint8_t* out, uint64_t len) const;

  pid_t pid_;
  UniqueFd mem_;
  bool keep_shared_ = false;
};

}  // namespace cf::memdrain
