#include "pagemap/scan.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace cf::pagemap {

// gtest printers (internal linkage: other test files may define their own).
[[maybe_unused]] static void PrintTo(const PageRange& r, std::ostream* os) {
  *os << "[0x" << std::hex << r.start << ", 0x" << r.end << ")" << std::dec;
}

namespace {

constexpr uint64_t P = kPageSize;
constexpr uint64_t kAllCats = kPagePresent | kPageSwapped | kPageFile | kPagePfnZero | kPageWritten;

// A forked child that runs a setup function on memory mapped before the fork,
// reports ready, and pauses until killed.
class Child {
 public:
  explicit Child(const std::function<void()>& setup) {
    int p[2];
    if (pipe(p) != 0) return;
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      close(p[0]);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      setup();
      char c = 1;
      if (write(p[1], &c, 1) != 1) _exit(1);
      for (;;) pause();
    }
    close(p[1]);
    char c = 0;
    ready_ = pid_ > 0 && read(p[0], &c, 1) == 1;
    close(p[0]);
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool ready() const { return ready_; }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

// An anonymous or file mapping owned by the test.
struct Mapping {
  Mapping(size_t len, int prot, int flags, int fd = -1) : len(len) {
    void* p = mmap(nullptr, len, prot, flags, fd, 0);
    base = p == MAP_FAILED ? 0 : reinterpret_cast<uintptr_t>(p);
  }
  ~Mapping() {
    if (base) munmap(reinterpret_cast<void*>(base), len);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  char* page(uint64_t i) const { return reinterpret_cast<char*>(base + i * P); }
  uint64_t end() const { return base + len; }

  uintptr_t base = 0;
  size_t len;
};

void WritePage(char* p, char v) { *reinterpret_cast<volatile char*>(p) = v; }
char ReadPage(const char* p) { return *reinterpret_cast<const volatile char*>(p); }

// The set of the given pages of a mapping.
RangeSet Pages(const Mapping& m, const std::vector<uint64_t>& pages) {
  RangeSet s;
  for (uint64_t i : pages) s.Add({m.base + i * P, m.base + (i + 1) * P});
  return s;
}

// Raw ranges expanded to one (address, categories) pair per page.
std::vector<std::pair<uint64_t, uint64_t>> PerPage(const std::vector<CategorizedRange>& raw, uint64_t mask) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const CategorizedRange& r : raw) {
    for (uint64_t a = r.start; a < r.end; a += P) out.push_back({a, r.categories & mask});
  }
  return out;
}

// Raw ranges are sorted, non-empty, non-overlapping, and adjacent ones differ.
void ExpectWellFormed(const std::vector<CategorizedRange>& raw) {
  for (size_t i = 0; i < raw.size(); ++i) {
    ASSERT_LT(raw[i].start, raw[i].end) << "region " << i;
    if (i == 0) continue;
    ASSERT_LE(raw[i - 1].end, raw[i].start) << "region " << i << " overlaps the previous one";
    if (raw[i - 1].end == raw[i].start) {
      ASSERT_NE(raw[i - 1].categories, raw[i].categories) << "region " << i << " not merged";
    }
  }
}

// Whether our pagemap shows PFNs (needs CAP_SYS_ADMIN); the fallback needs
// them to recognize the zero page.
bool PfnsVisible() {
  static const bool visible = [] {
    static volatile char probe = 1;
    probe = 2;
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    uint64_t e = 0;
    const uint64_t addr = reinterpret_cast<uintptr_t>(&probe);
    const bool ok = pread(fd, &e, 8, static_cast<off_t>(addr / P * 8)) == 8;
    close(fd);
    return ok && (e & ((1ull << 55) - 1)) != 0;
  }();
  return visible;
}

// Whether a read fault on private anonymous memory maps the kernel's shared
// zero page: two pages read (never written) then have the same PFN. Not on
// every machine: some VMs here give each read fault a page of its own, and
// such pages are then ordinary written pages to a dump.
bool ReadFaultsMapZeroPage() {
  static const bool zero = [] {
    if (!PfnsVisible()) return true;  // cannot tell: assume the usual kernel
    void* m = mmap(nullptr, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return true;
    (void)ReadPage(static_cast<char*>(m));
    (void)ReadPage(static_cast<char*>(m) + P);
    uint64_t e[2] = {0, 0};
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    const bool ok = fd >= 0 && pread(fd, e, sizeof(e), static_cast<off_t>(reinterpret_cast<uintptr_t>(m) / P * 8)) ==
                                   static_cast<ssize_t>(sizeof(e));
    if (fd >= 0) close(fd);
    munmap(m, 2 * P);
    constexpr uint64_t kPfn = (1ull << 55) - 1;
    return !ok || (e[0] & kPfn) == (e[1] & kPfn);
  }();
  return zero;
}

// Runs each test with the PAGEMAP_SCAN path (true) and the fallback (false).
class ScanPathTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam() && !PagemapScanSupported()) GTEST_SKIP() << "kernel lacks PAGEMAP_SCAN";
    if (!GetParam() && !PfnsVisible()) GTEST_SKIP() << "PFNs hidden (no CAP_SYS_ADMIN): fallback keeps zero pages";
  }

  PageScanner Open(pid_t pid) {
    auto s = PageScanner::Open(pid, /*force_fallback=*/!GetParam());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->uses_pagemap_scan(), GetParam());
    return std::move(s).value();
  }

  static RangeSet MustScan(PageScanner& s, uint64_t start, uint64_t end, ScanMode mode) {
    auto r = s.Scan(start, end, mode);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : RangeSet();
  }
  static std::vector<CategorizedRange> MustScanRaw(PageScanner& s, uint64_t start, uint64_t end) {
    auto r = s.ScanRaw(start, end);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : std::vector<CategorizedRange>();
  }
};

