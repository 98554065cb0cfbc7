// Micro benchmarks of draining: reading 256 MiB out of another process.
//
// BM_DrainVmsplice: the vmsplice backend (memdrain/parasite.h) on the same
// memory: inject, pin in pipes, remove, read the pipes with 1 or 2 threads.
//
// BM_Drain: PageReader::Read (process_vm_readv) of a forked child's 256 MiB,
// 2 MiB per call as the page pipeline does, into one reused buffer per
// thread. The remote side is given either as 1 MiB iovecs (contiguous pages)
// or as 4 KiB iovecs (one per page, as scattered pages come); with 2 threads
// each reads its half. GB/s is over all threads. BM_Drain256MiB/keep_shared:
// the same through /proc/PID/mem (PageReader::Open(pid, true): no pin, as a
// pre-dump reads a process with children, keeping copy-on-write sharing).
//
// BM_PagePipeline: the whole page stream of sched/page_pipeline.h over a
// child holding 256 MiB of memload's mix (1/3 random, 1/3 zero, 1/3 text
// pages), written to a file in /dev/shm, for --jobs 1 and 2 and each codec.
// GB/s is process memory per second.
//
// Variants are registered alternating, because this machine's timings drift;
// compare medians with --benchmark_repetitions.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "memdrain/page_reader.h"
#include "memdrain/parasite.h"
#include "sched/arena.h"
#include "sched/page_pipeline.h"
#include "streams/image_file.h"

namespace cf {
namespace {

using pagemap::kPageSize;
using pagemap::PageRange;

constexpr uint64_t kRegionBytes = 256ull << 20;
constexpr uint64_t kRegionPages = kRegionBytes / kPageSize;
constexpr uint64_t kBatchBytes = 2ull << 20;

uint64_t Next(uint64_t* s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

// A paused child holding 256 MiB: all random words, or memload's mix.
class Target {
 public:
  explicit Target(bool mix) {
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
        uint64_t s = 0x1234567887654321ULL;
        static const char kLine[] = "criu-fast test text, the quick brown fox jumps over the lazy dog. ";
        for (uint64_t pg = 0; pg < kRegionPages; ++pg) {
          uint8_t* page = static_cast<uint8_t*>(m) + pg * kPageSize;
          const uint64_t third = pg * 3 / kRegionPages;
          if (!mix || third == 0) {
            auto* w = reinterpret_cast<uint64_t*>(page);
            for (size_t i = 0; i < kPageSize / 8; ++i) w[i] = Next(&s);
          } else if (third == 1) {
            page[0] = 0;  // a real page of zeros
          } else {
            int n = snprintf(reinterpret_cast<char*>(page), 32, "page %lu: ", pg);
            for (uint64_t off = static_cast<uint64_t>(n); off < kPageSize; off += sizeof(kLine) - 1) {
              memcpy(page + off, kLine, std::min<uint64_t>(sizeof(kLine) - 1, kPageSize - off));
            }
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

// Each target is made on first use (the child runs no TBB code, so forking
// while TBB workers exist is fine) and killed at exit.
Target* GetTarget(bool mix) {
  static std::mutex mu;  // benchmark threads may ask at once
  std::lock_guard<std::mutex> lock(mu);
  static std::map<bool, std::unique_ptr<Target>> targets;
  auto& t = targets[mix];
  if (!t) t = std::make_unique<Target>(mix);
  return t->base() != 0 ? t.get() : nullptr;
}

void BM_Drain(benchmark::State& state, uint64_t iov_bytes, bool keep_shared) {
  Target* t = GetTarget(false);
  if (t == nullptr) {
    state.SkipWithError("could not set up the target process");
    return;
  }
  auto reader = memdrain::PageReader::Open(t->pid(), keep_shared);
  if (!reader.ok()) {
    state.SkipWithError(reader.status().ToString().c_str());
    return;
  }
  // This thread's slice of the region, cut into 2 MiB batches of iovecs.
  const uint64_t slice = kRegionBytes / static_cast<uint64_t>(state.threads());
  const uint64_t lo = t->base() + slice * static_cast<uint64_t>(state.thread_index());
  std::vector<std::vector<PageRange>> batches;
  for (uint64_t a = lo; a < lo + slice; a += kBatchBytes) {
    std::vector<PageRange>& b = batches.emplace_back();
    for (uint64_t r = a; r < a + kBatchBytes; r += iov_bytes) b.push_back({r, r + iov_bytes});
  }
  auto buf = std::make_unique<uint8_t[]>(kBatchBytes);  // touched once here, then reused
  for (auto _ : state) {
    for (const auto& b : batches) {
      Status s = reader->Read(b, buf.get(), true);
      if (!s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        return;
      }
    }
    benchmark::DoNotOptimize(buf.get());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(slice));
}

// The vmsplice backend on the same 256 MiB: per iteration, the parasite is
// injected into the (ptrace-stopped) target, pins every page in 1 MiB pipes
// (64 pipes per command), and is removed; |readers| threads read the pipes
// into 2 MiB buffers, as the page pipeline's workers do. GB/s covers it all.
void BM_DrainVmsplice(benchmark::State& state, int readers) {
  Target* t = GetTarget(false);
  if (t == nullptr) {
    state.SkipWithError("could not set up the target process");
    return;
  }
  const pid_t pid = t->pid();
  int st = 0;
  if (ptrace(PTRACE_SEIZE, pid, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD)) != 0 || ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) != 0 ||
      waitpid(pid, &st, __WALL) != pid) {
    state.SkipWithError("cannot seize the target");
    return;
  }
  const uint64_t cap = memdrain::PipeCapacity();
  std::vector<std::vector<PageRange>> jobs;
  for (uint64_t a = t->base(); a < t->base() + kRegionBytes; a += cap) jobs.push_back({{a, a + cap}});
  std::vector<std::unique_ptr<uint8_t[]>> bufs;
  for (int i = 0; i < readers; ++i) bufs.push_back(std::make_unique<uint8_t[]>(kBatchBytes));
  for (auto _ : state) {
    auto parasite = memdrain::Parasite::Inject(pid);
    if (!parasite.ok()) {
      state.SkipWithError(parasite.status().ToString().c_str());
      break;
    }
    std::vector<UniqueFd> pipes;
    Status s;
    for (size_t i = 0; i < jobs.size() && s.ok(); i += memdrain::Parasite::kMaxJobs) {
      const size_t n = std::min(jobs.size() - i, memdrain::Parasite::kMaxJobs);
      auto fds = (*parasite)->Fill(std::span<const std::vector<PageRange>>(jobs.data() + i, n));
      if (!fds.ok()) {
        s = fds.status();
        break;
      }
      for (auto& fd : *fds) pipes.push_back(std::move(fd));
    }
    if (s.ok()) s = (*parasite)->Cure();
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    auto drain = [&](int r) {
      for (size_t i = static_cast<size_t>(r); i < pipes.size(); i += static_cast<size_t>(readers)) {
        while (read(pipes[i].get(), bufs[static_cast<size_t>(r)].get(), kBatchBytes) > 0) {
        }
        pipes[i].reset();
      }
    };
    std::vector<std::thread> th;
    for (int r = 1; r < readers; ++r) th.emplace_back(drain, r);
    drain(0);
    for (auto& x : th) x.join();
  }
  ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kRegionBytes));
}

// |files| pages files (the page pipeline's writers; one, or several as for a
// large process).
void BM_PagePipeline(benchmark::State& state, const char* codec_name, int jobs, int files) {
  Target* t = GetTarget(true);
  if (t == nullptr) {
    state.SkipWithError("could not set up the target process");
    return;
  }
  auto reader = memdrain::PageReader::Open(t->pid());
  auto codec = streams::ParseCodec(codec_name);
  if (!reader.ok() || !codec.ok()) {
    state.SkipWithError("cannot open the target or parse the codec");
    return;
  }
  const std::vector<sched::PageSource> src = {{{t->base(), t->base() + kRegionBytes}, true}};
  auto path = [](int k) { return "/dev/shm/cf-bench-pipeline-" + std::to_string(k) + ".img"; };
  sched::Arena arena(jobs);
  sched::PagePipelineOptions opts;
  opts.codec = *codec;
  uint64_t stored = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<streams::ImageWriter> ws;
    std::vector<streams::ImageWriter*> outs;
    Status s;
    for (int k = 0; k < files && s.ok(); ++k) {
      unlink(path(k).c_str());  // a new file each time, as a dump writes
      auto w = streams::ImageWriter::Create(path(k), streams::FileKind::kPages);
      if (w.ok()) {
        ws.push_back(std::move(*w));
      } else {
        s = w.status();
      }
    }
    for (auto& w : ws) outs.push_back(&w);
    state.ResumeTiming();
    img::PageMap pm;
    sched::PagePipelineStats stats;
    if (s.ok()) s = sched::RunPagePipeline(arena, *reader, src, opts, outs, &pm, &stats);
    for (auto& w : ws) {
      if (s.ok()) s = w.Finish();
    }
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    stored = stats.bytes_written;
  }
  for (int k = 0; k < files; ++k) unlink(path(k).c_str());
  state.counters["ratio"] = stored ? static_cast<double>(kRegionBytes * 2 / 3) / static_cast<double>(stored) : 0;
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kRegionBytes));
}

