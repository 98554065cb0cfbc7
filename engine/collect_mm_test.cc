// AdoptSmaps: the VMAs a dump scanned from /proc/PID/maps take smaps'
// VmFlags only when smaps lists the same mappings and none whose pages
// maps could not tell how to find (droppable, hugetlb).
#include <gtest/gtest.h>
#include <sys/mman.h>

#include "criu_fast.pb.h"
#include "engine/collect.h"
#include "pagemap/vma.h"

namespace cf::engine {
namespace {

constexpr char kMaps[] =
    "55d000000000-55d000021000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f0000000000-7f0040000000 rw-p 00000000 00:00 0 \n"
    "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]\n";

std::string Smaps(const char* big_flags, const char* big_range = "7f0000000000-7f0040000000") {
  std::string s;
  s += "55d000000000-55d000021000 rw-p 00000000 00:00 0                          [heap]\n";
  s += "Rss:                 132 kB\nVmFlags: rd wr mr mw me ac \n";
  s += std::string(big_range) + " rw-p 00000000 00:00 0 \n";
  s += "Rss:             1048576 kB\nVmFlags: " + std::string(big_flags) + " \n";
  s += "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]\n";
  s += "Rss:                  16 kB\nVmFlags: rd wr mr mw me gd ac \n";
  return s;
}

img::Process FromMaps() {
  img::Process p;
  auto vmas = pagemap::ParseMaps(kMaps);
  EXPECT_TRUE(vmas.ok());
  for (const auto& v : *vmas) {
    img::Vma* m = p.add_vmas();
    m->set_start(v.start);
    m->set_end(v.end);
    m->set_prot(v.prot);
    m->set_flags((v.shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | (v.path == "[stack]" ? MAP_GROWSDOWN : 0));
    m->set_path(v.path);
    m->set_may_share(v.shared);
  }
  return p;
}

TEST(AdoptSmapsTest, SameVmasTakeTheirVmFlags) {
  img::Process p = FromMaps();
  auto smaps = pagemap::ParseSmaps(Smaps("rd wr mr mw me ac dc hg"));
  ASSERT_TRUE(smaps.ok());
  std::string why;
  ASSERT_TRUE(AdoptSmaps(*smaps, &p, &why)) << why;
  EXPECT_EQ(p.vmas(1).vmflags(), "rd wr mr mw me ac dc hg");
  EXPECT_EQ(p.vmas(1).resident_kb(), 1048576u);
  EXPECT_EQ(p.vmas(2).vmflags(), "rd wr mr mw me gd ac");
  EXPECT_NE(p.vmas(2).flags() & MAP_GROWSDOWN, 0u);
}

TEST(AdoptSmapsTest, OtherVmasAreRefused) {
  img::Process p = FromMaps();
  const img::Process before = p;
  // The big mapping one page shorter (say, a scratch mapping merged or split).
  auto smaps = pagemap::ParseSmaps(Smaps("rd wr mr mw me ac", "7f0000000000-7f003ffff000"));
  ASSERT_TRUE(smaps.ok());
  std::string why;
  EXPECT_FALSE(AdoptSmaps(*smaps, &p, &why));
  EXPECT_NE(why.find("differs from maps"), std::string::npos) << why;
  EXPECT_EQ(p.SerializeAsString(), before.SerializeAsString());
  // One VMA more.
  std::string more = Smaps("rd wr mr mw me ac") +
                     "7ffd00000000-7ffd00001000 rw-p 00000000 00:00 0 \nRss: 4 kB\nVmFlags: rd wr mr mw me ac \n";
  auto smaps2 = pagemap::ParseSmaps(more);
  ASSERT_TRUE(smaps2.ok());
  EXPECT_FALSE(AdoptSmaps(*smaps2, &p, &why));
}

TEST(AdoptSmapsTest, DroppableOrHugetlbIsRefused) {
  for (const char* flags : {"rd wr mr mw me ac dp", "rd wr mr mw me ac ht"}) {
    img::Process p = FromMaps();
    auto smaps = pagemap::ParseSmaps(Smaps(flags));
    ASSERT_TRUE(smaps.ok());
    std::string why;
    EXPECT_FALSE(AdoptSmaps(*smaps, &p, &why)) << flags;
    EXPECT_EQ(p.vmas(1).vmflags(), "");
  }
}

// Before any page is read (a full dump), a droppable VMA is adopted and
// named for the caller to leave its pages out; hugetlb still is not.
TEST(AdoptSmapsTest, DroppableIsNamedWhenTheCallerCanSetItRight) {
  img::Process p = FromMaps();
  auto smaps = pagemap::ParseSmaps(Smaps("rd wr mr mw me ac dp"));
  ASSERT_TRUE(smaps.ok());
  std::string why;
  std::vector<int> droppable;
  ASSERT_TRUE(AdoptSmaps(*smaps, &p, &why, &droppable)) << why;
  EXPECT_EQ(droppable, std::vector<int>{1});
  EXPECT_EQ(p.vmas(1).vmflags(), "rd wr mr mw me ac dp");

  img::Process h = FromMaps();
  auto huge = pagemap::ParseSmaps(Smaps("rd wr mr mw me ac ht"));
  ASSERT_TRUE(huge.ok());
  droppable.clear();
  EXPECT_FALSE(AdoptSmaps(*huge, &h, &why, &droppable));
  EXPECT_TRUE(droppable.empty());
  EXPECT_EQ(h.vmas(1).vmflags(), "");
}

}  // namespace
}  // namespace cf::engine
