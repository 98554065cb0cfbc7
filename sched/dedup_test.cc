// The dedup table (sched/dedup.h): lookups, growth, and that a hash match
// is never taken without the bytes being equal.
#include "sched/dedup.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

namespace cf::sched {
namespace {

using pagemap::PageHash;
constexpr uint64_t P = 4096;

// Pages "in memory" by (pid, vaddr), read back by the table's Fetch.
struct FakeTree {
  std::map<std::pair<int32_t, uint64_t>, std::vector<uint8_t>> pages;
  int fetches = 0;
  DedupTable::Fetch fetch() {
    return [this](const DedupTable::Ref& r, uint8_t* out) -> Status {
      ++fetches;
      auto it = pages.find({r.pid, r.vaddr});
      if (it == pages.end()) return Error("no such page", EFAULT);
      memcpy(out, it->second.data(), P);
      return OkStatus();
    };
  }
  const uint8_t* Put(int32_t pid, uint64_t vaddr, uint8_t fill) {
    auto& v = pages[{pid, vaddr}];
    v.assign(P, fill);
    return v.data();
  }
};

TEST(DedupTableTest, FirstPageIsEnteredLaterOnesFindIt) {
  FakeTree tree;
  DedupTable t(tree.fetch());
  const PageHash h{0x1234, 0xabcd000000000000};
  EXPECT_FALSE(t.FindOrInsert(h, {7, 0x10000}).has_value());
  auto hit = t.FindOrInsert(h, {8, 0x20000});
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(*hit, (DedupTable::Ref{7, 0x10000}));
  // The table keeps the first page: the second was not entered.
  EXPECT_EQ(*t.FindOrInsert(h, {9, 0x30000}), (DedupTable::Ref{7, 0x10000}));
  EXPECT_EQ(t.entries(), 1u);
}

TEST(DedupTableTest, AHashMatchWithOtherBytesIsNoMatch) {
  FakeTree tree;
  DedupTable t(tree.fetch());
  DedupTable::Cache cache;
  const PageHash h{42, 42};  // the same hash for both: a crafted collision
  const uint8_t* first = tree.Put(1, 0x1000, 0xaa);
  EXPECT_FALSE(t.Match(h, first, {1, 0x1000}, &cache).has_value());
  std::vector<uint8_t> other(P, 0xaa);
  other[4095] = 0xab;  // one byte differs
  EXPECT_FALSE(t.Match(h, other.data(), {2, 0x5000}, &cache).has_value());
  EXPECT_EQ(t.mismatches(), 1u);
  std::vector<uint8_t> same(P, 0xaa);
  auto hit = t.Match(h, same.data(), {2, 0x6000}, &cache);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(*hit, (DedupTable::Ref{1, 0x1000}));
  // Read once: the second compare used the copy in |cache|.
  EXPECT_EQ(tree.fetches, 1);
  EXPECT_EQ(t.fetches(), 1u);
}

TEST(DedupTableTest, APageThatCannotBeReadAgainIsNoMatch) {
  FakeTree tree;
  DedupTable t(tree.fetch());
  DedupTable::Cache cache;
  std::vector<uint8_t> page(P, 3);
  const PageHash h{5, 6};
  EXPECT_FALSE(t.FindOrInsert(h, {1, 0x1000}).has_value());  // entered, but not in the fake tree
  EXPECT_FALSE(t.Match(h, page.data(), {1, 0x2000}, &cache).has_value());
  EXPECT_EQ(t.fetch_failures(), 1u);
}

// The sampled key: equal pages have equal keys; a page changed outside the
// sampled pieces keeps the key, and Match still tells it apart.
TEST(DedupTableTest, SampleKeyAndNearDuplicates) {
  FakeTree tree;
  DedupTable t(tree.fetch());
  DedupTable::Cache cache;
  std::vector<uint8_t> a(P), b(P);
  for (size_t i = 0; i < P; ++i) a[i] = static_cast<uint8_t>(i * 7 + 3);
  b = a;
  EXPECT_EQ(DedupTable::SampleKey(a.data()), DedupTable::SampleKey(b.data()));
  b[100] ^= 1;  // between the first two pieces
  EXPECT_EQ(DedupTable::SampleKey(a.data()), DedupTable::SampleKey(b.data()));
  std::vector<uint8_t> c = a;
  c[4095] ^= 1;  // in the last piece
  EXPECT_NE(DedupTable::SampleKey(a.data()), DedupTable::SampleKey(c.data()));
  tree.pages[{1, 0x1000}] = a;
  EXPECT_FALSE(t.Match(DedupTable::SampleKey(a.data()), a.data(), {1, 0x1000}, &cache));
  EXPECT_FALSE(t.Match(DedupTable::SampleKey(b.data()), b.data(), {1, 0x2000}, &cache));
  EXPECT_EQ(t.mismatches(), 1u);
  std::vector<uint8_t> a2 = a;
  EXPECT_EQ(t.Match(DedupTable::SampleKey(a2.data()), a2.data(), {1, 0x3000}, &cache), (DedupTable::Ref{1, 0x1000}));
  // Sampled: b is entered by its whole-page hash after the mismatch, and
  // an equal page finds it there.
  tree.pages[{1, 0x2000}] = b;
  EXPECT_FALSE(t.Match(DedupTable::SampleKey(b.data()), b.data(), {1, 0x2000}, &cache, true));
  std::vector<uint8_t> b2 = b;
  EXPECT_EQ(t.Match(DedupTable::SampleKey(b2.data()), b2.data(), {1, 0x4000}, &cache, true), (DedupTable::Ref{1, 0x2000}));
}

TEST(DedupTableTest, GrowsAndFindsEveryPage) {
  FakeTree tree;
  DedupTable t(tree.fetch());
  constexpr uint64_t kN = 200000;
  auto hash = [](uint64_t i) { return PageHash{i * 0x9E3779B97F4A7C15ULL + 1, (i * 0xC2B2AE3D27D4EB4FULL) ^ (i << 40)}; };
  for (uint64_t i = 0; i < kN; ++i) ASSERT_FALSE(t.FindOrInsert(hash(i), {static_cast<int32_t>(i % 1000), i * P}));
  EXPECT_EQ(t.entries(), kN);
  for (uint64_t i = 0; i < kN; ++i) {
    auto r = t.FindOrInsert(hash(i), {1, 0});
    ASSERT_TRUE(r.has_value()) << i;
    ASSERT_EQ(*r, (DedupTable::Ref{static_cast<int32_t>(i % 1000), i * P})) << i;
  }
  // 16 bytes a slot, at most 4/3 .. 8/3 slots an entry (and the first
  // slots of each shard).
  EXPECT_LE(t.bytes(), kN * 16 * 8 / 3 + 64 * 1024 * 16);
}

TEST(DedupTableTest, ExtremePidsAndAddresses) {
  FakeTree tree;
  DedupTable t(tree.fetch());
  const int32_t pid = (1 << 22) - 1;  // PID_MAX_LIMIT - 1
  const uint64_t top = 0x7ffffffff000;
  EXPECT_FALSE(t.FindOrInsert({1, 1}, {pid, top}));
  EXPECT_EQ(*t.FindOrInsert({1, 1}, {1, 0}), (DedupTable::Ref{pid, top}));
  // Beyond what an entry holds: not entered, so never referred to.
  EXPECT_FALSE(t.FindOrInsert({2, 2}, {1, DedupTable::kMaxVaddr}));
  EXPECT_FALSE(t.FindOrInsert({2, 2}, {1, 0x1000}));
  EXPECT_EQ(*t.FindOrInsert({2, 2}, {3, 0}), (DedupTable::Ref{1, 0x1000}));
}

}  // namespace
}  // namespace cf::sched
