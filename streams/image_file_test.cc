#include "streams/image_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "criu_fast.pb.h"
#include "streams/codec.h"
#include "streams/format.h"
#define XXH_INLINE_ALL
#include "streams/xxh3_record.h"

namespace cf::streams {
namespace {

class ImageFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cf-img-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
};

TEST_F(ImageFileTest, MessageAndChunkRoundTrip) {
  const std::string path = dir_ + "/x.img";
  cf::img::Inventory inv;
  inv.set_root_pid(1234);
  inv.add_pids(1234);
  std::vector<uint8_t> data(3 * 4096);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  uint64_t chunk_off = 0;
  {
    auto w = ImageWriter::Create(path, FileKind::kInventory);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(w->WriteMessage(inv).ok());
    chunk_off = w->offset();
    ASSERT_TRUE(w->WriteChunk(Codec::kNone, data.size(), data).ok());
    ASSERT_TRUE(w->Finish().ok());
  }
  auto r = ImageReader::Open(path, FileKind::kInventory);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  cf::img::Inventory got;
  ASSERT_TRUE(r->ReadMessage(&got).ok());
  EXPECT_EQ(got.root_pid(), 1234);
  Record rec;
  auto more = r->Next(&rec);
  ASSERT_TRUE(more.ok());
  ASSERT_TRUE(*more);
  EXPECT_EQ(rec.offset, chunk_off);
  std::vector<uint8_t> out;
  ASSERT_TRUE(DecodeChunk(rec, &out, path).ok());
  EXPECT_EQ(out, data);
  more = r->Next(&rec);
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);
}

TEST_F(ImageFileTest, CompressedChunksRoundTrip) {
  std::vector<uint8_t> data(64 * 1024, 'a');
  for (const char* name : {"lz4", "zstd", "zstd:3"}) {
    auto spec = ParseCodec(name);
    ASSERT_TRUE(spec.ok());
    std::vector<uint8_t> stored;
    auto codec = Compress(*spec, data, &stored);
    ASSERT_TRUE(codec.ok());
    EXPECT_NE(*codec, Codec::kNone) << name;
    EXPECT_LT(stored.size(), data.size());
    std::vector<uint8_t> out(data.size());
    ASSERT_TRUE(Decompress(*codec, stored, out.data(), out.size()).ok());
    EXPECT_EQ(out, data);
  }
  EXPECT_FALSE(ParseCodec("gzip").ok());
}

TEST_F(ImageFileTest, FlippedByteIsDetected) {
  const std::string path = dir_ + "/p.img";
  std::vector<uint8_t> data(4096, 0x5a);
  {
    auto w = ImageWriter::Create(path, FileKind::kPages);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->WriteChunk(Codec::kNone, data.size(), data).ok());
    ASSERT_TRUE(w->Finish().ok());
  }
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8 + 24 + 16 + 100);
    f.put(0x00);
  }
  auto r = ImageReader::Open(path, FileKind::kPages);
  ASSERT_TRUE(r.ok());
  Record rec;
  auto more = r->Next(&rec);
  ASSERT_FALSE(more.ok());
  EXPECT_NE(more.status().ToString().find("checksum"), std::string::npos);
}

TEST_F(ImageFileTest, TruncationAndBadMagicAreDetected) {
  const std::string path = dir_ + "/t.img";
  std::vector<uint8_t> data(8192, 1);
  {
    auto w = ImageWriter::Create(path, FileKind::kPages);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->WriteChunk(Codec::kNone, data.size(), data).ok());
    ASSERT_TRUE(w->Finish().ok());
  }
  ASSERT_EQ(truncate(path.c_str(), 8 + 24 + 100), 0);
  auto r = ImageReader::Open(path, FileKind::kPages);
  ASSERT_TRUE(r.ok());
  Record rec;
  EXPECT_FALSE(r->Next(&rec).ok());

  ASSERT_EQ(truncate(path.c_str(), 0), 0);
  {
    std::ofstream f(path, std::ios::binary);
    f << "NOTANIMAGEFILE";
  }
  auto bad = ImageReader::Open(path, FileKind::kPages);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().ToString().find("magic"), std::string::npos);
  auto wrong_kind = ImageReader::Open(dir_ + "/none.img", FileKind::kPages);
  EXPECT_FALSE(wrong_kind.ok());
}

