// FillMemory with DUP ranges (deduplicated pages), filling this process's
// own memory (process_vm_writev to itself) from small image files.
#include "restore/images.h"
#include "restore/memory.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "pagemap/uffd_track.h"
#include "streams/image_file.h"

namespace cf::restore {
namespace {

constexpr uint64_t P = 4096;
constexpr uint64_t V = 0x7f0000000000;  // the target's address of the VMA

std::vector<uint8_t> PageOf(uint8_t fill) { return std::vector<uint8_t>(P, fill); }

img::PageRange* Add(img::PageMap* pm, uint64_t vaddr, uint64_t pages, img::PageRange::Kind kind, int32_t ref_pid = 0,
                    uint64_t ref_vaddr = 0) {
  img::PageRange* r = pm->add_ranges();
  r->set_vaddr(vaddr);
  r->set_nr_pages(pages);
  r->set_kind(kind);
  if (kind == img::PageRange::DUP) {
    r->set_ref_pid(ref_pid);
    r->set_ref_vaddr(ref_vaddr);
  }
  return r;
}

class FillDupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cf-fill-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    void* p = mmap(nullptr, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    buf_ = static_cast<uint8_t*>(p);
  }
  void TearDown() override {
    munmap(buf_, 4 * P);
    std::system(("rm -rf " + dir_).c_str());
  }

  // Writes |pages| as one raw chunk of |pm|'s pages file |name|.
  std::string WritePages(img::PageMap* pm, const std::string& name, const std::vector<std::vector<uint8_t>>& pages) {
    const std::string path = dir_ + "/" + name;
    auto w = streams::ImageWriter::Create(path, streams::FileKind::kPages);
    EXPECT_TRUE(w.ok());
    std::vector<uint8_t> raw;
    for (const auto& pg : pages) raw.insert(raw.end(), pg.begin(), pg.end());
    img::ChunkRef* c = pm->add_chunks();
    c->set_file_offset(w->offset());
    c->set_nr_pages(pages.size());
    c->set_stored_size(raw.size());
    EXPECT_TRUE(w->WriteChunk(streams::Codec::kNone, raw.size(), raw).ok());
    EXPECT_TRUE(w->Finish().ok());
    pm->set_data_pages(pages.size());
    return path;
  }

  // |pages| as the DATA pages of process 1 at V (one raw chunk): its level.
  const PageLevel& OneProcess(const std::vector<std::vector<uint8_t>>& pages) {
    one_pm_.Clear();
    one_pm_.set_pid(1);
    Add(&one_pm_, V, pages.size(), img::PageRange::DATA);
    const std::string path = WritePages(&one_pm_, "pages-1.img", pages);
    one_image_[1] = {&one_pm_, path, &one_image_};
    return one_image_[1];
  }

  std::vector<PremappedVma> Slots() const {
    PremappedVma v;
    v.start = V;
    v.len = 4 * P;
    v.premap = reinterpret_cast<uint64_t>(buf_);
    v.anonymous = true;
    return {v};
  }

