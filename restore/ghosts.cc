#include "restore/ghosts.h"

#include <fcntl.h>
#include <unistd.h>

#include <set>

#include "common/fd.h"
#include "kinds/ghost_node.h"
#include "kinds/kind.h"

namespace cf::restore {
namespace {

// Every descriptor or mapping of a deleted file with a ghost image, by
// image: the processes holding it and one Fd to recreate it from.
struct Holders {
  std::set<pid_t> pids;
  const img::Fd* fd = nullptr;
};

std::map<std::string, Holders> GhostHolders(const ImageSet& images) {
  std::map<std::string, Holders> out;
  auto note = [&](pid_t pid, const img::Fd& f) {
    if (!f.has_reg() || !f.reg().deleted() || f.reg().ghost_file().empty()) return;
    Holders& h = out[f.reg().ghost_file()];
    h.pids.insert(pid);
    if (!h.fd) h.fd = &f;
  };
  for (const ProcessImages& p : images.processes) {
    for (const img::Fd& f : p.core.fds()) note(p.core.pid(), f);
    for (const img::Vma& v : p.core.vmas()) {
      if (v.has_ghost()) note(p.core.pid(), v.ghost());
    }
  }
  return out;
}

}  // namespace

std::map<std::string, uint32_t> SharedGhosts(const ImageSet& images) {
  std::map<std::string, uint32_t> ids;
  uint32_t next = kSharedGhostIdBase;
  for (const auto& [name, h] : GhostHolders(images)) {
    if (h.pids.size() > 1) ids[name] = next++;
  }
  return ids;
}

Result<InheritedFiles> MakeSharedGhosts(const ImageSet& images, int temp_base) {
  const std::map<std::string, Holders> holders = GhostHolders(images);
  const std::map<std::string, uint32_t> ids = SharedGhosts(images);
  InheritedFiles out;
  if (ids.empty()) return out;
  RETURN_IF_ERROR(EnsureFdRoom(temp_base + static_cast<int>(ids.size()) + 16));
  std::map<std::string, std::string> made;
  kinds::RestoreContext ctx;
  ctx.dir = images.dir;
  ctx.recreated = &made;
  Status s;
  for (const auto& [name, id] : ids) {
    const img::Fd& f = *holders.at(name).fd;
    const kinds::FdKind* kind = kinds::KindOf(f);
    if (kind == nullptr) {
      s = Error("deleted file " + f.path() + ": no kind opens it");
      break;
    }
    Result<UniqueFd> fd = kind->Open(f, ctx);
    if (!fd.ok()) {
      s = fd.status().WithContext("recreate deleted file " + f.path() + " for the processes holding it");
      break;
    }
    const int moved = fcntl(fd->get(), F_DUPFD_CLOEXEC, temp_base);
    if (moved < 0) {
      s = ErrnoStatus("move the descriptor of deleted file " + f.path());
      break;
    }
    out[id] = moved;
  }
  // Deleted again at once: the descriptors hold the files.
  kinds::RemoveRecreated(made);
  if (!s.ok()) {
    for (const auto& [id, fd] : out) close(fd);
    return s;
  }
  return out;
}

void UseSharedGhosts(const std::map<std::string, uint32_t>& shared, const InheritedFiles& inherited,
                     std::map<std::string, std::string>* recreated) {
  for (const auto& [name, id] : shared) {
    auto it = inherited.find(id);
    if (it != inherited.end()) (*recreated)[name] = "/proc/self/fd/" + std::to_string(it->second);
  }
}

}  // namespace cf::restore