// An image of format 1 (before descriptors carried their kind as a oneof)
// is refused with a message that names both versions and says what to do.
TEST_F(ImageFileTest, OlderFormatVersionIsRefusedClearly) {
  const std::string path = dir_ + "/core-1.img";
  {
    auto w = ImageWriter::Create(path, FileKind::kCore);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->Finish().ok());
  }
  FileHeader h{};
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.read(reinterpret_cast<char*>(&h), sizeof(h));
    h.version = 1;
    f.seekp(0);
    f.write(reinterpret_cast<const char*>(&h), sizeof(h));
  }
  auto r = ImageReader::Open(path, FileKind::kCore);
  ASSERT_FALSE(r.ok());
  const std::string msg = r.status().ToString();
  EXPECT_NE(msg.find("version 1 (this build reads 2 to 4)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("older criu-fast"), std::string::npos) << msg;
  // Format 2 (no DUP ranges, one pages file a process) still reads; a
  // newer one is refused as such.
  for (uint16_t v : {uint16_t{2}, uint16_t{5}}) {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    h.version = v;
    f.write(reinterpret_cast<const char*>(&h), sizeof(h));
    f.close();
    auto rv = ImageReader::Open(path, FileKind::kCore);
    if (v == 2) {
      EXPECT_TRUE(rv.ok()) << rv.status().ToString();
    } else {
      ASSERT_FALSE(rv.ok());
      EXPECT_NE(rv.status().ToString().find("newer criu-fast"), std::string::npos) << rv.status().ToString();
    }
  }
}

// Formats 2 and 3 checked records with XXH64, format 4 with XXH3: a reader
// takes the file's format from its header, so images written before still
// read, and a record whose checksum is of the other kind is refused.
TEST_F(ImageFileTest, RecordsAreCheckedAsTheirFormatSays) {
  cf::img::Inventory inv;
  inv.set_root_pid(77);
  const std::string payload = inv.SerializeAsString();
  auto write = [&](uint16_t file_version, uint16_t checksum_version) {
    const std::string path = dir_ + "/inv-" + std::to_string(file_version) + "-" + std::to_string(checksum_version);
    FileHeader fh{kFileMagic, file_version, static_cast<uint16_t>(FileKind::kInventory)};
    const uint32_t type = static_cast<uint32_t>(RecordType::kMessage);
    RecordHeader h{type, 0, payload.size(), RecordChecksumFor(checksum_version, type, 0, payload.data(), payload.size())};
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(&fh), sizeof(fh));
    f.write(reinterpret_cast<const char*>(&h), sizeof(h));
    f << payload;
    return path;
  };
  auto read = [](const std::string& path) -> Status {
    ASSIGN_OR_RETURN(ImageReader r, ImageReader::Open(path, FileKind::kInventory));
    cf::img::Inventory got;
    RETURN_IF_ERROR(r.ReadMessage(&got));
    if (got.root_pid() != 77) return Error("wrong root pid");
    return OkStatus();
  };
  EXPECT_NE(RecordChecksumFor(3, 1, 0, payload.data(), payload.size()),
            RecordChecksumFor(4, 1, 0, payload.data(), payload.size()));
  for (uint16_t v : {uint16_t{2}, uint16_t{3}, uint16_t{4}}) {
    EXPECT_TRUE(read(write(v, v)).ok()) << "format " << v << ": " << read(write(v, v)).ToString();
  }
  for (auto [file, sum] : {std::pair<uint16_t, uint16_t>{3, 4}, {4, 3}}) {
    const Status s = read(write(file, sum));
    ASSERT_FALSE(s.ok()) << "format " << file << " with the checksum of " << sum;
    EXPECT_NE(s.ToString().find("checksum mismatch"), std::string::npos) << s.ToString();
  }
}

// The checksum built for AVX2 and the one built for any x86-64 agree (a
// dump on one machine restores on another), and both equal XXH3-64 of the
// header fields and payload laid end to end, at sizes around XXH3's
// internal block and stripe lengths.
TEST(RecordChecksumTest, AvxAndPlainBuildsAgree) {
  std::vector<uint8_t> data((2 << 20) + 77);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + (i >> 9));
  const bool avx2 = __builtin_cpu_supports("avx2");
  for (size_t len : {size_t{0}, size_t{1}, size_t{16}, size_t{129}, size_t{240}, size_t{241}, size_t{1024},
                     size_t{4096}, size_t{65536 + 5}, data.size()}) {
    for (size_t cut : {size_t{0}, len / 3}) {
      const uint64_t head[2] = {7 | (uint64_t{9} << 32), len};
      std::vector<uint8_t> whole(reinterpret_cast<const uint8_t*>(head), reinterpret_cast<const uint8_t*>(head) + 16);
      whole.insert(whole.end(), data.begin(), data.begin() + static_cast<ptrdiff_t>(len));
      const uint64_t want = XXH3_64bits(whole.data(), whole.size());
      EXPECT_EQ(detail::Xxh3Record(7, 9, data.data(), cut, data.data() + cut, len - cut), want) << len;
      if (avx2) {
        EXPECT_EQ(detail::Xxh3RecordAvx2(7, 9, data.data(), cut, data.data() + cut, len - cut), want) << len;
      }
      EXPECT_EQ(RecordChecksum(7, 9, data.data(), cut, data.data() + cut, len - cut), want) << len;
    }
  }
}

}  // namespace
}  // namespace cf::streams
