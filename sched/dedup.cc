#include "sched/dedup.h"

#include <algorithm>
#include <cstring>

#include <xxhash.h>

#include "pagemap/page_ranges.h"

static_assert(sizeof(cf::sched::DedupTable::Cache::bytes[0]) == cf::pagemap::kPageSize);

namespace cf::sched {
namespace {

constexpr int kPidShift = 42;
constexpr uint64_t kPageMask = (uint64_t{1} << kPidShift) - 1;
constexpr size_t kFirstSlots = 1024;
constexpr uint64_t kMaxReserved = uint64_t{1} << 20;  // pages: 16-32 MiB of slots

uint64_t KeyOf(const pagemap::PageHash& h) { return h.lo != 0 ? h.lo : 1; }

}  // namespace

DedupTable::DedupTable(Fetch fetch, uint64_t expected_pages)
    : fetch_(std::move(fetch)), shards_(new Shard[size_t{1} << kShardBits]), first_slots_(kFirstSlots) {
  const uint64_t per_shard = std::min<uint64_t>(expected_pages, kMaxReserved) >> kShardBits;
  while (first_slots_ * 3 < per_shard * 4) first_slots_ *= 2;  // at most 3/4 full
}

std::optional<DedupTable::Ref> DedupTable::FindOrInsert(const pagemap::PageHash& h, const Ref& here) {
  const uint64_t key = KeyOf(h);
  // The shard from the high bits, the slot from the low ones: independent
  // bits of one good hash.
  Shard& s = shards_[h.hi >> (64 - kShardBits)];
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.slots.empty()) s.slots.assign(first_slots_, Slot{0, 0});
  size_t mask = s.slots.size() - 1;
  size_t i = key & mask;
  for (; s.slots[i].key != 0; i = (i + 1) & mask) {
    if (s.slots[i].key == key) {
      const uint64_t w = s.slots[i].where;
      return Ref{static_cast<int32_t>(w >> kPidShift), (w & kPageMask) << pagemap::kPageShift};
    }
  }
  if (here.vaddr >= kMaxVaddr || here.pid < 0) return std::nullopt;  // not entered: never referred to
  s.slots[i] = {key, static_cast<uint64_t>(here.pid) << kPidShift | here.vaddr >> pagemap::kPageShift};
  if (++s.used * 4 > s.slots.size() * 3) {  // grow at 3/4 load
    std::vector<Slot> grown(s.slots.size() * 2, Slot{0, 0});
    mask = grown.size() - 1;
    for (const Slot& old : s.slots) {
      if (old.key == 0) continue;
      size_t k = old.key & mask;
      while (grown[k].key != 0) k = (k + 1) & mask;
      grown[k] = old;
    }
    s.slots.swap(grown);
  }
  return std::nullopt;
}

pagemap::PageHash DedupTable::SampleKey(const uint8_t* page) {
  constexpr size_t kPiece = 64, kPieces = 8;
  static_assert(kPiece * kPieces * 8 == pagemap::kPageSize);
  uint8_t sample[kPiece * kPieces];
  // Offsets 0, 576, 1152, ...: one piece in each eighth of the page, not
  // all at the same place in it.
  for (size_t i = 0; i < kPieces; ++i) memcpy(sample + i * kPiece, page + i * (pagemap::kPageSize / kPieces + kPiece), kPiece);
  const XXH128_hash_t h = XXH3_128bits(sample, sizeof(sample));
  return {h.low64, h.high64};
}

std::optional<DedupTable::Ref> DedupTable::Match(const pagemap::PageHash& h, const uint8_t* page, const Ref& here,
                                                 Cache* cache, bool sampled) {
  bool differs = false;
  std::optional<Ref> hit = MatchKey(h, page, here, cache, &differs);
  if (hit || !differs || !sampled) return hit;
  // Its sampled key is another page's: a near-duplicate of it. Its own
  // hash (the whole page, tagged apart from sampled keys) finds its equals.
  const XXH128_hash_t full = XXH3_128bits(page, pagemap::kPageSize);
  return MatchKey({full.low64, full.high64 ^ kFullTag}, page, here, cache, &differs);
}

std::optional<DedupTable::Ref> DedupTable::MatchKey(const pagemap::PageHash& h, const uint8_t* page, const Ref& here,
                                                    Cache* cache, bool* differs) {
  std::optional<Ref> hit = FindOrInsert(h, here);
  if (!hit) return std::nullopt;
  hits_.fetch_add(1, std::memory_order_relaxed);
  const uint8_t* stored = nullptr;
  for (int i = 0; i < Cache::kPages && stored == nullptr; ++i) {
    if (cache->valid[i] && cache->refs[i] == *hit) stored = cache->bytes[i];
  }
  if (stored == nullptr) {
    const int i = cache->next;
    cache->next = (i + 1) % Cache::kPages;
    cache->valid[i] = false;
    fetches_.fetch_add(1, std::memory_order_relaxed);
    if (!fetch_(*hit, cache->bytes[i]).ok()) {
      // Cannot happen in a frozen tree; storing the page is always right.
      fetch_failures_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    cache->refs[i] = *hit;
    cache->valid[i] = true;
    stored = cache->bytes[i];
  }
  if (memcmp(stored, page, pagemap::kPageSize) != 0) {
    mismatches_.fetch_add(1, std::memory_order_relaxed);
    *differs = true;
    return std::nullopt;
  }
  return hit;
}

uint64_t DedupTable::entries() const {
  uint64_t n = 0;
  for (size_t i = 0; i < (size_t{1} << kShardBits); ++i) {
    std::lock_guard<std::mutex> lock(shards_[i].mu);
    n += shards_[i].used;
  }
  return n;
}

uint64_t DedupTable::bytes() const {
  uint64_t n = 0;
  for (size_t i = 0; i < (size_t{1} << kShardBits); ++i) {
    std::lock_guard<std::mutex> lock(shards_[i].mu);
    n += shards_[i].slots.size() * sizeof(Slot);
  }
  return n;
}

}  // namespace cf::sched
