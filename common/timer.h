// Monotonic clock helpers and a stopwatch for per-stage timings.
#pragma once

#include <cstdint>
#include <ctime>

namespace cf {

inline uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Adds the time between construction and destruction to *sink.
class ScopedTimer {
 public:
  explicit ScopedTimer(uint64_t* sink) : sink_(sink), start_(MonotonicNs()) {}
  ~ScopedTimer() { *sink_ += MonotonicNs() - start_; }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  uint64_t* sink_;
  uint64_t start_;
};

}  // namespace cf
