// Shared arena for the loaded images (restore/shared_heap.h).
//
// jemalloc lets an arena take its memory from hooks (extent_hooks_t,
// jemalloc >= 5): ours hand out consecutive pieces of one MAP_SHARED |
// MAP_NORESERVE anonymous mapping, reserved on first use, and never give
// memory back (dalloc, decommit and purge decline, so jemalloc keeps it).
#include "restore/shared_heap.h"

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <system_error>

#include "common/log.h"

// jemalloc's control interface; weak, so builds without jemalloc link too.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace cf::restore {
namespace {

// The layout of jemalloc's extent_hooks_t (include/jemalloc/jemalloc_typedefs.h).
struct ExtentHooks;
using AllocFn = void* (*)(ExtentHooks*, void*, size_t, size_t, bool*, bool*, unsigned);
using DallocFn = bool (*)(ExtentHooks*, void*, size_t, bool, unsigned);
using DestroyFn = void (*)(ExtentHooks*, void*, size_t, bool, unsigned);
using RangeFn = bool (*)(ExtentHooks*, void*, size_t, size_t, size_t, unsigned);
using SplitFn = bool (*)(ExtentHooks*, void*, size_t, size_t, size_t, bool, unsigned);
using MergeFn = bool (*)(ExtentHooks*, void*, size_t, void*, size_t, bool, unsigned);
struct ExtentHooks {
  AllocFn alloc;
  DallocFn dalloc;
  DestroyFn destroy;
  RangeFn commit;
  RangeFn decommit;
  RangeFn purge_lazy;
  RangeFn purge_forced;
  SplitFn split;
  MergeFn merge;
};

constexpr int kMadvPopulateWrite = 23;  // MADV_POPULATE_WRITE, Linux 5.14

// Virtual size of the shared mapping: pages are allocated when touched.
constexpr size_t kReserve = size_t{4} << 30;

// How far ahead of what jemalloc took the helper allocates pages: as much
// again as taken, at least kMinAhead and at most kMaxAhead, in steps of
// kStep.
constexpr size_t kMinAhead = size_t{4} << 20;
constexpr size_t kMaxAhead = size_t{64} << 20;
constexpr size_t kStep = size_t{1} << 20;

std::mutex g_mu;
std::condition_variable g_cv;  // g_used grew, or g_stop was set
uintptr_t g_base = 0;  // the shared mapping (0: not made, or failed)
size_t g_used = 0;
size_t g_populated = 0;  // [0, g_populated) of the mapping has its pages
bool g_stop = false;
unsigned g_arena = 0;
bool g_made = false;
bool g_arena_ok = false;

bool InShared(const void* p, size_t len) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return g_base != 0 && a >= g_base && a + len <= g_base + kReserve;
}

// Private memory once the shared mapping is full, aligned as asked.
void* PrivateAlloc(size_t size, size_t alignment) {
  const size_t len = size + alignment;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  const auto a = reinterpret_cast<uintptr_t>(m);
  const uintptr_t start = (a + alignment - 1) & ~(uintptr_t{alignment} - 1);
  if (start > a) munmap(m, start - a);
  if (start + size < a + len) munmap(reinterpret_cast<void*>(start + size), a + len - start - size);
  return reinterpret_cast<void*>(start);
}

void* Alloc(ExtentHooks*, void* new_addr, size_t size, size_t alignment, bool* zero, bool* commit, unsigned) {
  if (alignment == 0) alignment = 4096;
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_base != 0) {
    const uintptr_t next = g_base + g_used;
    const uintptr_t start = (next + alignment - 1) & ~(uintptr_t{alignment} - 1);
    const bool fits = start + size <= g_base + kReserve;
    if (fits && (new_addr == nullptr || reinterpret_cast<uintptr_t>(new_addr) == start)) {
      g_used = start + size - g_base;
      // Allocated now in one call rather than by a fault per page as the
      // images are parsed into it (a fault costs several us on a
      // paravirtualised guest), unless the helper (PopulateAhead) already
      // did. Best effort: where the kernel lacks it, the pages come by
      // faults as before.
      const uintptr_t have = g_base + g_populated;
      if (start + size > have) {
        const uintptr_t from = std::max(start, have);
        madvise(reinterpret_cast<void*>(from), start + size - from, kMadvPopulateWrite);
        g_populated = g_used;
      }
      g_cv.notify_one();
      *zero = true;  // never handed out before
      *commit = true;
      return reinterpret_cast<void*>(start);
    }
  }
  if (new_addr != nullptr) return nullptr;  // jemalloc asks to extend in place: only inside the mapping
  void* p = PrivateAlloc(size, alignment);
  if (p != nullptr) {
    *zero = true;
    *commit = true;
  }
  return p;
}

