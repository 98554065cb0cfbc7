// Memfds: the descriptor names a shared memory object (img::Shmem, saved
// once for the whole dump with its pages, and recreated by restore before
// the processes exist: kinds/shmem.h); each fd is a new open file
// description of it, with the saved flags and offset, except the first
// read-write one of each object, which gets the object's own description
// (memfd_create()'s, which execveat() accepts: a description opened again
// counts as a writer of the file).
#include <fcntl.h>
#include <sys/stat.h>

#include <unistd.h>

#include <map>
#include <mutex>
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
    if ((f->flags() & O_ACCMODE) == O_RDWR && !f->is_dup()) {
      std::lock_guard<std::mutex> lock(mu_);
      auto [it, first] = original_.emplace(id, Holder{pid, f->fd(), f->file_id()});
      const Holder& h = it->second;
      f->mutable_memfd()->set_original(first || (h.file_id != 0 && h.file_id == f->file_id()) ||
                                       (h.pid == pid && h.fd == f->fd()));
    }
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
    // The mode belongs to the object (fchmod): the same in every fd of it.
    if (f.mode() != 0 && fchmod(it->second, f.mode() & 07777) != 0) return ErrnoStatus("fchmod memfd");
    if (f.memfd().original()) {
      UniqueFd fd(fcntl(it->second, f.cloexec() ? F_DUPFD_CLOEXEC : F_DUPFD, 0));
      if (!fd.valid()) return ErrnoStatus("fd " + std::to_string(f.fd()) + ": dup memfd");
      if (lseek(fd.get(), static_cast<off_t>(f.pos()), SEEK_SET) < 0) return ErrnoStatus("seek memfd");
      RETURN_IF_ERROR(SetStatusFlags(fd.get(), f.flags(), O_APPEND | O_NONBLOCK | O_NOATIME, "memfd"));
      return fd;
    }
    return OpenByPath(f, "/proc/self/fd/" + std::to_string(it->second), 0, true, false);
  }

  std::string Describe(const img::Fd& f) const override {
    return f.path() + ", object " + std::to_string(f.memfd().shmem_id()) + ", offset " + std::to_string(f.pos()) +
           (f.memfd().original() ? ", original description" : "");
  }

 private:
  // The fd that keeps memfd_create()'s description, by object (one dump
  // per criu-fast run; the processes are collected one after another).
  struct Holder {
    pid_t pid;
    int fd;
    uint32_t file_id;
  };
  mutable std::mutex mu_;
  mutable std::map<uint32_t, Holder> original_;
};

}  // namespace

const FdKind& MemfdKind() {
  static const Memfd kind;
  return kind;
}

}  // namespace cf::kinds
