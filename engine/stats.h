// Counters and stage timers of a dump, saved as stats-dump.img and printed
// by --display-stats.
#pragma once

#include <cstdint>
#include <cstdio>

#include "criu_fast.pb.h"

namespace cf::engine {

struct DumpCounters {
  uint64_t frozen_ns = 0;
  uint64_t total_ns = 0;
  uint64_t seize_ns = 0;
  uint64_t collect_ns = 0;
  uint64_t scan_ns = 0;
  uint64_t drain_ns = 0;
  uint64_t compress_ns = 0;
  uint64_t write_ns = 0;
  uint64_t pages_scanned = 0;
  uint64_t pages_zero = 0;
  uint64_t pages_written = 0;
  uint64_t bytes_written = 0;
  uint64_t bytes_raw = 0;
  uint32_t processes = 0;
  uint32_t threads = 0;

  img::DumpStats ToProto() const;
  void Print(FILE* out) const;
};

}  // namespace cf::engine
