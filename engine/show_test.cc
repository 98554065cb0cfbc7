// Tests of `criu-fast show`: a small image directory is written with
// ImageWriter, shown, and the output parsed back as JSON (into
// google.protobuf.Struct, a full JSON parser) to check fields.
#include "engine/show.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "criu_fast.pb.h"
#include "streams/image_file.h"

namespace cf::engine {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr uint64_t kPageSize = 4096;

// Parses a whole JSON document; fails the test when it is not valid JSON.
Struct ParseJson(const std::string& json) {
  Struct s;
  auto st = google::protobuf::util::JsonStringToMessage(json, &s);
  EXPECT_TRUE(st.ok()) << st.ToString() << "\n" << json;
  return s;
}

const Value& Field(const Struct& s, const std::string& name) {
  static const Value kMissing;
  auto it = s.fields().find(name);
  EXPECT_NE(it, s.fields().end()) << "no field " << name;
  return it == s.fields().end() ? kMissing : it->second;
}

const Struct& Obj(const Struct& s, const std::string& name) { return Field(s, name).struct_value(); }

class ShowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cf-show-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    img::Inventory inv;
    inv.set_format_version(1);
    inv.set_root_pid(42);
    inv.add_pids(42);
    inv.set_compression("none");
    Write("inventory.img", streams::FileKind::kInventory, inv);

    img::Process core;
    core.set_pid(42);
    core.set_cwd("/tmp/some \"dir\"");
    img::Vma* v = core.add_vmas();
    v->set_start(0x400000);
    v->set_end(0x402000);
    v->set_path("/bin/x");
    v = core.add_vmas();
    v->set_start(0x7f0000000000);
    v->set_end(0x7f0000001000);
    v->set_path("[heap]");
    core.add_threads()->set_tid(42);
    Write("core-42.img", streams::FileKind::kCore, core);

    // Three DATA pages in two ranges, cut into chunks of 2 and 1 pages.
    img::PageMap pm;
    pm.set_pid(42);
    img::PageRange* r = pm.add_ranges();
    r->set_vaddr(0x400000);
    r->set_nr_pages(2);
    r = pm.add_ranges();
    r->set_vaddr(0x7f0000000000);
    r->set_nr_pages(1);
    r = pm.add_ranges();
    r->set_vaddr(0x7f0000001000);
    r->set_nr_pages(4);
    r->set_kind(img::PageRange::ZERO);
    pm.set_data_pages(3);
    pm.set_pages_file("pages-42.img");

    auto w = streams::ImageWriter::Create(dir_ + "/pages-42.img", streams::FileKind::kPages);
    ASSERT_TRUE(w.ok());
    std::vector<uint8_t> data(2 * kPageSize, 7);
    img::ChunkRef* c = pm.add_chunks();
    c->set_file_offset(w->offset());
    c->set_nr_pages(2);
    c->set_stored_size(data.size());
    ASSERT_TRUE(w->WriteChunk(streams::Codec::kNone, data.size(), data).ok());
    chunk2_offset_ = w->offset();
    data.resize(kPageSize);
    c = pm.add_chunks();
    c->set_file_offset(w->offset());
    c->set_nr_pages(1);
    c->set_stored_size(data.size());
    ASSERT_TRUE(w->WriteChunk(streams::Codec::kNone, data.size(), data).ok());
    ASSERT_TRUE(w->Finish().ok());
    Write("pagemap-42.img", streams::FileKind::kPageMap, pm);

    img::DumpStats stats;
    stats.set_pages_written(3);
    stats.set_processes(1);
    Write("stats-dump.img", streams::FileKind::kStats, stats);

    auto g = streams::ImageWriter::Create(dir_ + "/ghost-1-2.img", streams::FileKind::kGhost);
    ASSERT_TRUE(g.ok());
    std::vector<uint8_t> text(100, 'x');
    ASSERT_TRUE(g->WriteChunk(streams::Codec::kNone, text.size(), text).ok());
    ASSERT_TRUE(g->Finish().ok());
  }
  void TearDown() override { ASSERT_EQ(std::system(("rm -rf '" + dir_ + "'").c_str()), 0); }

  void Write(const std::string& name, streams::FileKind kind, const google::protobuf::MessageLite& msg) {
    auto w = streams::ImageWriter::Create(dir_ + "/" + name, kind);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->WriteMessage(msg).ok());
    ASSERT_TRUE(w->Finish().ok());
  }

  // Overwrites one byte of an image file.
  void Poke(const std::string& name, off_t offset, uint8_t byte) {
    const int fd = open((dir_ + "/" + name).c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, &byte, 1, offset), 1);
    close(fd);
  }

  std::string dir_;
  uint64_t chunk2_offset_ = 0;
};

