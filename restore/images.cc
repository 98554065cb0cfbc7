#include "restore/images.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "kinds/kind.h"

#include <unistd.h>

#include "streams/image_file.h"
#include "streams/pages_files.h"
#include "streams/image_trust.h"
#include "streams/stream.h"

namespace cf::restore {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof(buf), "%#lx", v);
  return buf;
}

template <typename Msg>
Status ReadOne(const std::string& path, streams::FileKind kind, Msg* msg) {
  ASSIGN_OR_RETURN(streams::ImageReader r, streams::ImageReader::Open(path, kind));
  return r.ReadMessage(msg);
}

Status CheckFormat(const std::string& inv_path, const img::Inventory& inv) {
  if (!streams::FormatVersionReadable(inv.format_version())) {
    return Errorf("%s: image format version %u is not supported", inv_path.c_str(), inv.format_version());
  }
  return OkStatus();
}

// Every PARENT page of |pm| is held (zero or content) by |parent|.
Status CheckParentHolds(const img::PageMap& pm, const img::PageMap* parent, const std::string& parent_dir) {
  constexpr uint64_t kPage = 4096;
  int j = 0;  // the parent's ranges, walked once: both lists are sorted
  for (const img::PageRange& r : pm.ranges()) {
    if (r.kind() != img::PageRange::PARENT) continue;
    if (parent == nullptr) {
      return Errorf("pagemap-%d.img refers to the parent image %s, which has no pages of process %d", pm.pid(),
                    parent_dir.c_str(), pm.pid());
    }
    uint64_t addr = r.vaddr();
    const uint64_t end = addr + r.nr_pages() * kPage;
    while (addr < end) {
      while (j < parent->ranges_size() &&
             parent->ranges(j).vaddr() + parent->ranges(j).nr_pages() * kPage <= addr) {
        ++j;
      }
      // A page the parent image shares with the parent process is not the
      // parent image's to hand on.
      if (j == parent->ranges_size() || parent->ranges(j).vaddr() > addr ||
          parent->ranges(j).kind() == img::PageRange::INHERITED) {
        return Errorf("pagemap-%d.img: page %#lx is in the parent image %s, which does not hold it", pm.pid(), addr,
                      parent_dir.c_str());
      }
      addr = parent->ranges(j).vaddr() + parent->ranges(j).nr_pages() * kPage;
    }
  }
  return OkStatus();
}

}  // namespace

Status CheckDupRefs(const std::map<int32_t, const img::PageMap*>& image, const std::string& dir) {
  constexpr uint64_t kPage = 4096;
  for (const auto& [pid, pm] : image) {
    for (const img::PageRange& r : pm->ranges()) {
      if (r.kind() != img::PageRange::DUP) continue;
      const std::string file = dir + "/pagemap-" + std::to_string(pid) + ".img";
      auto it = image.find(r.ref_pid());
      if (it == image.end()) {
        return Error(file + ": the pages at " + Hex(r.vaddr()) + " equal those of process " +
                         std::to_string(r.ref_pid()) + ", which is not in the image",
                     EBADMSG);
      }
      const img::PageMap& ref = *it->second;
      uint64_t addr = r.ref_vaddr();
      if (addr % kPage != 0 || r.nr_pages() == 0 || r.nr_pages() > (~uint64_t{0} - addr) / kPage) {
        return Error(file + ": bad DUP range at " + Hex(r.vaddr()), EBADMSG);
      }
      const uint64_t end = addr + r.nr_pages() * kPage;
      auto jt = std::upper_bound(ref.ranges().begin(), ref.ranges().end(), addr, [](uint64_t a, const img::PageRange& x) {
        return a < x.vaddr() + x.nr_pages() * kPage;
      });
      while (addr < end) {
        if (jt == ref.ranges().end() || jt->vaddr() > addr || jt->kind() != img::PageRange::DATA) {
          return Error(file + ": the pages at " + Hex(r.vaddr()) + " equal page " + Hex(addr) + " of process " +
                           std::to_string(r.ref_pid()) + ", which that process's pagemap does not store (DATA)",
                       EBADMSG);
        }
        addr = jt->vaddr() + jt->nr_pages() * kPage;
        ++jt;
      }
    }
  }
  return OkStatus();
}

