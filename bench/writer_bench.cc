// Micro benchmark of the image writer's system calls: 256 MiB written as
// 2 MiB chunk records (the page pipeline's chunk size) into a new file, with
//   - writev(), one call per chunk, as ImageWriter does;
//   - io_uring, IORING_OP_WRITE with registered (fixed) buffers and DEPTH
//     writes in flight, the submitting thread never waiting on a write it
//     does not need back yet;
//   - several writer threads: positioned writes (pwrite) of interleaved
//     chunks into ONE file, or one file per thread written in order (the
//     page pipeline's several pages files).
// Targets: /dev/shm (tmpfs, where dumps usually go in the benchmarks) and
// the directory in $CF_BENCH_DISK_DIR (default /var/tmp, the disk). Each
// iteration writes a fresh file and removes it; GB/s is bytes per second of
// wall time. Buffers are written from a pool of 16 (as in the pipeline), so
// the data is in cache like the compressed chunks are.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kChunk = 2u << 20;
constexpr size_t kTotal = 256u << 20;
constexpr int kPool = 16;

std::vector<std::vector<uint8_t>>& Pool() {
  static std::vector<std::vector<uint8_t>> pool = [] {
    std::vector<std::vector<uint8_t>> p(kPool, std::vector<uint8_t>(kChunk));
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (auto& b : p) {
      for (size_t i = 0; i + 8 <= b.size(); i += 8) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        memcpy(&b[i], &s, 8);
      }
    }
    return p;
  }();
  return pool;
}

std::string Dir(int target) {
  if (target == 0) return "/dev/shm";
  const char* d = getenv("CF_BENCH_DISK_DIR");
  return d ? d : "/var/tmp";
}

void SetLabel(benchmark::State& state, const char* how) {
  state.SetLabel(std::string(how) + (state.range(0) == 0 ? " tmpfs" : " disk"));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kTotal));
}

void BM_Writev(benchmark::State& state) {
  auto& pool = Pool();
  const std::string path = Dir(static_cast<int>(state.range(0))) + "/cf-writer-bench.img";
  for (auto _ : state) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      state.SkipWithError("open");
      return;
    }
    for (size_t off = 0, i = 0; off < kTotal; off += kChunk, ++i) {
      iovec iov{pool[i % kPool].data(), kChunk};
      if (writev(fd, &iov, 1) != static_cast<ssize_t>(kChunk)) state.SkipWithError("writev");
    }
    close(fd);
    unlink(path.c_str());
  }
  SetLabel(state, "writev");
}

void BM_IoUring(benchmark::State& state) {
  auto& pool = Pool();
  const unsigned depth = static_cast<unsigned>(state.range(1));
  const std::string path = Dir(static_cast<int>(state.range(0))) + "/cf-writer-bench.img";
  io_uring ring;
  if (io_uring_queue_init(depth, &ring, 0) != 0) {
    state.SkipWithError("io_uring_queue_init");
    return;
  }
  std::vector<iovec> bufs;
  for (auto& b : pool) bufs.push_back({b.data(), b.size()});
  if (io_uring_register_buffers(&ring, bufs.data(), static_cast<unsigned>(bufs.size())) != 0) {
    state.SkipWithError("io_uring_register_buffers");
    io_uring_queue_exit(&ring);
    return;
  }
  for (auto _ : state) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      state.SkipWithError("open");
      break;
    }
    unsigned inflight = 0;
    auto reap = [&](unsigned want_left) {
      while (inflight > want_left) {
        io_uring_cqe* cqe;
        if (io_uring_wait_cqe(&ring, &cqe) != 0) return false;
        const bool ok = cqe->res == static_cast<int>(kChunk);
        io_uring_cqe_seen(&ring, cqe);
        --inflight;
        if (!ok) return false;
      }
      return true;
    };
    bool ok = true;
    for (size_t off = 0, i = 0; ok && off < kTotal; off += kChunk, ++i) {
      if (inflight == depth) ok = reap(depth - 1);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      const int b = static_cast<int>(i % kPool);
      io_uring_prep_write_fixed(sqe, fd, pool[static_cast<size_t>(b)].data(), kChunk, off, b);
      io_uring_submit(&ring);
      ++inflight;
    }
    if (!reap(0) || !ok) state.SkipWithError("io_uring write");
    close(fd);
    unlink(path.c_str());
  }
  io_uring_queue_exit(&ring);
  SetLabel(state, ("io_uring qd" + std::to_string(depth)).c_str());
}

// range(1) threads write 256 MiB together: chunk i goes to thread i % T.
// range(2) == 0: pwrite into one shared file at the chunk's offset;
// range(2) == 1: each thread appends to a file of its own.
void BM_Writers(benchmark::State& state) {
  auto& pool = Pool();
  const int threads = static_cast<int>(state.range(1));
  const bool split = state.range(2) != 0;
  const std::string base = Dir(static_cast<int>(state.range(0))) + "/cf-writer-bench";
  for (auto _ : state) {
    std::vector<int> fds(split ? threads : 1);
    for (size_t f = 0; f < fds.size(); ++f) {
      fds[f] = open((base + std::to_string(f) + ".img").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fds[f] < 0) {
        state.SkipWithError("open");
        return;
      }
    }
    std::vector<std::thread> ts;
    bool failed = false;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        const int fd = fds[split ? t : 0];
        uint64_t own = 0;
        for (size_t i = static_cast<size_t>(t); i * kChunk < kTotal; i += static_cast<size_t>(threads)) {
          const off_t off = static_cast<off_t>(split ? own : i * kChunk);
          if (pwrite(fd, pool[i % kPool].data(), kChunk, off) != static_cast<ssize_t>(kChunk)) failed = true;
          own += kChunk;
        }
      });
    }
    for (auto& t : ts) t.join();
    for (size_t f = 0; f < fds.size(); ++f) {
      close(fds[f]);
      unlink((base + std::to_string(f) + ".img").c_str());
    }
    if (failed) state.SkipWithError("pwrite");
  }
  SetLabel(state, (std::to_string(threads) + (split ? " writers, a file each" : " writers, one file")).c_str());
}

BENCHMARK(BM_Writers)
    ->ArgsProduct({{0, 1}, {1, 2, 4}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Writev)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_IoUring)->Args({0, 4})->Args({0, 8})->Args({1, 4})->Args({1, 8})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
