// The single-stream form of an image: every file of an image directory sent
// through one pipe, socket or file, written front to back with no seeking
// (see docs/image-format.md, "Streams").
//
// A stream is a FileHeader of kind kStream followed by records in the format
// of streams/format.h:
//   FileBegin  (flags = a new file id, payload a StreamFile message: name, kind)
//   records of the files, exactly as they would be in the file, except that
//              their flags field holds the file's id; records of several files
//              may interleave, each record being written whole
//   Trailer    (flags 0, payload a StreamTrailer): counts, bytes and a digest
//              chained over every record header; nothing may follow it.
// A stream without its trailer is incomplete: its writer failed or was cut off.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <span>
#include <string>

#include "common/status.h"
#include "streams/format.h"
#include "streams/image_file.h"

namespace cf::streams {

// The trailer's digest: d = XXH64(header, seed = d) for each record header in
// order, from d = 0. Each header holds its payload's checksum, so the digest
// binds the whole stream while hashing only 24 bytes per record.
uint64_t ChainDigest(uint64_t digest, const RecordHeader& h);

// A name a stream may give a file: a plain file name (no '/', not "." or
// "..", no NUL, at most 200 bytes), so that a reader can create it in a
// directory of its own safely.
bool IsSafeFileName(const std::string& name);

class StreamWriter {
 public:
  // Writes the stream header to |fd| (not owned). |name| names the stream in
  // errors ("stdout", a path).
  static Result<std::unique_ptr<StreamWriter>> Start(int fd, std::string name);

  // Starts a file of the image; its records go through the writer returned.
  // Safe to call from several threads.
  Result<ImageWriter> BeginFile(const std::string& name, FileKind kind);
  bool HasFile(const std::string& name) const;
  // Writes one record of a file whole (a header and up to two payload parts),
  // so that the records of files written by several threads never mix.
  Status WriteRecord(const RecordHeader& h, const void* b, size_t blen, const void* c, size_t clen);
  // Writes the trailer. Nothing can be written after it.
  Status Finish();

  uint64_t bytes() const { return bytes_; }
  const std::string& name() const { return name_; }

 private:
  StreamWriter(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  Status WriteLocked(const RecordHeader& h, const void* b, size_t blen, const void* c, size_t clen);

  mutable std::mutex mu_;
  int fd_;
  std::string name_;
  std::set<std::string> names_;
  uint32_t files_ = 0;
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
  uint64_t digest_ = 0;
  bool finished_ = false;
  bool failed_ = false;  // a write failed: the stream is cut, nothing more goes out
  Status first_error_;   // that failure, repeated to every later write
};

// What a reader of a stream is given, record by record, as they arrive.
class StreamVisitor {
 public:
  virtual ~StreamVisitor() = default;
  // A FileBegin: |name| passed IsSafeFileName, |kind| is a known file kind
  // (not kStream) and the name was not used before in the stream.
  virtual Status BeginFile(uint32_t id, const std::string& name, FileKind kind) = 0;
  // A record of file |id| (begun before), its checksum verified: |h| and
  // |payload| are the bytes of the record as they go into the file.
  virtual Status FileRecord(uint32_t id, const RecordHeader& h, std::span<const uint8_t> payload) = 0;
};

struct StreamSummary {
  bool complete = false;  // the trailer was read and matched, and nothing followed
  uint32_t files = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;     // bytes read, the trailer included
};

// Reads a stream from |fd| to its end, checks every record and hands them to
// |visitor|. A stream that ends between two records without a trailer comes
// back with complete = false; anything else that is wrong is an error naming
// |name| and the offset: a bad header, a cut record, a checksum mismatch, an
// unknown record type or file id, a bad file name, a trailer that does not
// match what was read, or bytes after the trailer.
Result<StreamSummary> ReadStream(int fd, const std::string& name, StreamVisitor* visitor);

}  // namespace cf::streams
