// What the kernel charges for moving sparse memory (README, "Scale",
// session 27): N pages of random data, one page in every four of an
// anonymous mapping of a child process (tests/progs/scale.c "sparse"),
// moved in batches of 512 pages (2 MiB, the page pipeline's chunk), on one
// thread each:
//   BM_DrainReadThenWrite/N   process_vm_readv into a buffer, then pwrite
//                             into a new file in /dev/shm (criu-fast's dump:
//                             two copies)
//   BM_DrainIntoFileMapping/N process_vm_readv straight into a shared
//                             mapping of the new file (one copy; the file's
//                             pages are faulted in and zeroed first)
//   BM_FillFromOutside/N      pread of the pages file into a buffer, its
//                             record checksum, process_vm_writev into a
//                             fresh child (criu-fast's restore)
//   BM_FillFromInside/N       the child reads the pages file into its own
//                             pages (preadv) and checksums them there (one
//                             copy, as CRIU's restorer reads; a checksum
//                             per page, the pages being apart there)
// /dev/shm must hold N pages twice.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "streams/format.h"

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kStride = 4;
constexpr uint64_t kBatch = 512;

uint64_t Checksum(const void* p, uint64_t len) {
  return cf::streams::RecordChecksumFor(cf::streams::kFormatVersion, 2, 0, p, len, nullptr, 0);
}

void FillRandom(char* p, uint64_t len, uint64_t* x) {
  for (uint64_t k = 0; k < len / 8; ++k) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    memcpy(p + k * 8, x, 8);
  }
}

// The remote iovecs of batch |b|: one page each, kStride pages apart.
void BatchIov(char* base, uint64_t b, iovec* iov) {
  for (uint64_t i = 0; i < kBatch; ++i) {
    iov[i] = {base + (b * kBatch + i) * kStride * kPage, kPage};
  }
}

