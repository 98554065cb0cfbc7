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

namespace cf::restore {
namespace {

img::PageRange* AddRange(img::PageMap* pm, uint64_t vaddr, uint64_t pages, img::PageRange::Kind kind) {
  img::PageRange* r = pm->add_ranges();
  r->set_vaddr(vaddr);
  r->set_nr_pages(pages);
  r->set_kind(kind);
  return r;
}

img::PageRange* AddDup(img::PageMap* pm, uint64_t vaddr, uint64_t pages, int32_t ref_pid, uint64_t ref_vaddr) {
  img::PageRange* r = AddRange(pm, vaddr, pages, img::PageRange::DUP);
  r->set_ref_pid(ref_pid);
  r->set_ref_vaddr(ref_vaddr);
  return r;
}

// Process 1 stores DATA at 0x10000 (4 pages) and 0x14000 (2 pages, a range
// of its own), ZERO at 0x20000; process 2 refers to them.
class CheckDupRefsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_.set_pid(1);
    AddRange(&a_, 0x10000, 4, img::PageRange::DATA);
    AddRange(&a_, 0x14000, 2, img::PageRange::DATA);
    AddRange(&a_, 0x20000, 1, img::PageRange::ZERO);
    b_.set_pid(2);
  }
  Status Check() { return CheckDupRefs({{1, &a_}, {2, &b_}}, "/img"); }

  img::PageMap a_, b_;
};

TEST_F(CheckDupRefsTest, ReferencesToDataPass) {
  AddDup(&b_, 0x50000, 6, 1, 0x10000);  // over both DATA ranges
  AddDup(&a_, 0x30000, 1, 1, 0x15000);  // its own process
  EXPECT_TRUE(Check().ok()) << Check().ToString();
}

TEST_F(CheckDupRefsTest, AMissingProcessIsRefusedNamingTheFile) {
  AddDup(&b_, 0x50000, 1, 3, 0x10000);
  const Status s = Check();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("/img/pagemap-2.img"), std::string::npos) << s.ToString();
  EXPECT_NE(s.ToString().find("process 3"), std::string::npos) << s.ToString();
}

TEST_F(CheckDupRefsTest, PagesNotStoredAsDataAreRefused) {
  AddDup(&a_, 0x30000, 1, 1, 0x10000);  // valid itself
  for (auto [ref, pages] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0x20000, 1},     // ZERO
           {0x15000, 2},     // runs past the DATA
           {0x0f000, 1},     // before any range
           {0x10800, 1},     // not page aligned
           {0x30000, 1}}) {  // a DUP range: no chains of references
    b_.clear_ranges();
    AddDup(&b_, 0x50000, pages, 1, ref);
    EXPECT_FALSE(Check().ok()) << std::hex << ref;
  }
  b_.clear_ranges();
  AddDup(&b_, 0x50000, 1, 1, 0x10000);
  EXPECT_TRUE(Check().ok());
}

TEST_F(LoadImagesTest, ADupReferenceToAMissingProcessIsRefused) {
  AddDup(&pagemap_, 0x10000, 1, 43, 0x10000);
  auto set = Load();
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.status().ToString().find("pagemap-42.img"), std::string::npos) << set.status().ToString();
}

TEST_F(LoadImagesTest, ADupReferenceToItsOwnDataLoads) {
  AddRange(&pagemap_, 0x10000, 1, img::PageRange::DATA);
  AddDup(&pagemap_, 0x20000, 1, 42, 0x10000);
  pagemap_.set_data_pages(1);
  auto set = Load();
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ASSERT_EQ(set->image_pages.size(), 1u);
  EXPECT_EQ(set->processes[0].chain()[0].image, &set->image_pages[0]);
}

}  // namespace
}  // namespace cf::restore
