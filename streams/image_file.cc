#include "streams/image_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "common/interrupt.h"
#include "common/fault.h"
#include "common/io.h"
#include "streams/codec.h"
#include "streams/image_trust.h"
#include "streams/stream.h"

namespace cf::streams {

Result<ImageWriter> ImageWriter::Create(const std::string& path, FileKind kind) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus("create image " + path);
  ImageWriter w(std::move(fd), path);
  FileHeader h{kFileMagic, kFormatVersion, static_cast<uint16_t>(kind)};
  RETURN_IF_ERROR(w.WriteV(&h, sizeof(h), nullptr, 0, nullptr, 0));
  return w;
}

ImageWriter ImageWriter::InStream(StreamWriter* stream, uint32_t file_id, std::string name) {
  ImageWriter w(UniqueFd(), std::move(name));
  w.stream_ = stream;
  w.flags_ = file_id;
  w.offset_ = sizeof(FileHeader);  // the header a reader of the file will find
  return w;
}

namespace {

// Writes every byte of |iov| (|cnt| pieces, which it consumes): at file
// offset |at|, or where the file stands when |at| < 0. Resumes after short
// writes and EINTR (a termination signal stops it); |*written| counts the
// bytes written, also when it fails.
Status WriteAllV(int fd, iovec* iov, int cnt, int64_t at, const std::string& path, uint64_t* written) {
  size_t total = 0;
  for (int i = 0; i < cnt; ++i) total += iov[i].iov_len;
  iovec* p = iov;
  while (total > 0) {
    const ssize_t n = at < 0 ? writev(fd, p, cnt) : pwritev(fd, p, cnt, static_cast<off_t>(at + *written));
    if (n < 0) {
      if (errno == EINTR) {
        RETURN_IF_ERROR(CheckTerminated());
        continue;
      }
      return ErrnoStatus("write " + path);
    }
    if (n == 0) return Error("write " + path + ": no progress", EIO);
    *written += static_cast<uint64_t>(n);
    total -= static_cast<size_t>(n);
    size_t left = static_cast<size_t>(n);
    while (cnt > 0 && left >= p->iov_len) {
      left -= p->iov_len;
      ++p;
      --cnt;
    }
    if (cnt > 0) {
      p->iov_base = static_cast<char*>(p->iov_base) + left;
      p->iov_len -= left;
    }
  }
  return OkStatus();
}

}  // namespace

Status ImageWriter::WriteV(const void* a, size_t alen, const void* b, size_t blen, const void* c,
                           size_t clen) {
  FAULT_POINT("image-write");
  if (stream_ != nullptr) {
    // Every write of a file in a stream is one whole record, header first.
    if (alen != sizeof(RecordHeader)) return Error(path_ + ": partial record for the stream");
    RETURN_IF_ERROR(stream_->WriteRecord(*static_cast<const RecordHeader*>(a), b, blen, c, clen));
    offset_ += alen + blen + clen;
    return OkStatus();
  }
  iovec iov[3] = {{const_cast<void*>(a), alen}, {const_cast<void*>(b), blen}, {const_cast<void*>(c), clen}};
  uint64_t written = 0;
  Status st = WriteAllV(fd_.get(), iov, 3, -1, path_, &written);
  offset_ += written;
  return st;
}

Status ImageWriter::WriteRecord(RecordType type, std::span<const uint8_t> payload) {
  RecordHeader h{static_cast<uint32_t>(type), flags_, payload.size(), 0};
  h.checksum = RecordChecksum(h.type, h.flags, payload.data(), payload.size());
  return WriteV(&h, sizeof(h), payload.data(), payload.size(), nullptr, 0);
}

Status ImageWriter::WriteMessage(const google::protobuf::MessageLite& msg) {
  std::string buf;
  if (!msg.SerializeToString(&buf)) return Error("cannot serialize " + msg.GetTypeName());
  return WriteRecord(RecordType::kMessage,
                     {reinterpret_cast<const uint8_t*>(buf.data()), buf.size()});
}