  std::string dir_;
  uint8_t* buf_ = nullptr;
  img::PageMap one_pm_;
  ImagePages one_image_;
};

// Process 1 of the increment (level 0) takes its first 3 pages from the
// parent image and stores the 4th. In the parent image (level 1), its first
// 2 pages are DUP pages of process 2, which the increment does not hold,
// and its 3rd is a DUP of its own 4th page (stored as DATA there).
TEST_F(FillDupTest, ParentPagesLandingOnDupRangesAreFilledFromTheirReference) {
  img::PageMap p1_l1, p2_l1, p1_l0;
  p1_l1.set_pid(1);
  Add(&p1_l1, V, 2, img::PageRange::DUP, 2, V + P);
  Add(&p1_l1, V + 2 * P, 1, img::PageRange::DUP, 1, V + 3 * P);
  Add(&p1_l1, V + 3 * P, 1, img::PageRange::DATA);
  const std::string p1_l1_path = WritePages(&p1_l1, "l1-pages-1.img", {PageOf(0x33)});
  p2_l1.set_pid(2);
  Add(&p2_l1, V, 3, img::PageRange::DATA);
  const std::string p2_l1_path = WritePages(&p2_l1, "l1-pages-2.img", {PageOf(0x20), PageOf(0x21), PageOf(0x22)});
  p1_l0.set_pid(1);
  Add(&p1_l0, V, 3, img::PageRange::PARENT);
  Add(&p1_l0, V + 3 * P, 1, img::PageRange::DATA);
  const std::string p1_l0_path = WritePages(&p1_l0, "l0-pages-1.img", {PageOf(0x44)});

  ImagePages l0, l1;
  l0[1] = {&p1_l0, p1_l0_path, &l0};
  l1[1] = {&p1_l1, p1_l1_path, &l1};
  l1[2] = {&p2_l1, p2_l1_path, &l1};
  const PageChain chain{l0[1], l1[1]};
  Status s = FillMemory(getpid(), Slots(), chain, 2);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const uint8_t want[4] = {0x21, 0x22, 0x33, 0x44};
  for (int i = 0; i < 4; ++i) {
    for (uint64_t b = 0; b < P; ++b) ASSERT_EQ(buf_[i * P + b], want[i]) << "page " << i << " byte " << b;
  }

  // A reference the image does not hold is an error, not a wrong page.
  p1_l1.mutable_ranges(0)->set_ref_pid(3);
  s = FillMemory(getpid(), Slots(), chain, 2);
  EXPECT_FALSE(s.ok());
  p1_l1.mutable_ranges(0)->set_ref_pid(2);
  p1_l1.mutable_ranges(0)->set_ref_vaddr(V + 2 * P);  // runs past process 2's DATA
  s = FillMemory(getpid(), Slots(), chain, 2);
  EXPECT_FALSE(s.ok());
}

// Pages written into fresh memory skip their zeros (WritePieces): every
// shape of page must still come back byte for byte, and memory that is not
// fresh (a file's slot) gets the zeros written.
TEST_F(FillDupTest, SparsePagesComeBackExactlyInFreshAndUsedMemory) {
  std::vector<std::vector<uint8_t>> pages(4, PageOf(0));
  pages[0][0] = 1;                  // a few bytes at the head (the rest zero)
  pages[0][7] = 2;
  pages[1][P - 1] = 3;              // one byte at the very end
  pages[1][1500] = 4;               // and one inside
  for (uint64_t b = 2000; b < 2100; ++b) pages[2][b] = static_cast<uint8_t>(b);  // a middle span only
  // pages[3]: all zero, stored as DATA all the same
  const PageLevel& level = OneProcess(pages);
  for (const bool fresh : {true, false}) {
    memset(buf_, fresh ? 0 : 0xff, 4 * P);  // fresh memory is zero; used memory is not
    std::vector<PremappedVma> slots = Slots();
    slots[0].anonymous = fresh;
    Status s = FillMemory(getpid(), slots, PageChain{level}, 1);
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (int i = 0; i < 4; ++i) {
      for (uint64_t b = 0; b < P; ++b) {
        ASSERT_EQ(buf_[i * P + b], pages[i][b]) << (fresh ? "fresh" : "used") << " page " << i << " byte " << b;
      }
    }
  }
}

// The fill by UFFDIO_COPY (RegisterCopyFill): into a range registered
// with a userfaultfd, missing pages are copied in, a page present already
// (a slot's first page KeepApart faulted in) is written as before, and a
// page of zeros in fresh memory is left missing. A write by
// process_vm_writev into a missing page there would fail (EFAULT: the
// userfaultfd is user-mode only), so this also checks none is made.
TEST_F(FillDupTest, CopyFillCopiesMissingPagesAndWritesPresentOnes) {
  Result<UniqueFd> uffd = pagemap::OpenUserfaultfd();
  if (!uffd.ok()) GTEST_SKIP() << "no userfaultfd here (" << uffd.status().ToString() << ")";
  std::vector<std::vector<uint8_t>> pages = {PageOf(0x11), PageOf(0x22), PageOf(0), PageOf(0x44)};
  pages[3][0] = 0;  // data that does not fill the page
  const PageLevel& level = OneProcess(pages);
  ASSERT_EQ(madvise(buf_, 4 * P, MADV_DONTNEED), 0);
  buf_[P] = 0;  // page 1 present
  const uint64_t start = reinterpret_cast<uint64_t>(buf_);
  Result<bool> registered = pagemap::RegisterForCopy(uffd->get(), start, start + 4 * P);
  ASSERT_TRUE(registered.ok() && *registered) << "register for UFFDIO_COPY";
  std::vector<PremappedVma> slots = Slots();
  slots[0].by_copy = true;
  uint64_t copied = 0;
  Status s = FillMemory(getpid(), slots, PageChain{level}, 1, {}, uffd->get(), &copied);
  ASSERT_TRUE(pagemap::Unregister(uffd->get(), start, start + 4 * P).ok());
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(copied, 2u);  // pages 0 and 3
  unsigned char present[4];
  ASSERT_EQ(mincore(buf_, 4 * P, present), 0);
  EXPECT_FALSE(present[2] & 1) << "a page of zeros was filled";
  for (int i = 0; i < 4; ++i) {
    for (uint64_t b = 0; b < P; ++b) ASSERT_EQ(buf_[i * P + b], pages[i][b]) << "page " << i << " byte " << b;
  }
}

// One UFFDIO_COPY fills one VMA: a run of pages over two slots that are
// separate VMAs here (parted by madvise at premap, or packed slots) is cut
// at the slot's end instead of failing with ENOENT.
TEST_F(FillDupTest, CopyFillCutsRunsWhereTheSlotsAreSeparateVmas) {
  Result<UniqueFd> uffd = pagemap::OpenUserfaultfd();
  if (!uffd.ok()) GTEST_SKIP() << "no userfaultfd here (" << uffd.status().ToString() << ")";
  const std::vector<std::vector<uint8_t>> pages = {PageOf(0x11), PageOf(0x22), PageOf(0x33), PageOf(0x44)};
  const PageLevel& level = OneProcess(pages);
  ASSERT_EQ(madvise(buf_, 4 * P, MADV_DONTNEED), 0);
  ASSERT_EQ(madvise(buf_ + 2 * P, 2 * P, MADV_DONTDUMP), 0);  // two VMAs of two pages
  const uint64_t start = reinterpret_cast<uint64_t>(buf_);
  Result<bool> registered = pagemap::RegisterForCopy(uffd->get(), start, start + 4 * P);
  ASSERT_TRUE(registered.ok() && *registered) << "register for UFFDIO_COPY";
  std::vector<PremappedVma> slots(2, Slots()[0]);
  slots[0].len = slots[1].len = 2 * P;
  slots[1].start += 2 * P;
  slots[1].premap += 2 * P;
  slots[0].by_copy = slots[1].by_copy = true;
  uint64_t copied = 0;
  Status s = FillMemory(getpid(), slots, PageChain{level}, 1, {}, uffd->get(), &copied);
  ASSERT_TRUE(pagemap::Unregister(uffd->get(), start, start + 4 * P).ok());
  ASSERT_EQ(madvise(buf_ + 2 * P, 2 * P, MADV_DODUMP), 0);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(copied, 4u);
  for (int i = 0; i < 4; ++i) {
    for (uint64_t b = 0; b < P; ++b) ASSERT_EQ(buf_[i * P + b], pages[i][b]) << "page " << i << " byte " << b;
  }
}

// A run cut at a slot's end whose last page there is present already (the
// first of a one-page slot KeepApart faulted in): written by
// process_vm_writev, the run goes on in the next slot, never asking the
// kernel for a copy of no bytes (EINVAL: seen in CI restoring 60,000
// mappings right after their dump).
TEST_F(FillDupTest, CopyFillGoesOnPastAPresentPageAtASlotsEnd) {
  Result<UniqueFd> uffd = pagemap::OpenUserfaultfd();
  if (!uffd.ok()) GTEST_SKIP() << "no userfaultfd here (" << uffd.status().ToString() << ")";
  const std::vector<std::vector<uint8_t>> pages = {PageOf(0x11), PageOf(0x22), PageOf(0x33), PageOf(0x44)};
  const PageLevel& level = OneProcess(pages);
  ASSERT_EQ(madvise(buf_, 4 * P, MADV_DONTNEED), 0);
  ASSERT_EQ(madvise(buf_ + P, 3 * P, MADV_DONTDUMP), 0);  // VMAs of one page and three
  buf_[0] = 0;                                             // the one-page slot's page present
  const uint64_t start = reinterpret_cast<uint64_t>(buf_);
  Result<bool> registered = pagemap::RegisterForCopy(uffd->get(), start, start + 4 * P);
  ASSERT_TRUE(registered.ok() && *registered) << "register for UFFDIO_COPY";
  std::vector<PremappedVma> slots(2, Slots()[0]);
  slots[0].len = P;
  slots[1].len = 3 * P;
  slots[1].start += P;
  slots[1].premap += P;
  slots[0].by_copy = slots[1].by_copy = true;
  uint64_t copied = 0;
  Status s = FillMemory(getpid(), slots, PageChain{level}, 1, {}, uffd->get(), &copied);
  ASSERT_TRUE(pagemap::Unregister(uffd->get(), start, start + 4 * P).ok());
  ASSERT_EQ(madvise(buf_ + P, 3 * P, MADV_DODUMP), 0);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(copied, 3u);
  for (int i = 0; i < 4; ++i) {
    for (uint64_t b = 0; b < P; ++b) ASSERT_EQ(buf_[i * P + b], pages[i][b]) << "page " << i << " byte " << b;
  }
}

// One level of DATA and ZERO pages is filled while its plan is made
// (FillMemory's overlap): workers wait for each chunk to be planned. Many
// small chunks of single pages over three slots, with several threads,
// come back byte for byte; a range the plan cannot place after some chunks
// were filled fails the fill (no worker left waiting), as does a chunk
// whose size the pagemap contradicts.
TEST(FillOverlapTest, ChunksFilledWhileThePlanIsMadeComeBackExactly) {
  // Three slots side by side (2,048, 4,096 and 2,048 pages); every other
  // page is DATA (bytes of its own), the others ZERO ranges; chunks of 256
  // DATA pages each, which take the plan long enough that a worker let in
  // too early would find its chunk's pieces still growing.
  constexpr uint64_t kPages = 8192, kStride = 2, kChunk = 256;
  constexpr uint64_t kStray = 3000;  // a DATA page moved past every slot below
  char tmpl[] = "/tmp/cf-fill-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  void* m = mmap(nullptr, kPages * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  uint8_t* buf = static_cast<uint8_t*>(m);
  std::vector<PremappedVma> slots(3);
  const uint64_t first[4] = {0, 2048, 6144, kPages};
  for (int k = 0; k < 3; ++k) {
    slots[k].start = V + first[k] * P;
    slots[k].len = (first[k + 1] - first[k]) * P;
    slots[k].premap = reinterpret_cast<uint64_t>(buf) + first[k] * P;
    slots[k].anonymous = true;
  }
  auto page_of = [](uint64_t i) {
    std::vector<uint8_t> pg(P);
    for (uint64_t b = 0; b < P; b += 8) memcpy(&pg[b], &i, sizeof(i));
    return pg;
  };
  auto make = [&](img::PageMap* pm, bool stray) {
    pm->Clear();
    pm->set_pid(1);
    std::vector<uint64_t> data;  // the DATA pages' numbers, in range order
    for (uint64_t i = 0; i < kPages; ++i) {
      if (i % kStride != 0) {
        Add(pm, V + i * P, 1, img::PageRange::ZERO);
      } else if (!(stray && i == kStray)) {
        Add(pm, V + i * P, 1, img::PageRange::DATA);
        data.push_back(i);
      }
    }
    if (stray) {  // in address order: last
      Add(pm, V + (kPages + 100) * P, 1, img::PageRange::DATA);
      data.push_back(kStray);
    }
    const std::string path = dir + "/pages-1.img";
    auto w = streams::ImageWriter::Create(path, streams::FileKind::kPages);
    EXPECT_TRUE(w.ok());
    for (size_t c = 0; c < data.size(); c += kChunk) {
      std::vector<uint8_t> raw;
      for (size_t k = c; k < c + kChunk && k < data.size(); ++k) {
        const std::vector<uint8_t> pg = page_of(data[k]);
        raw.insert(raw.end(), pg.begin(), pg.end());
      }
      img::ChunkRef* ch = pm->add_chunks();
      ch->set_file_offset(w->offset());
      ch->set_nr_pages(raw.size() / P);
      ch->set_stored_size(raw.size());
      EXPECT_TRUE(w->WriteChunk(streams::Codec::kNone, raw.size(), raw).ok());
    }
    EXPECT_TRUE(w->Finish().ok());
    pm->set_data_pages(data.size());
    return path;
  };
  img::PageMap pm;
  ImagePages image;
  image[1] = {&pm, make(&pm, false), &image};
  for (const int jobs : {2, 3, 2, 3}) {
    memset(buf, 0xee, kPages * P);
    ASSERT_EQ(madvise(buf, kPages * P, MADV_DONTNEED), 0);  // fresh: zero until written
    Status s = FillMemory(getpid(), slots, PageChain{image[1]}, jobs);
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (uint64_t i = 0; i < kPages; ++i) {
      const std::vector<uint8_t> want = i % kStride == 0 ? page_of(i) : std::vector<uint8_t>(P, 0);
      ASSERT_EQ(memcmp(buf + i * P, want.data(), P), 0) << jobs << " jobs: page " << i;
    }
  }

  // A DATA page outside every slot, planned last: the chunks before it are
  // filled, then the fill fails, and returns.
  image[1] = {&pm, make(&pm, true), &image};
  Status s = FillMemory(getpid(), slots, PageChain{image[1]}, 2);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("outside every vma"), std::string::npos) << s.ToString();

