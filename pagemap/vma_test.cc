#include "pagemap/vma.h"

#include "common/io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace cf::pagemap {
namespace {

// Copied from /proc/self/maps of `cat` on x86_64 (kernel 6.18).
constexpr std::string_view kMaps =
    "55f3bd613000-55f3bd615000 r--p 00000000 fe:00 247134                     /usr/bin/cat\n"
    "55f3bd615000-55f3bd61a000 r-xp 00002000 fe:00 247134                     /usr/bin/cat\n"
    "55f3cd521000-55f3cd542000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f37e7039000-7f37e705b000 rw-p 00000000 00:00 0 \n"
    "7f37e70b6000-7f37e70b7000 r--p 00000000 fe:00 320479                     "
    "/usr/lib/locale/C.utf8/LC_MESSAGES/SYS_LC_MESSAGES\n"
    "7f37e728f000-7f37e7291000 rw-p 001d3000 fe:00 332835                     "
    "/usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "7f37e72a1000-7f37e72a8000 r--s 00000000 fe:00 332280                     "
    "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache\n"
    "7f37e72ab000-7f37e72af000 r--p 00000000 00:00 0                          [vvar]\n"
    "7f37e72af000-7f37e72b1000 r--p 00000000 00:00 0                          [vvar_vclock]\n"
    "7f37e72b1000-7f37e72b3000 r-xp 00000000 00:00 0                          [vdso]\n"
    "7ffcb2f63000-7ffcb2f84000 rw-p 00000000 00:00 0                          [stack]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

TEST(VmaParseTest, RealMaps) {
  auto r = ParseMaps(kMaps);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& v = *r;
  ASSERT_EQ(v.size(), 12u);

  EXPECT_EQ(v[0].start, 0x55f3bd613000u);
  EXPECT_EQ(v[0].end, 0x55f3bd615000u);
  EXPECT_EQ(v[0].prot, static_cast<uint32_t>(PROT_READ));
  EXPECT_FALSE(v[0].shared);
  EXPECT_EQ(v[0].dev_major, 0xfeu);
  EXPECT_EQ(v[0].dev_minor, 0u);
  EXPECT_EQ(v[0].inode, 247134u);
  EXPECT_EQ(v[0].path, "/usr/bin/cat");
  EXPECT_FALSE(v[0].deleted);
  EXPECT_TRUE(v[0].is_file());
  EXPECT_EQ(v[0].size(), 0x2000u);
  EXPECT_EQ(v[0].pages(), 2u);
  EXPECT_TRUE(v[0].vmflags.empty());

  EXPECT_EQ(v[1].prot, static_cast<uint32_t>(PROT_READ | PROT_EXEC));
  EXPECT_EQ(v[1].pgoff, 0x2000u);
  EXPECT_EQ(v[2].path, "[heap]");
  EXPECT_FALSE(v[2].is_file());
  EXPECT_EQ(v[3].path, "");  // anonymous, trailing space only
  EXPECT_EQ(v[3].prot, static_cast<uint32_t>(PROT_READ | PROT_WRITE));
  EXPECT_EQ(v[4].path, "/usr/lib/locale/C.utf8/LC_MESSAGES/SYS_LC_MESSAGES");
  EXPECT_EQ(v[5].pgoff, 0x1d3000u);
  EXPECT_TRUE(v[6].shared);
  EXPECT_EQ(v[7].path, "[vvar]");
  EXPECT_EQ(v[8].path, "[vvar_vclock]");
  EXPECT_EQ(v[9].path, "[vdso]");
  EXPECT_EQ(v[10].path, "[stack]");
  EXPECT_EQ(v[11].path, "[vsyscall]");
  EXPECT_EQ(v[11].start, 0xffffffffff600000u);
  EXPECT_EQ(v[11].prot, static_cast<uint32_t>(PROT_EXEC));
}

TEST(VmaParseTest, PathsWithSpacesDeletedAndNamedAnon) {
  constexpr std::string_view kText =
      "7f0000000000-7f0000001000 rw-s 00003000 00:1a 77                         /tmp/my file.txt\n"
      "7f0000001000-7f0000002000 rw-s 00000000 00:01 1031                       /memfd:buf (deleted)\n"
      "7f0000002000-7f0000003000 r--p 00000000 08:01 99                         "
      "/tmp/a (deleted) b (deleted)\n"
      "7f0000003000-7f0000004000 rw-p 00000000 00:00 0                          [anon:my name]\n"
      "7f0000004000-7f0000005000 rw-s 00000000 00:01 5                          /dev/zero (deleted)\n"
      "7f0000005000-7f0000006000 r--p 00000000 103:02 12 /hand/written path\n"
      "7f0000006000-7f0000007000 r--p 00000000 00:00 0\n";
  auto r = ParseMaps(kText);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& v = *r;
  ASSERT_EQ(v.size(), 7u);
  EXPECT_EQ(v[0].path, "/tmp/my file.txt");
  EXPECT_EQ(v[0].dev_minor, 0x1au);
  EXPECT_FALSE(v[0].deleted);
  EXPECT_TRUE(v[0].shared);
  EXPECT_EQ(v[0].pgoff, 0x3000u);
  EXPECT_EQ(v[1].path, "/memfd:buf");
  EXPECT_TRUE(v[1].deleted);
  EXPECT_EQ(v[2].path, "/tmp/a (deleted) b");
  EXPECT_TRUE(v[2].deleted);
  EXPECT_EQ(v[3].path, "[anon:my name]");
  EXPECT_FALSE(v[3].deleted);
  EXPECT_EQ(v[4].path, "/dev/zero");
  EXPECT_TRUE(v[4].deleted);
  EXPECT_EQ(v[5].path, "/hand/written path");
  EXPECT_EQ(v[5].dev_major, 0x103u);
  EXPECT_EQ(v[6].path, "");
}

TEST(VmaParseTest, NameWithLeadingSpacesInKernelLayout) {
  // The kernel pads to column 72 and adds one space: the name starts at 73.
  std::string prefix = "7f0000000000-7f0000001000 r--p 00000000 fe:00 42 ";
  std::string line = prefix + std::string(73 - prefix.size(), ' ') + "  two spaces\n";
  auto r = ParseMaps(line);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].path, "  two spaces");

  // A prefix longer than the column: exactly one extra space before the name.
  std::string long_prefix =
      "ffffffffff600000-ffffffffff601000 r--p 123456789abcdef0 fe:00 18446744073709551615 ";
  auto r2 = ParseMaps(long_prefix + " name");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ((*r2)[0].path, "name");
  EXPECT_EQ((*r2)[0].pgoff, 0x123456789abcdef0u);
  EXPECT_EQ((*r2)[0].inode, 18446744073709551615u);
}