ChunkFrame FrameChunk(Codec codec, uint64_t raw_size, std::span<const uint8_t> stored, uint32_t flags) {
  ChunkFrame f;
  f.chunk = ChunkHeader{static_cast<uint32_t>(codec), 0, raw_size};
  f.record = RecordHeader{static_cast<uint32_t>(RecordType::kChunk), flags, sizeof(f.chunk) + stored.size(), 0};
  f.record.checksum =
      RecordChecksum(f.record.type, f.record.flags, &f.chunk, sizeof(f.chunk), stored.data(), stored.size());
  return f;
}

Status ImageWriter::WriteChunk(Codec codec, uint64_t raw_size, std::span<const uint8_t> stored) {
  return WriteChunk(FrameChunk(codec, raw_size, stored, flags_), stored);
}

Status ImageWriter::WriteChunk(const ChunkFrame& frame, std::span<const uint8_t> stored) {
  if (frame.record.length != sizeof(frame.chunk) + stored.size() || frame.record.flags != flags_) {
    return Error(path_ + ": chunk frame does not match its data");
  }
  return WriteV(&frame.record, sizeof(frame.record), &frame.chunk, sizeof(frame.chunk), stored.data(),
                stored.size());
}

Result<uint64_t> ImageWriter::Reserve(uint64_t bytes) {
  if (stream_ != nullptr) return Error(path_ + ": a file in a stream is written in order");
  const uint64_t at = offset_;
  offset_ += bytes;
  return at;
}

Status ImageWriter::WriteChunkAt(uint64_t offset, const ChunkFrame& frame, std::span<const uint8_t> stored) const {
  FAULT_POINT("image-pwrite");
  if (stream_ != nullptr) return Error(path_ + ": a file in a stream is written in order");
  if (frame.record.length != sizeof(frame.chunk) + stored.size() || frame.record.flags != flags_) {
    return Error(path_ + ": chunk frame does not match its data");
  }
  iovec iov[3] = {{const_cast<RecordHeader*>(&frame.record), sizeof(frame.record)},
                  {const_cast<ChunkHeader*>(&frame.chunk), sizeof(frame.chunk)},
                  {const_cast<uint8_t*>(stored.data()), stored.size()}};
  uint64_t written = 0;
  return WriteAllV(fd_.get(), iov, 3, static_cast<int64_t>(offset), path_, &written);
}

Status ImageWriter::Finish(bool sync) {
  if (!fd_.valid()) return OkStatus();
  if (sync && fsync(fd_.get()) != 0) return ErrnoStatus("fsync " + path_);
  int fd = fd_.release();
  if (close(fd) != 0) return ErrnoStatus("close " + path_);
  return OkStatus();
}

Result<ImageReader> ImageReader::Open(const std::string& path, FileKind kind) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return ErrnoStatus("open image " + path);
  RETURN_IF_ERROR(CheckOpenedImage(fd.get(), path));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + path);
  FileHeader h;
  ASSIGN_OR_RETURN(size_t n, ReadFull(fd.get(), &h, sizeof(h), path));
  if (n != sizeof(h)) return Error(path + ": truncated image (no header)", EBADMSG);
  if (h.magic != kFileMagic) return Error(path + ": not a criu-fast image (bad magic)", EBADMSG);
  if (!FormatVersionReadable(h.version)) {
    return Errorf("%s: unsupported image format version %u (this build reads %u to %u)%s", path.c_str(), h.version,
                  kOldestFormatVersion, kFormatVersion, FormatVersionHint(h.version));
  }
  if (kind != FileKind{0} && h.kind != static_cast<uint16_t>(kind)) {
    return Errorf("%s: expected a %s image, found kind %u", path.c_str(), FileKindName(kind), h.kind);
  }
  return ImageReader(std::move(fd), path, static_cast<FileKind>(h.kind), h.version, static_cast<uint64_t>(st.st_size));
}

