// Micro benchmarks of chunk compression: each codec on 2 MiB chunks of
// random, half-zero (every other page zero) and text pages, one thread.
//
// BM_Compress uses CompressInto() into a reused buffer, as the page pipeline
// does; "none" is the memcpy a raw chunk would cost if it were copied.
// BM_Decompress decodes the stored chunk as a restore does. GB/s is raw
// (uncompressed) bytes per second; "ratio" is raw / stored bytes.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "streams/codec.h"

namespace cf::streams {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kChunk = 2u << 20;

enum class Data { kRandom, kHalfZero, kText };

const char* DataName(Data d) {
  switch (d) {
    case Data::kRandom: return "random";
    case Data::kHalfZero: return "half_zero";
    case Data::kText: return "text";
  }
  return "?";
}

std::vector<uint8_t> MakeChunk(Data d) {
  std::vector<uint8_t> buf(kChunk);
  uint64_t s = 0x1234567887654321ULL;
  auto next = [&s] {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
  };
  static const char kLine[] = "criu-fast test text, the quick brown fox jumps over the lazy dog. ";
  for (size_t pg = 0; pg < kChunk / kPage; ++pg) {
    uint8_t* page = buf.data() + pg * kPage;
    if (d == Data::kText) {
      int n = snprintf(reinterpret_cast<char*>(page), 32, "page %zu: ", pg);
      for (size_t off = static_cast<size_t>(n); off < kPage; off += sizeof(kLine) - 1) {
        memcpy(page + off, kLine, std::min(sizeof(kLine) - 1, kPage - off));
      }
    } else if (d == Data::kRandom || pg % 2 == 0) {
      for (size_t i = 0; i < kPage; i += 8) {
        const uint64_t w = next();
        memcpy(page + i, &w, 8);
      }
    }  // else: a zero page
  }
  return buf;
}

void BM_Compress(benchmark::State& state, const char* codec, Data d) {
  const CodecSpec spec = *ParseCodec(codec);
  const std::vector<uint8_t> raw = MakeChunk(d);
  std::vector<uint8_t> out(std::max(CompressBound(spec, kChunk), kChunk));
  size_t stored = kChunk;
  for (auto _ : state) {
    if (spec.codec == Codec::kNone) {
      memcpy(out.data(), raw.data(), kChunk);
    } else {
      auto n = CompressInto(spec, raw, out);
      if (!n.ok()) {
        state.SkipWithError(n.status().ToString().c_str());
        return;
      }
      stored = *n ? *n : kChunk;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["ratio"] = static_cast<double>(kChunk) / static_cast<double>(stored);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kChunk));
}

void BM_Decompress(benchmark::State& state, const char* codec, Data d) {
  const CodecSpec spec = *ParseCodec(codec);
  const std::vector<uint8_t> raw = MakeChunk(d);
  std::vector<uint8_t> stored;
  auto used = Compress(spec, raw, &stored);
  if (!used.ok()) {
    state.SkipWithError(used.status().ToString().c_str());
    return;
  }
  std::vector<uint8_t> out(kChunk);
  for (auto _ : state) {
    Status s = Decompress(*used, stored, out.data(), kChunk);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["ratio"] = static_cast<double>(kChunk) / static_cast<double>(stored.size());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kChunk));
}

int RegisterAll() {
  for (Data d : {Data::kRandom, Data::kHalfZero, Data::kText}) {
    for (const char* codec : {"none", "lz4", "zstd:1"}) {
      const std::string suffix = std::string(codec) + "/" + DataName(d);
      benchmark::RegisterBenchmark(("BM_Compress2MiB/" + suffix).c_str(), BM_Compress, codec, d)
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("BM_Decompress2MiB/" + suffix).c_str(), BM_Decompress, codec, d)
          ->Unit(benchmark::kMicrosecond);
    }
  }
  return 0;
}

[[maybe_unused]] const int kRegistered = RegisterAll();

}  // namespace
}  // namespace cf::streams