TEST_F(ShowTest, DirectoryAsJson) {
  bool incomplete = true;
  auto json = ShowJson(dir_, &incomplete);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_FALSE(incomplete);
  const Struct top = ParseJson(*json);
  EXPECT_EQ(Field(top, "dir").string_value(), dir_);

  const Struct& inv = Obj(top, "inventory");
  EXPECT_EQ(Field(inv, "root_pid").number_value(), 42);
  EXPECT_EQ(Field(inv, "compression").string_value(), "none");
  EXPECT_EQ(Field(inv, "parent").string_value(), "");  // zero fields are printed too
  EXPECT_EQ(Field(Obj(top, "stats"), "pages_written").string_value(), "3");  // uint64 as string

  const Struct& procs = Obj(top, "processes");
  ASSERT_EQ(procs.fields_size(), 1);
  const Struct& p = Obj(procs, "42");
  const Struct& core = Obj(p, "core");
  EXPECT_EQ(Field(core, "cwd").string_value(), "/tmp/some \"dir\"");
  const auto& vmas = Field(core, "vmas").list_value();
  ASSERT_EQ(vmas.values_size(), 2);
  EXPECT_EQ(Field(vmas.values(0).struct_value(), "start").string_value(), "4194304");
  EXPECT_EQ(Field(vmas.values(1).struct_value(), "path").string_value(), "[heap]");

  const Struct& pm = Obj(p, "pagemap");
  const auto& ranges = Field(pm, "ranges").list_value();
  ASSERT_EQ(ranges.values_size(), 3);
  EXPECT_EQ(Field(ranges.values(0).struct_value(), "kind").string_value(), "DATA");
  EXPECT_EQ(Field(ranges.values(2).struct_value(), "kind").string_value(), "ZERO");
  EXPECT_EQ(Field(pm, "chunks").list_value().values_size(), 2);

  const Struct& pages = Obj(p, "pages");
  EXPECT_EQ(Field(pages, "file").string_value(), "pages-42.img");
  const auto& chunks = Field(pages, "chunks").list_value();
  ASSERT_EQ(chunks.values_size(), 2);
  const Struct& c0 = chunks.values(0).struct_value();
  const Struct& c1 = chunks.values(1).struct_value();
  EXPECT_EQ(Field(c0, "offset").number_value(), sizeof(streams::FileHeader));
  EXPECT_EQ(Field(c0, "codec").string_value(), "none");
  EXPECT_EQ(Field(c0, "raw_size").number_value(), 2 * kPageSize);
  EXPECT_EQ(Field(c0, "stored_size").number_value(), 2 * kPageSize);
  EXPECT_EQ(Field(c1, "offset").number_value(), chunk2_offset_);
  EXPECT_EQ(Field(pages, "raw_bytes").number_value(), 3 * kPageSize);
  EXPECT_EQ(Field(pages, "stored_bytes").number_value(), 3 * kPageSize);

  const Struct& ghost = Obj(Obj(top, "ghosts"), "ghost-1-2.img");
  EXPECT_EQ(Field(ghost, "chunks").number_value(), 1);
  EXPECT_EQ(Field(ghost, "bytes").number_value(), 100);
}

// An inventory that names a pid twice (damaged, or made by hand): the
// process is printed once, so the output stays valid JSON (a duplicate key
// is refused by protobuf's parser; found by fuzz_show).
TEST_F(ShowTest, PidNamedTwiceIsPrintedOnce) {
  img::Inventory inv;
  inv.set_format_version(1);
  inv.set_root_pid(42);
  inv.add_pids(42);
  inv.add_pids(42);
  inv.set_compression("none");
  Write("inventory.img", streams::FileKind::kInventory, inv);
  bool incomplete = true;
  auto json = ShowJson(dir_, &incomplete);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  const Struct top = ParseJson(*json);
  const Struct& procs = Obj(top, "processes");
  EXPECT_EQ(procs.fields_size(), 1);
  EXPECT_EQ(Field(Obj(Obj(procs, "42"), "core"), "cwd").string_value(), "/tmp/some \"dir\"");
}

