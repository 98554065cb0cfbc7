// Finding the pages to dump in /proc/PID/pagemap.
//
// Fast path: the PAGEMAP_SCAN ioctl. The kernel walks the page tables and
// returns runs of pages with their categories, filtering by category masks
// itself, so a sparse VMA costs a few calls rather than 8 bytes per page.
// We call it in a loop with an output vector of at most 512 regions; each call
// resumes at max(walk_end, end of the last region returned) and anything
// before the resume point is clipped off, because on this kernel a call that
// needs more than 512 internal entries and reaches the end of its range can
// return a stale walk_end, which would report regions twice.
//
// Fallback: pread the 8-byte pagemap entries in large batches, turn each into
// the same PAGE_IS_* categories and apply the ioctl's matching rule in user
// space, so both paths give the same answers (scan_test.cc checks it). The
// zero page is recognized by its PFN, learned once from our own pagemap (PFNs
// are visible with CAP_SYS_ADMIN; without it zero pages are not excluded).
#include "pagemap/scan.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <string>

#include "common/interrupt.h"
#include "common/log.h"

#ifndef PAGEMAP_SCAN
// Linux 6.7 uapi (include/uapi/linux/fs.h); Debian 12's headers predate it.
struct page_region {
  __u64 start;
  __u64 end;
  __u64 categories;
};