namespace {

// Every INHERITED page of a process is one its parent process holds
// (stored, all zeros, found in a parent image, or inherited in turn).
Status CheckInherited(const ImageSet& set) {
  constexpr uint64_t kPage = 4096;
  std::map<int32_t, const img::PageMap*> by_pid;
  for (const ProcessImages& p : set.processes) by_pid[p.core.pid()] = &p.pagemap;
  for (const ProcessImages& p : set.processes) {
    const img::PageMap* parent = nullptr;
    int j = 0;
    for (const img::PageRange& r : p.pagemap.ranges()) {
      if (r.kind() != img::PageRange::INHERITED) continue;
      if (parent == nullptr) {
        auto it = by_pid.find(p.core.ppid());
        if (it == by_pid.end() || p.core.ppid() == p.core.pid()) {
          return Errorf("pagemap-%d.img shares pages with parent process %d, which is not in the image", p.core.pid(),
                        p.core.ppid());
        }
        parent = it->second;
      }
      uint64_t addr = r.vaddr();
      const uint64_t end = addr + r.nr_pages() * kPage;
      while (addr < end) {
        while (j < parent->ranges_size() && parent->ranges(j).vaddr() + parent->ranges(j).nr_pages() * kPage <= addr) {
          ++j;
        }
        // Any kind will do: a page of zeros (ZERO) is content too.
        if (j == parent->ranges_size() || parent->ranges(j).vaddr() > addr) {
          return Errorf("pagemap-%d.img: page %#lx is shared with parent process %d, whose pagemap does not hold it",
                        p.core.pid(), addr, p.core.ppid());
        }
        addr = parent->ranges(j).vaddr() + parent->ranges(j).nr_pages() * kPage;
      }
    }
  }
  return OkStatus();
}

// The parents of an incremental image, as deep as its pages refer.
Status LoadChain(ImageSet* set, const std::string& parent_base) {
  std::string dir = parent_base.empty() ? set->dir : parent_base;
  const img::Inventory* inv = &set->inventory;
  std::vector<const img::PageMap*> level;  // per process: its pagemap at the current level
  for (const ProcessImages& p : set->processes) level.push_back(&p.pagemap);
  std::set<std::string> seen{inv->image_id()};
  for (;;) {
    bool refers = false;
    for (const img::PageMap* pm : level) {
      if (pm == nullptr) continue;
      for (const img::PageRange& r : pm->ranges()) refers = refers || r.kind() == img::PageRange::PARENT;
    }
    if (!refers) return OkStatus();
    // A stream's image has no parent link: its inventory names the parent.
    const bool use_link = !(dir == parent_base && set->parents.empty());
    ASSIGN_OR_RETURN(const std::string parent_dir, ParentDirOf(dir, *inv, use_link));
    ASSIGN_OR_RETURN(ParentImage parent, LoadParentImage(parent_dir, inv->parent_id(), dir));
    if (!parent.inventory.image_id().empty() && !seen.insert(parent.inventory.image_id()).second) {
      return Error("image chain of " + set->dir + " loops back at " + parent.dir, ELOOP);
    }
    set->parents.push_back(std::move(parent));
    const ParentImage& pi = set->parents.back();
    for (size_t i = 0; i < level.size(); ++i) {
      const int32_t pid = set->processes[i].core.pid();
      auto it = pi.pagemaps.find(pid);
      const img::PageMap* ppm = it == pi.pagemaps.end() ? nullptr : &it->second;
      if (level[i]) RETURN_IF_ERROR(CheckParentHolds(*level[i], ppm, pi.dir));
      set->processes[i].parents.push_back({ppm, ppm ? pi.pages_paths.at(pid) : std::string()});
      level[i] = ppm;
    }
    dir = pi.dir;
    inv = &pi.inventory;
  }
}

}  // namespace

