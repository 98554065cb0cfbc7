// Micro benchmark: finding the pages to dump in 1 GiB of another process.
//
// A child maps 1 GiB of private anonymous memory (4 KiB pages) and writes half
// of it in runs of N pages separated by holes of N pages; we then time
// PageScanner::Scan(kAnonPrivate) over the whole region with PAGEMAP_SCAN and
// with the pread fallback. N = 1 is the worst case for PAGEMAP_SCAN (131072
// one-page ranges, 256 ioctls of 512 regions); N = 512 gives 256 ranges of
// 2 MiB. The fallback reads 262144 pagemap entries (2 MiB) whatever N is.
//
// Variants are registered alternating (fast, fallback) per N, because this
// machine's timings drift; compare medians with --benchmark_repetitions.
// Each target costs ~0.2-0.5 s to populate (512 MiB of first touch) and is
// built once, on first use, and killed at exit.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "pagemap/scan.h"

namespace cf::pagemap {
namespace {

constexpr uint64_t kRegionBytes = 1ull << 30;
constexpr uint64_t kRegionPages = kRegionBytes / kPageSize;

// A paused child holding a 1 GiB region populated in runs of |run| pages.
class Target {
 public:
  explicit Target(uint64_t run) {
    int p[2];
    if (pipe(p) != 0) return;
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      close(p[0]);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      uint64_t base = 0;
      void* m = mmap(nullptr, kRegionBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m != MAP_FAILED) {
        madvise(m, kRegionBytes, MADV_NOHUGEPAGE);
        base = reinterpret_cast<uintptr_t>(m);
        for (uint64_t i = 0; i < kRegionPages; i += 2 * run) {
          for (uint64_t j = i; j < i + run && j < kRegionPages; ++j) {
            static_cast<volatile char*>(m)[j * kPageSize] = 1;
          }
        }
      }
      if (write(p[1], &base, sizeof(base)) != sizeof(base)) _exit(1);
      for (;;) pause();
    }
    close(p[1]);
    if (pid_ > 0 && read(p[0], &base_, sizeof(base_)) != sizeof(base_)) base_ = 0;
    close(p[0]);
  }
  ~Target() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  pid_t pid() const { return pid_; }
  uint64_t base() const { return base_; }

 private:
  pid_t pid_ = -1;
  uint64_t base_ = 0;
};

Target* GetTarget(uint64_t run) {
  static std::map<uint64_t, std::unique_ptr<Target>> targets;
  auto& t = targets[run];
  if (!t) t = std::make_unique<Target>(run);
  return t->base() != 0 ? t.get() : nullptr;
}

void BM_ScanAnon1GiB(benchmark::State& state, bool fast, uint64_t run) {
  if (fast && !PagemapScanSupported()) {
    state.SkipWithError("kernel lacks PAGEMAP_SCAN");
    return;
  }
  Target* t = GetTarget(run);
  if (t == nullptr) {
    state.SkipWithError("could not set up the target process");
    return;
  }
  auto scanner = PageScanner::Open(t->pid(), /*force_fallback=*/!fast);
  if (!scanner.ok()) {
    state.SkipWithError(scanner.status().ToString().c_str());
    return;
  }
  uint64_t ranges = 0;
  uint64_t pages = 0;
  const uint64_t calls_before = scanner->syscalls();
  for (auto _ : state) {
    auto set = scanner->Scan(t->base(), t->base() + kRegionBytes, ScanMode::kAnonPrivate);
    if (!set.ok()) {
      state.SkipWithError(set.status().ToString().c_str());
      return;
    }
    ranges = set->size();
    pages = set->pages();
    benchmark::DoNotOptimize(set->ranges().data());
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["ranges"] = static_cast<double>(ranges);
  state.counters["pages_found"] = static_cast<double>(pages);
  state.counters["syscalls"] = static_cast<double>(scanner->syscalls() - calls_before) / iters;
  // Address space scanned per second.
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kRegionBytes));
}

int RegisterAll() {
  for (uint64_t run : {1, 16, 512}) {
    for (bool fast : {true, false}) {
      const std::string name =
          std::string("BM_ScanAnon1GiB/") + (fast ? "pagemap_scan" : "fallback") + "/run:" + std::to_string(run);
      benchmark::RegisterBenchmark(name.c_str(), BM_ScanAnon1GiB, fast, run)
          ->Unit(benchmark::kMillisecond)
          ->MinWarmUpTime(0.05)
          ->UseRealTime();
    }
  }
  return 0;
}

[[maybe_unused]] const int kRegistered = RegisterAll();

}  // namespace
}  // namespace cf::pagemap
