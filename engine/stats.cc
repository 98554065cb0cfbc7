#include "engine/stats.h"

#include <sys/resource.h>

namespace cf::engine {

void DumpCounters::Add(const DumpCounters& o) {
  scan_ns += o.scan_ns;
  drain_ns += o.drain_ns;
  compress_ns += o.compress_ns;
  write_ns += o.write_ns;
  pages_ns += o.pages_ns;
  pages_scanned += o.pages_scanned;
  pages_zero += o.pages_zero;
  pages_written += o.pages_written;
  bytes_written += o.bytes_written;
  bytes_raw += o.bytes_raw;
  pin_ns += o.pin_ns;
  pages_pinned += o.pages_pinned;
  pages_parent_tracked += o.pages_parent_tracked;
  pages_parent_compared += o.pages_parent_compared;
  pages_untracked += o.pages_untracked;
  pages_vanished += o.pages_vanished;
  track_ns += o.track_ns;
  pages_inherited += o.pages_inherited;
  pages_dedup += o.pages_dedup;
  if (o.jobs) jobs = o.jobs;
  if (o.compression != "none") compression = o.compression;
}

img::DumpStats DumpCounters::ToProto() const {
  img::DumpStats s;
  s.set_frozen_ns(frozen_ns);
  s.set_total_ns(total_ns);
  s.set_seize_ns(seize_ns);
  s.set_collect_ns(collect_ns);
  s.set_scan_ns(scan_ns);
  s.set_drain_ns(drain_ns);
  s.set_compress_ns(compress_ns);
  s.set_write_ns(write_ns);
  s.set_pages_scanned(pages_scanned);
  s.set_pages_zero(pages_zero);
  s.set_pages_written(pages_written);
  s.set_bytes_written(bytes_written);
  s.set_bytes_raw(bytes_raw);
  s.set_processes(processes);
  s.set_threads(threads);
  s.set_drain(drain);
  s.set_pin_ns(pin_ns);
  s.set_pages_pinned(pages_pinned);
  s.set_after_release_ns(after_release_ns);
  s.set_injected_calls(injected_calls);
  s.set_injected_ns(injected_ns);
  s.set_unguarded_calls(unguarded_calls);
  s.set_unguarded_ns(unguarded_ns);
  s.set_pages_parent_tracked(pages_parent_tracked);
  s.set_pages_parent_compared(pages_parent_compared);
  s.set_pages_untracked(pages_untracked);
  s.set_track_ns(track_ns);
  s.set_tracking(tracking);
  s.set_pages_inherited(pages_inherited);
  s.set_pages_dedup(pages_dedup);
  return s;
}

void DumpCounters::Print(FILE* out) const {
  auto ms = [](uint64_t ns) { return static_cast<double>(ns) / 1e6; };
  const double total_s = static_cast<double>(total_ns) / 1e9;
  const double mem_bytes = static_cast<double>(pages_scanned) * 4096.0;
  fprintf(out, "Dump statistics:\n");
  fprintf(out, "  frozen time:     %.3f ms\n", ms(frozen_ns));
  fprintf(out, "  total time:      %.3f ms\n", ms(total_ns));
  fprintf(out, "  seize time:      %.3f ms\n", ms(seize_ns));
  fprintf(out, "  collect time:    %.3f ms\n", ms(collect_ns));
  fprintf(out, "  scan time:       %.3f ms\n", ms(scan_ns));
  if (smaps_wait_ns) fprintf(out, "  smaps wait:      %.3f ms (VMAs scanned from maps; smaps read beside)\n", ms(smaps_wait_ns));
  // Stage times of the page pipeline: thread time summed over its jobs.
  fprintf(out, "  drain backend:   %s\n", drain.c_str());
  if (drain == "vmsplice") {
    fprintf(out, "  pin time:        %.3f ms (%lu pages in pipes, frozen)\n", ms(pin_ns), pages_pinned);
    fprintf(out, "  after release:   %.3f ms (written after the tree was %s)\n", ms(after_release_ns),
            killed_early ? "killed" : "released");
  }
  if (pages_copied > 0) {
    fprintf(out, "  copy time:       %.3f ms (%lu pages copied frozen, written after the release)\n", ms(copy_ns),
            pages_copied);
    fprintf(out, "  after release:   %.3f ms\n", ms(after_release_ns));
  }
  if (live) {
    fprintf(out, "  live:            frozen %.3f ms (write-protect %.3f ms), then saved while running for %.3f ms\n",
            ms(frozen_ns), ms(live_arm_ns), ms(after_release_ns));
    if (live_prearm_pause_ns) {
      fprintf(out, "  live early arm:  paused %.3f ms before the freeze, then %lu pages protected in %.3f ms while running\n",
              ms(live_prearm_pause_ns), pages_live_prearmed, ms(live_prearm_ns));
    }
    fprintf(out, "  live pages:      %lu protected, %lu copied on fault (%lu faults), %lu copied frozen\n",
            pages_live_protected, pages_live_copied, live_faults, pages_live_copied_frozen);
    fprintf(out, "  live stash:      %lu faults held while %lu copies (the bound) waited to be saved\n",
            live_faults_deferred, live_stash_limit);
  }
  fprintf(out, "  injected:        %lu calls/commands, %.3f ms (unguarded: %lu, %.3f ms)\n", injected_calls,
          ms(injected_ns), unguarded_calls, ms(unguarded_ns));
  fprintf(out, "  pages time:      %.3f ms (%d jobs)\n", ms(pages_ns), jobs);
  fprintf(out, "  drain time:      %.3f ms\n", ms(drain_ns));
  fprintf(out, "  compress time:   %.3f ms\n", ms(compress_ns));
  fprintf(out, "  write time:      %.3f ms\n", ms(write_ns));
  fprintf(out, "  processes:       %u\n", processes);
  fprintf(out, "  threads:         %u\n", threads);
  fprintf(out, "  pages scanned:   %lu\n", pages_scanned);
  fprintf(out, "  pages zero:      %lu\n", pages_zero);
  fprintf(out, "  pages written:   %lu\n", pages_written);
  fprintf(out, "  pages inherited: %lu (shared copy-on-write with the parent process: stored once)\n", pages_inherited);
  if (!dedup.empty()) {
    fprintf(out, "  pages deduplicated: %lu (dedup %s; equal to a page stored earlier in this dump: stored once)\n",
            pages_dedup, dedup.c_str());
    if (dedup_entries) {
      fprintf(out, "  dedup table:     %lu pages, %.1f MiB\n", dedup_entries, static_cast<double>(dedup_bytes) / 1048576.0);
    }
  }
  if (!tracking.empty()) {
    fprintf(out, "  tracking:        %s (userfaultfds made in %.3f ms, frozen; armed during the scan)\n", tracking.c_str(), ms(track_ns));
    fprintf(out, "  pages in parent: %lu (unwritten since it: %lu, same content: %lu)\n",
            pages_parent_tracked + pages_parent_compared, pages_parent_tracked, pages_parent_compared);
    fprintf(out, "  pages untracked: %lu (read in full: mappings tracking did not cover)\n", pages_untracked);
    if (pages_vanished) fprintf(out, "  pages vanished:  %lu (unmapped while a pre-dump read them)\n", pages_vanished);
  }
  fprintf(out, "  bytes raw:       %lu\n", bytes_raw);
  fprintf(out, "  bytes written:   %lu\n", bytes_written);
  fprintf(out, "  compression:     %s (ratio %.2f)\n", compression.c_str(),
          bytes_written > 0 ? static_cast<double>(bytes_raw) / static_cast<double>(bytes_written) : 1.0);
  fprintf(out, "  memory rate:     %.2f GB/s\n", total_s > 0 ? mem_bytes / total_s / 1e9 : 0.0);
  // criu-fast's own peak resident memory (the page pipeline's buffers are
  // bounded, so this stays flat whatever the size of the dump).
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0) fprintf(out, "  peak RSS:        %.1f MiB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
}

}  // namespace cf::engine