INSTANTIATE_TEST_SUITE_P(Paths, ScanPathTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return std::string(i.param ? "PagemapScan" : "Fallback");
                         });

// Written pages, read-only pages (the zero page) and untouched pages.
TEST_P(ScanPathTest, AnonPrivateWrittenReadUntouched) {
  Mapping m(64 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  ASSERT_NE(m.base, 0u);
  const std::vector<uint64_t> written = {0, 1, 2, 3, 10, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 63};
  // Where read faults may give pages of their own (no zero page, or only
  // sometimes: ReadFaultsMapZeroPage), read pages would be the process's or
  // not from one page to the next: the child then only writes.
  const bool zero = ReadFaultsMapZeroPage();
  const std::vector<uint64_t> read = zero ? std::vector<uint64_t>{5, 6, 7, 30, 40} : std::vector<uint64_t>{};
  Child child([&] {
    for (uint64_t i : written) WritePage(m.page(i), static_cast<char>(i + 1));
    for (uint64_t i : read) (void)ReadPage(m.page(i));
  });
  ASSERT_TRUE(child.ready());
  PageScanner s = Open(child.pid());

  std::vector<uint64_t> touched = written;
  touched.insert(touched.end(), read.begin(), read.end());
  const RangeSet want_written = Pages(m, written);
  EXPECT_EQ(MustScan(s, m.base, m.end(), ScanMode::kAnonPrivate).ranges(), want_written.ranges());
  EXPECT_EQ(MustScan(s, m.base, m.end(), ScanMode::kFilePrivate).ranges(), want_written.ranges());
  EXPECT_EQ(MustScan(s, m.base, m.end(), ScanMode::kShared).ranges(), Pages(m, touched).ranges());

  // A sub-range cuts ranges at its ends.
  EXPECT_EQ(MustScan(s, m.base + 2 * P, m.base + 25 * P, ScanMode::kAnonPrivate).ranges(),
            Pages(m, {2, 3, 10, 20, 21, 22, 23, 24}).ranges());
  EXPECT_TRUE(MustScan(s, m.base + 4 * P, m.base + 4 * P, ScanMode::kAnonPrivate).empty());
  EXPECT_TRUE(MustScan(s, m.base + 41 * P, m.base + 63 * P, ScanMode::kAnonPrivate).empty());

  // Raw categories, page by page.
  const auto raw = MustScanRaw(s, m.base, m.end());
  ExpectWellFormed(raw);
  std::vector<std::pair<uint64_t, uint64_t>> want_raw;
  for (uint64_t i = 0; i < 64; ++i) {
    const bool w = std::find(written.begin(), written.end(), i) != written.end();
    const bool r = std::find(read.begin(), read.end(), i) != read.end();
    if (w) want_raw.push_back({m.base + i * P, kPagePresent | kPageWritten});
    if (r) want_raw.push_back({m.base + i * P, kPagePresent | kPageWritten | kPagePfnZero});
  }
  EXPECT_EQ(PerPage(raw, kAllCats), want_raw);
  for (const CategorizedRange& r : raw) EXPECT_EQ(r.categories & kPageHuge, 0u);
}

// MAP_PRIVATE file mapping: only the written (COWed) pages are the process's.
TEST_P(ScanPathTest, FilePrivateReportsWrittenPagesOnly) {
  char path[] = "/tmp/cf_scan_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  std::vector<char> data(32 * P, static_cast<char>(0xab));
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  Mapping m(32 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd);
  close(fd);
  ASSERT_NE(m.base, 0u);
  const std::vector<uint64_t> written = {4, 5, 10, 20, 21, 22, 23};
  Child child([&] {
    for (uint64_t i = 0; i < 8; ++i) (void)ReadPage(m.page(i));
    for (uint64_t i : written) WritePage(m.page(i), 1);
    (void)ReadPage(m.page(30));
  });
  ASSERT_TRUE(child.ready());
  PageScanner s = Open(child.pid());

  EXPECT_EQ(MustScan(s, m.base, m.end(), ScanMode::kFilePrivate).ranges(), Pages(m, written).ranges());

  // Raw: the COW copies are anonymous, the pages only read are the file's.
  const auto raw = MustScanRaw(s, m.base, m.end());
  ExpectWellFormed(raw);
  RangeSet present;
  for (const auto& [addr, cats] : PerPage(raw, kAllCats)) {
    const uint64_t i = (addr - m.base) / P;
    const bool w = std::find(written.begin(), written.end(), i) != written.end();
    EXPECT_EQ(cats & kPageFile, w ? 0u : uint64_t{kPageFile}) << "page " << i;
    EXPECT_EQ(cats & kPagePresent, uint64_t{kPagePresent}) << "page " << i;
    present.Add({addr, addr + P});
  }
  for (uint64_t i : {0, 1, 2, 3, 6, 7, 30}) EXPECT_TRUE(present.Contains(m.base + i * P)) << "page " << i;
}

// MAP_SHARED | MAP_ANONYMOUS: touched pages are shmem pages (FILE set).
TEST_P(ScanPathTest, SharedAnonReportsTouchedPages) {
  Mapping m(32 * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  ASSERT_NE(m.base, 0u);
  Child child([&] {
    for (uint64_t i : {1, 2, 3, 17}) WritePage(m.page(i), 7);
    (void)ReadPage(m.page(8));
  });
  ASSERT_TRUE(child.ready());
  PageScanner s = Open(child.pid());

  const RangeSet want = Pages(m, {1, 2, 3, 8, 17});
  EXPECT_EQ(MustScan(s, m.base, m.end(), ScanMode::kShared).ranges(), want.ranges());
  EXPECT_EQ(MustScan(s, m.base, m.end(), ScanMode::kAnonPrivate).ranges(), want.ranges());
  EXPECT_TRUE(MustScan(s, m.base, m.end(), ScanMode::kFilePrivate).empty());
  for (const CategorizedRange& r : MustScanRaw(s, m.base, m.end())) {
    EXPECT_EQ(r.categories & kAllCats, kPagePresent | kPageFile | kPageWritten);
  }
}

// Guard markers read as swapped in pagemap but hold no data.
TEST_P(ScanPathTest, GuardRegionsAreNotDumped) {
  constexpr int kMadvGuardInstall = 102;
  Mapping m(16 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  ASSERT_NE(m.base, 0u);
  Child child([&] {
    WritePage(m.page(0), 1);
    WritePage(m.page(9), 1);
    madvise(m.page(4), 2 * P, kMadvGuardInstall);
  });
  ASSERT_TRUE(child.ready());
  PageScanner s = Open(child.pid());
  EXPECT_EQ(MustScan(s, m.base, m.end(), ScanMode::kAnonPrivate).ranges(), Pages(m, {0, 9}).ranges());
  EXPECT_EQ(MustScan(s, m.base, m.end(), ScanMode::kShared).ranges(), Pages(m, {0, 9}).ranges());
  // The same pages and guards in one walk as in two.
  auto guards = s.ScanGuards(m.base, m.end());
  ASSERT_TRUE(guards.ok()) << guards.status().ToString();
  for (ScanMode mode : {ScanMode::kAnonPrivate, ScanMode::kShared}) {
    RangeSet pages, both_guards;
    ASSERT_TRUE(s.ScanWithGuards(m.base, m.end(), mode, &pages, &both_guards).ok());
    EXPECT_EQ(pages.ranges(), Pages(m, {0, 9}).ranges());
    EXPECT_EQ(both_guards.ranges(), guards->ranges());
  }
  if (s.guards_by_ioctl()) {
    EXPECT_EQ(guards->ranges(), Pages(m, {4, 5}).ranges());
  }
}

// Many more regions than one PAGEMAP_SCAN call returns (512): the loop must
// resume correctly, and the stale-walk_end kernel bug must not produce
// duplicates.
TEST_P(ScanPathTest, StaleWalkEndNoDuplicates) {
  constexpr uint64_t kPages = (64ull << 20) / P;
  Mapping m(kPages * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  ASSERT_NE(m.base, 0u);
  madvise(reinterpret_cast<void*>(m.base), m.len, MADV_NOHUGEPAGE);
  // Page i: written if i % 2 == 0, zero page if i % 4 == 1 (only where
  // read faults map the zero page: see ReadFaultsMapZeroPage), untouched
  // else. Either way far more regions than one call's 512 entries.
  const bool zero = ReadFaultsMapZeroPage();
  Child child([&] {
    for (uint64_t i = 0; i < kPages; ++i) {
      if (i % 2 == 0) WritePage(m.page(i), 1);
      if (zero && i % 4 == 1) (void)ReadPage(m.page(i));
    }
  });
  ASSERT_TRUE(child.ready());
  PageScanner s = Open(child.pid());

  RangeSet want;
  for (uint64_t i = 0; i < kPages; i += 2) want.Append({m.base + i * P, m.base + (i + 1) * P});
  const uint64_t before = s.syscalls();
  const RangeSet got = MustScan(s, m.base, m.end(), ScanMode::kAnonPrivate);
  EXPECT_EQ(got.size(), kPages / 2);
  EXPECT_TRUE(got.ranges() == want.ranges()) << "scan differs from the written pages";
  if (GetParam()) {
    EXPECT_GE(s.syscalls() - before, kPages / 2 / 512);
  }

  // Raw: W Z W - W Z W - ...: three regions per four pages (W - W - ...:
  // two), each once.
  const auto raw = MustScanRaw(s, m.base, m.end());
  ExpectWellFormed(raw);
  const uint64_t per4 = zero ? 3 : 2;
  ASSERT_EQ(raw.size(), kPages / 4 * per4);
  for (size_t k = 0; k < raw.size(); ++k) {
    const uint64_t i = zero ? k / 3 * 4 + k % 3 : 2 * k;
    ASSERT_EQ(raw[k].start, m.base + i * P) << "region " << k;
    ASSERT_EQ(raw[k].end, m.base + (i + 1) * P) << "region " << k;
    const uint64_t want_cats = kPagePresent | kPageWritten | (i % 4 == 1 ? uint64_t{kPagePfnZero} : 0);
    ASSERT_EQ(raw[k].categories & kAllCats, want_cats) << "region " << k;
  }

  // Windows that start and end mid-pattern, across call boundaries.
  for (uint64_t lo : {uint64_t{1}, uint64_t{1023}, uint64_t{5000}}) {
    const uint64_t hi = lo + 3001;
    EXPECT_EQ(MustScan(s, m.base + lo * P, m.base + hi * P, ScanMode::kAnonPrivate).ranges(),
              want.Clip(m.base + lo * P, m.base + hi * P).ranges());
  }
}

TEST_P(ScanPathTest, RejectsBadRanges) {
  PageScanner s = Open(getpid());
  auto r = s.Scan(P + 1, 2 * P, ScanMode::kAnonPrivate);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().err(), EINVAL);
  EXPECT_FALSE(s.Scan(2 * P, P, ScanMode::kAnonPrivate).ok());
  EXPECT_FALSE(s.ScanRaw(0, P - 1).ok());
}

// [vsyscall] lies past the user address space: PAGEMAP_SCAN refuses it with
// EFAULT, pagemap reads it as empty; both paths must answer "nothing".
TEST_P(ScanPathTest, BeyondUserAddressSpaceIsEmpty) {
  PageScanner s = Open(getpid());
  EXPECT_TRUE(MustScan(s, 0xffffffffff600000ull, 0xffffffffff601000ull, ScanMode::kAnonPrivate).empty());
  EXPECT_TRUE(MustScanRaw(s, 0xffffffffff600000ull, 0xffffffffff601000ull).empty());
  // Straddling the end of the user address space (47-bit on x86_64): the
  // part above it adds nothing.
  const uint64_t top = 1ull << 47;
  EXPECT_EQ(MustScan(s, top - 16 * P, top + 16 * P, ScanMode::kShared).ranges(),
            MustScan(s, top - 16 * P, top, ScanMode::kShared).ranges());
}

// Synchronous userfaultfd write-protect (dump --live, engine/live.h): the
// pages whose write-protect bit is gone are those reported.
TEST(PageScannerTest, ScanUnprotectedFindsPagesWithoutTheBit) {
  if (!PagemapScanSupported()) GTEST_SKIP() << "kernel lacks PAGEMAP_SCAN";
  Mapping m(16 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  ASSERT_NE(m.base, 0u);
  memset(reinterpret_cast<void*>(m.base), 1, 16 * P);
  int uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (uffd < 0) GTEST_SKIP() << "no userfaultfd here";
  uffdio_api api{};
  api.api = UFFD_API;
  ASSERT_EQ(ioctl(uffd, UFFDIO_API, &api), 0);
  uffdio_register reg{};
  reg.range = {m.base, 16 * P};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
    close(uffd);
    GTEST_SKIP() << "no write-protect mode";
  }
  auto protect = [&](uint64_t first, uint64_t pages) {
    uffdio_writeprotect w{};
    w.range = {m.base + first * P, pages * P};
    w.mode = UFFDIO_WRITEPROTECT_MODE_WP;
    return ioctl(uffd, UFFDIO_WRITEPROTECT, &w);
  };
  // Pages 0-7 and 12 protected; the others (never written from here on: a
  // write would wait for a handler) are not.
  ASSERT_EQ(protect(0, 8), 0);
  ASSERT_EQ(protect(12, 1), 0);
  auto s = PageScanner::Open(getpid());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto open = s->ScanUnprotected(m.base, m.base + 16 * P);
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  std::vector<PageRange> got(open->begin(), open->end());
  std::vector<PageRange> want = {{m.base + 8 * P, m.base + 12 * P}, {m.base + 13 * P, m.base + 16 * P}};
  EXPECT_EQ(got, want);
  close(uffd);  // unregisters and drops the protection
}

TEST(PageScannerTest, OpenMissingProcessFails) {
  auto s = PageScanner::Open(0x3fffffff);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().err(), ENOENT);
}

TEST(PageScannerTest, PagemapScanProbeIsStable) {
  EXPECT_EQ(PagemapScanSupported(), PagemapScanSupported());
  auto s = PageScanner::Open(getpid());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->uses_pagemap_scan(), PagemapScanSupported());
  auto f = PageScanner::Open(getpid(), /*force_fallback=*/true);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->uses_pagemap_scan());
}