int RegisterAll() {
  for (int threads : {1, 2}) {
    for (uint64_t iov : {uint64_t{1} << 20, kPageSize}) {
      const std::string name = std::string("BM_Drain256MiB/iov:") + (iov == kPageSize ? "4KiB" : "1MiB");
      benchmark::RegisterBenchmark(name.c_str(), BM_Drain, iov, false)
          ->Threads(threads)
          ->Unit(benchmark::kMillisecond)
          ->MinWarmUpTime(0.1)
          ->UseRealTime();
    }
    benchmark::RegisterBenchmark("BM_Drain256MiB/keep_shared", BM_Drain, uint64_t{1} << 20, true)
        ->Threads(threads)
        ->Unit(benchmark::kMillisecond)
        ->MinWarmUpTime(0.1)
        ->UseRealTime();
    const std::string name = "BM_DrainVmsplice256MiB/readers:" + std::to_string(threads);
    benchmark::RegisterBenchmark(name.c_str(), BM_DrainVmsplice, threads)
        ->Unit(benchmark::kMillisecond)
        ->MinWarmUpTime(0.1)
        ->UseRealTime();
  }
  for (const char* codec : {"none", "lz4", "zstd:1"}) {
    for (int jobs : {1, 2}) {
      const std::string name = std::string("BM_PagePipeline256MiB/") + codec + "/jobs:" + std::to_string(jobs);
      benchmark::RegisterBenchmark(name.c_str(), BM_PagePipeline, codec, jobs, 1)
          ->Unit(benchmark::kMillisecond)
          ->MinWarmUpTime(0.1)
          ->UseRealTime();
    }
    // Two jobs, two pages files (two writers).
    const std::string name = std::string("BM_PagePipeline256MiB/") + codec + "/jobs:2/files:2";
    benchmark::RegisterBenchmark(name.c_str(), BM_PagePipeline, codec, 2, 2)
        ->Unit(benchmark::kMillisecond)
        ->MinWarmUpTime(0.1)
        ->UseRealTime();
  }
  return 0;
}

[[maybe_unused]] const int kRegistered = RegisterAll();

}  // namespace
}  // namespace cf
