// Tests of the parent-image page lookup behind incremental dumps.
#include "pagemap/parent_pages.h"

#include <gtest/gtest.h>

namespace cf::pagemap {
namespace {

constexpr uint64_t P = kPageSize;

ParentPages Sample() {
  ParentPages p;
  p.AddContent(0x10000, 2);      // pages 0x10000, 0x11000: hashes 0, 1
  p.AddZero(0x12000, 1);
  p.AddContent(0x20000, 1);      // hash 2
  p.AddContent(0x21000, 1);      // adjacent: merged, hash 3
  p.SetHashes({{1, 10}, {2, 20}, {3, 30}, {4, 40}});
  return p;
}

TEST(ParentPagesTest, FindsKindAndHashByAddress) {
  const ParentPages p = Sample();
  ASSERT_TRUE(p.has_hashes());
  EXPECT_EQ(p.content_pages(), 4u);
  EXPECT_EQ(p.Find(0x10000).kind, ParentPages::Kind::kContent);
  EXPECT_EQ(p.Find(0x11000).hash, (PageHash{2, 20}));
  EXPECT_EQ(p.Find(0x12000).kind, ParentPages::Kind::kZero);
  EXPECT_EQ(p.Find(0x13000).kind, ParentPages::Kind::kAbsent);
  EXPECT_EQ(p.Find(0xf000).kind, ParentPages::Kind::kAbsent);
  EXPECT_EQ(p.Find(0x21000).hash, (PageHash{4, 40}));
  EXPECT_EQ(p.Find(0x22000).kind, ParentPages::Kind::kAbsent);
}

TEST(ParentPagesTest, RunsAgreeWithFindPageByPage) {
  const ParentPages p = Sample();
  std::vector<ParentPages::Run> runs;
  p.RunsIn(0xf000, 0x23000, &runs);
  ASSERT_EQ(runs.size(), 6u);
  EXPECT_EQ(runs[0].kind, ParentPages::Kind::kAbsent);   // 0xf000
  EXPECT_EQ(runs[1].kind, ParentPages::Kind::kContent);  // 0x10000-0x12000
  EXPECT_EQ(runs[2].kind, ParentPages::Kind::kZero);     // 0x12000
  EXPECT_EQ(runs[3].kind, ParentPages::Kind::kAbsent);   // 0x13000-0x20000
  EXPECT_EQ(runs[4].kind, ParentPages::Kind::kContent);  // 0x20000-0x22000
  EXPECT_EQ(runs[5].kind, ParentPages::Kind::kAbsent);   // 0x22000
  // Every page of every run is what Find says, hashes included; the runs
  // tile the asked range, a last gap included.
  p.RunsIn(0x11000, 0x23000, &runs);
  uint64_t at = 0x11000;
  for (const ParentPages::Run& r : runs) {
    EXPECT_EQ(r.start, at);
    for (uint64_t a = r.start; a < r.end; a += P) {
      const ParentPages::Page f = p.Find(a);
      EXPECT_EQ(f.kind, r.kind) << std::hex << a;
      if (r.kind == ParentPages::Kind::kContent) {
        EXPECT_EQ(r.hashes[(a - r.start) / P], f.hash) << std::hex << a;
      }
    }
    at = r.end;
  }
  EXPECT_EQ(at, 0x23000u);
  EXPECT_EQ(runs.back().kind, ParentPages::Kind::kAbsent);
}

TEST(ParentPagesTest, CoverageSpansZeroAndContent) {
  const ParentPages p = Sample();
  EXPECT_TRUE(p.Covers(0x10000, 0x13000));
  EXPECT_FALSE(p.Covers(0x10000, 0x14000));
  const RangeSet c = p.CoveredIn(0x11000, 0x21000 + P);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c.ranges()[0], (PageRange{0x11000, 0x13000}));
  EXPECT_EQ(c.ranges()[1], (PageRange{0x20000, 0x22000}));
}

TEST(ParentPagesTest, HashesThatDoNotMatchThePagesAreNotUsed) {
  ParentPages p;
  p.AddContent(0x10000, 3);
  p.SetHashes({{1, 1}});
  EXPECT_FALSE(p.has_hashes());
  EXPECT_EQ(p.Find(0x11000).kind, ParentPages::Kind::kContent);
  EXPECT_EQ(p.Find(0x11000).hash, PageHash{});
}

}  // namespace
}  // namespace cf::pagemap
