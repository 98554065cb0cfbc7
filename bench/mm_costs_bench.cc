// What the kernel charges for the steps of a restore of many small
// mappings (README, "Scale", session 26), in this process, on N pages of
// one anonymous run (every other page read-only at the end, as
// tests/progs/scale.c "maps" leaves them):
//   BM_CopyOneRun/N       one UFFDIO_COPY of the whole run
//   BM_CopyPerPage/N      one UFFDIO_COPY per page, the run already parted
//                         into one VMA per page
//   BM_SplitsAfterCopy/N  the mprotect splits once the pages are in (the
//                         run's shared anon_vma is cloned at each split)
//   BM_SplitsBeforeCopy/N the same splits on a registered run with no page
//                         in yet
//   BM_MapEachPage/N      each page mapped on its own with its protection
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace {

constexpr uint64_t kPage = 4096;

int OpenUffd() {
  const int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));
  if (fd < 0) return -1;
  uffdio_api api{};
  api.api = UFFD_API;
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A run of |n| pages, registered with |uffd| (missing pages) unless -1.
char* MapRun(uint64_t n, int uffd) {
  void* p = mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  if (uffd >= 0) {
    uffdio_register reg{};
    reg.range = {reinterpret_cast<uint64_t>(p), n * kPage};
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
      munmap(p, n * kPage);
      return nullptr;
    }
  }
  return static_cast<char*>(p);
}

bool Copy(int uffd, char* dst, const char* src, uint64_t len) {
  uffdio_copy c{};
  c.dst = reinterpret_cast<uint64_t>(dst);
  c.src = reinterpret_cast<uint64_t>(src);
  c.len = len;
  return ioctl(uffd, UFFDIO_COPY, &c) == 0;
}

void Split(char* run, uint64_t n) {
  for (uint64_t i = 1; i < n; i += 2) mprotect(run + i * kPage, kPage, PROT_READ);
}

// The pages' data: a word at the head of each page, as in scale.c.
struct Source {
  explicit Source(uint64_t n) : n(n) {
    data = static_cast<char*>(mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
    for (uint64_t i = 0; i < n; ++i) memcpy(data + i * kPage, &i, sizeof(i));
  }
  ~Source() { munmap(data, n * kPage); }
  uint64_t n;
  char* data;
};

enum class Step { kCopyOneRun, kCopyPerPage, kSplitsAfterCopy, kSplitsBeforeCopy };

void Run(benchmark::State& state, Step step) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  const int uffd = OpenUffd();
  if (uffd < 0) {
    state.SkipWithError("no userfaultfd here");
    return;
  }
  Source src(n);
  for (auto _ : state) {
    state.PauseTiming();
    char* run = MapRun(n, uffd);
    if (run == nullptr) {
      state.SkipWithError("map or register the run");
      break;
    }
    if (step == Step::kCopyPerPage) Split(run, n);
    if (step == Step::kSplitsAfterCopy && !Copy(uffd, run, src.data, n * kPage)) state.SkipWithError("copy");
    state.ResumeTiming();
    switch (step) {
      case Step::kCopyOneRun:
        if (!Copy(uffd, run, src.data, n * kPage)) state.SkipWithError("copy");
        break;
      case Step::kCopyPerPage:
        for (uint64_t i = 0; i < n; ++i) {
          if (!Copy(uffd, run + i * kPage, src.data + i * kPage, kPage)) state.SkipWithError("copy");
        }
        break;
      case Step::kSplitsAfterCopy:
      case Step::kSplitsBeforeCopy:
        Split(run, n);
        break;
    }
    state.PauseTiming();
    munmap(run, n * kPage);  // unregisters too
    state.ResumeTiming();
  }
  close(uffd);
}

void BM_CopyOneRun(benchmark::State& state) { Run(state, Step::kCopyOneRun); }
void BM_CopyPerPage(benchmark::State& state) { Run(state, Step::kCopyPerPage); }
void BM_SplitsAfterCopy(benchmark::State& state) { Run(state, Step::kSplitsAfterCopy); }
void BM_SplitsBeforeCopy(benchmark::State& state) { Run(state, Step::kSplitsBeforeCopy); }

void BM_MapEachPage(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    // A free range: mapped, then unmapped.
    void* base = mmap(nullptr, n * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(base, n * kPage);
    char* at = static_cast<char*>(base);
    state.ResumeTiming();
    for (uint64_t i = 0; i < n; ++i) {
      mmap(at + i * kPage, kPage, (i & 1) ? PROT_READ : PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    }
    state.PauseTiming();
    munmap(base, n * kPage);
    state.ResumeTiming();
  }
}

BENCHMARK(BM_CopyOneRun)->Arg(15000)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_CopyPerPage)->Arg(15000)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_SplitsAfterCopy)->Arg(15000)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_SplitsBeforeCopy)->Arg(15000)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_MapEachPage)->Arg(15000)->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace
