// Symlinks themselves, held by an O_PATH | O_NOFOLLOW descriptor: opened
// again by path with the saved flags (which keep O_NOFOLLOW). One whose name
// was removed is made again with its target, opened and removed
// (kinds/ghost_node.h). The target is read through the process's fd: opening
// /proc/PID/fd/N with O_PATH lands on the symlink itself, which readlinkat()
// with an empty name then reads.
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "kinds/ghost_node.h"
#include "kinds/kind.h"

namespace cf::kinds {
namespace {

Result<std::string> ReadTarget(const FdSight& s) {
  const std::string fd_path = "/proc/" + std::to_string(s.pid) + "/fd/" + std::to_string(s.fd);
  UniqueFd fd(open(fd_path.c_str(), O_PATH | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + fd_path);
  char buf[PATH_MAX];
  const ssize_t n = readlinkat(fd.get(), "", buf, sizeof(buf));
  if (n < 0) return ErrnoStatus("read the symlink of " + fd_path);
  return std::string(buf, static_cast<size_t>(n));
}

class Symlink final : public FdKind {
 public:
  const char* name() const override { return "symlink"; }
  img::Fd::KindCase field() const override { return img::Fd::kSymlink; }
  Scope scope() const override { return Scope::kPrivate; }
  bool Recognise(const FdSight& s) const override { return S_ISLNK(s.sb.st_mode); }

  Status Read(const FdSight& s, const FdInfo&, DumpContext&, img::Fd* f) const override {
    ASSIGN_OR_RETURN(std::string target, ReadTarget(s));
    f->mutable_symlink()->set_target(target);
    if (s.sb.st_nlink > 0) return OkStatus();
    f->set_path(StripDeleted(s.link));
    *f->mutable_ghost() = GhostOf(s.sb, target);
    return OkStatus();
  }

  Result<UniqueFd> Open(const img::Fd& f, RestoreContext& ctx) const override {
    if (!f.has_ghost()) return OpenByPath(f, f.path(), 0, false, false);
    if (ctx.recreated == nullptr) {
      return Errorf("fd %d: %s is deleted and this restore cannot make it again", f.fd(), f.path().c_str());
    }
    const std::string key = "link-" + std::to_string(f.dev()) + "-" + std::to_string(f.inode());
    ASSIGN_OR_RETURN(std::string at, MakeGhostNode(key, f.path(), f.ghost(), ctx.recreated));
    return OpenByPath(f, at, 0, false, false);
  }

  std::string Describe(const img::Fd& f) const override {
    return f.path() + " -> " + f.symlink().target() + (f.has_ghost() ? " (deleted)" : "");
  }
};

}  // namespace

const FdKind& SymlinkKind() {
  static const Symlink kind;
  return kind;
}

}  // namespace cf::kinds