PageChain ProcessImages::chain() const {
  PageChain c;
  c.push_back({&pagemap, pages_path, image});
  c.insert(c.end(), parents.begin(), parents.end());
  return c;
}

Result<std::string> ParentDirOf(const std::string& dir, const img::Inventory& inv, bool use_link) {
  struct stat st;
  if (use_link && lstat((dir + "/parent").c_str(), &st) == 0) return dir + "/parent";
  if (!inv.parent().empty()) return inv.parent()[0] == '/' ? inv.parent() : dir + "/" + inv.parent();
  return Error(dir + ": the image refers to a parent image but names none (no parent link)", ENOENT);
}

Result<ParentImage> LoadParentImage(const std::string& parent_dir, const std::string& expected_id,
                                    const std::string& child_dir) {
  ParentImage p;
  p.dir = parent_dir;
  const std::string inv_path = p.dir + "/inventory.img";
  if (access(inv_path.c_str(), F_OK) != 0) {
    return Error("parent image " + p.dir + " is missing or incomplete (no inventory.img)", ENOENT);
  }
  // Restore takes a parent only from where its images were taken.
  if (streams::ImageOwnerCheckOn()) RETURN_IF_ERROR(streams::CheckImagesTrusted(p.dir + "/."));
  RETURN_IF_ERROR(ReadOne(inv_path, streams::FileKind::kInventory, &p.inventory));
  RETURN_IF_ERROR(CheckFormat(inv_path, p.inventory));
  if (!expected_id.empty() && p.inventory.image_id() != expected_id) {
    return Error("parent image " + p.dir + " is not the one the dump in " + child_dir +
                     " was made against (it was replaced by another dump)",
                 ESTALE);
  }
  for (int32_t pid : p.inventory.pids()) {
    const std::string sp = std::to_string(pid);
    const std::string pm_path = p.dir + "/pagemap-" + sp + ".img";
    img::PageMap pm;
    RETURN_IF_ERROR(ReadOne(pm_path, streams::FileKind::kPageMap, &pm));
    if (pm.pid() != pid) return Errorf("%s names another pid", pm_path.c_str());
    const std::string& pages_file = pm.pages_file();
    if (!pages_file.empty() && !streams::IsSafeFileName(pages_file)) return Errorf("%s: bad pages file name", pm_path.c_str());
    const std::string pages_path = p.dir + "/" + (pages_file.empty() ? "pages-" + sp + ".img" : pages_file);
    RETURN_IF_ERROR(streams::CheckPagesFiles(pm, pages_path));
    p.pages_paths[pid] = pages_path;
    p.pagemaps.emplace(pid, std::move(pm));
  }
  std::map<int32_t, const img::PageMap*> by_pid;
  for (const auto& [pid, pm] : p.pagemaps) by_pid[pid] = &pm;
  RETURN_IF_ERROR(CheckDupRefs(by_pid, p.dir));
  return p;
}

void LinkFamily(ImageSet* set) {
  std::map<int32_t, size_t> by_pid;
  for (size_t i = 0; i < set->processes.size(); ++i) by_pid.emplace(set->processes[i].core.pid(), i);
  for (ProcessImages& p : set->processes) {
    p.parent = -1;
    p.children.clear();
  }
  // The root (first) has no parent in the image, whatever its ppid says.
  for (size_t i = 1; i < set->processes.size(); ++i) {
    ProcessImages& p = set->processes[i];
    auto it = by_pid.find(p.core.ppid());
    if (it == by_pid.end() || it->second == i) continue;
    p.parent = static_cast<int>(it->second);
    set->processes[it->second].children.push_back(i);
  }
}

