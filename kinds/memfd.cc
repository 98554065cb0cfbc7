// Memfds: the descriptor names a shared memory object (img::Shmem, saved
// once for the whole dump with its pages, and recreated by restore before
// the processes exist: kinds/shmem.h); each fd is a new open file
// description of it, with the saved flags and offset.
#include <fcntl.h>
#include <sys/stat.h>

#include <string>

#include "kinds/kind.h"

namespace cf::kinds {
namespace {

class Memfd final : public FdKind {
 public:
  const char* name() const override { return "memfd"; }
  img::Fd::KindCase field() const override { return img::Fd::kMemfd; }
  Scope scope() const override { return Scope::kPrivate; }
  bool Recognise(const FdSight& s) const override {
    std::string name;
    return S_ISREG(s.sb.st_mode) && proc::ParseMemfdPath(s.link, &name);
  }
  bool Shareable(const FdSight&) const override { return true; }

  Status Read(const FdSight&, const FdInfo&, DumpContext&, img::Fd* f) const override {
    f->mutable_memfd();  // its object comes in Attach
    return OkStatus();
  }

  Status Attach(pid_t pid, DumpContext& ctx, img::Fd* f, img::Process* core) const override {
    ASSIGN_OR_RETURN(uint32_t id, ctx.AddMemfd(pid, *f, core));
    f->mutable_memfd()->set_shmem_id(id);
    return OkStatus();
  }

  Status Validate(const img::Fd& f, const std::set<uint32_t>& shmem_ids) const override {
    if (shmem_ids.count(f.memfd().shmem_id())) return OkStatus();
    return Errorf("fd %d refers to shared memory object %u, which is not in the image", f.fd(), f.memfd().shmem_id());
  }

  Result<UniqueFd> Open(const img::Fd& f, RestoreContext& ctx) const override {
    if (ctx.shmem == nullptr) return Errorf("fd %d: memfd without its shared memory objects", f.fd());
    auto it = ctx.shmem->find(f.memfd().shmem_id());
    if (it == ctx.shmem->end()) return Errorf("fd %d: shared memory object %u missing", f.fd(), f.memfd().shmem_id());
    return OpenByPath(f, "/proc/self/fd/" + std::to_string(it->second), 0, true, false);
  }

  std::string Describe(const img::Fd& f) const override {
    return f.path() + ", object " + std::to_string(f.memfd().shmem_id()) + ", offset " + std::to_string(f.pos());
  }
};

}  // namespace

const FdKind& MemfdKind() {
  static const Memfd kind;
  return kind;
}

}  // namespace cf::kinds
