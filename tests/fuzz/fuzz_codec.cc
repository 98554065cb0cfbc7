// Harness: the decompression path of page chunks (streams/codec.h). The input
// is a chunk record's payload, as in a pages image: a ChunkHeader (codec,
// reserved, raw size: all untrusted) and the stored bytes. DecodeChunk must
// reject what does not decode to exactly raw_size bytes, without reading or
// writing out of bounds or allocating more than the chunk can hold.
// Then a round trip: the input compressed with each codec must decode back.
#include <cstring>

#include "streams/codec.h"
#include "streams/image_file.h"
#include "tests/fuzz/fuzz_util.h"

using namespace cf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Init();
  streams::Record rec{streams::RecordType::kChunk, 0, std::vector<uint8_t>(data, data + size)};
  std::vector<uint8_t> out;
  auto s = streams::DecodeChunk(rec, &out, "chunk");
  if (s.ok()) {
    streams::ChunkHeader ch;
    memcpy(&ch, data, sizeof(ch));
    fuzz::Check(out.size() == ch.raw_size, "a decoded chunk has its raw size");
  }

  const std::span<const uint8_t> raw(data, size);
  for (const char* name : {"lz4", "zstd", "zstd:-3"}) {
    auto spec = streams::ParseCodec(name);
    fuzz::Check(spec.ok(), "codec name");
    std::vector<uint8_t> stored;
    auto codec = streams::Compress(*spec, raw, &stored);
    fuzz::Check(codec.ok(), "Compress");
    const streams::ChunkFrame f = streams::FrameChunk(*codec, size, stored);
    streams::Record chunk{streams::RecordType::kChunk, 0, {}};
    chunk.payload.resize(sizeof(f.chunk) + stored.size());
    memcpy(chunk.payload.data(), &f.chunk, sizeof(f.chunk));
    if (!stored.empty()) memcpy(chunk.payload.data() + sizeof(f.chunk), stored.data(), stored.size());
    fuzz::Check(streams::DecodeChunk(chunk, &out, "round trip").ok(), "round trip decodes");
    fuzz::Check(out.size() == size && (size == 0 || memcmp(out.data(), data, size) == 0), "round trip is exact");
  }
  return 0;
}