PagemapSummary SummarizePagemap(const img::PageMap& pm) {
  PagemapSummary s;
  s.data_pages_before.reserve(static_cast<size_t>(pm.ranges_size()) + 1);
  s.data_ranges_before.reserve(static_cast<size_t>(pm.ranges_size()) + 1);
  uint64_t pages = 0, ranges = 0, end = 0;
  bool in_order = true;
  for (const img::PageRange& r : pm.ranges()) {
    s.data_pages_before.push_back(pages);
    s.data_ranges_before.push_back(ranges);
    if (r.kind() == img::PageRange::DATA) {
      pages += r.nr_pages();
      ++ranges;
    } else if (r.kind() != img::PageRange::ZERO) {
      s.data_or_zero_only = false;
    }
    if (r.vaddr() < end || r.nr_pages() > (UINT64_MAX - r.vaddr()) / pagemap::kPageSize) in_order = false;
    end = r.vaddr() + r.nr_pages() * pagemap::kPageSize;
  }
  s.data_pages_before.push_back(pages);
  s.data_ranges_before.push_back(ranges);
  if (!in_order) return s;
  // Where each chunk begins: the DATA ranges in order, cut into chunks.
  auto r = pm.ranges().begin();
  uint64_t used = 0;  // pages of *r in the chunks before
  auto next_data = [&]() {
    while (r != pm.ranges().end() && (r->kind() != img::PageRange::DATA || used == r->nr_pages())) {
      ++r;
      used = 0;
    }
    return r != pm.ranges().end();
  };
  std::vector<uint64_t> firsts;
  firsts.reserve(static_cast<size_t>(pm.chunks_size()));
  for (const img::ChunkRef& c : pm.chunks()) {
    if (!next_data()) return s;  // more pages in chunks than in ranges (FillMemory refuses it)
    firsts.push_back(r->vaddr() + used * pagemap::kPageSize);
    for (uint64_t left = c.nr_pages(); left > 0;) {
      if (!next_data()) return s;
      const uint64_t take = std::min(left, r->nr_pages() - used);
      used += take;
      left -= take;
    }
  }
  s.chunk_first = std::move(firsts);
  return s;
}

