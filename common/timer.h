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

// Sleeps between two looks at something that is not ready yet: nothing the
// first time, then |first_ns|, doubling each time up to |max_ns|.
class Backoff {
 public:
  Backoff(long first_ns, long max_ns) : first_ns_(first_ns), max_ns_(max_ns) {}
  void Wait() {
    if (next_ns_ > 0) {
      timespec ts{0, next_ns_};
      nanosleep(&ts, nullptr);
    }
    next_ns_ = next_ns_ == 0 ? first_ns_ : (next_ns_ * 2 < max_ns_ ? next_ns_ * 2 : max_ns_);
  }
  void Reset() { next_ns_ = 0; }

 private:
  long first_ns_;
  long max_ns_;
  long next_ns_ = 0;
};

}  // namespace cf