// A child with |n| sparse pages of random data (|fill|), or untouched ones
// that it fills itself from |pages_fd| when told to (|inside|). Killed by
// the destructor.
class Child {
 public:
  Child(uint64_t n, bool fill, int pages_fd = -1) : n_(n) {
    base_ = static_cast<char*>(mmap(nullptr, n * kStride * kPage, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (pipe(go_) != 0 || pipe(done_) != 0) return;
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ != 0) return;
    // Dies with the benchmark, killed or not.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(1);
    uint64_t x = 88172645463325252ull;
    if (fill) {
      for (uint64_t i = 0; i < n; ++i) FillRandom(base_ + i * kStride * kPage, kPage, &x);
    }
    char c = 'r';
    if (write(done_[1], &c, 1) != 1) _exit(1);
    if (pages_fd >= 0 && read(go_[0], &c, 1) == 1) {
      std::vector<iovec> iov(kBatch);
      uint64_t sum = 0;
      for (uint64_t b = 0; b < n / kBatch; ++b) {
        BatchIov(base_, b, iov.data());
        if (preadv(pages_fd, iov.data(), static_cast<int>(kBatch), static_cast<off_t>(b * kBatch * kPage)) !=
            static_cast<ssize_t>(kBatch * kPage)) {
          _exit(1);
        }
        for (const iovec& v : iov) sum += Checksum(v.iov_base, v.iov_len);
      }
      if (write(done_[1], &sum, 1) != 1) _exit(1);
    }
    pause();
    _exit(0);
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (int fd : {go_[0], go_[1], done_[0], done_[1]}) close(fd);
    munmap(base_, n_ * kStride * kPage);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  bool Ready() {
    char c;
    return pid_ > 0 && read(done_[0], &c, 1) == 1;
  }
  bool RunInside() {
    char c = 'g';
    return write(go_[1], &c, 1) == 1 && read(done_[0], &c, 1) == 1;
  }
  pid_t pid() const { return pid_; }
  char* base() const { return base_; }

 private:
  uint64_t n_;
  char* base_ = nullptr;
  pid_t pid_ = -1;
  int go_[2] = {-1, -1};
  int done_[2] = {-1, -1};
};

int NewShmFile(const char* name) {
  const std::string path = std::string("/dev/shm/") + name;
  unlink(path.c_str());
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  unlink(path.c_str());  // gone with its last descriptor
  return fd;
}

void Drain(benchmark::State& state, bool into_mapping) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  Child child(n, true);
  if (!child.Ready()) {
    state.SkipWithError("start the child");
    return;
  }
  std::vector<char> buf(kBatch * kPage);
  std::vector<iovec> remote(kBatch);
  for (auto _ : state) {
    state.PauseTiming();
    const int fd = NewShmFile("cf-sparse-bench-drain");
    char* map = nullptr;
    if (into_mapping) {
      if (ftruncate(fd, static_cast<off_t>(n * kPage)) != 0) state.SkipWithError("ftruncate");
      map = static_cast<char*>(mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    }
    state.ResumeTiming();
    for (uint64_t b = 0; b < n / kBatch; ++b) {
      BatchIov(child.base(), b, remote.data());
      iovec local{into_mapping ? map + b * kBatch * kPage : buf.data(), kBatch * kPage};
      if (process_vm_readv(child.pid(), &local, 1, remote.data(), kBatch, 0) != static_cast<ssize_t>(kBatch * kPage)) {
        state.SkipWithError("process_vm_readv");
        break;
      }
      if (!into_mapping &&
          pwrite(fd, buf.data(), kBatch * kPage, static_cast<off_t>(b * kBatch * kPage)) !=
              static_cast<ssize_t>(kBatch * kPage)) {
        state.SkipWithError("pwrite");
        break;
      }
    }
    if (into_mapping) munmap(map, n * kPage);
    state.PauseTiming();
    close(fd);
    state.ResumeTiming();
  }
}

// A pages file of |n| random pages.
int PagesFile(uint64_t n) {
  const int fd = NewShmFile("cf-sparse-bench-pages");
  std::vector<char> buf(kBatch * kPage);
  uint64_t x = 2463534242ull;
  for (uint64_t b = 0; b < n / kBatch; ++b) {
    FillRandom(buf.data(), buf.size(), &x);
    if (pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(b * buf.size())) != static_cast<ssize_t>(buf.size())) {
      close(fd);
      return -1;
    }
  }
  return fd;
}

void Fill(benchmark::State& state, bool inside) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  const int pages = PagesFile(n);
  if (pages < 0) {
    state.SkipWithError("write the pages file");
    return;
  }
  std::vector<char> buf(kBatch * kPage);
  std::vector<iovec> remote(kBatch);
  uint64_t sum = 0;
  std::unique_ptr<Child> child;
  for (auto _ : state) {
    state.PauseTiming();
    child.reset();  // the last one's exit is not timed
    child = std::make_unique<Child>(n, false, inside ? pages : -1);
    if (!child->Ready()) {
      state.SkipWithError("start the child");
      break;
    }
    state.ResumeTiming();
    if (inside) {
      if (!child->RunInside()) state.SkipWithError("fill in the child");
    } else {
      for (uint64_t b = 0; b < n / kBatch; ++b) {
        if (pread(pages, buf.data(), buf.size(), static_cast<off_t>(b * buf.size())) !=
            static_cast<ssize_t>(buf.size())) {
          state.SkipWithError("pread");
          break;
        }
        sum += Checksum(buf.data(), buf.size());
        BatchIov(child->base(), b, remote.data());
        iovec local{buf.data(), buf.size()};
        if (process_vm_writev(child->pid(), &local, 1, remote.data(), kBatch, 0) != static_cast<ssize_t>(buf.size())) {
          state.SkipWithError("process_vm_writev");
          break;
        }
      }
    }
  }
  child.reset();
  benchmark::DoNotOptimize(sum);
  close(pages);
}

void BM_DrainReadThenWrite(benchmark::State& state) { Drain(state, false); }
void BM_DrainIntoFileMapping(benchmark::State& state) { Drain(state, true); }
void BM_FillFromOutside(benchmark::State& state) { Fill(state, false); }
void BM_FillFromInside(benchmark::State& state) { Fill(state, true); }

// 65,536 pages: 256 MiB of data over a 1 GiB mapping.
BENCHMARK(BM_DrainReadThenWrite)->Arg(65536)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_DrainIntoFileMapping)->Arg(65536)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_FillFromOutside)->Arg(65536)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_FillFromInside)->Arg(65536)->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace
