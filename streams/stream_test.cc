#include "streams/stream.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <algorithm>
#include <csignal>
#include <map>
#include <tuple>

#include "common/fd.h"
#include "criu_fast.pb.h"
#include "streams/stream_stage.h"

namespace cf::streams {
namespace {

// A stream in memory: written through a memfd, read back as bytes.
std::string ReadBack(int fd) {
  std::string out;
  char buf[65536];
  lseek(fd, 0, SEEK_SET);
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

UniqueFd MemFd(const std::string& bytes) {
  UniqueFd fd(memfd_create("cf-stream-test", MFD_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

struct MemVisitor : StreamVisitor {
  std::map<uint32_t, std::string> names;
  std::map<std::string, std::vector<RecordHeader>> records;
  Status BeginFile(uint32_t id, const std::string& name, FileKind) override {
    names[id] = name;
    return OkStatus();
  }
  Status FileRecord(uint32_t id, const RecordHeader& h, std::span<const uint8_t>) override {
    records[names[id]].push_back(h);
    return OkStatus();
  }
};

Result<StreamSummary> Parse(const std::string& bytes, MemVisitor* v = nullptr) {
  MemVisitor local;
  UniqueFd fd = MemFd(bytes);
  return ReadStream(fd.get(), "test", v ? v : &local);
}

std::vector<uint8_t> Pattern(size_t n, int seed) {
  std::vector<uint8_t> d(n);
  for (size_t i = 0; i < n; ++i) d[i] = static_cast<uint8_t>(i * 31 + seed);
  return d;
}

// A small image: an inventory, a core, a pages file with two chunks whose
// records interleave with a pagemap written meanwhile; the offsets of the
// chunks as the writer reported them land in |offsets|.
std::string SampleStream(std::vector<uint64_t>* offsets = nullptr) {
  UniqueFd fd(memfd_create("cf-stream-test", MFD_CLOEXEC));
  auto sw = StreamWriter::Start(fd.get(), "memfd");
  EXPECT_TRUE(sw.ok());
  img::Inventory inv;
  inv.set_root_pid(42);
  inv.add_pids(42);
  auto w = (*sw)->BeginFile("inventory.img", FileKind::kInventory);
  EXPECT_TRUE(w.ok() && w->WriteMessage(inv).ok() && w->Finish().ok());
  auto pages = (*sw)->BeginFile("pages-42.img", FileKind::kPages);
  EXPECT_TRUE(pages.ok());
  EXPECT_EQ(pages->offset(), sizeof(FileHeader));
  EXPECT_NE(pages->record_flags(), 0u);
  const auto a = Pattern(8192, 1), b = Pattern(4096, 2);
  if (offsets) offsets->push_back(pages->offset());
  EXPECT_TRUE(pages->WriteChunk(Codec::kNone, a.size(), a).ok());
  auto pm = (*sw)->BeginFile("pagemap-42.img", FileKind::kPageMap);
  img::PageMap m;
  m.set_pid(42);
  EXPECT_TRUE(pm.ok() && pm->WriteMessage(m).ok());
  if (offsets) offsets->push_back(pages->offset());
  EXPECT_TRUE(pages->WriteChunk(Codec::kNone, b.size(), b).ok());
  EXPECT_TRUE((*sw)->Finish().ok());
  EXPECT_FALSE(pages->WriteChunk(Codec::kNone, b.size(), b).ok()) << "a record after the trailer";
  return ReadBack(fd.get());
}

TEST(StreamTest, RoundTrip) {
  MemVisitor v;
  auto s = Parse(SampleStream(), &v);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->complete);
  EXPECT_EQ(s->files, 3u);
  EXPECT_EQ(s->records, 3u + 4u);  // 3 FileBegin, 4 file records
  EXPECT_EQ(v.records["pages-42.img"].size(), 2u);
  EXPECT_EQ(v.records["pagemap-42.img"].size(), 1u);
}

// A staged file is an ordinary image file: its chunks are where the writer
// said they would be.
TEST(StreamTest, StagedFilesReadLikeImageFiles) {
  std::vector<uint64_t> offsets;
  const std::string bytes = SampleStream(&offsets);
  UniqueFd fd = MemFd(bytes);
  std::string dir;
  {
    auto staged = StagedImage::Unpack(fd.get(), "test");
    ASSERT_TRUE(staged.ok()) << staged.status().ToString();
    ASSERT_TRUE(staged->summary().complete);
    dir = staged->dir();
    auto r = ImageReader::Open(dir + "/pages-42.img", FileKind::kPages);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Record rec;
    std::vector<uint8_t> out;
    ASSERT_TRUE(r->ReadAt(offsets[1], &rec).ok());
    ASSERT_TRUE(DecodeChunk(rec, &out, "pages").ok());
    EXPECT_EQ(out, Pattern(4096, 2));
    ASSERT_TRUE(r->ReadAt(offsets[0], &rec).ok());
    ASSERT_TRUE(DecodeChunk(rec, &out, "pages").ok());
    EXPECT_EQ(out, Pattern(8192, 1));
    auto inv = ImageReader::Open(dir + "/inventory.img", FileKind::kInventory);
    ASSERT_TRUE(inv.ok());
    img::Inventory got;
    ASSERT_TRUE(inv->ReadMessage(&got).ok());
    EXPECT_EQ(got.root_pid(), 42);
  }
  EXPECT_NE(access(dir.c_str(), F_OK), 0) << "the staging directory outlived its StagedImage";
}

// Offsets of the record boundaries of a stream (after its header).
std::vector<size_t> Boundaries(const std::string& bytes) {
  std::vector<size_t> out;
  size_t pos = sizeof(FileHeader);
  while (pos + sizeof(RecordHeader) <= bytes.size()) {
    out.push_back(pos);
    RecordHeader h;
    memcpy(&h, bytes.data() + pos, sizeof(h));
    pos += sizeof(h) + h.length;
  }
  EXPECT_EQ(pos, bytes.size());
  return out;
}

// Cut anywhere: never complete; between records it is a clean incomplete
// stream, elsewhere an error.
TEST(StreamTest, EveryTruncationIsRefused) {
  const std::string bytes = SampleStream();
  const std::vector<size_t> cuts = Boundaries(bytes);
  for (size_t len = 0; len < bytes.size(); ++len) {
    auto s = Parse(bytes.substr(0, len));
    const bool boundary = std::find(cuts.begin(), cuts.end(), len) != cuts.end();
    if (boundary) {
      ASSERT_TRUE(s.ok()) << "cut at " << len << ": " << s.status().ToString();
      EXPECT_FALSE(s->complete) << "cut at " << len;
    } else {
      EXPECT_FALSE(s.ok()) << "cut at " << len << " was accepted";
    }
  }
}

TEST(StreamTest, EveryFlippedByteIsRefused) {
  const std::string bytes = SampleStream();
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    auto s = Parse(bad);
    EXPECT_TRUE(!s.ok() || !s->complete) << "flipped byte " << i << " went unnoticed";
  }
}

TEST(StreamTest, DataAfterTheTrailerIsRefused) {
  auto s = Parse(SampleStream() + "x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().ToString().find("after the trailer"), std::string::npos) << s.status().ToString();
}

// Two whole records swapped: each checksum holds, the trailer's digest not.
TEST(StreamTest, ReorderedRecordsAreRefused) {
  const std::string bytes = SampleStream();
  const std::vector<size_t> b = Boundaries(bytes);
  // The records of the pages file: the chunk after "pages" begins and the one after the pagemap.
  MemVisitor v;
  ASSERT_TRUE(Parse(bytes, &v).ok());
  // Swap the last two records before the trailer (the pagemap message and the second chunk).
  const size_t n = b.size();
  ASSERT_GE(n, 3u);
  const size_t r1 = b[n - 3], r2 = b[n - 2], tr = b[n - 1];
  const std::string swapped =
      bytes.substr(0, r1) + bytes.substr(r2, tr - r2) + bytes.substr(r1, r2 - r1) + bytes.substr(tr);
  auto s = Parse(swapped);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().ToString().find("trailer does not match"), std::string::npos) << s.status().ToString();
}

TEST(StreamTest, NotAStream) {
  EXPECT_FALSE(Parse("").ok());
  EXPECT_FALSE(Parse("hello world, not a stream at all").ok());
  // An image file is not a stream.
  FileHeader h{kFileMagic, kFormatVersion, static_cast<uint16_t>(FileKind::kCore)};
  auto s = Parse(std::string(reinterpret_cast<const char*>(&h), sizeof(h)));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().ToString().find("not a stream"), std::string::npos) << s.status().ToString();
}

// Builds a stream by hand: header, then records of (type, flags, payload).
std::string Handmade(const std::vector<std::tuple<RecordType, uint32_t, std::string>>& recs) {
  FileHeader fh{kFileMagic, kFormatVersion, static_cast<uint16_t>(FileKind::kStream)};
  std::string out(reinterpret_cast<const char*>(&fh), sizeof(fh));
  for (const auto& [type, flags, payload] : recs) {
    RecordHeader h{static_cast<uint32_t>(type), flags, payload.size(), 0};
    h.checksum = RecordChecksum(h.type, h.flags, payload.data(), payload.size());
    out.append(reinterpret_cast<const char*>(&h), sizeof(h));
    out += payload;
  }
  return out;
}

std::string FileMsg(const std::string& name, FileKind kind) {
  img::StreamFile f;
  f.set_name(name);
  f.set_kind(static_cast<uint32_t>(kind));
  return f.SerializeAsString();
}

TEST(StreamTest, BadFileNamesAndIdsAreRefused) {
  for (const char* name : {"../evil.img", "a/b.img", ".", "..", ""}) {
    auto s = Parse(Handmade({{RecordType::kFileBegin, 1, FileMsg(name, FileKind::kCore)}}));
    EXPECT_FALSE(s.ok()) << "name '" << name << "' accepted";
  }
  // A repeated name, an id out of sequence, a record of a file not begun,
  // an unknown kind, an unknown record type.
  const std::string core = FileMsg("core-1.img", FileKind::kCore);
  EXPECT_FALSE(Parse(Handmade({{RecordType::kFileBegin, 1, core}, {RecordType::kFileBegin, 2, core}})).ok());
  EXPECT_FALSE(Parse(Handmade({{RecordType::kFileBegin, 2, core}})).ok());
  EXPECT_FALSE(Parse(Handmade({{RecordType::kFileBegin, 1, core}, {RecordType::kMessage, 2, "x"}})).ok());
  EXPECT_FALSE(Parse(Handmade({{RecordType::kFileBegin, 1, core}, {RecordType::kMessage, 0, "x"}})).ok());
  EXPECT_FALSE(Parse(Handmade({{RecordType::kFileBegin, 1, FileMsg("x.img", FileKind::kStream)}})).ok());
  EXPECT_FALSE(Parse(Handmade({{RecordType::kFileBegin, 1, FileMsg("x.img", FileKind{99})}})).ok());
  EXPECT_FALSE(Parse(Handmade({{static_cast<RecordType>(9), 0, "x"}})).ok());
  // A well-formed stream without a trailer is merely incomplete.
  auto s = Parse(Handmade({{RecordType::kFileBegin, 1, core}, {RecordType::kMessage, 1, "x"}}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(s->complete);
}

TEST(StreamTest, TrailerMustMatch) {
  const std::string core = FileMsg("core-1.img", FileKind::kCore);
  img::StreamTrailer t;
  t.set_files(1);
  t.set_records(1);  // the FileBegin; but bytes and digest are wrong
  EXPECT_FALSE(Parse(Handmade({{RecordType::kFileBegin, 1, core}, {RecordType::kTrailer, 0, t.SerializeAsString()}}))
                   .ok());
  EXPECT_FALSE(Parse(Handmade({{RecordType::kTrailer, 0, "\xff\xff"}})).ok());
}

// A corrupt length does not make the reader allocate it before the bytes
// arrive: a 3 GiB record in a short stream fails at once.
TEST(StreamTest, HugeLengthInShortStream) {
  std::string bytes = Handmade({{RecordType::kFileBegin, 1, FileMsg("core-1.img", FileKind::kCore)}});
  RecordHeader h{static_cast<uint32_t>(RecordType::kMessage), 1, 3ull << 30, 0};
  bytes.append(reinterpret_cast<const char*>(&h), sizeof(h));
  bytes += "short";
  auto s = Parse(bytes);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().ToString().find("cut inside the record"), std::string::npos) << s.status().ToString();
}

TEST(StreamTest, WriterRefusesUnsafeAndRepeatedNames) {
  UniqueFd fd(memfd_create("cf-stream-test", MFD_CLOEXEC));
  auto sw = StreamWriter::Start(fd.get(), "memfd");
  ASSERT_TRUE(sw.ok());
  EXPECT_FALSE((*sw)->BeginFile("../x.img", FileKind::kCore).ok());
  EXPECT_TRUE((*sw)->BeginFile("x.img", FileKind::kCore).ok());
  EXPECT_TRUE((*sw)->HasFile("x.img"));
  EXPECT_FALSE((*sw)->BeginFile("x.img", FileKind::kCore).ok());
}

TEST(StreamTest, BrokenPipeIsAnError) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  UniqueFd w(p[1]);
  auto sw = StreamWriter::Start(w.get(), "pipe");
  ASSERT_FALSE(sw.ok());
  EXPECT_EQ(sw.status().err(), EPIPE);
}

}  // namespace
}  // namespace cf::streams