  // Chunks whose sizes the pagemap gets wrong (one page moved from chunk 6
  // to chunk 5: the totals agree, the records do not).
  image[1] = {&pm, make(&pm, false), &image};
  pm.mutable_chunks(5)->set_nr_pages(kChunk + 1);
  pm.mutable_chunks(6)->set_nr_pages(kChunk - 1);
  s = FillMemory(getpid(), slots, PageChain{image[1]}, 2);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("pagemap says"), std::string::npos) << s.ToString();
  munmap(buf, kPages * P);
  std::system(("rm -rf " + dir).c_str());
}

// The counts the new process reads instead of its pagemap's ranges: DATA
// pages and ranges before each range, and where each chunk of the pages
// file begins (none where the ranges are out of order).
TEST(PagemapSummaryTest, CountsDataAndFindsWhereEachChunkBegins) {
  img::PageMap pm;
  Add(&pm, V, 3, img::PageRange::DATA);
  Add(&pm, V + 3 * P, 2, img::PageRange::ZERO);
  Add(&pm, V + 8 * P, 4, img::PageRange::DATA);
  for (uint64_t n : {2, 3, 2}) pm.add_chunks()->set_nr_pages(n);  // pages 0-1, 2-4, 5-6
  PagemapSummary s = SummarizePagemap(pm);
  EXPECT_TRUE(s.data_or_zero_only);
  EXPECT_EQ(s.data_pages_before, (std::vector<uint64_t>{0, 3, 3, 7}));
  EXPECT_EQ(s.data_ranges_before, (std::vector<uint64_t>{0, 1, 1, 2}));
  EXPECT_EQ(s.chunk_first, (std::vector<uint64_t>{V, V + 2 * P, V + 10 * P}));

  Add(&pm, V + 20 * P, 1, img::PageRange::PARENT);
  EXPECT_FALSE(SummarizePagemap(pm).data_or_zero_only);
  Add(&pm, V, 1, img::PageRange::DATA);  // out of order
  EXPECT_TRUE(SummarizePagemap(pm).chunk_first.empty());
}

