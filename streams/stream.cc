#include "streams/stream.h"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common/interrupt.h"
#include "common/io.h"
#include "criu_fast.pb.h"

namespace cf::streams {
namespace {

// Writes the iovecs whole, resuming after short writes and EINTR.
Status WriteIov(int fd, iovec* iov, int cnt, const std::string& what) {
  size_t total = 0;
  for (int i = 0; i < cnt; ++i) total += iov[i].iov_len;
  while (total > 0) {
    ssize_t n = writev(fd, iov, cnt);
    if (n < 0) {
      if (errno == EINTR) {
        RETURN_IF_ERROR(CheckTerminated());
        continue;
      }
      if (errno == EPIPE) return Error("write " + what + ": the reader went away (broken pipe)", EPIPE);
      return ErrnoStatus("write " + what);
    }
    total -= static_cast<size_t>(n);
    size_t left = static_cast<size_t>(n);
    while (cnt > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --cnt;
    }
    if (cnt > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return OkStatus();
}

bool KnownFileKind(uint16_t kind) {
  return kind >= static_cast<uint16_t>(FileKind::kInventory) && kind <= static_cast<uint16_t>(FileKind::kStats);
}

}  // namespace

uint64_t ChainDigest(uint64_t digest, const RecordHeader& h) { return XXH64(&h, sizeof(h), digest); }

bool IsSafeFileName(const std::string& name) {
  if (name.empty() || name.size() > 200 || name == "." || name == "..") return false;
  return name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

// ---- writing ------------------------------------------------------------------

Result<std::unique_ptr<StreamWriter>> StreamWriter::Start(int fd, std::string name) {
  std::unique_ptr<StreamWriter> w(new StreamWriter(fd, std::move(name)));
  FileHeader h{kFileMagic, kFormatVersion, static_cast<uint16_t>(FileKind::kStream)};
  iovec iov{&h, sizeof(h)};
  RETURN_IF_ERROR(WriteIov(fd, &iov, 1, w->name_));
  w->bytes_ = sizeof(h);
  return w;
}

Status StreamWriter::WriteLocked(const RecordHeader& h, const void* b, size_t blen, const void* c, size_t clen) {
  if (finished_) return Error(name_ + ": record after the trailer");
  // Every later write reports the first failure (a broken pipe, a full
  // disk): with processes written side by side, whichever one the caller
  // reports must name the cause.
  if (failed_) return first_error_;
  iovec iov[3] = {{const_cast<RecordHeader*>(&h), sizeof(h)}, {const_cast<void*>(b), blen}, {const_cast<void*>(c), clen}};
  Status s = WriteIov(fd_, iov, 3, name_);
  if (!s.ok()) {
    failed_ = true;
    first_error_ = s;
    return s;
  }
  digest_ = ChainDigest(digest_, h);
  records_++;
  bytes_ += sizeof(h) + blen + clen;
  return OkStatus();
}

Status StreamWriter::WriteRecord(const RecordHeader& h, const void* b, size_t blen, const void* c, size_t clen) {
  if (h.flags == 0) return Error(name_ + ": a file record without its file id");
  std::lock_guard<std::mutex> lock(mu_);
  return WriteLocked(h, b, blen, c, clen);
}

Result<ImageWriter> StreamWriter::BeginFile(const std::string& name, FileKind kind) {
  if (!IsSafeFileName(name)) return Error("bad image file name '" + name + "' for a stream");
  img::StreamFile f;
  f.set_name(name);
  f.set_kind(static_cast<uint32_t>(kind));
  std::string buf;
  if (!f.SerializeToString(&buf)) return Error("cannot serialize StreamFile");
  std::lock_guard<std::mutex> lock(mu_);
  if (!names_.insert(name).second) return Error(name_ + ": file " + name + " is already in the stream");
  const uint32_t id = files_ + 1;
  RecordHeader h{static_cast<uint32_t>(RecordType::kFileBegin), id, buf.size(), 0};
  h.checksum = RecordChecksum(h.type, h.flags, buf.data(), buf.size());
  RETURN_IF_ERROR(WriteLocked(h, buf.data(), buf.size(), nullptr, 0));
  files_ = id;
  return ImageWriter::InStream(this, id, name);
}

bool StreamWriter::HasFile(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return names_.count(name) != 0;
}

Status StreamWriter::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  img::StreamTrailer t;
  t.set_files(files_);
  t.set_records(records_);
  t.set_bytes(bytes_);
  t.set_digest(digest_);
  std::string buf;
  if (!t.SerializeToString(&buf)) return Error("cannot serialize StreamTrailer");
  RecordHeader h{static_cast<uint32_t>(RecordType::kTrailer), 0, buf.size(), 0};
  h.checksum = RecordChecksum(h.type, h.flags, buf.data(), buf.size());
  RETURN_IF_ERROR(WriteLocked(h, buf.data(), buf.size(), nullptr, 0));
  finished_ = true;
  return OkStatus();
}

// ---- reading ------------------------------------------------------------------

namespace {

class Parser {
 public:
  Parser(int fd, const std::string& name, StreamVisitor* v) : fd_(fd), name_(name), v_(v) {}

  Result<StreamSummary> Run() {
    FileHeader fh;
    ASSIGN_OR_RETURN(size_t n, ReadFull(fd_, &fh, sizeof(fh), name_));
    if (n == 0) return Error(name_ + ": empty stream (no criu-fast image was written to it)", EBADMSG);
    if (n != sizeof(fh)) return Error(name_ + ": stream cut inside its header", EBADMSG);
    if (fh.magic != kFileMagic) return Error(name_ + ": not a criu-fast stream (bad magic)", EBADMSG);
    // A stream is read by a build of its own format only (unlike image
    // files, older ones are not taken: its header has no checksum, and a
    // flipped bit must not pass for an older format).
    if (fh.version != kFormatVersion) {
      return Errorf("%s: unsupported stream format version %u (this build reads %u)%s", name_.c_str(), fh.version,
                    kFormatVersion, FormatVersionHint(fh.version));
    }
    if (fh.kind != static_cast<uint16_t>(FileKind::kStream)) {
      return Errorf("%s: a criu-fast image file of kind %u, not a stream", name_.c_str(), fh.kind);
    }
    pos_ = sizeof(fh);
    for (;;) {
      RecordHeader h;
      ASSIGN_OR_RETURN(n, ReadFull(fd_, &h, sizeof(h), name_));
      if (n == 0) break;  // ended between records: no trailer
      if (n != sizeof(h)) return Errorf("%s: stream cut inside a record header at offset %lu", name_.c_str(), pos_);
      RETURN_IF_ERROR(ReadPayload(h));
      const std::span<const uint8_t> payload(buf_.data(), h.length);
      if (RecordChecksum(h.type, h.flags, payload.data(), payload.size()) != h.checksum) {
        return Errorf("%s: checksum mismatch in the record at offset %lu", name_.c_str(), pos_);
      }
      if (h.type == static_cast<uint32_t>(RecordType::kTrailer)) {
        RETURN_IF_ERROR(CheckTrailer(h, payload));
        sum_.bytes = pos_ + sizeof(h) + h.length;
        sum_.complete = true;
        return sum_;
      }
      RETURN_IF_ERROR(Dispatch(h, payload));
      sum_.records++;
      digest_ = ChainDigest(digest_, h);
      pos_ += sizeof(h) + h.length;
    }
    sum_.bytes = pos_;
    return sum_;
  }

 private:
  Status ReadPayload(const RecordHeader& h) {
    if (h.length > kMaxRecordSize) {
      return Errorf("%s: corrupt record length %lu at offset %lu", name_.c_str(), h.length, pos_);
    }
    // The buffer grows with the bytes that really arrive, so a corrupt length
    // cannot make the reader allocate more than the stream holds.
    constexpr uint64_t kStep = 16ull << 20;
    uint64_t got = 0;
    while (got < h.length) {
      const uint64_t want = std::min(kStep, h.length - got);
      if (buf_.size() < got + want) buf_.resize(got + want);
      ASSIGN_OR_RETURN(size_t n, ReadFull(fd_, buf_.data() + got, want, name_));
      got += n;
      if (n != want) {
        return Errorf("%s: stream cut inside the record at offset %lu (%lu of %lu bytes)", name_.c_str(), pos_, got,
                      h.length);
      }
    }
    return OkStatus();
  }

  Status Dispatch(const RecordHeader& h, std::span<const uint8_t> payload) {
    switch (static_cast<RecordType>(h.type)) {
      case RecordType::kFileBegin: {
        if (h.flags != sum_.files + 1) {
          return Errorf("%s: file id %u out of sequence at offset %lu", name_.c_str(), h.flags, pos_);
        }
        img::StreamFile f;
        if (payload.size() > static_cast<size_t>(INT_MAX) ||  // ParseFromArray's size is an int
            !f.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
          return Errorf("%s: cannot parse StreamFile at offset %lu", name_.c_str(), pos_);
        }
        if (!IsSafeFileName(f.name()) || !names_.insert(f.name()).second) {
          return Errorf("%s: bad or repeated file name at offset %lu", name_.c_str(), pos_);
        }
        if (f.kind() > 0xffff || !KnownFileKind(static_cast<uint16_t>(f.kind()))) {
          return Errorf("%s: file %s of unknown kind %u", name_.c_str(), f.name().c_str(), f.kind());
        }
        sum_.files = h.flags;
        return v_->BeginFile(h.flags, f.name(), static_cast<FileKind>(f.kind()));
      }
      case RecordType::kMessage:
      case RecordType::kChunk:
        if (h.flags == 0 || h.flags > sum_.files) {
          return Errorf("%s: record of unknown file %u at offset %lu", name_.c_str(), h.flags, pos_);
        }
        return v_->FileRecord(h.flags, h, payload);
      default:
        return Errorf("%s: unknown record type %u at offset %lu", name_.c_str(), h.type, pos_);
    }
  }

  Status CheckTrailer(const RecordHeader& h, std::span<const uint8_t> payload) {
    img::StreamTrailer t;
    if (h.flags != 0 || payload.size() > static_cast<size_t>(INT_MAX) ||
        !t.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      return Errorf("%s: corrupt trailer at offset %lu", name_.c_str(), pos_);
    }
    if (t.files() != sum_.files || t.records() != sum_.records || t.bytes() != pos_ || t.digest() != digest_) {
      return Errorf("%s: the trailer does not match the stream (files %u/%u, records %lu/%lu, bytes %lu/%lu, "
                    "digest %s): records are missing or out of order",
                    name_.c_str(), t.files(), sum_.files, t.records(), sum_.records, t.bytes(), pos_,
                    t.digest() == digest_ ? "ok" : "differs");
    }
    uint8_t extra;
    ASSIGN_OR_RETURN(size_t n, ReadFull(fd_, &extra, 1, name_));
    if (n != 0) return Errorf("%s: data after the trailer at offset %lu", name_.c_str(), pos_ + sizeof(h) + h.length);
    return OkStatus();
  }

  int fd_;
  const std::string& name_;
  StreamVisitor* v_;
  std::vector<uint8_t> buf_;
  std::set<std::string> names_;
  StreamSummary sum_;
  uint64_t pos_ = 0;
  uint64_t digest_ = 0;
};

}  // namespace

Result<StreamSummary> ReadStream(int fd, const std::string& name, StreamVisitor* visitor) {
  Parser p(fd, name, visitor);
  return p.Run();
}

}  // namespace cf::streams
