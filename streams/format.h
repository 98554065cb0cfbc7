// On-disk framing of criu-fast images (see docs/image-format.md).
//
// Every image file starts with a FileHeader, then holds records. A record is a
// RecordHeader followed by |length| payload bytes. The checksum is XXH3-64
// (XXH64 in formats 2 and 3) over the header's type, flags and length and
// then the payload, so a flipped bit
// anywhere, a cut file or a wrong length is caught before the payload is used.
// A page chunk is a record of type kChunk whose payload starts with a
// ChunkHeader (codec and raw size) followed by the stored bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cf::streams {

inline constexpr uint32_t kFileMagic = 0x54534643;  // "CFST" little-endian
// 2: descriptors carry their kind as a oneof (kinds registry); shared file
// objects in Process.file_objects.
// 3: a process's pages may lie in several pages files (ChunkRef.file) and a
// page may refer to an equal one of another process (PageRange DUP): a
// build that reads only 2 would take a chunk from the wrong file without
// noticing, so it must refuse these images.
// 4: records are checked by XXH3-64 in place of XXH64 (with AVX2, three to
// four times faster over a 2 MiB chunk: a tenth of the CPU time of a
// sparse restore was XXH64). Nothing else changed.
// This build writes 4 and reads image files of 2 to 4 (an image of 2 uses
// none of 3's changes); streams of 4 only.
inline constexpr uint16_t kFormatVersion = 4;
inline constexpr uint16_t kOldestFormatVersion = 2;
inline constexpr bool FormatVersionReadable(uint32_t v) { return v >= kOldestFormatVersion && v <= kFormatVersion; }

// Why an image (or stream) of format |found| cannot be read by this build.
const char* FormatVersionHint(uint16_t found);

enum class FileKind : uint16_t {
  kInventory = 1,
  kCore = 2,
  kPageMap = 3,
  kPages = 4,
  kGhost = 5,   // contents of a deleted-but-open file
  kStats = 6,
  kStream = 7,  // a whole image as one stream (streams/stream.h)
};

enum class RecordType : uint32_t {
  kMessage = 1,  // a serialized protobuf message
  kChunk = 2,    // ChunkHeader + stored bytes
  // Only in a stream:
  kFileBegin = 3,  // StreamFile message: a file starts; flags = its id
  kTrailer = 4,    // StreamTrailer message: the stream is complete
};

enum class Codec : uint32_t {
  kNone = 0,
  kLz4 = 1,
  kZstd = 2,
};

struct FileHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t kind;
};
static_assert(sizeof(FileHeader) == 8);

struct RecordHeader {
  uint32_t type;
  uint32_t flags;     // 0 in a directory dump; in a stream, the id of the file
  uint64_t length;    // payload bytes
  uint64_t checksum;  // XXH3-64 (formats 2, 3: XXH64) of (type, flags, length, payload)
};
static_assert(sizeof(RecordHeader) == 24);

struct ChunkHeader {
  uint32_t codec;
  uint32_t reserved;
  uint64_t raw_size;  // bytes after decompression
};
static_assert(sizeof(ChunkHeader) == 16);

// Largest record a reader accepts: protects against absurd lengths.
inline constexpr uint64_t kMaxRecordSize = 1ull << 32;
// Largest raw size of a chunk (the page pipeline's largest chunk, 65536
// pages): a reader refuses a chunk header that claims more before it sizes
// a buffer by it.
inline constexpr uint64_t kMaxChunkRawSize = 1ull << 28;

const char* FileKindName(FileKind kind);
const char* CodecName(Codec codec);

// Checksum of a record of format |version|: covers the header fields and
// the payload, given in one or two parts (a chunk's header and its stored
// bytes).
uint64_t RecordChecksumFor(uint16_t version, uint32_t type, uint32_t flags, const void* part1, uint64_t len1,
                           const void* part2 = nullptr, uint64_t len2 = 0);
// The same for the format this build writes.
inline uint64_t RecordChecksum(uint32_t type, uint32_t flags, const void* part1, uint64_t len1,
                               const void* part2 = nullptr, uint64_t len2 = 0) {
  return RecordChecksumFor(kFormatVersion, type, flags, part1, len1, part2, len2);
}

}  // namespace cf::streams
