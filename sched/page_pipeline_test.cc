// The page pipeline over the memory of a real (forked) process.
//
// The parent fills two mappings with a known mix of random, zero and text
// pages and forks a child that makes the second mapping PROT_NONE (so it is
// read through /proc/PID/mem) and pauses. The pipeline dumps a list of ranges
// of the child (with holes) into a pages file; the test then decodes every
// chunk following the PageMap, as a restore would, and compares each page with
// the parent's copy. Every codec, with 1 and 3 jobs and two chunk sizes; the
// PageMaps must not depend on the number of jobs.
#include "sched/page_pipeline.h"

#include "memdrain/page_reader.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "streams/format.h"
#include "streams/pages_files.h"

namespace cf::sched {
namespace {

using pagemap::kPageSize;
using pagemap::PageRange;
constexpr uint64_t P = kPageSize;

// A forked child that runs |setup|, reports ready and pauses until killed.
class Child {
 public:
  explicit Child(const std::function<void()>& setup) {
    int p[2];
    if (pipe(p) != 0) return;
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      close(p[0]);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      setup();
      char c = 1;
      if (write(p[1], &c, 1) != 1) _exit(1);
      for (;;) pause();
    }
    close(p[1]);
    char c = 0;
    ready_ = pid_ > 0 && read(p[0], &c, 1) == 1;
    close(p[0]);
  }
  ~Child() { Kill(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  pid_t pid() const { return pid_; }
  bool ready() const { return ready_; }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

struct Mapping {
  explicit Mapping(uint64_t pages) : len(pages * P) {
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    base = p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
  }
  ~Mapping() {
    if (base) munmap(base, len);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  uint64_t addr(uint64_t page) const { return reinterpret_cast<uint64_t>(base) + page * P; }

  uint8_t* base;
  uint64_t len;
};

uint64_t Next(uint64_t* s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

// Runs of random, zero and text pages of lengths 1..600 (some longer than a
// chunk, many crossing chunk boundaries).
void Fill(uint8_t* base, uint64_t pages, uint64_t seed) {
  uint64_t s = seed;
  static const char kLine[] = "criu-fast pipeline test text: the quick brown fox jumps over the lazy dog. ";
  for (uint64_t i = 0; i < pages;) {
    const uint64_t kind = Next(&s) % 3;
    const uint64_t len = std::min(pages - i, 1 + Next(&s) % (Next(&s) % 4 == 0 ? 600 : 20));
    for (uint64_t j = i; j < i + len; ++j) {
      uint8_t* page = base + j * P;
      if (kind == 0) {
        auto* w = reinterpret_cast<uint64_t*>(page);
        for (size_t k = 0; k < P / 8; ++k) w[k] = Next(&s);
      } else if (kind == 1) {
        if (j % 2) memset(page, 0, P);  // a real zero page; the others stay untouched
      } else {
        const int n = snprintf(reinterpret_cast<char*>(page), 32, "page %lu: ", j);
        for (uint64_t off = static_cast<uint64_t>(n); off < P; off += sizeof(kLine) - 1) {
          memcpy(page + off, kLine, std::min<uint64_t>(sizeof(kLine) - 1, P - off));
        }
      }
    }
    i += len;
  }
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

class PagePipelineTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kMainPages = 3000;
  static constexpr uint64_t kNoReadPages = 300;

  void SetUp() override {
    ASSERT_NE(main_.base, nullptr);
    ASSERT_NE(noread_.base, nullptr);
    Fill(main_.base, kMainPages, 0x1234);
    Fill(noread_.base, kNoReadPages, 0x9876);
    char tmpl[] = "/tmp/cf-pipeline-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    unlink((dir_ + "/pages.img").c_str());
    for (uint32_t k = 1; k <= 4; ++k) unlink((dir_ + "/" + streams::PagesFileName(7, k)).c_str());
    rmdir(dir_.c_str());
  }

  // The ranges to dump: the main mapping with a few holes, and the PROT_NONE
  // one, in address order.
  std::vector<PageSource> Sources() const {
    std::vector<PageSource> v = {
        {{main_.addr(0), main_.addr(1000)}, true},
        {{main_.addr(1003), main_.addr(2500)}, true},
        {{main_.addr(2501), main_.addr(2502)}, true},
        {{main_.addr(2600), main_.addr(kMainPages)}, true},
        {{noread_.addr(0), noread_.addr(100)}, false},
        {{noread_.addr(150), noread_.addr(kNoReadPages)}, false},
    };
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.range.start < b.range.start; });
    return v;
  }

  // The bytes the child holds at |addr| (the parent's copy: same contents).
  const uint8_t* Expected(uint64_t addr) const {
    for (const Mapping* m : {&main_, &noread_}) {
      if (addr >= m->addr(0) && addr < m->addr(0) + m->len) return m->base + (addr - m->addr(0));
    }
    return nullptr;
  }

  std::function<void()> ChildSetup() {
    return [this] { mprotect(noread_.base, noread_.len, PROT_NONE); };
  }

  struct Run {
    Status status;
    img::PageMap pm;
    PagePipelineStats stats;
    uint64_t file_size = 0;
  };

  Run Dump(pid_t pid, int jobs, const std::string& codec, uint64_t chunk_pages, const std::vector<PageSource>& src,
           int tokens = 0, DedupTable* dedup = nullptr) {
    Run run;
    auto spec = streams::ParseCodec(codec);
    EXPECT_TRUE(spec.ok());
    auto reader = memdrain::PageReader::Open(pid);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    auto writer = streams::ImageWriter::Create(dir_ + "/pages.img", streams::FileKind::kPages);
    EXPECT_TRUE(writer.ok());
    if (!spec.ok() || !reader.ok() || !writer.ok()) {
      run.status = Error("setup failed");
      return run;
    }
    Arena arena(jobs);
    PagePipelineOptions opts;
    opts.codec = *spec;
    opts.chunk_pages = chunk_pages;
    opts.tokens = tokens;
    opts.dedup = dedup;
    opts.pid = pid;
    run.status = RunPagePipeline(arena, *reader, src, opts, &*writer, &run.pm, &run.stats);
    run.file_size = writer->offset();
    EXPECT_TRUE(writer->Finish().ok());
    return run;
  }

  // The same into |files| pages files (pages.img, then pages-7-1.img, ...),
  // named in the pagemap as a dump names them.
  Run DumpFiles(pid_t pid, int jobs, const std::string& codec, uint64_t chunk_pages,
                const std::vector<PageSource>& src, int files) {
    Run run;
    auto spec = streams::ParseCodec(codec);
    auto reader = memdrain::PageReader::Open(pid);
    std::vector<streams::ImageWriter> writers;
    std::vector<streams::ImageWriter*> outs;
    for (int k = 0; k < files; ++k) {
      const std::string name = k == 0 ? "pages.img" : streams::PagesFileName(7, static_cast<uint32_t>(k));
      auto w = streams::ImageWriter::Create(dir_ + "/" + name, streams::FileKind::kPages);
      EXPECT_TRUE(w.ok());
      if (!w.ok()) {
        run.status = w.status();
        return run;
      }
      writers.push_back(std::move(*w));
      if (k > 0) run.pm.add_extra_pages_files(name);
    }
    for (auto& w : writers) outs.push_back(&w);
    if (!spec.ok() || !reader.ok()) {
      run.status = Error("setup failed");
      return run;
    }
    Arena arena(jobs);
    PagePipelineOptions opts;
    opts.codec = *spec;
    opts.chunk_pages = chunk_pages;
    run.status = RunPagePipeline(arena, *reader, src, opts, outs, &run.pm, &run.stats);
    for (auto& w : writers) {
      run.file_size += w.offset();
      EXPECT_TRUE(w.Finish().ok());
    }
    return run;
  }

  // Every page the chunks of |pm| hold, in chunk order, read through its
  // pages files as restore reads them.
  std::vector<uint8_t> ChunkData(const img::PageMap& pm) {
    std::vector<uint8_t> data;
    auto reader = streams::PagesReader::Open(pm, dir_ + "/pages.img");
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    if (!reader.ok()) return data;
    std::vector<uint8_t> raw;
    for (int i = 0; i < pm.chunks_size(); ++i) {
      streams::Record rec;
      const Status st = reader->ReadChunk(i, &rec);
      EXPECT_TRUE(st.ok()) << st.ToString();
      if (!st.ok() || !streams::DecodeChunk(rec, &raw, "chunk").ok()) return {};
      EXPECT_EQ(raw.size(), pm.chunks(i).nr_pages() * P);
      data.insert(data.end(), raw.begin(), raw.end());
    }
    return data;
  }

  // Decodes the pages file following |pm| and checks every page against the
  // child's memory, and the ranges against |src|.
  void Verify(const img::PageMap& pm, const std::vector<PageSource>& src, const std::string& codec,
              uint64_t chunk_pages) {
    // Chunks: in file order, each within the chunk size, decoded back to its pages.
    auto reader = streams::ImageReader::Open(dir_ + "/pages.img", streams::FileKind::kPages);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    std::vector<uint8_t> data;
    std::vector<uint8_t> raw;
    uint64_t prev_offset = 0;
    int compressed = 0;
    for (const img::ChunkRef& c : pm.chunks()) {
      ASSERT_GT(c.file_offset(), prev_offset);
      prev_offset = c.file_offset();
      ASSERT_GT(c.nr_pages(), 0u);
      ASSERT_LE(c.nr_pages(), chunk_pages);
      streams::Record rec;
      ASSERT_TRUE(reader->ReadAt(c.file_offset(), &rec).ok());
      ASSERT_TRUE(streams::DecodeChunk(rec, &raw, "pages.img").ok());
      ASSERT_EQ(raw.size(), c.nr_pages() * P);
      streams::ChunkHeader ch;
      memcpy(&ch, rec.payload.data(), sizeof(ch));
      ASSERT_EQ(c.stored_size(), rec.payload.size() - sizeof(ch));
      if (ch.codec != static_cast<uint32_t>(streams::Codec::kNone)) {
        ++compressed;
        ASSERT_LT(c.stored_size(), raw.size());
      } else {
        ASSERT_EQ(c.stored_size(), raw.size());
      }
      data.insert(data.end(), raw.begin(), raw.end());
    }
    if (codec == "none") {
      EXPECT_EQ(compressed, 0);
    } else {
      EXPECT_GT(compressed, 0) << "no chunk compressed with " << codec;
    }

    // Ranges: sorted, merged, covering exactly the sources; DATA pages are
    // the non-zero ones, in chunk order.
    std::vector<PageRange> covered;
    uint64_t data_pages = 0;
    uint64_t pos = 0;
    for (int i = 0; i < pm.ranges_size(); ++i) {
      const img::PageRange& r = pm.ranges(i);
      ASSERT_GT(r.nr_pages(), 0u);
      if (i > 0) {
        const img::PageRange& prev = pm.ranges(i - 1);
        const uint64_t prev_end = prev.vaddr() + prev.nr_pages() * P;
        ASSERT_LE(prev_end, r.vaddr()) << "range " << i << " overlaps or is out of order";
        ASSERT_FALSE(prev_end == r.vaddr() && prev.kind() == r.kind()) << "range " << i << " not merged";
      }
      for (uint64_t a = r.vaddr(); a < r.vaddr() + r.nr_pages() * P; a += P) {
        const uint8_t* want = Expected(a);
        ASSERT_NE(want, nullptr);
        const bool zero = std::all_of(want, want + P, [](uint8_t b) { return b == 0; });
        if (r.kind() == img::PageRange::ZERO) {
          ASSERT_TRUE(zero) << "non-zero page at " << std::hex << a << " recorded as ZERO";
        } else {
          ASSERT_EQ(r.kind(), img::PageRange::DATA);
          ASSERT_FALSE(zero) << "zero page at " << std::hex << a << " stored as DATA";
          ASSERT_LE(pos + P, data.size());
          ASSERT_EQ(memcmp(data.data() + pos, want, P), 0) << "page at " << std::hex << a << " differs";
          pos += P;
          ++data_pages;
        }
      }
      if (!covered.empty() && covered.back().end == r.vaddr()) {
        covered.back().end = r.vaddr() + r.nr_pages() * P;
      } else {
        covered.push_back({r.vaddr(), r.vaddr() + r.nr_pages() * P});
      }
    }
    EXPECT_EQ(pos, data.size()) << "chunks hold more pages than the DATA ranges";
    EXPECT_EQ(pm.data_pages(), data_pages);
    std::vector<PageRange> want;
    for (const PageSource& s : src) {
      if (!want.empty() && want.back().end == s.range.start) {
        want.back().end = s.range.end;
      } else {
        want.push_back(s.range);
      }
    }
    EXPECT_EQ(covered, want);
  }

  Mapping main_{kMainPages};
  Mapping noread_{kNoReadPages};
  std::string dir_;
};

TEST_F(PagePipelineTest, EveryCodecAndJobCountGivesTheSameExactImage) {
  Child child(ChildSetup());
  ASSERT_TRUE(child.ready());
  const std::vector<PageSource> src = Sources();
  for (uint64_t chunk_pages : {uint64_t{16}, kChunkPages}) {
    std::string ranges_ref;
    for (const std::string codec : {"none", "lz4", "zstd:1"}) {
      std::string pm_ref;
      for (int jobs : {1, 3}) {
        SCOPED_TRACE(codec + ", jobs " + std::to_string(jobs) + ", chunk " + std::to_string(chunk_pages));
        Run run = Dump(child.pid(), jobs, codec, chunk_pages, src);
        ASSERT_TRUE(run.status.ok()) << run.status.ToString();
        Verify(run.pm, src, codec, chunk_pages);
        if (HasFatalFailure()) return;
        EXPECT_EQ(run.stats.chunks, static_cast<uint64_t>(run.pm.chunks_size()));
        EXPECT_EQ(run.stats.pages_written, run.pm.data_pages());
        EXPECT_EQ(run.stats.bytes_raw, run.pm.data_pages() * P);
        EXPECT_EQ(run.stats.bytes_written + sizeof(streams::FileHeader), run.file_size);
        EXPECT_EQ(run.stats.tokens, std::min(2 * jobs, kMaxTokens));
        // The same image whatever the number of jobs, chunk offsets included.
        const std::string pm = run.pm.SerializeAsString();
        if (pm_ref.empty()) {
          pm_ref = pm;
        } else {
          EXPECT_TRUE(pm == pm_ref) << "PageMap differs between jobs 1 and jobs " << jobs;
        }
        // The same ranges whatever the codec.
        img::PageMap ranges_only;
        *ranges_only.mutable_ranges() = run.pm.ranges();
        for (const img::ChunkRef& c : run.pm.chunks()) ranges_only.add_chunks()->set_nr_pages(c.nr_pages());
        if (ranges_ref.empty()) {
          ranges_ref = ranges_only.SerializeAsString();
        } else {
          EXPECT_TRUE(ranges_only.SerializeAsString() == ranges_ref) << "ranges or chunks differ with " << codec;
        }
      }
    }
  }
}

// Deduplication (sched/dedup.h): the first 1000 pages hold 5 distinct
// pages over and over, one of them also with a byte changed here and there;
// each distinct page is stored once (a few more with several jobs, when two
// batches store one at the same time), the others are DUP ranges that refer
// to a DATA page with the same bytes.
TEST_F(PagePipelineTest, DedupStoresEqualPagesOnce) {
  std::vector<uint8_t> pattern(5 * P);
  uint64_t seed = 0x5eed;
  for (size_t k = 0; k < pattern.size() / 8; ++k) reinterpret_cast<uint64_t*>(pattern.data())[k] = Next(&seed);
  uint64_t near = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    memcpy(main_.base + i * P, pattern.data() + (i % 5) * P, P);
    if (i % 5 == 0 && i % 7 == 0) {
      main_.base[i * P + (i * 13) % P] ^= 1;  // a near-duplicate: stored
      ++near;
    }
  }
  Child child(ChildSetup());
  ASSERT_TRUE(child.ready());
  const std::vector<PageSource> src = Sources();
  for (int jobs : {1, 3}) {
    SCOPED_TRACE("jobs " + std::to_string(jobs));
    auto reader = memdrain::PageReader::Open(child.pid());
    ASSERT_TRUE(reader.ok());
    DedupTable table([&](const DedupTable::Ref& r, uint8_t* out) -> Status {
      const PageRange one{r.vaddr, r.vaddr + P};
      return reader->Read({&one, 1}, out, true);
    });
    Run run = Dump(child.pid(), jobs, "lz4", kChunkPages, src, 0, &table);
    ASSERT_TRUE(run.status.ok()) << run.status.ToString();
    const uint64_t want = 1000 - 5 - near;
    if (jobs == 1) {
      EXPECT_EQ(run.stats.pages_dedup, want);
    } else {
      EXPECT_LE(run.stats.pages_dedup, want);
      EXPECT_GE(run.stats.pages_dedup, want - 20);
    }
    // Near-duplicates whose change lies outside the key's pieces were
    // compared and stored.
    EXPECT_LE(table.mismatches(), near);
    // Every DUP page refers to a DATA page of this process with its bytes.
    auto kind_at = [&](uint64_t a) {
      for (const img::PageRange& r : run.pm.ranges()) {
        if (a >= r.vaddr() && a < r.vaddr() + r.nr_pages() * P) return r.kind();
      }
      return img::PageRange::PARENT;  // none
    };
    uint64_t dups = 0;
    for (const img::PageRange& r : run.pm.ranges()) {
      if (r.kind() != img::PageRange::DUP) continue;
      ASSERT_EQ(r.ref_pid(), child.pid());
      for (uint64_t k = 0; k < r.nr_pages(); ++k) {
        const uint64_t a = r.vaddr() + k * P, ref = r.ref_vaddr() + k * P;
        ASSERT_EQ(kind_at(ref), img::PageRange::DATA) << std::hex << a << " -> " << ref;
        ASSERT_EQ(memcmp(Expected(a), Expected(ref), P), 0) << std::hex << a << " -> " << ref;
        ++dups;
      }
    }
    EXPECT_EQ(dups, run.stats.pages_dedup);
    EXPECT_EQ(run.stats.pages_written + run.stats.pages_dedup + run.stats.pages_zero, 2898u + 250u);
  }
}

TEST_F(PagePipelineTest, MoreJobsThanCpusAndOneToken) {
  Child child(ChildSetup());
  ASSERT_TRUE(child.ready());
  const std::vector<PageSource> src = Sources();
  for (auto [jobs, tokens] : {std::pair{8, 0}, std::pair{3, 1}}) {
    Run run = Dump(child.pid(), jobs, "lz4", 16, src, tokens);
    ASSERT_TRUE(run.status.ok()) << run.status.ToString();
    Verify(run.pm, src, "lz4", 16);
  }
}

TEST_F(PagePipelineTest, NothingToDump) {
  Child child(ChildSetup());
  ASSERT_TRUE(child.ready());
  Run run = Dump(child.pid(), 2, "lz4", 16, {});
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  EXPECT_EQ(run.pm.ranges_size(), 0);
  EXPECT_EQ(run.pm.chunks_size(), 0);
  EXPECT_EQ(run.stats.batches, 0u);
}

// CF_FAULT=drain: the first read fails; nothing is written.
TEST_F(PagePipelineTest, InjectedDrainFaultIsReported) {
  Child child(ChildSetup());
  ASSERT_TRUE(child.ready());
  ScopedEnv fault("CF_FAULT", "drain");
  for (int jobs : {1, 3}) {
    Run run = Dump(child.pid(), jobs, "none", 16, Sources());
    ASSERT_FALSE(run.status.ok());
    EXPECT_NE(run.status.message().find("fault injected at drain"), std::string::npos) << run.status.ToString();
    EXPECT_EQ(run.stats.chunks, 0u);
    EXPECT_EQ(run.file_size, sizeof(streams::FileHeader));
    EXPECT_LE(run.stats.batches, static_cast<uint64_t>(2 * jobs + 1)) << "the cut stage did not stop";
  }
}

// Pages that vanished from the target (unmapped mid-way): the batch that
// holds them fails, the pipeline stops soon after, and no chunk at or after
// the failed one is written.
TEST_F(PagePipelineTest, DrainErrorMidwayStopsThePipeline) {
  constexpr uint64_t kHole = 1500;
  Child child([this] { munmap(main_.base + kHole * P, 8 * P); });
  ASSERT_TRUE(child.ready());
  const std::vector<PageSource> src = {{{main_.addr(0), main_.addr(kMainPages)}, true}};
  constexpr uint64_t kChunk = 16;
  constexpr uint64_t kBadBatch = kHole / kChunk;
  for (int jobs : {1, 3}) {
    for (const std::string codec : {"none", "zstd"}) {
      SCOPED_TRACE(codec + ", jobs " + std::to_string(jobs));
      Run run = Dump(child.pid(), jobs, codec, kChunk, src, 4);
      ASSERT_FALSE(run.status.ok());
      EXPECT_NE(run.status.ToString().find(std::to_string(main_.addr(kHole))), std::string::npos)
          << run.status.ToString();
      EXPECT_LE(run.stats.chunks, kBadBatch);
      EXPECT_LE(run.stats.batches, kBadBatch + 4 + 1) << "the cut stage did not stop";
      for (const img::PageRange& r : run.pm.ranges()) {
        EXPECT_LE(r.vaddr() + r.nr_pages() * P, main_.addr(kBadBatch * kChunk));
      }
    }
  }
}

// The target died before the dump: every batch fails, the first is reported.
TEST_F(PagePipelineTest, TargetGoneIsReported) {
  Child child(ChildSetup());
  ASSERT_TRUE(child.ready());
  auto reader = memdrain::PageReader::Open(child.pid());
  ASSERT_TRUE(reader.ok());
  child.Kill();
  auto writer = streams::ImageWriter::Create(dir_ + "/pages.img", streams::FileKind::kPages);
  ASSERT_TRUE(writer.ok());
  Arena arena(3);
  img::PageMap pm;
  PagePipelineStats stats;
  const std::vector<PageSource> src = Sources();
  PagePipelineOptions opts;
  opts.chunk_pages = 16;
  Status s = RunPagePipeline(arena, *reader, src, opts, &*writer, &pm, &stats);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(stats.chunks, 0u);
  EXPECT_EQ(pm.chunks_size(), 0);
  EXPECT_LE(stats.batches, 7u);
}

// Several pages files (one writer each): the same pages, ranges and chunk
// sizes as one file; chunk j in file j % K, each file's chunks in order and
// filling it exactly; the same image whatever the number of jobs.
TEST_F(PagePipelineTest, SeveralFilesHoldTheSamePagesAsOne) {
  Child child(ChildSetup());
  ASSERT_TRUE(child.ready());
  const std::vector<PageSource> src = Sources();
  for (const std::string codec : {"none", "lz4"}) {
    Run one = Dump(child.pid(), 2, codec, 16, src);
    ASSERT_TRUE(one.status.ok()) << one.status.ToString();
    const std::vector<uint8_t> want = ChunkData(one.pm);
    ASSERT_FALSE(want.empty());
    for (int files : {2, 3}) {
      std::string pm_ref;
      for (int jobs : {1, 3}) {
        SCOPED_TRACE(codec + ", " + std::to_string(files) + " files, jobs " + std::to_string(jobs));
        Run run = DumpFiles(child.pid(), jobs, codec, 16, src, files);
        ASSERT_TRUE(run.status.ok()) << run.status.ToString();
        EXPECT_TRUE(ChunkData(run.pm) == want) << "the pages differ from those of one file";
        ASSERT_EQ(run.pm.chunks_size(), one.pm.chunks_size());
        EXPECT_EQ(run.pm.data_pages(), one.pm.data_pages());
        ASSERT_EQ(run.pm.ranges_size(), one.pm.ranges_size());
        for (int i = 0; i < run.pm.ranges_size(); ++i) {
          EXPECT_EQ(run.pm.ranges(i).SerializeAsString(), one.pm.ranges(i).SerializeAsString());
        }
        std::vector<uint64_t> end(static_cast<size_t>(files), sizeof(streams::FileHeader));
        for (int i = 0; i < run.pm.chunks_size(); ++i) {
          const img::ChunkRef& c = run.pm.chunks(i);
          EXPECT_EQ(c.nr_pages(), one.pm.chunks(i).nr_pages());
          ASSERT_EQ(c.file(), static_cast<uint32_t>(i % files));
          EXPECT_EQ(c.file_offset(), end[c.file()]) << "chunk " << i;
          end[c.file()] = c.file_offset() + sizeof(streams::RecordHeader) + sizeof(streams::ChunkHeader) +
                          c.stored_size();
        }
        uint64_t total = 0;
        for (uint64_t e : end) total += e;
        EXPECT_EQ(total, run.file_size);
        EXPECT_EQ(run.stats.bytes_written + files * sizeof(streams::FileHeader), run.file_size);
        EXPECT_EQ(run.stats.chunks, static_cast<uint64_t>(run.pm.chunks_size()));
        EXPECT_TRUE(streams::CheckPagesFiles(run.pm, dir_ + "/pages.img").ok());
        const std::string pm = run.pm.SerializeAsString();
        if (pm_ref.empty()) {
          pm_ref = pm;
        } else {
          EXPECT_TRUE(pm == pm_ref) << "PageMap differs between jobs 1 and jobs " << jobs;
        }
      }
    }
  }
}

// A positioned write that fails (CF_FAULT=image-pwrite) fails the pipeline
// with its error; nothing is reported written past it.
TEST_F(PagePipelineTest, SeveralFilesWriteFaultIsReported) {
  Child child(ChildSetup());
  ASSERT_TRUE(child.ready());
  ScopedEnv fault("CF_FAULT", "image-pwrite");
  for (int jobs : {1, 3}) {
    Run run = DumpFiles(child.pid(), jobs, "none", 16, Sources(), 2);
    ASSERT_FALSE(run.status.ok());
    EXPECT_NE(run.status.message().find("fault injected at image-pwrite"), std::string::npos)
        << run.status.ToString();
    EXPECT_LE(run.stats.batches, static_cast<uint64_t>(2 * jobs + 2)) << "the cut stage did not stop";
  }
}

// One pages file of several missing, or cut short: refused before any read,
// naming the file.
TEST_F(PagePipelineTest, MissingOrTruncatedSecondFileIsRefused) {
  Child child(ChildSetup());
  ASSERT_TRUE(child.ready());
  Run run = DumpFiles(child.pid(), 2, "none", 16, Sources(), 2);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  const std::string pages = dir_ + "/pages.img";
  const std::string second = dir_ + "/" + streams::PagesFileName(7, 1);
  ASSERT_TRUE(streams::CheckPagesFiles(run.pm, pages).ok());
  struct stat st;
  ASSERT_EQ(stat(second.c_str(), &st), 0);
  ASSERT_EQ(truncate(second.c_str(), st.st_size - 1), 0);
  Status s = streams::CheckPagesFiles(run.pm, pages);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(second + ": truncated"), std::string::npos) << s.ToString();
  ASSERT_EQ(unlink(second.c_str()), 0);
  s = streams::CheckPagesFiles(run.pm, pages);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(second + ": missing"), std::string::npos) << s.ToString();
  EXPECT_FALSE(streams::PagesReader::Open(run.pm, pages).ok());
  // A chunk naming a file the pagemap does not list.
  img::PageMap bad = run.pm;
  bad.clear_extra_pages_files();
  s = streams::CheckPagesFiles(bad, pages);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("names pages file 1"), std::string::npos) << s.ToString();
}

TEST(WritersForTest, OnlyLargeProcessesWithSeveralJobsGetSeveralFiles) {
  EXPECT_EQ(WritersFor(100, 8), 1);
  EXPECT_EQ(WritersFor(kMultiWriterPages - 1, 8), 1);
  EXPECT_EQ(WritersFor(kMultiWriterPages, 1), 1);
  EXPECT_EQ(WritersFor(kMultiWriterPages, 2), 2);
  EXPECT_EQ(WritersFor(1 << 20, 64), kMaxWriters);
}

TEST(ArenaTest, JobsDefaultToTheCpuCount) {
  EXPECT_EQ(Arena(0).jobs(), DefaultJobs());
  EXPECT_EQ(Arena(5).jobs(), 5);
  EXPECT_GE(DefaultJobs(), 1);
}

}  // namespace
}  // namespace cf::sched
