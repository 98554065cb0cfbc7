// Decoding untrusted chunks (bugs found by tests/fuzz/fuzz_codec).
#include "streams/codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <span>
#include <vector>

#include "streams/image_file.h"

namespace cf::streams {
namespace {

// A chunk record's payload: a ChunkHeader and the stored bytes.
Record ChunkRecord(Codec codec, uint64_t raw_size, const std::vector<uint8_t>& stored) {
  Record rec{RecordType::kChunk, 0, std::vector<uint8_t>(sizeof(ChunkHeader) + stored.size())};
  const ChunkHeader ch{static_cast<uint32_t>(codec), 0, raw_size};
  memcpy(rec.payload.data(), &ch, sizeof(ch));
  if (!stored.empty()) memcpy(rec.payload.data() + sizeof(ch), stored.data(), stored.size());
  return rec;
}

// fuzz_codec: an empty raw chunk made memcpy copy to the null data() of an
// empty vector (undefined behaviour, reported by UBSan).
TEST(DecodeChunkTest, EmptyRawChunkDecodes) {
  std::vector<uint8_t> out;
  ASSERT_TRUE(DecodeChunk(ChunkRecord(Codec::kNone, 0, {}), &out, "empty").ok());
  EXPECT_TRUE(out.empty());
}

// fuzz_codec: a 133-byte lz4 chunk whose header claimed a raw size of ~2 GiB
// made DecodeChunk allocate that much before lz4 refused the data. A raw
// size the stored bytes cannot reach is now refused before any allocation.
TEST(DecodeChunkTest, RawSizeBeyondTheStoredBytesIsRefusedBeforeAllocating) {
  const std::vector<uint8_t> stored(100, 0x11);
  for (Codec codec : {Codec::kNone, Codec::kLz4, Codec::kZstd, static_cast<Codec>(7)}) {
    for (uint64_t raw : {uint64_t{1} << 31, kMaxChunkRawSize + 1, uint64_t{100} * 255 + 1}) {
      std::vector<uint8_t> out;
      Status s = DecodeChunk(ChunkRecord(codec, raw, stored), &out, "chunk");
      EXPECT_FALSE(s.ok()) << CodecName(codec) << " " << raw;
      EXPECT_EQ(out.capacity(), 0u) << CodecName(codec) << " " << raw;
    }
  }
}

// The size checks must not refuse real chunks: lz4 of zeros is near its
// largest ratio, and zstd must declare the size the header gives.
TEST(DecodeChunkTest, HighlyCompressedChunksStillDecode) {
  const std::vector<uint8_t> zeros(2 << 20, 0);
  for (const char* name : {"lz4", "zstd", "zstd:19"}) {
    auto spec = ParseCodec(name);
    ASSERT_TRUE(spec.ok());
    std::vector<uint8_t> stored;
    auto codec = Compress(*spec, zeros, &stored);
    ASSERT_TRUE(codec.ok());
    ASSERT_NE(*codec, Codec::kNone) << name;
    std::vector<uint8_t> out;
    Status s = DecodeChunk(ChunkRecord(*codec, zeros.size(), stored), &out, name);
    ASSERT_TRUE(s.ok()) << name << ": " << s.ToString();
    EXPECT_EQ(out, zeros);
    // One byte more than the chunk holds is corrupt.
    EXPECT_FALSE(DecodeChunk(ChunkRecord(*codec, zeros.size() + 1, stored), &out, name).ok()) << name;
  }
}

// The zstd context is kept per thread (streams/codec.cc): a chunk it
// refused (truncated, or one byte changed) leaves it able to decode the
// next ones, each to its own bytes.
TEST(DecodeChunkTest, ZstdContextReusedAfterACorruptChunk) {
  auto spec = ParseCodec("zstd");
  ASSERT_TRUE(spec.ok());
  std::vector<std::vector<uint8_t>> raws;
  std::vector<std::vector<uint8_t>> stored(3);
  for (int k = 0; k < 3; ++k) {
    std::vector<uint8_t> raw(64 * 4096);
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>("criu-fast "[(i + k) % 10] + (i / 4096) * k);
    auto codec = Compress(*spec, raw, &stored[k]);
    ASSERT_TRUE(codec.ok());
    ASSERT_EQ(*codec, Codec::kZstd);
    raws.push_back(std::move(raw));
  }
  std::vector<uint8_t> out;
  std::vector<uint8_t> cut(stored[0].begin(), stored[0].begin() + static_cast<long>(stored[0].size() / 2));
  EXPECT_FALSE(DecodeChunk(ChunkRecord(Codec::kZstd, raws[0].size(), cut), &out, "cut").ok());
  for (int k = 0; k < 3; ++k) {
    ASSERT_TRUE(DecodeChunk(ChunkRecord(Codec::kZstd, raws[k].size(), stored[k]), &out, "chunk").ok()) << k;
    EXPECT_EQ(out, raws[k]) << k;
    std::vector<uint8_t> bad = stored[k];
    bad[bad.size() / 2] ^= 0x5a;
    std::vector<uint8_t> ignored;
    (void)DecodeChunk(ChunkRecord(Codec::kZstd, raws[k].size(), bad), &ignored, "bad");
  }
  ASSERT_TRUE(DecodeChunk(ChunkRecord(Codec::kZstd, raws[1].size(), stored[1]), &out, "again").ok());
  EXPECT_EQ(out, raws[1]);
}

// 512 pages: text-like pages (compressible) where |text| says so, random
// bytes elsewhere.
std::vector<uint8_t> MixedChunk(bool (*text)(size_t page)) {
  std::vector<uint8_t> raw(512 * 4096);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t p = 0; p < 512; ++p) {
    for (size_t i = 0; i < 4096; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      raw[p * 4096 + i] = text(p) ? static_cast<uint8_t>("checkpoint restore "[i % 19]) : static_cast<uint8_t>(x);
    }
  }
  return raw;
}

TEST(CodecProbeTest, RandomChunksAreStoredRawWithoutCompressingThem) {
  const auto random = MixedChunk([](size_t) { return false; });
  for (const char* name : {"zstd", "lz4", "zstd:3"}) {
    auto spec = ParseCodec(name);
    ASSERT_TRUE(spec.ok());
    EXPECT_FALSE(ProbeShrinks(*spec, random)) << name;
    std::vector<uint8_t> out(CompressBound(*spec, random.size()));
    auto n = CompressInto(*spec, random, out);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 0u) << name;
  }
}

