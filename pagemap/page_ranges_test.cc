#include "pagemap/page_ranges.h"

#include <gtest/gtest.h>

#include <ostream>
#include <random>
#include <vector>

namespace cf::pagemap {

// gtest printer (internal linkage: other test files may define their own).
[[maybe_unused]] static void PrintTo(const PageRange& r, std::ostream* os) {
  *os << "[0x" << std::hex << r.start << ", 0x" << r.end << ")" << std::dec;
}

namespace {

constexpr uint64_t P = kPageSize;

// Ranges in pages: R(1, 3) is pages 1 and 2.
PageRange R(uint64_t first_page, uint64_t end_page) { return {first_page * P, end_page * P}; }

std::vector<PageRange> V(std::initializer_list<PageRange> l) { return l; }

// A set is canonical: sorted, non-empty, non-overlapping, non-adjacent.
void ExpectCanonical(const RangeSet& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    EXPECT_LT(s.ranges()[i].start, s.ranges()[i].end) << "range " << i;
    if (i > 0) {
      EXPECT_LT(s.ranges()[i - 1].end, s.ranges()[i].start) << "range " << i;
    }
  }
}

TEST(RangeSetTest, FromUnsortedMergesOverlapAndAdjacent) {
  RangeSet s = RangeSet::FromUnsorted({R(10, 12), R(0, 2), R(2, 3), R(5, 8), R(6, 7), R(7, 9), R(20, 20)});
  EXPECT_EQ(s.ranges(), V({R(0, 3), R(5, 9), R(10, 12)}));
  EXPECT_EQ(s.pages(), 3u + 4u + 2u);
  EXPECT_TRUE(RangeSet::FromUnsorted({}).empty());
  EXPECT_TRUE(RangeSet::FromUnsorted({R(4, 4), R(9, 3)}).empty());
}

TEST(RangeSetTest, AppendMergesAdjacentAndToleratesDisorder) {
  RangeSet s;
  s.Append(R(0, 2));
  s.Append(R(2, 4));   // adjacent: merges
  s.Append(R(5, 6));
  s.Append(R(5, 7));   // overlapping the last one
  s.Append(R(9, 9));   // empty: ignored
  s.Append(R(10, 11));
  EXPECT_EQ(s.ranges(), V({R(0, 4), R(5, 7), R(10, 11)}));
  s.Append(R(7, 8));   // out of order: falls back to Add
  s.Append(R(8, 10));
  EXPECT_EQ(s.ranges(), V({R(0, 4), R(5, 11)}));
  ExpectCanonical(s);
}

TEST(RangeSetTest, AddAnywhere) {
  RangeSet s;
  s.Add(R(10, 12));
  s.Add(R(0, 1));
  s.Add(R(5, 6));
  EXPECT_EQ(s.ranges(), V({R(0, 1), R(5, 6), R(10, 12)}));
  s.Add(R(1, 5));  // bridges two ranges, touching both
  EXPECT_EQ(s.ranges(), V({R(0, 6), R(10, 12)}));
  s.Add(R(7, 8));  // between, touching none
  EXPECT_EQ(s.ranges(), V({R(0, 6), R(7, 8), R(10, 12)}));
  s.Add(R(3, 4));  // inside an existing range
  EXPECT_EQ(s.ranges(), V({R(0, 6), R(7, 8), R(10, 12)}));
  s.Add(R(2, 20));  // swallows several
  EXPECT_EQ(s.ranges(), V({R(0, 20)}));
  s.Add(R(30, 30));
  EXPECT_EQ(s.ranges(), V({R(0, 20)}));
}

TEST(RangeSetTest, Subtract) {
  RangeSet a = RangeSet::FromUnsorted({R(0, 10), R(20, 30), R(40, 50)});
  RangeSet b = RangeSet::FromUnsorted({R(2, 3), R(5, 22), R(28, 45), R(50, 60)});
  EXPECT_EQ(a.Subtract(b).ranges(), V({R(0, 2), R(3, 5), R(22, 28), R(45, 50)}));
  EXPECT_EQ(a.Subtract(RangeSet()).ranges(), a.ranges());
  EXPECT_TRUE(a.Subtract(a).empty());
  EXPECT_TRUE(RangeSet().Subtract(a).empty());
  // One subtrahend covering several ranges and the gaps between them.
  EXPECT_TRUE(a.Subtract(RangeSet::FromUnsorted({R(0, 100)})).empty());
  // Touching but not overlapping: nothing removed.
  EXPECT_EQ(a.Subtract(RangeSet::FromUnsorted({R(10, 20), R(30, 40)})).ranges(), a.ranges());
}

TEST(RangeSetTest, Intersect) {
  RangeSet a = RangeSet::FromUnsorted({R(0, 10), R(20, 30), R(40, 50)});
  RangeSet b = RangeSet::FromUnsorted({R(2, 3), R(5, 22), R(28, 45), R(50, 60)});
  EXPECT_EQ(a.Intersect(b).ranges(), V({R(2, 3), R(5, 10), R(20, 22), R(28, 30), R(40, 45)}));
  EXPECT_EQ(b.Intersect(a).ranges(), a.Intersect(b).ranges());
  EXPECT_TRUE(a.Intersect(RangeSet()).empty());
  EXPECT_EQ(a.Intersect(a).ranges(), a.ranges());
  EXPECT_TRUE(a.Intersect(RangeSet::FromUnsorted({R(10, 20), R(30, 40)})).empty());
}

TEST(RangeSetTest, Clip) {
  RangeSet a = RangeSet::FromUnsorted({R(0, 10), R(20, 30), R(40, 50)});
  EXPECT_EQ(a.Clip(5 * P, 45 * P).ranges(), V({R(5, 10), R(20, 30), R(40, 45)}));
  EXPECT_EQ(a.Clip(10 * P, 20 * P).ranges(), V({}));
  EXPECT_EQ(a.Clip(0, 100 * P).ranges(), a.ranges());
  EXPECT_EQ(a.Clip(22 * P, 23 * P).ranges(), V({R(22, 23)}));
  EXPECT_TRUE(a.Clip(30 * P, 30 * P).empty());
  EXPECT_TRUE(a.Clip(45 * P, 5 * P).empty());
  EXPECT_TRUE(a.Clip(50 * P, 60 * P).empty());
}

TEST(RangeSetTest, Contains) {
  RangeSet a = RangeSet::FromUnsorted({R(1, 3), R(5, 6)});
  EXPECT_FALSE(a.Contains(0));
  EXPECT_FALSE(a.Contains(P - 1));
  EXPECT_TRUE(a.Contains(P));
  EXPECT_TRUE(a.Contains(3 * P - 1));
  EXPECT_FALSE(a.Contains(3 * P));
  EXPECT_TRUE(a.Contains(5 * P));
  EXPECT_FALSE(a.Contains(6 * P));
  EXPECT_FALSE(a.Contains(~0ull));
  EXPECT_FALSE(RangeSet().Contains(0));
}

// Random sets checked against a page bitmap model.
TEST(RangeSetTest, RandomOpsMatchBitmapModel) {
  constexpr uint64_t kPages = 96;
  std::mt19937_64 rng(12345);
  auto random_ranges = [&](int n) {
    std::vector<PageRange> v;
    for (int i = 0; i < n; ++i) {
      uint64_t a = rng() % (kPages + 1);
      uint64_t b = rng() % (kPages + 1);
      if (a > b) std::swap(a, b);
      v.push_back(R(a, b));
    }
    return v;
  };
  auto bitmap = [&](const std::vector<PageRange>& v) {
    std::vector<bool> m(kPages);
    for (const PageRange& r : v) {
      for (uint64_t p = r.start / P; p < r.end / P; ++p) m[p] = true;
    }
    return m;
  };
  auto to_bitmap = [&](const RangeSet& s) { return bitmap(s.ranges()); };
  for (int iter = 0; iter < 2000; ++iter) {
    const auto va = random_ranges(static_cast<int>(rng() % 8));
    const auto vb = random_ranges(static_cast<int>(rng() % 8));
    const RangeSet a = RangeSet::FromUnsorted(va);
    const RangeSet b = RangeSet::FromUnsorted(vb);
    ExpectCanonical(a);
    const auto ma = bitmap(va);
    const auto mb = bitmap(vb);
    ASSERT_EQ(to_bitmap(a), ma);

    RangeSet added;
    for (const PageRange& r : va) added.Add(r);
    ExpectCanonical(added);
    ASSERT_EQ(added.ranges(), a.ranges());

    const RangeSet sub = a.Subtract(b);
    const RangeSet inter = a.Intersect(b);
    ExpectCanonical(sub);
    ExpectCanonical(inter);
    std::vector<bool> msub(kPages), minter(kPages);
    uint64_t count = 0;
    for (uint64_t p = 0; p < kPages; ++p) {
      msub[p] = ma[p] && !mb[p];
      minter[p] = ma[p] && mb[p];
      count += ma[p];
      ASSERT_EQ(a.Contains(p * P + 7), ma[p]) << "page " << p;
    }
    ASSERT_EQ(to_bitmap(sub), msub);
    ASSERT_EQ(to_bitmap(inter), minter);
    ASSERT_EQ(a.pages(), count);

    const uint64_t lo = rng() % (kPages + 1);
    const uint64_t hi = rng() % (kPages + 1);
    const RangeSet clip = a.Clip(lo * P, hi * P);
    ExpectCanonical(clip);
    std::vector<bool> mclip(kPages);
    for (uint64_t p = lo; p < hi; ++p) mclip[p] = ma[p];
    ASSERT_EQ(to_bitmap(clip), mclip);
  }
}

TEST(SplitIntoChunksTest, CutsAcrossAndInsideRanges) {
  auto chunks = SplitIntoChunks(V({R(0, 3), R(10, 12), R(20, 27)}), 4);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0], V({R(0, 3), R(10, 11)}));
  EXPECT_EQ(chunks[1], V({R(11, 12), R(20, 23)}));
  EXPECT_EQ(chunks[2], V({R(23, 27)}));
}