Status ImageReader::ReadRecordAt(uint64_t offset, Record* rec, uint64_t* next) {
  RecordHeader h;
  if (offset + sizeof(h) > size_) return Errorf("%s: truncated record header at offset %lu", path_.c_str(), offset);
  ssize_t n = pread(fd_.get(), &h, sizeof(h), static_cast<off_t>(offset));
  if (n != static_cast<ssize_t>(sizeof(h))) return ErrnoStatus(n < 0 ? errno : EIO, "read " + path_);
  if (h.length > kMaxRecordSize || offset + sizeof(h) + h.length > size_) {
    return Error(path_ + ": truncated or corrupt record at offset " + std::to_string(offset), EBADMSG);
  }
  rec->type = static_cast<RecordType>(h.type);
  rec->offset = offset;
  rec->payload.resize(h.length);
  uint64_t done = 0;
  while (done < h.length) {
    n = pread(fd_.get(), rec->payload.data() + done, h.length - done, static_cast<off_t>(offset + sizeof(h) + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(n < 0 ? errno : EIO, "read " + path_);
    done += static_cast<uint64_t>(n);
  }
  if (RecordChecksumFor(version_, h.type, h.flags, rec->payload.data(), h.length) != h.checksum) {
    return Error(path_ + ": checksum mismatch in record at offset " + std::to_string(offset), EBADMSG);
  }
  *next = offset + sizeof(h) + h.length;
  return OkStatus();
}

Result<bool> ImageReader::Next(Record* rec) {
  if (pos_ == size_) return false;
  uint64_t next = 0;
  RETURN_IF_ERROR(ReadRecordAt(pos_, rec, &next));
  pos_ = next;
  return true;
}

Status ImageReader::ReadMessage(google::protobuf::MessageLite* msg) {
  Record rec;
  ASSIGN_OR_RETURN(bool got, Next(&rec));
  if (!got) return Error(path_ + ": truncated image (missing " + msg->GetTypeName() + ")", EBADMSG);
  return ParseMessage(rec, msg, path_);
}

Status ImageReader::ReadAt(uint64_t offset, Record* rec) {
  uint64_t next = 0;
  return ReadRecordAt(offset, rec, &next);
}

Status ParseMessage(const Record& rec, google::protobuf::MessageLite* msg, const std::string& what) {
  if (rec.type != RecordType::kMessage) return Error(what + ": expected a message record", EBADMSG);
  // ParseFromArray takes an int: a record of 2 GiB or more would wrap.
  if (rec.payload.size() > static_cast<size_t>(INT_MAX)) return Error(what + ": message record too large", EBADMSG);
  if (!msg->ParseFromArray(rec.payload.data(), static_cast<int>(rec.payload.size()))) {
    return Error(what + ": cannot parse " + msg->GetTypeName(), EBADMSG);
  }
  return OkStatus();
}

Status DecodeChunk(const Record& rec, std::vector<uint8_t>* out, const std::string& what) {
  if (rec.type != RecordType::kChunk || rec.payload.size() < sizeof(ChunkHeader)) {
    return Error(what + ": expected a chunk record", EBADMSG);
  }
  ChunkHeader ch;
  memcpy(&ch, rec.payload.data(), sizeof(ch));
  std::span<const uint8_t> stored(rec.payload.data() + sizeof(ch), rec.payload.size() - sizeof(ch));
  // raw_size is untrusted: checked against what |stored| can hold first.
  RETURN_IF_ERROR(CheckChunkSize(static_cast<Codec>(ch.codec), stored, ch.raw_size).WithContext(what));
  out->resize(ch.raw_size);
  return Decompress(static_cast<Codec>(ch.codec), stored, out->data(), ch.raw_size)
      .WithContext(what);
}

}  // namespace cf::streams