TEST(CodecProbeTest, CompressibleAndMixedChunksAreCompressed) {
  const auto text = MixedChunk([](size_t) { return true; });
  const auto half = MixedChunk([](size_t p) { return p % 2 == 0; });
  const auto quarter = MixedChunk([](size_t p) { return p % 4 == 1; });
  for (const char* name : {"zstd", "lz4"}) {
    auto spec = ParseCodec(name);
    ASSERT_TRUE(spec.ok());
    for (const auto* raw : {&text, &half, &quarter}) {
      EXPECT_TRUE(ProbeShrinks(*spec, *raw)) << name;
      std::vector<uint8_t> out(CompressBound(*spec, raw->size()));
      auto n = CompressInto(*spec, *raw, out);
      ASSERT_TRUE(n.ok());
      EXPECT_GT(*n, 0u);
      EXPECT_LT(*n, raw->size());
      std::vector<uint8_t> back(raw->size());
      ASSERT_TRUE(Decompress(spec->codec, {out.data(), *n}, back.data(), back.size()).ok());
      EXPECT_EQ(back, *raw);
    }
  }
  // Small chunks are compressed whole, without a probe.
  const std::span<const uint8_t> small{text.data(), 16 * 4096};
  EXPECT_TRUE(ProbeShrinks(CodecSpec{Codec::kZstd, 0}, small));
  EXPECT_FALSE(ProbeShrinks(CodecSpec{}, small));
}

}  // namespace
}  // namespace cf::streams
