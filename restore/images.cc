#include "restore/images.h"

#include <set>

#include "kinds/kind.h"

#include <unistd.h>

#include "streams/image_file.h"
#include "streams/stream.h"

namespace cf::restore {
namespace {

template <typename Msg>
Status ReadOne(const std::string& path, streams::FileKind kind, Msg* msg) {
  ASSIGN_OR_RETURN(streams::ImageReader r, streams::ImageReader::Open(path, kind));
  return r.ReadMessage(msg);
}

}  // namespace

Result<ImageSet> LoadImages(const std::string& dir) {
  ImageSet set;
  set.dir = dir;
  const std::string inv_path = dir + "/inventory.img";
  if (access(inv_path.c_str(), F_OK) != 0) {
    return Error(dir + " holds no complete image (no inventory.img: the dump did not finish?)", ENOENT);
  }
  RETURN_IF_ERROR(ReadOne(inv_path, streams::FileKind::kInventory, &set.inventory));
  if (set.inventory.format_version() != streams::kFormatVersion) {
    return Errorf("%s: image format version %u is not supported", inv_path.c_str(),
                  set.inventory.format_version());
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
    for (const img::Shmem& s : p.core.shmems()) {
      if (s.id() == 0 || !set.shmems.emplace(s.id(), s).second) {
        return Errorf("core-%d.img: shared memory object %u is invalid or saved twice", pid, s.id());
      }
      if (!streams::IsSafeFileName(s.pages().pages_file())) {
        return Errorf("core-%d.img: shared memory object %u has a bad pages file name", pid, s.id());
      }
    }
    set.processes.push_back(std::move(p));
  }
  // Every vma and fd must name an object that was saved.
  for (const ProcessImages& p : set.processes) {
    for (const img::Vma& v : p.core.vmas()) {
      if (v.shmem_id() && !set.shmems.count(v.shmem_id())) {
        return Errorf("core-%d.img: vma %#lx refers to shared memory object %u, which is not in the image",
                      p.core.pid(), v.start(), v.shmem_id());
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

}  // namespace cf::restore