struct MapsVma {
  uint64_t start, end;
  std::string name;
};

std::vector<MapsVma> ReadMapsOf(pid_t pid) {
  std::vector<MapsVma> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(in, line)) {
    MapsVma v{};
    char name[512] = "";
    if (sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64 " %*s %*s %*s %*s %511s", &v.start, &v.end, name) < 2) continue;
    v.name = name;
    out.push_back(v);
  }
  return out;
}

// Both paths give the same answers on every VMA of a real process, in every
// mode (the test binary itself, forked: libraries, heap, stack, our regions).
TEST(PageScannerTest, BothPathsAgreeOnWholeProcess) {
  if (!PagemapScanSupported()) GTEST_SKIP() << "kernel lacks PAGEMAP_SCAN";
  if (!PfnsVisible()) GTEST_SKIP() << "PFNs hidden (no CAP_SYS_ADMIN): fallback keeps zero pages";
  Mapping anon(256 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  Mapping shared(64 * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  ASSERT_NE(anon.base, 0u);
  ASSERT_NE(shared.base, 0u);
  Child child([&] {
    // khugepaged may collapse the child's pages (zero pages become real
    // ones) between the two scans; keep it away from this mm.
    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    for (uint64_t i = 0; i < 256; i += 3) WritePage(anon.page(i), 1);
    for (uint64_t i = 1; i < 256; i += 5) (void)ReadPage(anon.page(i));
    for (uint64_t i = 0; i < 64; i += 2) WritePage(shared.page(i), 1);
  });
  ASSERT_TRUE(child.ready());
  auto fast = PageScanner::Open(child.pid());
  auto slow = PageScanner::Open(child.pid(), /*force_fallback=*/true);
  ASSERT_TRUE(fast.ok() && slow.ok());
  int compared = 0;
  for (const MapsVma& v : ReadMapsOf(child.pid())) {
    // VM_PFNMAP / special mappings: PAGEMAP_SCAN skips them, pagemap does not.
    if (v.name.rfind("[vvar", 0) == 0 || v.name == "[vsyscall]") continue;
    // Huge reservations (ASan's shadow: terabytes) would take the fallback
    // minutes, 8 bytes per page.
    if (v.end - v.start > (256ull << 20)) continue;
    // The child is idle, but the kernel may still change its pages between
    // two scans (reclaim of clean file pages, migration): a difference must
    // persist over a few rescans to count.
    for (ScanMode mode : {ScanMode::kAnonPrivate, ScanMode::kFilePrivate, ScanMode::kShared}) {
      for (int attempt = 0;; ++attempt) {
        auto a = fast->Scan(v.start, v.end, mode);
        auto b = slow->Scan(v.start, v.end, mode);
        ASSERT_TRUE(a.ok() && b.ok());
        if (a->ranges() == b->ranges()) break;
        if (attempt == 2) {
          EXPECT_EQ(a->ranges(), b->ranges()) << v.name << " mode " << static_cast<int>(mode);
          break;
        }
      }
      ++compared;
    }
    for (int attempt = 0;; ++attempt) {
      auto ra = fast->ScanRaw(v.start, v.end);
      auto rb = slow->ScanRaw(v.start, v.end);
      ASSERT_TRUE(ra.ok() && rb.ok());
      // The fallback cannot see HUGE; compare the rest page by page.
      if (PerPage(*ra, kAllCats) == PerPage(*rb, kAllCats)) break;
      if (attempt == 2) {
        EXPECT_EQ(PerPage(*ra, kAllCats), PerPage(*rb, kAllCats)) << v.name;
        break;
      }
    }
  }
  EXPECT_GT(compared, 10);
}

}  // namespace
}  // namespace cf::pagemap
