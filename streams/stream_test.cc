// The stream framing (streams/stream.h): what a writer produces reads back
// record for record, and every kind of damage is caught.
#include "streams/stream.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "common/fd.h"
#include "criu_fast.pb.h"

namespace cf::streams {
namespace {

struct Collect : StreamVisitor {
  std::map<uint32_t, std::string> names;
  std::map<uint32_t, int> records;
  Status BeginFile(uint32_t id, const std::string& name, FileKind) override {
    names[id] = name;
    return OkStatus();
  }
  Status FileRecord(uint32_t id, const RecordHeader&, std::span<const uint8_t>) override {
    records[id]++;
    return OkStatus();
  }
};

// A stream in a memfd: two files, their records interleaved.
std::string MakeStream(bool finish = true) {
  UniqueFd fd(memfd_create("stream", MFD_CLOEXEC));
  auto w = StreamWriter::Start(fd.get(), "test");
  EXPECT_TRUE(w.ok());
  auto a = (*w)->BeginFile("core-1.img", FileKind::kCore);
  auto b = (*w)->BeginFile("pages-1.img", FileKind::kPages);
  EXPECT_TRUE(a.ok() && b.ok());
  img::Inventory inv;
  inv.set_root_pid(1);
  EXPECT_TRUE(a->WriteMessage(inv).ok());
  std::vector<uint8_t> page(4096, 7);
  EXPECT_TRUE(b->WriteChunk(Codec::kNone, page.size(), page).ok());
  EXPECT_TRUE(b->WriteChunk(Codec::kNone, page.size(), page).ok());
  EXPECT_FALSE((*w)->BeginFile("core-1.img", FileKind::kCore).ok());  // a name once only
  EXPECT_FALSE((*w)->BeginFile("../x", FileKind::kCore).ok());
  if (finish) {
    EXPECT_TRUE((*w)->Finish().ok());
  }
  std::string out(static_cast<size_t>(lseek(fd.get(), 0, SEEK_END)), '\0');
  EXPECT_EQ(pread(fd.get(), out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
  return out;
}

Result<StreamSummary> Read(const std::string& bytes, Collect* c) {
  UniqueFd fd(memfd_create("stream", MFD_CLOEXEC));
  EXPECT_EQ(write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  lseek(fd.get(), 0, SEEK_SET);
  return ReadStream(fd.get(), "test", c);
}

TEST(StreamTest, RoundTrip) {
  Collect c;
  auto s = Read(MakeStream(), &c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->complete);
  EXPECT_EQ(s->files, 2u);
  ASSERT_EQ(c.names.size(), 2u);
  int chunks = 0, messages = 0;
  for (const auto& [id, name] : c.names) (name == "core-1.img" ? messages : chunks) = c.records[id];
  EXPECT_EQ(messages, 1);
  EXPECT_EQ(chunks, 2);
}

TEST(StreamTest, WithoutTrailerIsIncomplete) {
  Collect c;
  auto s = Read(MakeStream(false), &c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(s->complete);
}

TEST(StreamTest, CutInsideARecordIsAnError) {
  const std::string full = MakeStream();
  for (size_t cut : {size_t{4}, size_t{20}, full.size() / 2, full.size() - 3}) {
    Collect c;
    auto s = Read(full.substr(0, cut), &c);
    EXPECT_FALSE(s.ok()) << "cut at " << cut;
  }
}

TEST(StreamTest, FlippedBytesAreCaught) {
  const std::string full = MakeStream();
  for (size_t at = 8; at < full.size(); at += 97) {
    std::string bad = full;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    Collect c;
    auto s = Read(bad, &c);
    EXPECT_TRUE(!s.ok() || !s->complete) << "flip at " << at << " went unnoticed";
  }
}

TEST(StreamTest, BytesAfterTheTrailerAreAnError) {
  Collect c;
  auto s = Read(MakeStream() + "x", &c);
  EXPECT_FALSE(s.ok());
}

TEST(StreamTest, SafeNames) {
  EXPECT_TRUE(IsSafeFileName("core-12.img"));
  EXPECT_FALSE(IsSafeFileName(""));
  EXPECT_FALSE(IsSafeFileName(".."));
  EXPECT_FALSE(IsSafeFileName("a/b"));
  EXPECT_FALSE(IsSafeFileName(std::string(201, 'a')));
}

}  // namespace
}  // namespace cf::streams