TEST(SplitIntoChunksTest, EdgeCases) {
  EXPECT_TRUE(SplitIntoChunks({}, 4).empty());
  EXPECT_TRUE(SplitIntoChunks(V({R(3, 3)}), 4).empty());
  // Exact multiple: no empty trailing chunk.
  auto exact = SplitIntoChunks(V({R(0, 8)}), 4);
  EXPECT_EQ(exact, (std::vector<std::vector<PageRange>>{V({R(0, 4)}), V({R(4, 8)})}));
  // One page per chunk.
  EXPECT_EQ(SplitIntoChunks(V({R(0, 2), R(5, 6)}), 1).size(), 3u);
  // No limit.
  auto all = SplitIntoChunks(V({R(0, 2), R(3, 3), R(5, 6)}), 0);
  EXPECT_EQ(all, (std::vector<std::vector<PageRange>>{V({R(0, 2), R(5, 6)})}));
  // A huge limit: one chunk.
  EXPECT_EQ(SplitIntoChunks(V({R(0, 2), R(5, 6)}), ~0ull).size(), 1u);
}

// Every page covered exactly once, in order, no chunk above the limit, and
// every chunk but the last one full.
TEST(SplitIntoChunksTest, RandomCoverEveryPageOnce) {
  std::mt19937_64 rng(777);
  for (int iter = 0; iter < 500; ++iter) {
    std::vector<PageRange> in;
    uint64_t page = rng() % 4;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      const uint64_t len = rng() % 40;  // may be empty
      in.push_back(R(page, page + len));
      page += len + rng() % 3;
    }
    const uint64_t max_pages = 1 + rng() % 20;
    const auto chunks = SplitIntoChunks(in, max_pages);

    std::vector<uint64_t> want;
    for (const PageRange& r : in) {
      for (uint64_t a = r.start; a < r.end; a += P) want.push_back(a);
    }
    std::vector<uint64_t> got;
    for (size_t c = 0; c < chunks.size(); ++c) {
      uint64_t pages = 0;
      ASSERT_FALSE(chunks[c].empty());
      for (const PageRange& r : chunks[c]) {
        ASSERT_FALSE(r.empty());
        pages += r.pages();
        for (uint64_t a = r.start; a < r.end; a += P) got.push_back(a);
      }
      ASSERT_LE(pages, max_pages);
      if (c + 1 < chunks.size()) {
        ASSERT_EQ(pages, max_pages);
      }
    }
    ASSERT_EQ(got, want);
  }
}

}  // namespace
}  // namespace cf::pagemap