TEST(VmaParseTest, EmptyText) {
  auto r = ParseMaps("");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(VmaParseTest, MalformedLinesFail) {
  const char* bad[] = {
      "7f00",                                                     // no range
      "7f00-",                                                    // no end
      "7f00-7f01",                                                // truncated
      "7f00-7f01 rw-p",                                           // truncated
      "7f00-7f01 rw-p 00000000 fe:00",                            // no inode
      "7f00-7f01 rw-p 00000000 fe00 1 /x",                        // dev without ':'
      "7f00-7f01 rwzp 00000000 fe:00 1 /x",                       // bad perm char
      "7f00-7f01 rw-x 00000000 fe:00 1 /x",                       // bad share char
      "7f00-7f01 rw- 00000000 fe:00 1 /x",                        // short perms
      "7f00-7f01 rw-p 0000g000 fe:00 1 /x",                       // bad hex
      "7f00-7f01 rw-p 00000000 fe:00 1a /x",                      // inode not decimal
      "7f00-7f01 rw-p 00000000 fe:00 -1 /x",                      // negative inode
      "7f01-7f00 rw-p 00000000 fe:00 1 /x",                       // end < start
      "7f00-7f01 rw-p 00000000 fe:00 99999999999999999999999 /x", // overflow
      "1ffffffffffffffff-2ffffffffffffffff rw-p 0 0:0 0",         // address overflow
      "Size:                  8 kB",                              // smaps key line in maps
      "garbage",
      "\x01\x02\x03",
  };
  for (const char* line : bad) {
    auto r = ParseMaps(line);
    EXPECT_FALSE(r.ok()) << "accepted: " << line;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("maps: line 1"), std::string::npos);
    }
  }
  // The line number points at the bad line.
  auto r = ParseMaps(std::string(kMaps) + "oops\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 13"), std::string::npos) << r.status().message();
}

