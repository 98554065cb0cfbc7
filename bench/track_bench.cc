// Micro benchmark: what write tracking (pagemap/uffd_track.h) costs the
// target, and what reading the written set costs criu-fast.
//
//   BM_FirstWrite/tracked:0  a write of one byte to each page of 256 MiB of
//                            populated private memory, untracked
//   BM_FirstWrite/tracked:1  the same after the region was registered for
//                            async write-protect and protected (as a pre-dump
//                            leaves it): each first write takes a minor fault
//   BM_ScanWritten           PAGEMAP_SCAN with PAGE_IS_WRITTEN and
//                            PM_SCAN_WP_MATCHING over the 256 MiB after 1%
//                            of its pages were written (what an increment's
//                            scan does)
// The tracked region is our own (a userfaultfd made in this process): the
// fault path is the same as in a target. Compare per-page times of the two
// FirstWrite variants, measured alternately.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#include "common/fd.h"
#include "pagemap/scan.h"
#include "pagemap/uffd_track.h"

namespace cf::pagemap {
namespace {

constexpr uint64_t kBytes = 256ull << 20;
constexpr uint64_t kPages = kBytes / kPageSize;

struct Region {
  uint8_t* base = nullptr;
  UniqueFd uffd;
  Region() {
    void* m = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    base = static_cast<uint8_t*>(m);
    madvise(base, kBytes, MADV_NOHUGEPAGE);
    for (uint64_t i = 0; i < kPages; ++i) base[i * kPageSize] = 1;  // populated
  }
  ~Region() {
    uffd.reset();
    if (base) munmap(base, kBytes);
  }
  // Registers the region (once) and write-protects every page again.
  bool Protect(PageScanner& scanner) {
    const uint64_t start = reinterpret_cast<uintptr_t>(base);
    if (!uffd.valid()) {
      uffd.reset(static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY)));
      if (!uffd.valid() || !EnableWriteTracking(uffd.get()).ok()) return false;
      auto ok = RegisterForTracking(uffd.get(), start, start + kBytes);
      if (!ok.ok() || !*ok) return false;
    }
    return scanner.ScanWritten(start, start + kBytes, ScanMode::kAnonPrivate, true).ok();
  }
};

void BM_FirstWrite(benchmark::State& state) {
  const bool tracked = state.range(0) != 0;
  if (!WriteTrackingSupported()) {
    state.SkipWithError("no async write-protect here");
    return;
  }
  Region r;
  auto scanner = PageScanner::Open(getpid());
  if (!r.base || !scanner.ok()) {
    state.SkipWithError("setup failed");
    return;
  }
  for (auto _ : state) {
    state.PauseTiming();
    if (tracked && !r.Protect(*scanner)) {
      state.SkipWithError("cannot protect the region");
      return;
    }
    state.ResumeTiming();
    for (uint64_t i = 0; i < kPages; ++i) r.base[i * kPageSize] += 1;
    benchmark::ClobberMemory();
  }
  state.counters["ns_per_page"] =
      benchmark::Counter(static_cast<double>(kPages), benchmark::Counter::kIsIterationInvariantRate |
                                                          benchmark::Counter::kInvert);
}
BENCHMARK(BM_FirstWrite)->ArgName("tracked")->Arg(0)->Arg(1)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_ScanWritten(benchmark::State& state) {
  Region r;
  auto scanner = PageScanner::Open(getpid());
  if (!WriteTrackingSupported() || !r.base || !scanner.ok() || !r.Protect(*scanner)) {
    state.SkipWithError("no async write-protect here");
    return;
  }
  const uint64_t start = reinterpret_cast<uintptr_t>(r.base);
  for (auto _ : state) {
    state.PauseTiming();
    for (uint64_t i = 0; i < kPages; i += 100) r.base[i * kPageSize] += 1;
    state.ResumeTiming();
    auto w = scanner->ScanWritten(start, start + kBytes, ScanMode::kAnonPrivate, true);
    if (!w.ok() || w->pages() < kPages / 100) {
      state.SkipWithError("scan failed");
      return;
    }
  }
}
BENCHMARK(BM_ScanWritten)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cf::pagemap
