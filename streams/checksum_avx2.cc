// The record checksum built for AVX2 (CMakeLists.txt gives this file
// -mavx2 on x86-64): XXH3 checks a 2 MiB chunk ~2.6 times faster with it
// than with SSE2. format.cc calls it where the CPU has AVX2. Only xxhash
// is compiled here, so no inline function of another header is built
// for AVX2 and shared with code that runs without it.
#define XXH_INLINE_ALL
#include "streams/xxh3_record.h"

namespace cf::streams::detail {

uint64_t Xxh3RecordAvx2(uint32_t type, uint32_t flags, const void* part1, uint64_t len1, const void* part2,
                        uint64_t len2) {
  return Xxh3Record(type, flags, part1, len1, part2, len2);
}

}  // namespace cf::streams::detail