// PremapMemory with the mappings a parent read before the fork
// (MapsForChildren): used while they still hold, and read again once this
// process has mapped something since, which must then not be premapped
// over. A VMA of the image lies inside a mapping made after the read: a
// stale list would premap the VMA in place, right over that mapping.
TEST(PremapTest, MappingsReadBeforeTheForkAreCheckedBeforeUse) {
  constexpr uint64_t kLen = 64 << 20;
  // A free range, found by mapping and unmapping it.
  void* probe = mmap(nullptr, kLen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(probe, MAP_FAILED);
  munmap(probe, kLen);
  const uint64_t at = reinterpret_cast<uint64_t>(probe);
  img::Process core;
  img::Vma* v = core.add_vmas();
  v->set_kind(img::Vma::ANON_PRIVATE);
  v->set_start(at + kLen / 2);
  v->set_end(at + kLen / 2 + 4 * P);
  v->set_prot(PROT_READ | PROT_WRITE);
  ShmemFds shmem;

  for (bool mapped_since : {false, true}) {
    SCOPED_TRACE(mapped_since ? "a mapping made since the read" : "nothing mapped since");
    auto known = MapsForChildren();
    ASSERT_TRUE(known.ok()) << known.status().ToString();
    uint8_t* since = nullptr;
    if (mapped_since) {
      void* m = mmap(reinterpret_cast<void*>(at), kLen, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      ASSERT_EQ(m, reinterpret_cast<void*>(at));
      since = static_cast<uint8_t*>(m);
      since[kLen / 2] = 0x5a;
    }
    auto layout = PremapMemory(core, 4096, shmem, {}, nullptr, nullptr, &*known);
    ASSERT_TRUE(layout.ok()) << layout.status().ToString();
    ASSERT_EQ(layout->vmas.size(), 1u);
    const PremappedVma& p = layout->vmas[0];
    if (mapped_since) {
      EXPECT_NE(p.premap, p.start) << "premapped in place, over a mapping made since the read";
      EXPECT_EQ(since[kLen / 2], 0x5a);
      EXPECT_TRUE(layout->region + layout->region_len <= at || layout->region >= at + kLen);
      munmap(since, kLen);
    } else {
      EXPECT_EQ(p.premap, p.start);  // free: in place
      munmap(reinterpret_cast<void*>(p.start), p.len);
    }
    munmap(reinterpret_cast<void*>(layout->region), layout->region_len);
  }
}

}  // namespace
}  // namespace cf::restore
