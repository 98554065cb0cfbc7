#include "sched/dedup.h"

#include <cstring>

#include "pagemap/page_ranges.h"

static_assert(sizeof(cf::sched::DedupTable::Cache::bytes[0]) == cf::pagemap::kPageSize);

namespace cf::sched {
namespace {

constexpr int kPidShift = 42;
constexpr uint64_t kPageMask = (uint64_t{1} << kPidShift) - 1;
constexpr size_t kFirstSlots = 1024;

uint64_t KeyOf(const pagemap::PageHash& h) { return h.lo != 0 ? h.lo : 1; }

}  // namespace

DedupTable::DedupTable(Fetch fetch) : fetch_(std::move(fetch)), shards_(new Shard[size_t{1} << kShardBits]) {}

std::optional<DedupTable::Ref> DedupTable::FindOrInsert(const pagemap::PageHash& h, const Ref& here) {
  const uint64_t key = KeyOf(h);
  // The shard from the high bits, the slot from the low ones: independent
  // bits of one good hash.
  Shard& s = shards_[h.hi >> (64 - kShardBits)];
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.keys.empty()) {
    s.keys.assign(kFirstSlots, 0);
    s.where.assign(kFirstSlots, 0);
  }
  size_t mask = s.keys.size() - 1;
  size_t i = key & mask;
  for (; s.keys[i] != 0; i = (i + 1) & mask) {
    if (s.keys[i] == key) {
      return Ref{static_cast<int32_t>(s.where[i] >> kPidShift), (s.where[i] & kPageMask) << pagemap::kPageShift};
    }
  }
  if (here.vaddr >= kMaxVaddr || here.pid < 0) return std::nullopt;  // not entered: never referred to
  s.keys[i] = key;
  s.where[i] = static_cast<uint64_t>(here.pid) << kPidShift | here.vaddr >> pagemap::kPageShift;
  if (++s.used * 4 > s.keys.size() * 3) {  // grow at 3/4 load
    std::vector<uint64_t> keys(s.keys.size() * 2, 0), where(s.keys.size() * 2, 0);
    mask = keys.size() - 1;
    for (size_t j = 0; j < s.keys.size(); ++j) {
      if (s.keys[j] == 0) continue;
      size_t k = s.keys[j] & mask;
      while (keys[k] != 0) k = (k + 1) & mask;
      keys[k] = s.keys[j];
      where[k] = s.where[j];
    }
    s.keys.swap(keys);
    s.where.swap(where);
  }
  return std::nullopt;
}

std::optional<DedupTable::Ref> DedupTable::Match(const pagemap::PageHash& h, const uint8_t* page, const Ref& here,
                                                 Cache* cache) {
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
    n += shards_[i].keys.size() * 2 * sizeof(uint64_t);
  }
  return n;
}

}  // namespace cf::sched
