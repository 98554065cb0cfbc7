// Counters and stage timers of a dump, saved as stats-dump.img and printed
// by --display-stats.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "criu_fast.pb.h"

namespace cf::engine {

struct DumpCounters {
  uint64_t frozen_ns = 0;
  uint64_t total_ns = 0;
  uint64_t seize_ns = 0;
  uint64_t collect_ns = 0;
  uint64_t scan_ns = 0;
  // The page pipeline (sched/page_pipeline.h) runs its stages on several
  // threads at once: drain_ns (reading pages and dropping zero pages),
  // compress_ns and write_ns are thread time summed over all chunks, and may
  // add up to more than pages_ns, the pipeline's wall time.
  uint64_t drain_ns = 0;
  uint64_t compress_ns = 0;
  uint64_t write_ns = 0;
  uint64_t pages_ns = 0;
  uint64_t pages_scanned = 0;
  uint64_t pages_zero = 0;
  uint64_t pages_written = 0;
  uint64_t bytes_written = 0;
  uint64_t bytes_raw = 0;
  std::string drain = "read";    // the drain backend
  uint64_t pin_ns = 0;            // vmsplice: pinning pages in pipes (frozen)
  uint64_t pages_pinned = 0;
  uint64_t after_release_ns = 0;  // from the tree's release or kill to the end
  // Code run inside the targets (ptrace/remote_syscall.h, InjectionTotals):
  // remote system calls and parasite commands, the time the threads'
  // registers were ours, and how much of it had no return frame (a
  // criu-fast killed then would have harmed the target).
  uint64_t injected_calls = 0;
  uint64_t injected_ns = 0;
  uint64_t unguarded_calls = 0;
  uint64_t unguarded_ns = 0;
  uint32_t processes = 0;
  uint32_t threads = 0;
  // Incremental dumps (engine/incremental.h): pages recorded as references
  // to the parent image, found unwritten by write tracking or equal by
  // content; pages of mappings tracking did not cover (read in full); pages
  // a pre-dump could not read because they were gone; time spent making
  // the userfaultfds inside the targets (frozen; registering and protecting
  // count as scan time).
  uint64_t pages_parent_tracked = 0;
  uint64_t pages_parent_compared = 0;
  uint64_t pages_untracked = 0;
  uint64_t pages_vanished = 0;
  uint64_t track_ns = 0;
  // Pages of child processes still shared copy-on-write with their parent
  // (PageRange INHERITED): stored once, in the parent's pages.
  uint64_t pages_inherited = 0;
  // Deduplication within the dump (sched/dedup.h): pages equal to a page
  // stored earlier in it, recorded as DUP; printed only: whether it was on
  // (or why not), and the table's entries and memory.
  uint64_t pages_dedup = 0;
  std::string dedup;
  uint64_t dedup_entries = 0;
  uint64_t dedup_bytes = 0;
  std::string tracking;  // "uffd-wp", "hash" or empty (not incremental)
  // dump --live (engine/live.h), printed only: the tree ran on after the
  // freeze (frozen_ns) while its pages were saved; time spent making the
  // userfaultfds and protecting the pages (frozen); write faults handled,
  // pages copied out by the handler before their write; pages protected;
  // pages copied while frozen (mappings userfaultfd refuses).
  bool live = false;
  uint64_t live_arm_ns = 0;
  uint64_t live_faults = 0;
  uint64_t pages_live_copied = 0;
  uint64_t pages_live_protected = 0;
  uint64_t pages_live_copied_frozen = 0;
  uint64_t live_faults_deferred = 0;  // writers held while the copies were at their bound
  uint64_t live_stash_limit = 0;      // that bound, in pages
  // Armed before the freeze: the tree seized a moment to make the
  // userfaultfds, then its present pages protected while it ran.
  uint64_t live_prearm_pause_ns = 0;
  uint64_t live_prearm_ns = 0;
  uint64_t pages_live_prearmed = 0;
  // Printed only (not in stats-dump.img): how the pages were dumped.
  int jobs = 0;
  bool killed_early = false;  // vmsplice: the tree was killed once its pages were pinned
  // dump -R with few pages to read: copied while frozen, written after the release.
  uint64_t copy_ns = 0;
  uint64_t smaps_wait_ns = 0;  // waiting for smaps after the scan (Dumper::SettleVmas)
  uint64_t pages_copied = 0;
  std::string compression = "none";

  // Adds the page counters and stage times of a part of the dump (one
  // process's page dump) to these.
  void Add(const DumpCounters& o);

  img::DumpStats ToProto() const;
  void Print(FILE* out) const;
};

}  // namespace cf::engine
