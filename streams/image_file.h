// Writing and reading one image file: header, protobuf records, page chunks.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <google/protobuf/message_lite.h>

#include "common/fd.h"
#include "common/status.h"
#include "streams/format.h"

namespace cf::streams {

// The framing of one chunk record (its headers and checksum), made apart
// from writing it: the page pipeline frames chunks on its parallel workers
// and keeps only the write itself serial.
struct ChunkFrame {
  RecordHeader record;
  ChunkHeader chunk;
};
// |flags| is the record's flags field: the writer's record_flags().
ChunkFrame FrameChunk(Codec codec, uint64_t raw_size, std::span<const uint8_t> stored, uint32_t flags = 0);

class StreamWriter;

// Writes one image file: to a file of its own, or into a stream
// (streams/stream.h), where its records carry the file's id in their flags
// field and offsets count as if the file stood alone.
class ImageWriter {
 public:
  // Creates (truncates) |path| and writes its FileHeader.
  static Result<ImageWriter> Create(const std::string& path, FileKind kind);
  // A file carried in |stream| as file |file_id| (its FileBegin record is
  // already written): used by StreamWriter::BeginFile.
  static ImageWriter InStream(StreamWriter* stream, uint32_t file_id, std::string name);

  ImageWriter(ImageWriter&&) = default;
  ImageWriter& operator=(ImageWriter&&) = default;

  Status WriteMessage(const google::protobuf::MessageLite& msg);
  // Writes one chunk record; |stored| is the (possibly compressed) payload.
  Status WriteChunk(Codec codec, uint64_t raw_size, std::span<const uint8_t> stored);
  // Writes one chunk record framed by FrameChunk() for these same |stored| bytes.
  Status WriteChunk(const ChunkFrame& frame, std::span<const uint8_t> stored);
  // Positioned writes, for several threads writing one file: Reserve()
  // takes the next |bytes| of the file (its offset is returned) and
  // WriteChunkAt() writes a framed chunk record there, from any thread, in
  // any order. Not for a file in a stream (an error). The file is complete
  // once every reserved place has been written.
  Result<uint64_t> Reserve(uint64_t bytes);
  Status WriteChunkAt(uint64_t offset, const ChunkFrame& frame, std::span<const uint8_t> stored) const;
  // Writes a record from an already built payload.
  Status WriteRecord(RecordType type, std::span<const uint8_t> payload);
  // fsync (when asked) and close; reports errors that close() finds.
  Status Finish(bool sync = false);

  uint64_t offset() const { return offset_; }
  bool in_stream() const { return stream_ != nullptr; }
  const std::string& path() const { return path_; }
  // The flags field of this file's records (its id in a stream, else 0).
  uint32_t record_flags() const { return flags_; }

 private:
  ImageWriter(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Status WriteV(const void* a, size_t alen, const void* b, size_t blen, const void* c, size_t clen);

  UniqueFd fd_;
  std::string path_;
  uint64_t offset_ = 0;
  StreamWriter* stream_ = nullptr;
  uint32_t flags_ = 0;
};

// One record as read back: its type, payload and where it began in the file.
struct Record {
  RecordType type;
  uint64_t offset;
  std::vector<uint8_t> payload;
};

class ImageReader {
 public:
  // Opens |path| and checks its FileHeader (magic, version, and |kind| unless
  // |kind| is 0).
  static Result<ImageReader> Open(const std::string& path, FileKind kind);

  ImageReader(ImageReader&&) = default;
  ImageReader& operator=(ImageReader&&) = default;

  FileKind kind() const { return kind_; }
  // Reads the next record and verifies its checksum. Returns false at a clean
  // end of file; a cut or corrupt record is an error.
  Result<bool> Next(Record* rec);
  // Next record, which must be a message of this type.
  Status ReadMessage(google::protobuf::MessageLite* msg);
  // Reads the record at |offset| (a chunk), verifying it.
  Status ReadAt(uint64_t offset, Record* rec);

 private:
  ImageReader(UniqueFd fd, std::string path, FileKind kind, uint16_t version, uint64_t size)
      : fd_(std::move(fd)), path_(std::move(path)), kind_(kind), version_(version), size_(size) {}
  Status ReadRecordAt(uint64_t offset, Record* rec, uint64_t* next);

  UniqueFd fd_;
  std::string path_;
  FileKind kind_;
  uint16_t version_;  // the file's format (its checksums)
  uint64_t size_;
  uint64_t pos_ = sizeof(FileHeader);
};

// Decodes a chunk record's payload into |out| (resized to the raw size).
Status DecodeChunk(const Record& rec, std::vector<uint8_t>* out, const std::string& what);

// Parses a protobuf message from a record's payload.
Status ParseMessage(const Record& rec, google::protobuf::MessageLite* msg, const std::string& what);

}  // namespace cf::streams