TEST(VmaParseTest, EveryTruncationOfRealTextIsSafe) {
  // Cutting a real file anywhere must give either a clean parse or an error.
  std::string text(kMaps);
  for (size_t n = 0; n <= text.size(); ++n) {
    auto r = ParseMaps(std::string_view(text).substr(0, n));
    if (r.ok()) {
      EXPECT_LE(r->size(), 12u);
    }
  }
}

// Copied from /proc/self/smaps of `cat` (three VMAs), plus a ProtectionKey line.
constexpr std::string_view kSmaps =
    "7f614f688000-7f614f7de000 r-xp 00026000 fe:00 332835                     "
    "/usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "Size:               1368 kB\n"
    "KernelPageSize:        4 kB\n"
    "MMUPageSize:           4 kB\n"
    "Rss:                 864 kB\n"
    "Pss:                 152 kB\n"
    "Pss_Dirty:             0 kB\n"
    "Shared_Clean:        840 kB\n"
    "Shared_Dirty:          0 kB\n"
    "Private_Clean:        24 kB\n"
    "Private_Dirty:         0 kB\n"
    "Referenced:          864 kB\n"
    "Anonymous:             0 kB\n"
    "KSM:                   0 kB\n"
    "LazyFree:              0 kB\n"
    "AnonHugePages:         0 kB\n"
    "ShmemPmdMapped:        0 kB\n"
    "FilePmdMapped:         0 kB\n"
    "Shared_Hugetlb:        0 kB\n"
    "Private_Hugetlb:       0 kB\n"
    "Swap:                  0 kB\n"
    "SwapPss:               0 kB\n"
    "Locked:                0 kB\n"
    "THPeligible:           0\n"
    "ProtectionKey:         0\n"
    "VmFlags: rd ex mr mw me \n"
    "7ffcfbcfd000-7ffcfbd1e000 rw-p 00000000 00:00 0                          [stack]\n"
    "Size:                132 kB\n"
    "Rss:                  12 kB\n"
    "Anonymous:            12 kB\n"
    "THPeligible:           0\n"
    "VmFlags: rd wr mr mw me gd ac \n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
    "Size:                  4 kB\n"
    "Rss:                   0 kB\n"
    "VmFlags: ex \n";

TEST(VmaParseTest, RealSmaps) {
  auto r = ParseSmaps(kSmaps);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& v = *r;
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(v[0].pgoff, 0x26000u);
  EXPECT_EQ(v[0].vmflags, "rd ex mr mw me");
  EXPECT_TRUE(v[0].has_vmflag("ex"));
  EXPECT_FALSE(v[0].has_vmflag("wr"));
  EXPECT_EQ(v[1].path, "[stack]");
  EXPECT_EQ(v[1].vmflags, "rd wr mr mw me gd ac");
  EXPECT_TRUE(v[1].has_vmflag("gd"));
  EXPECT_TRUE(v[1].has_vmflag("rd"));
  EXPECT_TRUE(v[1].has_vmflag("ac"));
  EXPECT_FALSE(v[1].has_vmflag("g"));
  EXPECT_FALSE(v[1].has_vmflag("gd ac"));
  EXPECT_FALSE(v[1].has_vmflag(""));
  EXPECT_EQ(v[2].vmflags, "ex");
  EXPECT_TRUE(v[2].has_vmflag("ex"));
  // Rss + Swap + hugetlb pages: what the pagemap fallback needs to skip a VMA.
  EXPECT_EQ(v[1].resident_kb, 12);
  EXPECT_EQ(v[2].resident_kb, 0);

  // The same headers through ParseMaps are rejected (key lines are not maps).
  EXPECT_FALSE(ParseMaps(kSmaps).ok());
}