TEST_F(ShowTest, PagesFile) {
  bool incomplete = false;
  auto json = ShowJson(dir_ + "/pages-42.img", &incomplete);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  const Struct top = ParseJson(*json);
  EXPECT_EQ(Field(top, "kind").string_value(), "pages");
  const auto& recs = Field(top, "records").list_value();
  ASSERT_EQ(recs.values_size(), 2);
  EXPECT_EQ(Field(recs.values(1).struct_value(), "raw_size").number_value(), kPageSize);
}

TEST_F(ShowTest, MessageFiles) {
  const std::pair<const char*, const char*> files[] = {
      {"inventory.img", "inventory"}, {"core-42.img", "core"}, {"pagemap-42.img", "pagemap"},
      {"stats-dump.img", "stats"}};
  for (const auto& [name, kind] : files) {
    bool incomplete = false;
    auto json = ShowJson(dir_ + "/" + name, &incomplete);
    ASSERT_TRUE(json.ok()) << name << ": " << json.status().ToString();
    const Struct top = ParseJson(*json);
    EXPECT_EQ(Field(top, "kind").string_value(), kind);
    ASSERT_EQ(Field(top, "records").list_value().values_size(), 1) << name;
  }
  bool incomplete = false;
  auto json = ShowJson(dir_ + "/core-42.img", &incomplete);
  ASSERT_TRUE(json.ok());
  const Struct top = ParseJson(*json);
  EXPECT_EQ(Field(Field(top, "records").list_value().values(0).struct_value(), "pid").number_value(), 42);
}

TEST_F(ShowTest, MissingInventoryIsIncomplete) {
  ASSERT_EQ(unlink((dir_ + "/inventory.img").c_str()), 0);
  bool incomplete = false;
  auto json = ShowJson(dir_, &incomplete);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_TRUE(incomplete);
  const Struct top = ParseJson(*json);
  EXPECT_EQ(Field(top, "inventory").kind_case(), Value::kNullValue);
  // Processes come from the core files present.
  EXPECT_EQ(Obj(top, "processes").fields().count("42"), 1u);
}

TEST_F(ShowTest, CorruptChunkIsAnError) {
  // A byte inside the first chunk's data.
  Poke("pages-42.img", sizeof(streams::FileHeader) + sizeof(streams::RecordHeader) + sizeof(streams::ChunkHeader) + 10,
       0x55);
  bool incomplete = false;
  auto json = ShowJson(dir_, &incomplete);
  ASSERT_FALSE(json.ok());
  EXPECT_NE(json.status().ToString().find("checksum"), std::string::npos) << json.status().ToString();
  EXPECT_FALSE(ShowJson(dir_ + "/pages-42.img", &incomplete).ok());
}

TEST_F(ShowTest, TruncatedAndForeignFilesAreErrors) {
  ASSERT_EQ(truncate((dir_ + "/core-42.img").c_str(), 20), 0);
  bool incomplete = false;
  EXPECT_FALSE(ShowJson(dir_, &incomplete).ok());
  EXPECT_FALSE(ShowJson(dir_ + "/core-42.img", &incomplete).ok());

  std::ofstream(dir_ + "/junk.img") << "this is not an image at all";
  auto json = ShowJson(dir_ + "/junk.img", &incomplete);
  ASSERT_FALSE(json.ok());
  EXPECT_FALSE(json.status().ToString().empty());

  EXPECT_FALSE(ShowJson(dir_ + "/no-such-file.img", &incomplete).ok());
}

TEST_F(ShowTest, OddDirectoryNameStaysValidJson) {
  const std::string odd = dir_ + "/a\"b\\c\nd\xff";
  ASSERT_EQ(mkdir(odd.c_str(), 0700), 0);
  img::Inventory inv;
  inv.set_root_pid(1);
  auto w = streams::ImageWriter::Create(odd + "/inventory.img", streams::FileKind::kInventory);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->WriteMessage(inv).ok());
  ASSERT_TRUE(w->Finish().ok());
  bool incomplete = true;
  auto json = ShowJson(odd, &incomplete);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_FALSE(incomplete);
  const Struct top = ParseJson(*json);
  EXPECT_EQ(Field(top, "dir").string_value(), dir_ + "/a\"b\\c\nd\xef\xbf\xbd");  // 0xff -> U+FFFD
}

}  // namespace
}  // namespace cf::engine
