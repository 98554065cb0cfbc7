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

// Compresses |raw| into |out|. When compression does not shrink the data the
// chunk is stored raw: the returned codec is then kNone.
Result<Codec> Compress(const CodecSpec& spec, std::span<const uint8_t> raw, std::vector<uint8_t>* out);

// Decompresses |stored| into exactly |raw_size| bytes at |out|.
Status Decompress(Codec codec, std::span<const uint8_t> stored, uint8_t* out, uint64_t raw_size);

}  // namespace cf::streams