TEST(VmaParseTest, SmapsEdgeCases) {
  // VMA without VmFlags (old kernels) and a VmFlags line with no flags.
  auto r = ParseSmaps(
      "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n"
      "Size:                  4 kB\n"
      "7f0000001000-7f0000002000 rw-p 00000000 00:00 0 \n"
      "VmFlags:\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].resident_kb, -1);  // no Rss line: not known
  EXPECT_EQ((*r)[0].vmflags, "");
  EXPECT_EQ((*r)[1].vmflags, "");
  EXPECT_FALSE((*r)[1].has_vmflag("rd"));

  auto orphan = ParseSmaps("VmFlags: rd wr\n");
  ASSERT_FALSE(orphan.ok());
  EXPECT_NE(orphan.status().message().find("smaps"), std::string::npos);

  EXPECT_FALSE(ParseSmaps("7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n"
                          "VmFlags: rd\nVmFlags: wr\n")
                   .ok());
  EXPECT_FALSE(ParseSmaps("7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \nRss 4 kB\n").ok());
  EXPECT_FALSE(ParseSmaps("7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \nRss: x kB\n").ok());
  auto counted = ParseSmaps("7f0000000000-7f0000400000 rw-p 00000000 00:00 0 \nRss: 8 kB\nSwap: 4 kB\n"
                            "SwapPss: 4 kB\nPrivate_Hugetlb: 2048 kB\nShared_Hugetlb: 0 kB\n");
  ASSERT_TRUE(counted.ok());
  EXPECT_EQ((*counted)[0].resident_kb, 8 + 4 + 2048);

  std::string text(kSmaps);
  for (size_t n = 0; n <= text.size(); ++n) (void)ParseSmaps(std::string_view(text).substr(0, n));
}

const VmaInfo* Find(const std::vector<VmaInfo>& vmas, uint64_t addr) {
  for (const VmaInfo& v : vmas)
    if (addr >= v.start && addr < v.end) return &v;
  return nullptr;
}

TEST(VmaReadTest, Self) {
  int on_stack = 0;
  auto r = ReadVmas(getpid(), true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& v = *r;
  ASSERT_FALSE(v.empty());
  for (const VmaInfo& vma : v) {
    EXPECT_LT(vma.start, vma.end);
    EXPECT_FALSE(vma.vmflags.empty()) << vma.path;
  }

  const VmaInfo* stack = Find(v, reinterpret_cast<uint64_t>(&on_stack));
  ASSERT_NE(stack, nullptr);
  EXPECT_EQ(stack->path, "[stack]");  // gtest runs tests on the main thread
  EXPECT_TRUE(stack->has_vmflag("gd"));
  EXPECT_EQ(stack->prot & (PROT_READ | PROT_WRITE), static_cast<uint32_t>(PROT_READ | PROT_WRITE));

  const VmaInfo* code = Find(v, reinterpret_cast<uint64_t>(&Find));
  ASSERT_NE(code, nullptr);
  EXPECT_TRUE(code->prot & PROT_EXEC);
  EXPECT_TRUE(code->is_file());
  EXPECT_TRUE(code->has_vmflag("ex"));
  struct stat exe;
  ASSERT_EQ(stat("/proc/self/exe", &exe), 0);
  EXPECT_EQ(code->inode, exe.st_ino);

  EXPECT_FALSE(ReadVmas(0x3fffffff).ok());
}

// smaps is parsed as it is read, 64 KiB at a time: a process whose smaps is
// far larger (400 mappings, ~300 KiB) reads the same as its text parsed
// whole. A stopped child, so that nothing changes between the two reads.
// Past its first MiB, a large smaps is read on a second thread in 256 KiB
// chunks and parsed as they come (ReadRest): lines cut at every chunk edge.
TEST(VmaReadTest, LargeSmapsReadInPieces) {
  constexpr int kMaps = 4000;
  char* base = static_cast<char*>(mmap(nullptr, 2 * kMaps * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(base, MAP_FAILED);
  for (int i = 0; i < kMaps; ++i) ASSERT_EQ(mprotect(base + 2 * i * 4096, 4096, PROT_READ), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    for (;;) pause();
  }
  auto pieces = ReadVmas(child, true);
  auto text = ReadFile("/proc/" + std::to_string(child) + "/smaps");
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  munmap(base, 2 * kMaps * 4096);
  ASSERT_TRUE(pieces.ok()) << pieces.status().ToString();
  ASSERT_TRUE(text.ok());
  EXPECT_GT(text->size(), size_t{3} << 20);
  auto whole = ParseSmaps(*text);
  ASSERT_TRUE(whole.ok());
  ASSERT_EQ(pieces->size(), whole->size());
  EXPECT_GT(pieces->size(), size_t{2 * kMaps});
  for (size_t i = 0; i < whole->size(); ++i) {
    EXPECT_EQ((*pieces)[i].start, (*whole)[i].start);
    EXPECT_EQ((*pieces)[i].end, (*whole)[i].end);
    EXPECT_EQ((*pieces)[i].prot, (*whole)[i].prot);
    EXPECT_EQ((*pieces)[i].path, (*whole)[i].path);
    EXPECT_EQ((*pieces)[i].vmflags, (*whole)[i].vmflags);
  }
}

TEST(VmaReadTest, DeletedFileWithSpacesInName) {
  char tmpl[] = "/tmp/cf-vma-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string path = dir + "/ lead (deleted) x";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 3 * 4096), 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  void* p = mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 4096);
  ASSERT_NE(p, MAP_FAILED);
  close(fd);

  auto before = ReadVmas(getpid(), true);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  const VmaInfo* v = Find(*before, reinterpret_cast<uint64_t>(p));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->path, path);
  EXPECT_FALSE(v->deleted);

  ASSERT_EQ(unlink(path.c_str()), 0);
  rmdir(dir.c_str());
  auto after = ReadVmas(getpid(), true);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  v = Find(*after, reinterpret_cast<uint64_t>(p));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->path, path);
  EXPECT_TRUE(v->deleted);
  EXPECT_TRUE(v->shared);
  EXPECT_EQ(v->prot, static_cast<uint32_t>(PROT_READ | PROT_WRITE));
  EXPECT_EQ(v->pgoff, 4096u);
  EXPECT_EQ(v->inode, st.st_ino);
  EXPECT_EQ(v->dev_major, major(st.st_dev));
  EXPECT_EQ(v->dev_minor, minor(st.st_dev));
  EXPECT_EQ(v->size(), 2u * 4096);
  EXPECT_TRUE(v->has_vmflag("sh"));
  munmap(p, 2 * 4096);
}

TEST(VmaReadTest, NamedAnonymousMapping) {
  void* p = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
  if (prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, p, 4096, "cf test") != 0) {
    munmap(p, 4096);
    GTEST_SKIP() << "kernel without CONFIG_ANON_VMA_NAME";
  }
  auto r = ReadVmas(getpid(), true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const VmaInfo* v = Find(*r, reinterpret_cast<uint64_t>(p));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->path, "[anon:cf test]");
  EXPECT_FALSE(v->is_file());
  munmap(p, 4096);
}

}  // namespace
}  // namespace cf::pagemap
