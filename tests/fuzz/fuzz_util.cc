#include "tests/fuzz/fuzz_util.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <google/protobuf/stubs/logging.h>

#include "common/io.h"
#include "common/log.h"
#include "criu_fast.pb.h"
#include "streams/format.h"
#include "streams/stream.h"

namespace cf::fuzz {

void Init() {
  static bool done = false;
  if (done) return;
  done = true;
  // No line per rejected input: libFuzzer's output stays readable and fast.
  DetachLogging();
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
}

UniqueFd MemFile(const uint8_t* data, size_t size) {
  UniqueFd fd(memfd_create("cf-fuzz", MFD_CLOEXEC));
  Check(fd.valid(), "memfd_create");
  Check(WriteAll(fd.get(), data, size, "memfd").ok(), "write memfd");
  Check(lseek(fd.get(), 0, SEEK_SET) == 0, "lseek memfd");
  return fd;
}

std::string FdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

void Check(bool cond, const char* what) {
  if (cond) return;
  fprintf(stderr, "fuzz invariant broken: %s\n", what);
  abort();
}

namespace {

using streams::FileHeader;
using streams::RecordHeader;

// Visits each record header that fits whole in |buf| (payload included),
// from |pos|; stops at the first that does not. |fn| may change the header.
template <typename Fn>
size_t EachRecord(std::vector<uint8_t>& buf, size_t pos, Fn fn) {
  while (buf.size() - pos >= sizeof(RecordHeader)) {
    RecordHeader h;
    memcpy(&h, buf.data() + pos, sizeof(h));
    if (h.length > buf.size() - pos - sizeof(h)) break;
    if (!fn(pos, h)) break;
    memcpy(buf.data() + pos, &h, sizeof(h));
    pos += sizeof(h) + h.length;
  }
  return pos;
}

// The record's checksum as the format of |buf|'s header computes it.
void Fix(const std::vector<uint8_t>& buf, size_t pos, RecordHeader* h) {
  FileHeader fh;
  memcpy(&fh, buf.data(), sizeof(fh));
  h->checksum = streams::RecordChecksumFor(fh.version, h->type, h->flags, buf.data() + pos + sizeof(*h), h->length);
}

}  // namespace

std::vector<uint8_t> FixImageChecksums(const uint8_t* data, size_t size) {
  std::vector<uint8_t> buf(data, data + size);
  if (size < sizeof(FileHeader)) return buf;
  EachRecord(buf, sizeof(FileHeader), [&](size_t pos, RecordHeader& h) {
    Fix(buf, pos, &h);
    return true;
  });
  return buf;
}

std::vector<uint8_t> FixStreamChecksums(const uint8_t* data, size_t size) {
  std::vector<uint8_t> buf(data, data + size);
  if (size < sizeof(FileHeader)) return buf;
  uint64_t digest = 0, records = 0;
  uint32_t files = 0;
  size_t trailer = 0;
  EachRecord(buf, sizeof(FileHeader), [&](size_t pos, RecordHeader& h) {
    if (h.type == static_cast<uint32_t>(streams::RecordType::kTrailer)) {
      trailer = pos;
      return false;
    }
    Fix(buf, pos, &h);
    if (h.type == static_cast<uint32_t>(streams::RecordType::kFileBegin)) files++;
    records++;
    digest = streams::ChainDigest(digest, h);
    return true;
  });
  if (trailer == 0) return buf;
  // The trailer: rewritten to match when it parses, else only re-checksummed.
  RecordHeader h;
  memcpy(&h, buf.data() + trailer, sizeof(h));
  const size_t body = trailer + sizeof(h);
  img::StreamTrailer t;
  if (t.ParseFromArray(buf.data() + body, static_cast<int>(h.length))) {
    t.set_files(files);
    t.set_records(records);
    t.set_bytes(trailer);
    t.set_digest(digest);
    std::string payload;
    Check(t.SerializeToString(&payload), "serialize StreamTrailer");
    std::vector<uint8_t> out(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(body));
    out.insert(out.end(), payload.begin(), payload.end());
    out.insert(out.end(), buf.begin() + static_cast<ptrdiff_t>(body + h.length), buf.end());
    buf = std::move(out);
    h.length = payload.size();
  }
  Fix(buf, trailer, &h);
  memcpy(buf.data() + trailer, &h, sizeof(h));
  return buf;
}

}  // namespace cf::fuzz
