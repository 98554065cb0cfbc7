#include "streams/codec.h"

#include <lz4.h>
#include <zstd.h>

#include <cstring>

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

Result<Codec> Compress(const CodecSpec& spec, std::span<const uint8_t> raw, std::vector<uint8_t>* out) {
  switch (spec.codec) {
    case Codec::kNone:
      break;
    case Codec::kLz4: {
      if (raw.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) return Error("lz4: chunk too large");
      out->resize(static_cast<size_t>(LZ4_compressBound(static_cast<int>(raw.size()))));
      int n = LZ4_compress_default(reinterpret_cast<const char*>(raw.data()),
                                   reinterpret_cast<char*>(out->data()), static_cast<int>(raw.size()),
                                   static_cast<int>(out->size()));
      if (n > 0 && static_cast<size_t>(n) < raw.size()) {
        out->resize(static_cast<size_t>(n));
        return Codec::kLz4;
      }
      break;
    }
    case Codec::kZstd: {
      out->resize(ZSTD_compressBound(raw.size()));
      size_t n = ZSTD_compress(out->data(), out->size(), raw.data(), raw.size(),
                               spec.level ? spec.level : 1);
      if (!ZSTD_isError(n) && n < raw.size()) {
        out->resize(n);
        return Codec::kZstd;
      }
      break;
    }
  }
  out->assign(raw.begin(), raw.end());
  return Codec::kNone;
}

Status Decompress(Codec codec, std::span<const uint8_t> stored, uint8_t* out, uint64_t raw_size) {
  switch (codec) {
    case Codec::kNone:
      if (stored.size() != raw_size) return Error("raw chunk size mismatch", EBADMSG);
      memcpy(out, stored.data(), raw_size);
      return OkStatus();
    case Codec::kLz4: {
      int n = LZ4_decompress_safe(reinterpret_cast<const char*>(stored.data()), reinterpret_cast<char*>(out),
                                  static_cast<int>(stored.size()), static_cast<int>(raw_size));
      if (n < 0 || static_cast<uint64_t>(n) != raw_size) return Error("lz4: corrupt chunk", EBADMSG);
      return OkStatus();
    }
    case Codec::kZstd: {
      size_t n = ZSTD_decompress(out, raw_size, stored.data(), stored.size());
      if (ZSTD_isError(n) || n != raw_size) return Error("zstd: corrupt chunk", EBADMSG);
      return OkStatus();
    }
  }
  return Error("unknown chunk codec", EBADMSG);
}

}  // namespace cf::streams