struct pm_scan_arg {
  __u64 size;
  __u64 flags;
  __u64 start;
  __u64 end;
  __u64 walk_end;
  __u64 vec;
  __u64 vec_len;
  __u64 max_pages;
  __u64 category_inverted;
  __u64 category_mask;
  __u64 category_anyof_mask;
  __u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif
#ifndef PM_SCAN_WP_MATCHING
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif

namespace cf::pagemap {
namespace {

// CategorizedRange is handed to the kernel as its page_region vector.
static_assert(sizeof(CategorizedRange) == sizeof(page_region));
static_assert(offsetof(CategorizedRange, start) == offsetof(page_region, start));
static_assert(offsetof(CategorizedRange, end) == offsetof(page_region, end));
static_assert(offsetof(CategorizedRange, categories) == offsetof(page_region, categories));

// Regions per PAGEMAP_SCAN call: at most 512 (see the kernel bug above).
constexpr uint64_t kVecLen = 512;
// Pagemap entries per pread in the fallback (512 KiB).
constexpr uint64_t kBatchEntries = 64 * 1024;

// /proc/PID/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
constexpr uint64_t kPmPresent = 1ull << 63;
constexpr uint64_t kPmSwapped = 1ull << 62;
constexpr uint64_t kPmFile = 1ull << 61;       // file page or shared anon
constexpr uint64_t kPmGuard = 1ull << 58;      // guard region marker
constexpr uint64_t kPmUffdWp = 1ull << 57;     // write-protected by userfaultfd
constexpr uint64_t kPmPfnMask = (1ull << 55) - 1;

constexpr uint64_t kPresentOrSwapped = kPagePresent | kPageSwapped;
constexpr uint64_t kRawReturnMask =
    kPagePresent | kPageSwapped | kPageFile | kPagePfnZero | kPageHuge | kPageWritten;
constexpr uint64_t kHugePmdPages = 512;

std::string RangeContext(const char* what, pid_t pid, uint64_t start, uint64_t end) {
  char buf[128];
  snprintf(buf, sizeof(buf), "pagemap: %s pid %d [0x%llx-0x%llx)", what, static_cast<int>(pid),
           static_cast<unsigned long long>(start), static_cast<unsigned long long>(end));
  return buf;
}

Status CheckRange(pid_t pid, uint64_t start, uint64_t end) {
  if (start > end || ((start | end) & (kPageSize - 1)) != 0) {
    return Error(RangeContext("bad scan range", pid, start, end), EINVAL);
  }
  return OkStatus();
}

// One PAGEMAP_SCAN call on our own pagemap over the page of a stack variable.
bool ProbeScan(uint64_t return_mask) {
  UniqueFd fd(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  int local = 0;
  const uint64_t page = reinterpret_cast<uintptr_t>(&local) & ~(kPageSize - 1);
  page_region region{};
  pm_scan_arg arg{};
  arg.size = sizeof(arg);
  arg.start = page;
  arg.end = page + kPageSize;
  arg.vec = reinterpret_cast<uintptr_t>(&region);
  arg.vec_len = 1;
  arg.return_mask = return_mask;
  const int n = ioctl(fd.get(), PAGEMAP_SCAN, &arg);
  if (n < 0) LOG_DEBUG("pagemap: PAGEMAP_SCAN probe (return_mask 0x%llx) failed: errno %d",
                       static_cast<unsigned long long>(return_mask), errno);
  return n >= 0;
}

// Whether PAGE_IS_GUARD may be used in the masks (Linux 6.15+).
bool GuardCategorySupported() {
  static const bool supported = ProbeScan(kPageGuard);
  return supported;
}

// PFNs of the zero page and of the huge zero page, 0 when unknown.
struct ZeroPfns {
  uint64_t small = 0;
  uint64_t huge = 0;  // first PFN of the 2 MiB huge zero page

  bool IsZero(uint64_t pfn) const {
    if (small == 0) return false;  // PFNs hidden from us
    return pfn == small || (huge != 0 && pfn - huge < kHugePmdPages);
  }
};

// Reads our own pagemap entries for [addr, addr + n pages).
bool ReadOwnEntries(int fd, uint64_t addr, uint64_t* out, size_t n) {
  const ssize_t len = static_cast<ssize_t>(n * sizeof(uint64_t));
  return pread(fd, out, static_cast<size_t>(len), static_cast<off_t>((addr >> kPageShift) * 8)) == len;
}

// Maps fresh anonymous memory, reads it (mapping the zero page, or the huge
// zero page in a THP-enabled 2 MiB block) and looks at which PFN it got.
// A read fault does not always map the zero page (on some hosts it gets a
// fresh page of its own): so two separate areas are read, both kept mapped,
// and only a PFN that both got is the zero page. Taking a fresh page's PFN
// for the zero page would make the pagemap fallback skip a page that holds
// data once that PFN is reused.
ZeroPfns ProbeZeroPfns() {
  ZeroPfns z;
  UniqueFd fd(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return z;
  uint64_t a[2] = {}, b[2] = {};

  // Two pages with a hole between them: two VMAs' worth of separate faults.
  void* p = mmap(nullptr, 3 * kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return z;
  const uintptr_t p0 = reinterpret_cast<uintptr_t>(p), p2 = p0 + 2 * kPageSize;
  (void)*reinterpret_cast<volatile const char*>(p0);
  (void)*reinterpret_cast<volatile const char*>(p2);
  if (ReadOwnEntries(fd.get(), p0, a, 1) && ReadOwnEntries(fd.get(), p2, b, 1) && (a[0] & kPmPresent) &&
      (b[0] & kPmPresent) && (a[0] & kPmPfnMask) == (b[0] & kPmPfnMask)) {
    z.small = a[0] & kPmPfnMask;
  }
  munmap(p, 3 * kPageSize);
  if (z.small == 0) return z;

  // Huge zero page: read one byte of two aligned 2 MiB blocks under
  // MADV_HUGEPAGE. It is the huge zero page when each whole block got mapped
  // (the next page's PFN follows the first) and both blocks got the same.
  const uint64_t huge = kHugePmdPages * kPageSize;
  void* q = mmap(nullptr, 3 * huge, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (q == MAP_FAILED) return z;
  const uint64_t block = (reinterpret_cast<uintptr_t>(q) + huge - 1) & ~(huge - 1);
  if (madvise(reinterpret_cast<void*>(block), 2 * huge, MADV_HUGEPAGE) == 0) {
    (void)*reinterpret_cast<volatile const char*>(block);
    (void)*reinterpret_cast<volatile const char*>(block + huge);
    auto whole = [](const uint64_t* e) {
      return (e[0] & kPmPresent) && (e[1] & kPmPresent) && (e[1] & kPmPfnMask) == (e[0] & kPmPfnMask) + 1;
    };
    if (ReadOwnEntries(fd.get(), block, a, 2) && ReadOwnEntries(fd.get(), block + huge, b, 2) && whole(a) &&
        whole(b) && (a[0] & kPmPfnMask) == (b[0] & kPmPfnMask)) {
      z.huge = a[0] & kPmPfnMask;
    }
  }
  munmap(q, 3 * huge);
  return z;
}

const ZeroPfns& GetZeroPfns() {
  static const ZeroPfns z = [] {
    ZeroPfns found = ProbeZeroPfns();
    if (found.small == 0) {
      LOG_WARN("pagemap: the zero page was not found (PFNs hidden, or read faults do not map it here); "
               "the pagemap fallback will not skip zero pages");
    }
    return found;
  }();
  return z;
}

// The PAGE_IS_* categories of one pagemap entry (HUGE is not visible here).
inline uint64_t EntryCategories(uint64_t e, const ZeroPfns& zero) {
  uint64_t c = 0;
  if (e & kPmPresent) {
    c |= kPagePresent;
    if (zero.IsZero(e & kPmPfnMask)) c |= kPagePfnZero;
  }
  if (e & kPmSwapped) {
    c |= kPageSwapped;
    if (e & kPmGuard) c |= kPageGuard;
  }
  if (e & kPmFile) c |= kPageFile;
  if (!(e & kPmUffdWp)) c |= kPageWritten;
  return c;
}

}  // namespace

bool PagemapScanSupported() {
  static const bool supported = ProbeScan(kPresentOrSwapped);
  return supported;
}

Result<PageScanner> PageScanner::Open(pid_t pid, bool force_fallback) {
  const std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("pagemap: open " + path);
  const bool use_scan = !force_fallback && PagemapScanSupported();
  return PageScanner(pid, std::move(fd), use_scan);
}

PageScanner::Filter PageScanner::FilterFor(ScanMode mode) const {
  Filter f;
  f.anyof = kPresentOrSwapped;
  // Pages that must be absent: guard markers read as swapped but hold nothing.
  uint64_t absent = (!use_scan_ || GuardCategorySupported()) ? uint64_t{kPageGuard} : 0;
  switch (mode) {
    case ScanMode::kAnonPrivate:
      absent |= kPagePfnZero;
      break;
    case ScanMode::kFilePrivate:
      // Pages still shared with the page cache are the file's; COW copies are
      // anonymous, so PAGE_IS_FILE is clear on exactly the pages to dump.
      absent |= kPageFile | kPagePfnZero;
      break;
    case ScanMode::kShared:
      break;  // FILE is set on shmem pages: no filter on it
  }
  f.inverted = absent;
  f.mask = absent;
  f.return_mask = 0;  // equal (empty) categories let the kernel merge runs
  return f;
}

template <typename Emit>
Status PageScanner::WalkIoctl(uint64_t start, uint64_t end, const Filter& f, Emit&& emit) {
  regions_.resize(kVecLen);
  uint64_t cur = start;
  uint64_t emitted_end = start;  // nothing before this is reported again
  while (cur < end) {
    pm_scan_arg arg{};
    arg.size = sizeof(arg);
    arg.start = cur;
    arg.end = end;
    arg.vec = reinterpret_cast<uintptr_t>(regions_.data());
    arg.vec_len = kVecLen;
    arg.category_inverted = f.inverted;
    arg.category_mask = f.mask;
    arg.category_anyof_mask = f.anyof;
    arg.return_mask = f.return_mask;
    arg.flags = f.flags;
    ++syscalls_;
    const int n = ioctl(fd_.get(), PAGEMAP_SCAN, &arg);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Past the user address space ([vsyscall]) PAGEMAP_SCAN says EFAULT,
      // while pagemap reads as empty: let the entry walk answer there.
      if (errno == EFAULT) return WalkEntries(cur, end, f, emit);
      return ErrnoStatus(RangeContext("PAGEMAP_SCAN", pid_, cur, end));
    }
    uint64_t next = arg.walk_end;
    for (int i = 0; i < n; ++i) {
      const CategorizedRange& r = regions_[static_cast<size_t>(i)];
      const uint64_t s = std::max(r.start, emitted_end);
      const uint64_t e = std::min(r.end, end);
      next = std::max(next, r.end);
      if (s >= e) continue;
      emit(s, e, r.categories);
      emitted_end = e;
    }
    // The kernel stops early only when the vector is full.
    if (static_cast<uint64_t>(n) < kVecLen && arg.walk_end >= end) break;
    if (next <= cur) {
      if (static_cast<uint64_t>(n) < kVecLen) break;
      return Error(RangeContext("PAGEMAP_SCAN made no progress", pid_, cur, end), EIO);
    }
    cur = next;
  }
  return OkStatus();
}

template <typename Emit>
Status PageScanner::WalkEntries(uint64_t start, uint64_t end, const Filter& f, Emit&& emit) {
  const ZeroPfns& zero = GetZeroPfns();
  uint64_t run_start = 0;
  uint64_t run_end = 0;  // run_start == run_end: no open run
  uint64_t run_cats = 0;
  uint64_t addr = start;
  while (addr < end) {
    // A huge sparse mapping is read entry by entry here: stay stoppable.
    RETURN_IF_ERROR(CheckTerminated());
    const uint64_t want = std::min(kBatchEntries, (end - addr) >> kPageShift);
    if (buf_.size() < want) buf_.resize(want);
    ++syscalls_;
    const ssize_t got = pread(fd_.get(), buf_.data(), want * sizeof(uint64_t),
                              static_cast<off_t>((addr >> kPageShift) * sizeof(uint64_t)));
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(RangeContext("read pagemap", pid_, addr, end));
    }
    const uint64_t count = static_cast<uint64_t>(got) / sizeof(uint64_t);
    if (count == 0) break;  // past the end of the address space
    for (uint64_t i = 0; i < count; ++i, addr += kPageSize) {
      const uint64_t e = buf_[i];
      if (!(e & (kPmPresent | kPmSwapped))) continue;  // fast skip: never matches anyof
      const uint64_t cats = EntryCategories(e, zero);
      const uint64_t c = cats ^ f.inverted;
      if ((c & f.mask) != f.mask || (f.anyof != 0 && (c & f.anyof) == 0)) continue;
      const uint64_t out = cats & f.return_mask;
      if (run_end == addr && run_cats == out && run_start != run_end) {
        run_end = addr + kPageSize;
        continue;
      }
      if (run_start != run_end) emit(run_start, run_end, run_cats);
      run_start = addr;
      run_end = addr + kPageSize;
      run_cats = out;
    }
  }
  if (run_start != run_end) emit(run_start, run_end, run_cats);
  return OkStatus();
}

bool PageScanner::skips_holes() const { return use_scan_ && GuardCategorySupported(); }

bool PageScanner::guards_by_ioctl() const { return PagemapScanSupported() && GuardCategorySupported(); }

Result<RangeSet> PageScanner::Ranges(uint64_t start, uint64_t end, const Filter& f, bool use_ioctl) {
  RangeSet set;
  if (start == end) return set;
  auto emit = [&set](uint64_t s, uint64_t e, uint64_t) { set.Append({s, e}); };
  if (use_ioctl) {
    RETURN_IF_ERROR(WalkIoctl(start, end, f, emit));
  } else {
    RETURN_IF_ERROR(WalkEntries(start, end, f, emit));
  }
  return set;
}

Result<RangeSet> PageScanner::Scan(uint64_t start, uint64_t end, ScanMode mode) {
  RETURN_IF_ERROR(CheckRange(pid_, start, end));
  return Ranges(start, end, FilterFor(mode), use_scan_);
}

Result<RangeSet> PageScanner::ScanGuards(uint64_t start, uint64_t end) {
  RETURN_IF_ERROR(CheckRange(pid_, start, end));
  Filter f;
  f.mask = kPageGuard;
  f.anyof = kPageGuard;
  // Kernels whose PAGEMAP_SCAN does not know the category still mark guard
  // entries in /proc/PID/pagemap (PM_GUARD_REGION).
  return Ranges(start, end, f, guards_by_ioctl());
}

Status PageScanner::ScanWithGuards(uint64_t start, uint64_t end, ScanMode mode, RangeSet* pages,
                                   RangeSet* guards) {
  if (!use_scan_ || !GuardCategorySupported()) {
    ASSIGN_OR_RETURN(*pages, Scan(start, end, mode));
    ASSIGN_OR_RETURN(*guards, ScanGuards(start, end));
    return OkStatus();
  }
  RETURN_IF_ERROR(CheckRange(pid_, start, end));
  *pages = RangeSet();
  *guards = RangeSet();
  if (start == end) return OkStatus();
  Filter f = FilterFor(mode);
  // Guard entries read as swapped, and are neither file nor zero pages: with
  // GUARD no longer excluded they match, reported with their category.
  f.inverted &= ~uint64_t{kPageGuard};
  f.mask &= ~uint64_t{kPageGuard};
  f.return_mask = kPageGuard;
  auto emit = [&](uint64_t s, uint64_t e, uint64_t cats) { ((cats & kPageGuard) ? guards : pages)->Append({s, e}); };
  return WalkIoctl(start, end, f, emit);
}

Result<bool> PageScanner::WpAsyncRegistered(uint64_t start, uint64_t end) {
  RETURN_IF_ERROR(CheckRange(pid_, start, end));
  if (!use_scan_) return false;
  pm_scan_arg arg{};
  CategorizedRange region{};
  arg.size = sizeof(arg);
  arg.flags = PM_SCAN_CHECK_WPASYNC;
  arg.start = start;
  arg.end = end;
  arg.vec = reinterpret_cast<uintptr_t>(&region);
  arg.vec_len = 1;
  arg.max_pages = 1;  // the check is per VMA, made before any page is walked
  arg.category_anyof_mask = kPagePresent | kPageSwapped;
  ++syscalls_;
  if (ioctl(fd_.get(), PAGEMAP_SCAN, &arg) >= 0) return true;
  if (errno == EPERM) return false;
  return ErrnoStatus(RangeContext("PAGEMAP_SCAN (wp-async check)", pid_, start, end));
}

Result<RangeSet> PageScanner::ScanWritten(uint64_t start, uint64_t end, ScanMode mode, bool rearm) {
  RETURN_IF_ERROR(CheckRange(pid_, start, end));
  if (!use_scan_) return Error(RangeContext("write tracking needs PAGEMAP_SCAN", pid_, start, end), ENOTSUP);
  Filter f = FilterFor(mode);
  f.mask |= kPageWritten;  // not inverted: the page must be written
  f.flags = PM_SCAN_CHECK_WPASYNC | (rearm ? PM_SCAN_WP_MATCHING : 0);
  return Ranges(start, end, f, true);
}

Result<RangeSet> PageScanner::ScanUnprotected(uint64_t start, uint64_t end) {
  RETURN_IF_ERROR(CheckRange(pid_, start, end));
  if (!use_scan_) return Error(RangeContext("write-protect scan needs PAGEMAP_SCAN", pid_, start, end), ENOTSUP);
  Filter f;
  f.mask = kPageWritten;
  f.return_mask = kPageWritten;
  return Ranges(start, end, f, true);
}

Result<std::vector<CategorizedRange>> PageScanner::ScanRaw(uint64_t start, uint64_t end) {
  RETURN_IF_ERROR(CheckRange(pid_, start, end));
  std::vector<CategorizedRange> out;
  if (start == end) return out;
  Filter f;
  f.anyof = kPresentOrSwapped;
  f.return_mask = kRawReturnMask;
  auto emit = [&out](uint64_t s, uint64_t e, uint64_t cats) {
    if (!out.empty() && out.back().end == s && out.back().categories == cats) {
      out.back().end = e;
    } else {
      out.push_back({s, e, cats});
    }
  };
  if (use_scan_) {
    RETURN_IF_ERROR(WalkIoctl(start, end, f, emit));
  } else {
    RETURN_IF_ERROR(WalkEntries(start, end, f, emit));
  }
  return out;
}

}  // namespace cf::pagemap
