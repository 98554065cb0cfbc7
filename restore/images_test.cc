// Tests of LoadImages on small image directories written with ImageWriter.
#include "restore/images.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "streams/image_file.h"

namespace cf::restore {
namespace {

class LoadImagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cf-images-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    img::Inventory inv;
    inv.set_format_version(streams::kFormatVersion);
    inv.set_root_pid(42);
    inv.add_pids(42);
    Write("inventory.img", streams::FileKind::kInventory, inv);
    core_.set_pid(42);
    core_.add_threads()->set_tid(42);
    pagemap_.set_pid(42);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  void Write(const std::string& name, streams::FileKind kind, const google::protobuf::MessageLite& msg) {
    auto w = streams::ImageWriter::Create(dir_ + "/" + name, kind);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(w->WriteMessage(msg).ok());
    ASSERT_TRUE(w->Finish().ok());
  }
  Result<ImageSet> Load() {
    Write("core-42.img", streams::FileKind::kCore, core_);
    Write("pagemap-42.img", streams::FileKind::kPageMap, pagemap_);
    return LoadImages(dir_);
  }

  std::string dir_;
  img::Process core_;
  img::PageMap pagemap_;
};

TEST_F(LoadImagesTest, LoadsAMinimalImage) {
  auto set = Load();
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ASSERT_EQ(set->processes.size(), 1u);
  EXPECT_EQ(set->processes[0].pages_path, dir_ + "/pages-42.img");
}

// The pages file is named by the image: a name with a '/' (or "..") made
// restore read a file outside the image directory.
TEST_F(LoadImagesTest, PagesFileNameOutsideTheImageIsRefused) {
  for (const char* name : {"../../etc/shadow", "/etc/shadow", "..", "sub/pages-42.img"}) {
    pagemap_.set_pages_file(name);
    EXPECT_FALSE(Load().ok()) << name;
  }
  pagemap_.set_pages_file("pages-42.img");
  EXPECT_TRUE(Load().ok());
}

TEST_F(LoadImagesTest, ShmemPagesFileNameOutsideTheImageIsRefused) {
  img::Shmem* s = core_.add_shmems();
  s->set_id(1);
  s->mutable_pages()->set_pages_file("../shmem-1.img");
  EXPECT_FALSE(Load().ok());
  s->mutable_pages()->set_pages_file("shmem-1.img");
  EXPECT_TRUE(Load().ok());
}

}  // namespace
}  // namespace cf::restore