Result<ImageSet> LoadImages(const std::string& dir, const std::string& parent_base) {
  ImageSet set;
  set.dir = dir;
  const std::string inv_path = dir + "/inventory.img";
  if (access(inv_path.c_str(), F_OK) != 0) {
    return Error(dir + " holds no complete image (no inventory.img: the dump did not finish?)", ENOENT);
  }
  RETURN_IF_ERROR(ReadOne(inv_path, streams::FileKind::kInventory, &set.inventory));
  RETURN_IF_ERROR(CheckFormat(inv_path, set.inventory));
  if (set.inventory.pre_dump()) {
    return Error(dir + " holds a pre-dump (memory only): restore the dump made after it", EINVAL);
  }
  if (set.inventory.pids_size() == 0) return Error(inv_path + ": no processes in the image", EBADMSG);
  for (int32_t pid : set.inventory.pids()) {
    ProcessImages p;
    const std::string sp = std::to_string(pid);
    RETURN_IF_ERROR(ReadOne(dir + "/core-" + sp + ".img", streams::FileKind::kCore, &p.core));
    RETURN_IF_ERROR(ReadOne(dir + "/pagemap-" + sp + ".img", streams::FileKind::kPageMap, &p.pagemap));
    if (p.core.pid() != pid || p.pagemap.pid() != pid) {
      return Errorf("%s: images of process %d name another pid", dir.c_str(), pid);
    }
    if (p.core.threads_size() == 0) return Errorf("core-%d.img: no threads", pid);
    // File names come from the image: a plain name in |dir|, never a path.
    const std::string& pages_file = p.pagemap.pages_file();
    if (!pages_file.empty() && !streams::IsSafeFileName(pages_file)) {
      return Errorf("pagemap-%d.img: bad pages file name", pid);
    }
    p.pages_path = dir + "/" + (pages_file.empty() ? "pages-" + sp + ".img" : pages_file);
    RETURN_IF_ERROR(streams::CheckPagesFiles(p.pagemap, p.pages_path));
    for (const img::Shmem& s : p.core.shmems()) {
      if (s.id() == 0 || !set.shmems.emplace(s.id(), s).second) {
        return Errorf("core-%d.img: shared memory object %u is invalid or saved twice", pid, s.id());
      }
      if (!streams::IsSafeFileName(s.pages().pages_file())) {
        return Errorf("core-%d.img: shared memory object %u has a bad pages file name", pid, s.id());
      }
    }
    for (const img::HugeShmem& h : p.core.huge_shmems()) set.huge_shmems[h.shmem_id()] = h.page_size();
    p.summary = SummarizePagemap(p.pagemap);
    set.processes.push_back(std::move(p));
  }
  {
    std::map<int32_t, const img::PageMap*> by_pid;
    for (const ProcessImages& p : set.processes) by_pid[p.core.pid()] = &p.pagemap;
    RETURN_IF_ERROR(CheckDupRefs(by_pid, dir));
  }
  LinkFamily(&set);
  RETURN_IF_ERROR(LoadChain(&set, parent_base));
  RETURN_IF_ERROR(CheckInherited(set));
  // Where DUP references lead, per level.
  set.image_pages.resize(set.parents.size() + 1);
  for (ProcessImages& p : set.processes) {
    set.image_pages[0][p.core.pid()] = {&p.pagemap, p.pages_path, &set.image_pages[0]};
    p.image = &set.image_pages[0];
  }
  for (size_t k = 0; k < set.parents.size(); ++k) {
    ImagePages& level = set.image_pages[k + 1];
    for (const auto& [pid, pm] : set.parents[k].pagemaps) level[pid] = {&pm, set.parents[k].pages_paths.at(pid), &level};
    for (ProcessImages& p : set.processes) p.parents[k].image = &level;
  }
  // Every vma and fd must name an object that was saved.
  for (const ProcessImages& p : set.processes) {
    for (const img::Vma& v : p.core.vmas()) {
      if (v.shmem_id() && !set.shmems.count(v.shmem_id())) {
        return Errorf("core-%d.img: vma %#lx refers to shared memory object %u, which is not in the image",
                      p.core.pid(), v.start(), v.shmem_id());
      }
      // Slots are aligned to it (restore/memory.cc): a power of two up to 1 GiB.
      const uint64_t huge = v.huge_page_size();
      if (huge != 0 && (huge > (1ull << 30) || (huge & (huge - 1)) != 0 || v.start() % huge || v.end() % huge)) {
        return Errorf("core-%d.img: vma %#lx has a bad huge page size %lu", p.core.pid(), v.start(), huge);
      }
      if (v.kind() == img::Vma::ANON_SHARED && !v.shmem_id()) {
        return Errorf("core-%d.img: shared vma %#lx has no shared memory object", p.core.pid(), v.start());
      }
    }
    std::set<uint32_t> shmem_ids;
    for (const auto& [id, shmem] : set.shmems) shmem_ids.insert(id);
    for (const img::Fd& f : p.core.fds()) {
      const kinds::FdKind* kind = kinds::KindOf(f);
      if (kind == nullptr) return Errorf("core-%d.img: fd %d is of no known kind", p.core.pid(), f.fd());
      RETURN_IF_ERROR(kind->Validate(f, shmem_ids).WithContext("core-" + std::to_string(p.core.pid()) + ".img"));
    }
  }
  return set;
}

std::vector<PageChain> LineageOf(const ImageSet& images, const ProcessImages& p) {
  std::vector<PageChain> out;
  const ProcessImages* cur = &p;
  auto inherits = [](const img::PageMap& pm) {
    return std::any_of(pm.ranges().begin(), pm.ranges().end(),
                       [](const img::PageRange& r) { return r.kind() == img::PageRange::INHERITED; });
  };
  while (out.size() < images.processes.size() && inherits(cur->pagemap)) {
    if (cur->parent < 0) break;  // LoadImages refused such an image already
    const ProcessImages* parent = &images.processes[cur->parent];
    out.push_back(parent->chain());
    cur = parent;
  }
  return out;
}

}  // namespace cf::restore
