// The record checksum of format 4 (streams/format.h), XXH3-64 over the
// record's type, flags, length and payload (in up to two parts). Included
// by format.cc (any x86-64) and checksum_avx2.cc (built for AVX2), each
// with XXH_INLINE_ALL: the body is compiled once per instruction set.
#pragma once

#include <cstdint>

#ifndef XXH_INLINE_ALL
#error "include with XXH_INLINE_ALL defined"
#endif
#include <xxhash.h>

namespace cf::streams::detail {

static inline uint64_t Xxh3Record(uint32_t type, uint32_t flags, const void* part1, uint64_t len1, const void* part2,
                                  uint64_t len2) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  const uint64_t head[2] = {static_cast<uint64_t>(type) | (static_cast<uint64_t>(flags) << 32), len1 + len2};
  XXH3_64bits_update(&state, head, sizeof(head));
  if (len1) XXH3_64bits_update(&state, part1, len1);
  if (len2) XXH3_64bits_update(&state, part2, len2);
  return XXH3_64bits_digest(&state);
}

// Xxh3Record built for AVX2 (checksum_avx2.cc).
uint64_t Xxh3RecordAvx2(uint32_t type, uint32_t flags, const void* part1, uint64_t len1, const void* part2,
                        uint64_t len2);

}  // namespace cf::streams::detail
