#include "engine/show.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "criu_fast.pb.h"
#include "streams/image_file.h"

namespace cf::engine {
namespace {

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
    Write("inventory.img", streams::FileKind::kInventory, inv);
    img::Process core;
    core.set_pid(42);
    core.set_cwd("/tmp/some \"dir\"");
    img::Vma* v = core.add_vmas();
    v->set_start(0x400000);
    v->set_end(0x401000);
    v->set_path("/bin/x");
    core.add_threads()->set_tid(42);
    Write("core-42.img", streams::FileKind::kCore, core);
    img::PageMap pm;
    pm.set_pid(42);
    img::PageRange* r = pm.add_ranges();
    r->set_vaddr(0x400000);
    r->set_nr_pages(2);
    Write("pagemap-42.img", streams::FileKind::kPageMap, pm);
    auto w = streams::ImageWriter::Create(dir_ + "/pages-42.img", streams::FileKind::kPages);
    ASSERT_TRUE(w.ok());
    std::vector<uint8_t> page(4096, 7);
    ASSERT_TRUE(w->WriteChunk(streams::Codec::kNone, page.size(), page).ok());
    ASSERT_TRUE(w->WriteChunk(streams::Codec::kNone, page.size(), page).ok());
    ASSERT_TRUE(w->Finish().ok());
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  void Write(const std::string& name, streams::FileKind kind, const google::protobuf::MessageLite& msg) {
    auto w = streams::ImageWriter::Create(dir_ + "/" + name, kind);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->WriteMessage(msg).ok());
    ASSERT_TRUE(w->Finish().ok());
  }

  std::string dir_;
};

TEST_F(ShowTest, DirectoryAsJson) {
  bool incomplete = true;
  auto json = ShowJson(dir_, &incomplete);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_FALSE(incomplete);
  EXPECT_NE(json->find("\"root_pid\":42"), std::string::npos) << *json;
  EXPECT_NE(json->find("\"42\": {\"core\""), std::string::npos);
  EXPECT_NE(json->find("\"start\":\"4194304\""), std::string::npos);  // uint64 as string
  EXPECT_NE(json->find("\\\"dir\\\""), std::string::npos);              // quotes escaped
  EXPECT_NE(json->find("\"raw_bytes\": 8192"), std::string::npos);
  EXPECT_NE(json->find("\"kind\":\"DATA\""), std::string::npos);
}

TEST_F(ShowTest, SingleFile) {
  bool incomplete = false;
  auto json = ShowJson(dir_ + "/pages-42.img", &incomplete);
  ASSERT_TRUE(json.ok());
  EXPECT_NE(json->find("\"kind\": \"pages\""), std::string::npos);
  EXPECT_NE(json->find("\"codec\": \"none\""), std::string::npos);
}

TEST_F(ShowTest, MissingInventoryIsIncomplete) {
  ASSERT_EQ(unlink((dir_ + "/inventory.img").c_str()), 0);
  bool incomplete = false;
  auto json = ShowJson(dir_, &incomplete);
  ASSERT_TRUE(json.ok());
  EXPECT_TRUE(incomplete);
  EXPECT_NE(json->find("\"inventory\": null"), std::string::npos);
}

TEST_F(ShowTest, CorruptChunkIsAnError) {
  {
    std::fstream f(dir_ + "/pages-42.img", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8 + 24 + 16 + 10);
    f.put(0x55);
  }
  bool incomplete = false;
  auto json = ShowJson(dir_, &incomplete);
  ASSERT_FALSE(json.ok());
  EXPECT_NE(json.status().ToString().find("checksum"), std::string::npos);
}

}  // namespace
}  // namespace cf::engine
