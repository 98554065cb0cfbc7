// criu-fast merge -D DIR OUT: an incremental image and its chain of parents
// made into one self-contained image in OUT (engine/commands.h).
//
// Everything but memory is copied as it is; each process's pages go through
// the page pipeline again (sched/page_pipeline.h), read from the chain by a
// drain that looks each page up where it is stored: in this image, or in the
// parent image a PARENT range points to, as deep as the chain goes. So the
// new pages file holds every page once, in address order, chunked, hashed
// and compressed as a dump would (--compress; --jobs workers). ZERO ranges
// stay ZERO; INHERITED ranges (pages shared with the parent process) are
// kept. DUP pages (equal to a page stored by some process of the same
// image) are read where their reference is stored and stored again as DATA:
// the merged image is not deduplicated. OUT gets the image's id without a parent: an increment made against
// DIR may name OUT as its parent instead. DIR and its parents are not
// changed; the inventory is written last, so an interrupted merge leaves no
// image restore would accept.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/io.h"
#include "common/log.h"
#include "engine/commands.h"
#include "engine/page_dump.h"
#include "memdrain/drain.h"
#include "restore/images.h"
#include "sched/arena.h"
#include "sched/page_pipeline.h"
#include "streams/codec.h"
#include "streams/format.h"
#include "streams/image_file.h"
#include "streams/pages_files.h"

namespace cf::engine {
namespace {

using pagemap::kPageSize;
using pagemap::PageRange;

// Reads pages out of a process's chain of images (restore::PageChain: level
// 0 is the image merged, level i+1 the parent of level i). A DUP page is
// read where its reference is stored: another process's pages of the same
// image.
class ChainDrain : public memdrain::PageDrain {
 public:
  explicit ChainDrain(const restore::PageChain& chain) : chain_(chain) {}

  Status Read(std::span<const PageRange> ranges, uint8_t* out, bool) const override {
    // Chunks decoded for this batch, by pagemap and index: a batch in
    // address order needs a few of each level.
    std::map<std::pair<const img::PageMap*, size_t>, std::vector<uint8_t>> decoded;
    std::map<const img::PageMap*, streams::PagesReader> readers;
    for (const PageRange& r : ranges) {
      for (uint64_t a = r.start; a < r.end; a += kPageSize, out += kPageSize) {
        ASSIGN_OR_RETURN(Where w, Find(0, a));
        if (w.zero) {
          memset(out, 0, kPageSize);
          continue;
        }
        const img::PageMap& pm = *w.level->pagemap;
        const std::string& path = w.level->pages_path;
        auto key = std::make_pair(&pm, w.chunk);
        auto it = decoded.find(key);
        if (it == decoded.end()) {
          auto rd = readers.find(&pm);
          if (rd == readers.end()) {
            ASSIGN_OR_RETURN(streams::PagesReader opened, streams::PagesReader::Open(pm, path));
            rd = readers.emplace(&pm, std::move(opened)).first;
          }
          const int ci = static_cast<int>(w.chunk);
          streams::Record rec;
          RETURN_IF_ERROR(rd->second.ReadChunk(ci, &rec));
          std::vector<uint8_t> raw;
          RETURN_IF_ERROR(streams::DecodeChunk(rec, &raw, rd->second.path_of(ci)));
          if (raw.size() != pm.chunks(ci).nr_pages() * kPageSize) {
            return Errorf("%s: chunk %zu holds %zu bytes, its pagemap says otherwise", rd->second.path_of(ci).c_str(),
                          w.chunk, raw.size());
          }
          it = decoded.emplace(key, std::move(raw)).first;
        }
        memcpy(out, it->second.data() + w.offset * kPageSize, kPageSize);
      }
    }
    return OkStatus();
  }

 private:
  struct Where {
    bool zero = false;
    const restore::PageLevel* level = nullptr;  // where the bytes are stored
    size_t chunk = 0;
    uint64_t offset = 0;  // page in the chunk
  };

  static auto RangeAt(const img::PageMap& pm, uint64_t addr) {
    return std::upper_bound(pm.ranges().begin(), pm.ranges().end(), addr, [](uint64_t a, const img::PageRange& r) {
      return a < r.vaddr() + r.nr_pages() * kPageSize;
    });
  }

