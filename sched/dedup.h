// Deduplication of pages by content within one dump (issue 9).
//
// A tree-wide table, shared by the page pipelines of every process of the
// dump (they run side by side): for each page stored as DATA, its hash ->
// where it is (pid, address). A page read later with the same hash is a
// candidate duplicate; the hash alone is never trusted (XXH3 is not
// cryptographic and a program may craft colliding pages): the candidate's
// bytes are read again from the frozen tree (|Fetch|) and compared byte for
// byte. Only then is the page recorded as a DUP range that refers to the
// stored one; otherwise it is stored as DATA and the table keeps the first
// page it had for that hash (so a crafted collision costs one extra read of
// 4 KiB per page, never a longer search).
//
// A page is entered when its batch decides to store it as DATA: that
// decision is final (a batch that fails fails the whole dump, which leaves
// no image), so a reference always names a DATA page of the same image,
// never another reference. Two equal pages decided at the same instant by
// two batches may both be stored: that costs space, never correctness.
//
// Memory: one 16-byte entry per DATA page (64 bits of the hash, the pid and
// the page number packed in 64 bits), in open-addressing shards grown by
// doubling at 3/4 load: 21-43 bytes per stored page, e.g. at most 43 MiB
// for 4 GiB of distinct pages. Shards have their own lock, so the pipelines'
// workers rarely wait for each other.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/status.h"
#include "pagemap/parent_pages.h"

namespace cf::sched {

class DedupTable {
 public:
  struct Ref {
    int32_t pid = 0;
    uint64_t vaddr = 0;
    bool operator==(const Ref&) const = default;
  };
  // Reads the 4 KiB page |ref| into |out| (from the frozen process).
  using Fetch = std::function<Status(const Ref& ref, uint8_t* out)>;

  // |expected_pages|: about how many pages will be entered (the pages the
  // dump scanned): the shards are sized for them up front (up to 1M pages),
  // so the dump does not pay for growing them.
  explicit DedupTable(Fetch fetch, uint64_t expected_pages = 0);
  DedupTable(const DedupTable&) = delete;
  DedupTable& operator=(const DedupTable&) = delete;

  // The stored pages a worker read again last, kept to compare the next
  // candidates with (the tree is frozen: their bytes do not change). A few
  // distinct pages repeated many times then cost one read each per worker,
  // not one per duplicate. One per pipeline buffer (not thread-safe).
  struct Cache {
    static constexpr int kPages = 8;
    Ref refs[kPages];
    bool valid[kPages] = {};
    int next = 0;
    uint8_t bytes[kPages][4096];
  };

  // The page |here| (bytes |page|, hash |h|) is about to be stored. Returns
  // where an identical page is stored already (verified byte for byte: read
  // again into |cache| unless it holds it), or nothing: then the caller
  // stores it as DATA, and it was entered unless the table holds another
  // page for that hash. |sampled|: |h| is a SampleKey; when the page it
  // finds differs, the page is looked up (and entered) again by the hash of
  // all its bytes, so near-duplicates that share a sampled key are still
  // deduplicated among themselves.
  std::optional<Ref> Match(const pagemap::PageHash& h, const uint8_t* page, const Ref& here, Cache* cache,
                           bool sampled = false);

  // The key of a page when the dump does not hash whole pages anyway (an
  // image that may become a parent stores XXH3-128 of every page, and uses
  // that): XXH3-128 of 8 pieces of 64 bytes spread over the page, a tenth
  // of the cost of hashing it all (hashing runs at memory speed). Equal
  // pages have equal keys; pages with equal keys are compared in full
  // (Match), so a page differing from another only outside the pieces is
  // stored, never taken for it. All processes of one table use one key.
  static pagemap::PageHash SampleKey(const uint8_t* page);

  // The lookup alone, without the verification: the page stored with a hash
  // like |h|, or nothing (|here| is then entered). Exposed for tests.
  std::optional<Ref> FindOrInsert(const pagemap::PageHash& h, const Ref& here);

  uint64_t entries() const;
  uint64_t bytes() const;               // memory held by the shards' slots
  uint64_t hash_hits() const { return hits_; }
  uint64_t mismatches() const { return mismatches_; }  // hits whose bytes differed
  uint64_t fetch_failures() const { return fetch_failures_; }
  uint64_t fetches() const { return fetches_; }  // pages read again (not found in a Cache)

  // Addresses up to here are entered (the page number must fit in 42 bits).
  static constexpr uint64_t kMaxVaddr = uint64_t{1} << 54;

 private:
  struct Slot {
    uint64_t key;    // 0: empty
    uint64_t where;  // pid << 42 | page number
  };
  struct Shard {
    mutable std::mutex mu;
    std::vector<Slot> slots;  // a power of two; key and place in one cache line
    uint64_t used = 0;
  };
  static constexpr int kShardBits = 6;
  static constexpr uint64_t kFullTag = 0x5a5a5a5a5a5a5a5aULL;  // whole-page keys after a sampled one's mismatch

  std::optional<Ref> MatchKey(const pagemap::PageHash& h, const uint8_t* page, const Ref& here, Cache* cache,
                              bool* differs);

  Fetch fetch_;
  std::unique_ptr<Shard[]> shards_;
  size_t first_slots_;  // slots of a shard when first used
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> mismatches_{0};
  std::atomic<uint64_t> fetch_failures_{0};
  std::atomic<uint64_t> fetches_{0};
};

}  // namespace cf::sched
