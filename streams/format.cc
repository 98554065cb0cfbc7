#include "streams/format.h"

#define XXH_INLINE_ALL
#include "streams/xxh3_record.h"

namespace cf::streams {

const char* FileKindName(FileKind kind) {
  switch (kind) {
    case FileKind::kInventory: return "inventory";
    case FileKind::kCore: return "core";
    case FileKind::kPageMap: return "pagemap";
    case FileKind::kPages: return "pages";
    case FileKind::kGhost: return "ghost";
    case FileKind::kStats: return "stats";
    case FileKind::kStream: return "stream";
  }
  return "unknown";
}

const char* CodecName(Codec codec) {
  switch (codec) {
    case Codec::kNone: return "none";
    case Codec::kLz4: return "lz4";
    case Codec::kZstd: return "zstd";
  }
  return "unknown";
}

uint64_t RecordChecksumFor(uint16_t version, uint32_t type, uint32_t flags, const void* part1, uint64_t len1,
                           const void* part2, uint64_t len2) {
  if (version >= 4) {
#if defined(__x86_64__)
    static const bool avx2 = __builtin_cpu_supports("avx2");
    if (avx2) return detail::Xxh3RecordAvx2(type, flags, part1, len1, part2, len2);
#endif
    return detail::Xxh3Record(type, flags, part1, len1, part2, len2);
  }
  XXH64_state_t state;
  XXH64_reset(&state, 0);
  const uint32_t fields[2] = {type, flags};
  const uint64_t length = len1 + len2;
  XXH64_update(&state, fields, sizeof(fields));
  XXH64_update(&state, &length, sizeof(length));
  if (len1) XXH64_update(&state, part1, len1);
  if (len2) XXH64_update(&state, part2, len2);
  return XXH64_digest(&state);
}

const char* FormatVersionHint(uint16_t found) {
  if (found < kOldestFormatVersion) return ": written by an older criu-fast; dump the process again with this one";
  return ": written by a newer criu-fast";
}

}  // namespace cf::streams
