// Shared memory objects, dump and restore (see shmem.h).
#include "kinds/shmem.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "common/log.h"
#include "common/mapping.h"
#include "kinds/hugetlb.h"
#include "memdrain/page_reader.h"
#include "pagemap/page_ranges.h"
#include "proc/proc_parse.h"
#include "streams/image_file.h"

namespace cf::kinds {

using pagemap::kPageSize;
using pagemap::PageUp;

// --- dump

namespace {

// The page-aligned extents of |fd| (|size| bytes) that hold data: holes were
// never written and read back as zeros.
Result<std::vector<pagemap::PageRange>> DataExtents(int fd, uint64_t size) {
  std::vector<pagemap::PageRange> out;
  const uint64_t end = PageUp(size);
  uint64_t off = 0;
  while (off < end) {
    off_t d = lseek(fd, static_cast<off_t>(off), SEEK_DATA);
    if (d < 0 && errno == ENXIO) break;  // no data after off
    if (d < 0) return ErrnoStatus("SEEK_DATA");
    off_t h = lseek(fd, d, SEEK_HOLE);
    if (h < 0) return ErrnoStatus("SEEK_HOLE");
    const uint64_t lo = static_cast<uint64_t>(d) & ~(kPageSize - 1);
    const uint64_t hi = std::min(PageUp(static_cast<uint64_t>(h)), end);
    if (hi <= lo) break;
    out.push_back({lo, hi});
    off = hi;
  }
  return out;
}

// The object is read through a view mapped into criu-fast one window at a
// time, so criu-fast's resident memory stays bounded whatever its size.
constexpr uint64_t kWindow = 64ull << 20;

}  // namespace

// Saves the data pages of object |fd| into |name|, filling s->pages()
// (vaddr = byte offset in the object). A hugetlb object (|huge|) is read
// into a buffer, not mapped (kinds/hugetlb.h).
Status ShmemSet::SavePages(int fd, const std::string& name, bool huge, img::Shmem* s) {
  const uint64_t size = s->size();
  img::PageMap* pm = s->mutable_pages();
  ASSIGN_OR_RETURN(streams::ImageWriter out, sink_->Create(name, streams::FileKind::kPages));
  ASSIGN_OR_RETURN(std::vector<pagemap::PageRange> extents, DataExtents(fd, size));
  // The pages are read from our own view of the object.
  ASSIGN_OR_RETURN(memdrain::PageReader reader, memdrain::PageReader::Open(getpid()));
  sched::PagePipelineOptions po;
  po.codec = opts_.codec;
  size_t next = 0;  // first extent not yet done
  for (uint64_t win = 0; win < PageUp(size) && next < extents.size(); win += kWindow) {
    const uint64_t win_end = std::min(win + kWindow, PageUp(size));
    std::vector<sched::PageSource> items;
    SharedMapping view;  // a read-only view of the window
    bool mapped = false;
    uint64_t scanned = 0;
    while (next < extents.size() && extents[next].start < win_end) {
      pagemap::PageRange& e = extents[next];
      const uint64_t lo = std::max(e.start, win), hi = std::min(e.end, win_end);
      if (!mapped) {
        RETURN_IF_ERROR(huge ? ReadHugeObject(fd, win, win_end - win, &view)
                             : view.Map(fd, win, win_end - win, PROT_READ));
        mapped = true;
      }
      items.push_back({{view.base() + (lo - win), view.base() + (hi - win)}, true});
      scanned += (hi - lo) / kPageSize;
      if (hi < e.end) break;  // the rest of this extent is in the next window
      ++next;
    }
    if (items.empty()) continue;
    const int first_range = pm->ranges_size();
    sched::PagePipelineStats ps;
    const Status st = sched::RunPagePipeline(*opts_.arena, reader, items, po, &out, pm, &ps);
    if (opts_.count) opts_.count(scanned, ps);
    RETURN_IF_ERROR(st);
    for (int i = first_range; i < pm->ranges_size(); ++i) {
      img::PageRange* r = pm->mutable_ranges(i);
      r->set_vaddr(r->vaddr() - view.base() + win);
    }
  }
  return out.Finish();
}

Result<uint32_t> ShmemSet::Add(const std::string& open_path, img::Shmem::Kind kind, uint64_t dev, uint64_t inode,
                               const std::string& link, img::Process* proc) {
  if (auto it = ids_.find({dev, inode}); it != ids_.end()) return it->second;
  UniqueFd fd(open(open_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + open_path + " (" + link + ")");
  struct stat sb;
  if (fstat(fd.get(), &sb) != 0) return ErrnoStatus("stat " + open_path);
  if (sb.st_dev != dev || sb.st_ino != inode) {
    return Errorf("%s: is inode %lu, expected %lu", open_path.c_str(), sb.st_ino, inode);
  }
  const uint32_t id = static_cast<uint32_t>(ids_.size() + 1);
  img::Shmem* s = proc->add_shmems();
  s->set_id(id);
  s->set_kind(kind);
  s->set_dev(dev);
  s->set_inode(inode);
  s->set_size(static_cast<uint64_t>(sb.st_size));
  ASSIGN_OR_RETURN(uint64_t huge_page_size, HugePageSize(fd.get()));
  if (huge_page_size != 0) {
    img::HugeShmem* h = proc->add_huge_shmems();
    h->set_shmem_id(id);
    h->set_page_size(huge_page_size);
  }
  if (kind == img::Shmem::MEMFD) {
    std::string name;
    proc::ParseMemfdPath(link, &name);
    s->set_name(name);
    const int seals = fcntl(fd.get(), F_GET_SEALS);
    if (seals < 0) return ErrnoStatus("F_GET_SEALS " + open_path);
    s->set_seals(static_cast<uint32_t>(seals));
  }
  const std::string file = "shmem-" + std::to_string(id) + ".img";
  s->mutable_pages()->set_pages_file(file);
  RETURN_IF_ERROR(SavePages(fd.get(), file, huge_page_size != 0, s).WithContext("shared memory " + link));
  ids_[{dev, inode}] = id;
  LOG_INFO("shmem: object %u (%s, %lu bytes) saved with process %d: %lu data pages", id, link.c_str(), s->size(),
           proc->pid(), s->pages().data_pages());
  return id;
}

Status ShmemSet::AddVmas(img::Process* proc) {
  const pid_t pid = proc->pid();
  for (img::Vma& v : *proc->mutable_vmas()) {
    if (StartsWith(v.path(), "/SYSV")) {
      return Errorf("process %d maps the SysV shared memory segment %s at %#lx: not supported yet", pid,
                    v.path().c_str(), v.start());
    }
    std::string name;
    const bool memfd = proc::ParseMemfdPath(v.path(), &name);
    // Private mappings of an object (a memfd, or shared anonymous memory
    // opened through map_files) read its pages until they write them.
    const bool object = memfd || (v.path() == "/dev/zero" && v.deleted());
    if (v.kind() != img::Vma::ANON_SHARED && !(object && v.kind() == img::Vma::FILE_PRIVATE)) continue;
    if (v.inode() == 0) {
      return Errorf("process %d: shared mapping at %#lx has no shmem object", pid, v.start());
    }
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", pid, v.start(), v.end());
    ASSIGN_OR_RETURN(uint32_t id,
                     Add(path, memfd ? img::Shmem::MEMFD : img::Shmem::ANON, v.dev(), v.inode(), v.path(), proc));
    v.set_shmem_id(id);
  }
  return OkStatus();
}

Result<uint32_t> ShmemSet::AddMemfd(pid_t pid, int fd, uint64_t dev, uint64_t inode, const std::string& link,
                                    img::Process* proc) {
  const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  return Add(path, img::Shmem::MEMFD, dev, inode, link, proc);
}

// --- restore

namespace {

// Makes the object, mapped at |view| (writable, shared), and returns a
// descriptor of it. |huge_page_size|: a hugetlb object's (kinds/hugetlb.h).
Result<UniqueFd> MakeObject(const img::Shmem& s, uint64_t huge_page_size, SharedMapping* view) {
  if (huge_page_size != 0) return MakeHugeObject(s, huge_page_size, view);
  const uint64_t len = PageUp(s.size());
  if (s.kind() == img::Shmem::ANON) {
    // Shared anonymous memory is a shmem file only a mapping reaches:
    // map it, then open it through map_files.
    RETURN_IF_ERROR(view->Map(-1, 0, len, PROT_READ | PROT_WRITE));
    char path[96];
    snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", view->base(), view->base() + len);
    UniqueFd fd(open(path, O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(std::string("open ") + path);
    return fd;
  }
  // Sealing is allowed, so that the seals it had can be put back; a memfd
  // created without MFD_ALLOW_SEALING has F_SEAL_SEAL, which is put back too.
  UniqueFd fd(static_cast<int>(syscall(SYS_memfd_create, s.name().c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  if (!fd.valid()) return ErrnoStatus("memfd_create " + s.name());
  if (ftruncate(fd.get(), static_cast<off_t>(s.size())) != 0) return ErrnoStatus("size memfd " + s.name());
  if (len > 0) RETURN_IF_ERROR(view->Map(fd.get(), 0, len, PROT_READ | PROT_WRITE));
  return fd;
}

}  // namespace

Result<ShmemObjects> ShmemObjects::Create(const std::map<uint32_t, img::Shmem>& shmems,
                                          const std::map<uint32_t, uint64_t>& huge, const std::string& dir,
                                          int temp_base, const ShmemRestoreHooks& hooks) {
  ShmemObjects out;
  if (shmems.empty()) return out;
  RETURN_IF_ERROR(hooks.fd_room(temp_base + static_cast<int>(shmems.size()) + 1024));
  for (const auto& [id, s] : shmems) {
    const std::string ctx = "shared memory object " + std::to_string(id);
    UniqueFd fd;
    {
      // Unmapped before sealing: F_SEAL_WRITE fails (EBUSY) while a
      // writable shared mapping exists.
      SharedMapping view;
      const auto h = huge.find(id);
      ASSIGN_OR_RETURN(fd, MakeObject(s, h == huge.end() ? 0 : h->second, &view));
      if (s.pages().data_pages() > 0 || s.pages().ranges_size() > 0) {
        RETURN_IF_ERROR(
            hooks.fill(view.base(), PageUp(s.size()), s.pages(), dir + "/" + s.pages().pages_file()).WithContext(ctx));
      }
    }
    if (s.kind() == img::Shmem::MEMFD && s.seals() != 0 && fcntl(fd.get(), F_ADD_SEALS, s.seals()) != 0) {
      return ErrnoStatus(ctx + ": seal");
    }
    const int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, temp_base);
    if (moved < 0) return ErrnoStatus(ctx + ": move descriptor");
    out.owned_[id] = UniqueFd(moved);
    out.fds_[id] = moved;
    LOG_DEBUG("restore: %s (%lu bytes) created as fd %d", ctx.c_str(), s.size(), moved);
  }
  return out;
}

// --- check

ProbeResult ProbeMemfd() {
  UniqueFd fd(static_cast<int>(syscall(SYS_memfd_create, "cf-check", MFD_CLOEXEC)));
  if (!fd.valid()) return ProbeFailed("memfd_create", errno);
  if (ftruncate(fd.get(), static_cast<off_t>(kPageSize)) != 0) return ProbeFailed("ftruncate memfd", errno);
  void* p = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return ProbeFailed("mmap memfd", errno);
  static_cast<volatile char*>(p)[0] = 1;
  munmap(p, kPageSize);
  return {true, ""};
}

}  // namespace cf::kinds