bool Decline(ExtentHooks*, void*, size_t, bool, unsigned) { return true; }
void Keep(ExtentHooks*, void*, size_t, bool, unsigned) {}
bool DeclineRange(ExtentHooks*, void*, size_t, size_t, size_t, unsigned) { return true; }
bool Committed(ExtentHooks*, void*, size_t, size_t, size_t, unsigned) { return false; }
bool Split(ExtentHooks*, void*, size_t, size_t, size_t, bool, unsigned) { return false; }
// Two pieces merge only where both are in the shared mapping (a private
// fallback piece may lie right next to it).
bool Merge(ExtentHooks*, void* a, size_t a_len, void* b, size_t b_len, bool, unsigned) {
  std::lock_guard<std::mutex> lock(g_mu);
  return !(InShared(a, a_len) && InShared(b, b_len));
}

ExtentHooks g_hooks = {Alloc, Decline, Keep, Committed, DeclineRange, DeclineRange, DeclineRange, Split, Merge};

// The shared arena's index, made on first use; false where there is none.
// (g_mu is not held while the arena is made: jemalloc allocates the arena's
// own metadata through the hooks.)
bool SharedArena(unsigned* index) {
  static std::mutex make_mu;
  if (mallctl == nullptr) return false;
  std::lock_guard<std::mutex> lock(make_mu);
  if (!g_made) {
    g_made = true;
    void* m = mmap(nullptr, kReserve, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      LOG_DEBUG("restore: no shared mapping for the images (%s)", strerror(errno));
      return false;
    }
    {
      std::lock_guard<std::mutex> hooks_lock(g_mu);
      g_base = reinterpret_cast<uintptr_t>(m);
    }
    ExtentHooks* hooks = &g_hooks;
    size_t len = sizeof(g_arena);
    if (const int r = mallctl("arenas.create", &g_arena, &len, &hooks, sizeof(hooks)); r != 0) {
      LOG_DEBUG("restore: no shared arena for the images (jemalloc error %d)", r);
      std::lock_guard<std::mutex> hooks_lock(g_mu);
      g_base = 0;  // the mapping stays: nothing of it is handed out again
      return false;
    }
    g_arena_ok = true;
  }
  if (!g_arena_ok) return false;
  *index = g_arena;
  return true;
}

// The helper thread of a scope: allocates the mapping's pages ahead of
// jemalloc's requests, on the core the loading thread leaves idle (the
// images of a sparse process of 1 GiB take ~20 MiB: 5,000 pages at
// ~1.5 us). Ends when the scope does, or at the first refusal.
void PopulateAhead() {
  std::unique_lock<std::mutex> lock(g_mu);
  while (!g_stop) {
    const size_t want = std::min(kReserve, g_used + std::clamp(g_used, kMinAhead, kMaxAhead));
    if (g_populated >= want) {
      g_cv.wait(lock);
      continue;
    }
    const size_t from = g_populated;
    const size_t len = std::min(kStep, want - from);
    lock.unlock();
    const int r = madvise(reinterpret_cast<void*>(g_base + from), len, kMadvPopulateWrite);
    lock.lock();
    if (r != 0) return;
    g_populated = std::max(g_populated, from + len);
  }
}

}  // namespace

SharedHeapScope::SharedHeapScope() {
  unsigned arena = 0;
  if (!SharedArena(&arena)) return;
  // The helper first, its state allocated in private memory. Without it
  // (no thread to be had) the loading thread allocates the pages.
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_stop = false;
  }
  try {
    ahead_ = std::thread(PopulateAhead);
  } catch (const std::system_error& e) {
    LOG_DEBUG("restore: no helper thread for the shared heap (%s)", e.what());
  }
  size_t len = sizeof(previous_);
  // Blocks this thread cached before go back first: they are private.
  mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
  if (mallctl("thread.arena", &previous_, &len, &arena, sizeof(arena)) != 0) {
    StopHelper();
    return;
  }
  active_ = true;
}

void SharedHeapScope::StopHelper() {
  if (!ahead_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_stop = true;
  }
  g_cv.notify_all();
  ahead_.join();
}

SharedHeapScope::~SharedHeapScope() {
  StopHelper();
  if (!active_) return;
  mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
  mallctl("thread.arena", nullptr, nullptr, &previous_, sizeof(previous_));
}

void ForgetCachedBlocks() {
  if (mallctl != nullptr) mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
}

}  // namespace cf::restore
