#include "streams/codec.h"

#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace cf::streams {

Result<CodecSpec> ParseCodec(const std::string& text) {
  CodecSpec spec;
  if (text == "none") return spec;
  if (text == "lz4") {
    spec.codec = Codec::kLz4;
    return spec;
  }
  if (text.rfind("zstd", 0) == 0) {
    spec.codec = Codec::kZstd;
    if (text.size() == 4) return spec;
    if (text[4] == ':' && text.size() > 5) {
      char* end = nullptr;
      long level = strtol(text.c_str() + 5, &end, 10);
      if (*end == '\0' && level >= -7 && level <= ZSTD_maxCLevel()) {
        spec.level = static_cast<int>(level);
        return spec;
      }
    }
  }
  return Error("unknown compression '" + text + "' (expected none, lz4, zstd or zstd:LEVEL)");
}

namespace {

struct ZstdCctxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

// One zstd compression context per thread, made on first use and reused.
ZSTD_CCtx* ThreadCctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdCctxFree> cctx(ZSTD_createCCtx());
  return cctx.get();
}

struct ZstdDctxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

// The same for decompression: ZSTD_decompress makes and frees a context of
// ~160 KiB per call, about a third of the decoding time of the small chunks
// of a tree of small processes.
ZSTD_DCtx* ThreadDctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdDctxFree> dctx(ZSTD_createDCtx());
  return dctx.get();
}

// Bytes of a chunk compressed first to tell whether the whole chunk would
// shrink: kProbePages pages spread evenly over it. Random or already
// compressed memory (common in HPC and GPU jobs) costs zstd ~1 ms per MiB and
// gains nothing; the probe costs ~1/64 of that.
constexpr size_t kProbePage = 4096;
constexpr size_t kProbePages = 8;

size_t CompressZstd(std::span<const uint8_t> raw, std::span<uint8_t> out, int level) {
  ZSTD_CCtx* cctx = ThreadCctx();
  if (cctx == nullptr) return 0;
  const size_t cap = std::min(out.size(), raw.size() - 1);
  const size_t n = ZSTD_compressCCtx(cctx, out.data(), cap, raw.data(), raw.size(), level ? level : 1);
  // dstSize_tooSmall: the data does not shrink; store it raw.
  return ZSTD_isError(n) ? 0 : n;
}

size_t CompressLz4(std::span<const uint8_t> raw, std::span<uint8_t> out) {
  if (raw.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) return 0;
  // A destination smaller than the input: lz4 gives up (returns 0) as soon
  // as the output would not shrink, instead of finishing the chunk.
  const size_t cap = std::min(out.size(), raw.size() - 1);
  const int n = LZ4_compress_default(reinterpret_cast<const char*>(raw.data()), reinterpret_cast<char*>(out.data()),
                                     static_cast<int>(raw.size()), static_cast<int>(cap));
  return n > 0 ? static_cast<size_t>(n) : 0;
}

}  // namespace

bool ProbeShrinks(const CodecSpec& spec, std::span<const uint8_t> raw) {
  const size_t pages = raw.size() / kProbePage;
  if (spec.codec == Codec::kNone) return false;
  // Small chunks are compressed whole (and i * pages / 8 + i stays inside).
  if (pages < kProbePages * kProbePages) return true;
  thread_local std::unique_ptr<uint8_t[]> sample(new uint8_t[kProbePages * kProbePage]);
  thread_local std::unique_ptr<uint8_t[]> out(new uint8_t[ZSTD_compressBound(kProbePages * kProbePage)]);
  for (size_t i = 0; i < kProbePages; ++i) {
    // Evenly spread, each moved by its index so that the sample does not
    // fall on one residue of a periodic layout (every 2nd, 4th, 8th page).
    const size_t page = i * pages / kProbePages + i;
    memcpy(sample.get() + i * kProbePage, raw.data() + page * kProbePage, kProbePage);
  }
  const std::span<const uint8_t> in{sample.get(), kProbePages * kProbePage};
  const std::span<uint8_t> dst{out.get(), ZSTD_compressBound(kProbePages * kProbePage)};
  const size_t n = spec.codec == Codec::kLz4 ? CompressLz4(in, dst) : CompressZstd(in, dst, spec.level);
  // Worth the whole chunk's compression only if the sample saves 1/32.
  return n != 0 && n <= in.size() - in.size() / 32;
}