  // The DATA index of |pm|, made once (Read runs on several threads).
  const restore::DataIndex& IndexOf(const img::PageMap& pm) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = indexes_.find(&pm);
    if (it == indexes_.end()) it = indexes_.emplace(&pm, restore::DataIndex(pm)).first;
    return it->second;
  }

  // Where the page at |addr| is stored, from level |l| down.
  Result<Where> Find(size_t l, uint64_t addr) const {
    for (; l < chain_.size(); ++l) {
      const img::PageMap* pm = chain_[l].pagemap;
      if (pm == nullptr) break;
      auto it = RangeAt(*pm, addr);
      if (it == pm->ranges().end() || it->vaddr() > addr) break;
      switch (it->kind()) {
        case img::PageRange::ZERO:
          return Where{true, nullptr, 0, 0};
        case img::PageRange::PARENT:
          continue;
        case img::PageRange::DATA: {
          ASSIGN_OR_RETURN(restore::DataIndex::Place at,
                           IndexOf(*pm).Find(*pm, static_cast<int>(it - pm->ranges().begin()), addr,
                                             chain_[l].pages_path));
          return Where{false, &chain_[l], at.chunk, at.offset};
        }
        case img::PageRange::DUP: {
          // Stored as DATA by the process it names, in the same image
          // (restore::CheckDupRefs checked it when the image was loaded).
          const restore::ImagePages* image = chain_[l].image;
          auto ref = image ? image->find(it->ref_pid()) : restore::ImagePages::const_iterator{};
          if (image == nullptr || ref == image->end() || ref->second.pagemap == nullptr) {
            return Errorf("page %#lx: equal to a page of process %d, which is not in the image", addr, it->ref_pid());
          }
          const img::PageMap& rpm = *ref->second.pagemap;
          const uint64_t src = it->ref_vaddr() + (addr - it->vaddr());
          auto jt = RangeAt(rpm, src);
          if (jt == rpm.ranges().end() || jt->vaddr() > src || jt->kind() != img::PageRange::DATA) {
            return Errorf("page %#lx: equal to page %#lx of process %d, which is not stored there", addr, src,
                          it->ref_pid());
          }
          ASSIGN_OR_RETURN(restore::DataIndex::Place at,
                           IndexOf(rpm).Find(rpm, static_cast<int>(jt - rpm.ranges().begin()), src,
                                             ref->second.pages_path));
          return Where{false, &ref->second, at.chunk, at.offset};
        }
        default:
          return Errorf("page %#lx: range kind %d cannot be merged", addr, static_cast<int>(it->kind()));
      }
    }
    return Errorf("page %#lx is in no image of the chain", addr);
  }

