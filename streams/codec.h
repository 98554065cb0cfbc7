// Chunk compression: none, lz4, zstd. Each chunk is compressed on its own so
// that a restore can decompress chunks in parallel.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "streams/format.h"

namespace cf::streams {

struct CodecSpec {
  Codec codec = Codec::kNone;
  int level = 0;  // zstd level (0 = the library default)
};

// Parses "none", "lz4", "zstd" or "zstd:LEVEL".
Result<CodecSpec> ParseCodec(const std::string& text);

// "none", "lz4", "zstd" or "zstd:LEVEL" (the inverse of ParseCodec).
std::string CodecSpecName(const CodecSpec& spec);

// Bytes CompressInto() may need for |raw_size| bytes of input (0 for kNone).
size_t CompressBound(const CodecSpec& spec, size_t raw_size);

// Compresses |raw| into |out|, a buffer of at least CompressBound() bytes
// owned by the caller (no allocation: the page pipeline reuses its buffers;
// zstd keeps one compression context per thread). Returns the stored size, or
// 0 when compression is off or does not shrink the data: then the chunk is to
// be stored raw, with codec kNone.
Result<size_t> CompressInto(const CodecSpec& spec, std::span<const uint8_t> raw, std::span<uint8_t> out);

// Whether compressing |raw| is worth it: a sample of its pages, spread over
// it, must shrink by at least 1/32 (always true for chunks under 64 pages,
// false for kNone). CompressInto() asks it first, so random or compressed
// memory is stored raw at the cost of compressing the sample only.
bool ProbeShrinks(const CodecSpec& spec, std::span<const uint8_t> raw);

// Compresses |raw| into |out|. When compression does not shrink the data the
// chunk is stored raw: the returned codec is then kNone.
Result<Codec> Compress(const CodecSpec& spec, std::span<const uint8_t> raw, std::vector<uint8_t>* out);

// Whether |stored| can decode to |raw_size| bytes with |codec|, checked
// before a buffer is sized by |raw_size| (an untrusted chunk header field):
// at most kMaxChunkRawSize; for kNone exactly the stored size; for lz4 at
// most 255 times the stored size (lz4's largest ratio); for zstd the content
// size the frame header declares (our writer always writes it).
Status CheckChunkSize(Codec codec, std::span<const uint8_t> stored, uint64_t raw_size);

// Decompresses |stored| into exactly |raw_size| bytes at |out|.
Status Decompress(Codec codec, std::span<const uint8_t> stored, uint8_t* out, uint64_t raw_size);

}  // namespace cf::streams