std::string CodecSpecName(const CodecSpec& spec) {
  std::string name = CodecName(spec.codec);
  if (spec.codec == Codec::kZstd && spec.level != 0) {
    name.push_back(':');
    name.append(std::to_string(spec.level));
  }
  return name;
}

size_t CompressBound(const CodecSpec& spec, size_t raw_size) {
  switch (spec.codec) {
    case Codec::kNone: return 0;
    case Codec::kLz4:
      return raw_size > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)
                 ? 0
                 : static_cast<size_t>(LZ4_compressBound(static_cast<int>(raw_size)));
    case Codec::kZstd: return ZSTD_compressBound(raw_size);
  }
  return 0;
}

Result<size_t> CompressInto(const CodecSpec& spec, std::span<const uint8_t> raw, std::span<uint8_t> out) {
  if (raw.empty()) return size_t{0};
  switch (spec.codec) {
    case Codec::kNone:
      return size_t{0};
    case Codec::kLz4:
      if (raw.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) return Error("lz4: chunk too large");
      if (!ProbeShrinks(spec, raw)) return size_t{0};
      return CompressLz4(raw, out);
    case Codec::kZstd:
      if (ThreadCctx() == nullptr) return Error("zstd: cannot create a compression context", ENOMEM);
      if (!ProbeShrinks(spec, raw)) return size_t{0};
      return CompressZstd(raw, out, spec.level);
  }
  return Error("unknown codec");
}

Result<Codec> Compress(const CodecSpec& spec, std::span<const uint8_t> raw, std::vector<uint8_t>* out) {
  out->resize(CompressBound(spec, raw.size()));
  ASSIGN_OR_RETURN(const size_t n, CompressInto(spec, raw, *out));
  if (n > 0) {
    out->resize(n);
    return spec.codec;
  }
  out->assign(raw.begin(), raw.end());
  return Codec::kNone;
}

Status CheckChunkSize(Codec codec, std::span<const uint8_t> stored, uint64_t raw_size) {
  if (raw_size > kMaxChunkRawSize) return Errorf("chunk raw size %lu is over the limit", raw_size);
  switch (codec) {
    case Codec::kNone:
      if (stored.size() != raw_size) return Error("raw chunk size mismatch", EBADMSG);
      return OkStatus();
    case Codec::kLz4:
      // Each byte of an lz4 block yields at most 255 bytes: a match length
      // grows by 255 per extra length byte; a sequence's 3 fixed bytes give
      // at most 19 (and the block's int sizes must hold the stored bytes).
      if (stored.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE) || raw_size > stored.size() * 255) {
        return Error("lz4: chunk sizes do not match", EBADMSG);
      }
      return OkStatus();
    case Codec::kZstd:
      if (ZSTD_getFrameContentSize(stored.data(), stored.size()) != raw_size) {
        return Error("zstd: chunk sizes do not match", EBADMSG);
      }
      return OkStatus();
  }
  return Error("unknown chunk codec", EBADMSG);
}

Status Decompress(Codec codec, std::span<const uint8_t> stored, uint8_t* out, uint64_t raw_size) {
  switch (codec) {
    case Codec::kNone:
      if (stored.size() != raw_size) return Error("raw chunk size mismatch", EBADMSG);
      if (raw_size != 0) memcpy(out, stored.data(), raw_size);  // |out| may be null then
      return OkStatus();
    case Codec::kLz4: {
      int n = LZ4_decompress_safe(reinterpret_cast<const char*>(stored.data()), reinterpret_cast<char*>(out),
                                  static_cast<int>(stored.size()), static_cast<int>(raw_size));
      if (n < 0 || static_cast<uint64_t>(n) != raw_size) return Error("lz4: corrupt chunk", EBADMSG);
      return OkStatus();
    }
    case Codec::kZstd: {
      ZSTD_DCtx* dctx = ThreadDctx();
      const size_t n = dctx != nullptr ? ZSTD_decompressDCtx(dctx, out, raw_size, stored.data(), stored.size())
                                       : ZSTD_decompress(out, raw_size, stored.data(), stored.size());
      if (ZSTD_isError(n) || n != raw_size) return Error("zstd: corrupt chunk", EBADMSG);
      return OkStatus();
    }
  }
  return Error("unknown chunk codec", EBADMSG);
}

}  // namespace cf::streams