  const restore::PageChain chain_;
  mutable std::mutex mu_;
  mutable std::map<const img::PageMap*, restore::DataIndex> indexes_;
};

bool IsProcessPagesFile(const std::string& name, const std::set<std::string>& pages_files) {
  return pages_files.count(name) != 0 || (name.rfind("pagemap-", 0) == 0 && name.ends_with(".img"));
}

Status CopyFile(const std::string& from, const std::string& to) {
  UniqueFd in(open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return ErrnoStatus("open " + from);
  UniqueFd out(open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return ErrnoStatus("create " + to);
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    const ssize_t n = read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read " + from);
    if (n == 0) break;
    RETURN_IF_ERROR(WriteAll(out.get(), buf.data(), static_cast<size_t>(n), "write " + to));
  }
  if (close(out.release()) != 0) return ErrnoStatus("close " + to);
  return OkStatus();
}

Status WriteOne(const std::string& path, streams::FileKind kind, const google::protobuf::MessageLite& msg) {
  ASSIGN_OR_RETURN(streams::ImageWriter w, streams::ImageWriter::Create(path, kind));
  RETURN_IF_ERROR(w.WriteMessage(msg));
  return w.Finish();
}

struct MergeTotals {
  uint64_t levels = 0;
  uint64_t pages = 0;
  uint64_t bytes = 0;
};

Status Merge(const Options& opts, const std::string& dir, const std::string& out, MergeTotals* totals) {
  ASSIGN_OR_RETURN(restore::ImageSet set, restore::LoadImages(dir));
  totals->levels = set.parents.size() + 1;
  if (mkdir(out.c_str(), 0700) != 0) {
    return ErrnoStatus("create " + out + (errno == EEXIST ? " (merge writes a new directory)" : ""));
  }
  ASSIGN_OR_RETURN(streams::CodecSpec codec, streams::ParseCodec(opts.compress));

  // Everything but the memory and the inventory, as it is.
  std::set<std::string> pages_files;
  for (const restore::ProcessImages& p : set.processes) {
    pages_files.insert(p.pages_path.substr(p.pages_path.rfind('/') + 1));
    for (const std::string& name : p.pagemap.extra_pages_files()) pages_files.insert(name);
    // A stale further pages file of an earlier dump into the same directory
    // is not copied either (the merged image has one pages file).
    for (int k = 1; k <= sched::kMaxWriters; ++k) {
      pages_files.insert(streams::PagesFileName(p.pagemap.pid(), static_cast<uint32_t>(k)));
    }
  }
  {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("open " + dir);
    Status st;
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      struct stat sb;
      if (name == "." || name == ".." || name == "inventory.img" || IsProcessPagesFile(name, pages_files)) continue;
      if (fstatat(dirfd(d), name.c_str(), &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode)) continue;  // the parent link
      st = CopyFile(dir + "/" + name, out + "/" + name);
      if (!st.ok()) break;
    }
    closedir(d);
    RETURN_IF_ERROR(st);
  }

  sched::Arena arena(opts.jobs);
  for (const restore::ProcessImages& p : set.processes) {
    const img::PageMap& top = p.pagemap;
    std::vector<sched::PageSource> sources;
    pagemap::RangeSet inherited;
    for (const img::PageRange& r : top.ranges()) {
      const PageRange range{r.vaddr(), r.vaddr() + r.nr_pages() * kPageSize};
      if (r.kind() == img::PageRange::INHERITED) {
        inherited.Append(range);
      } else if (!sources.empty() && sources.back().range.end == range.start) {
        sources.back().range.end = range.end;
      } else {
        sources.push_back({range, true});
      }
    }
    const restore::PageChain chain = p.chain();
    ChainDrain drain(chain);
    img::PageMap pm;
    pm.set_pid(top.pid());
    pm.set_pages_file("pages-" + std::to_string(top.pid()) + ".img");
    pm.set_start_time(top.start_time());
    *pm.mutable_guards() = top.guards();
    ASSIGN_OR_RETURN(streams::ImageWriter pages,
                     streams::ImageWriter::Create(out + "/" + pm.pages_file(), streams::FileKind::kPages));
    sched::PagePipelineOptions po;
    po.codec = codec;
    po.hash_pages = !top.hashes().empty();  // it may be a parent still
    sched::PagePipelineStats ps;
    RETURN_IF_ERROR(sched::RunPagePipeline(arena, drain, sources, po, &pages, &pm, &ps)
                        .WithContext("merge of process " + std::to_string(top.pid())));
    RETURN_IF_ERROR(pages.Finish());
    AddInherited(inherited, &pm);
    totals->pages += ps.pages_written;
    totals->bytes += ps.bytes_written;
    RETURN_IF_ERROR(WriteOne(out + "/pagemap-" + std::to_string(top.pid()) + ".img", streams::FileKind::kPageMap, pm));
  }

  img::Inventory inv = set.inventory;
  inv.clear_parent();
  inv.clear_parent_id();
  inv.set_compression(streams::CodecSpecName(codec));
  return WriteOne(out + "/inventory.img", streams::FileKind::kInventory, inv);
}

// A failed merge leaves nothing behind: the files it wrote into |out|, a
// directory of its own, go with it.
void RemoveOutput(const std::string& out) {
  DIR* d = opendir(out.c_str());
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
  rmdir(out.c_str());
}

}  // namespace

int RunMerge(const Options& opts) {
  const std::string& out = opts.args[0];
  MergeTotals totals;
  Status s = Merge(opts, opts.images_dir, out, &totals);
  if (!s.ok()) {
    if (s.err() != EEXIST) RemoveOutput(out);
    LOG_ERROR("merge: %s", s.ToString().c_str());
    return 1;
  }
  LOG_INFO("merge: %s (%lu images) merged into %s: %lu pages stored, %lu bytes", opts.images_dir.c_str(),
           totals.levels, out.c_str(), totals.pages, totals.bytes);
  if (opts.display_stats) {
    printf("Merge statistics:\n  images merged:   %lu\n  pages written:   %lu\n  bytes written:   %lu\n",
           totals.levels, totals.pages, totals.bytes);
  }
  return 0;
}

}  // namespace cf::engine
