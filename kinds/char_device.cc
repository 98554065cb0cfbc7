// Character devices (/dev/null, /dev/zero, a terminal...): opened again by
// path with the saved flags. A terminal is only taken with --shell-job (the
// shell job's terminal is the one restore runs in). A device node whose name
// was removed is made again with its number, opened and removed
// (kinds/ghost_node.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <string>

#include "kinds/ghost_node.h"
#include "kinds/kind.h"

namespace cf::kinds {
namespace {

bool IsTty(const struct stat& sb) {
  const unsigned maj = major(sb.st_rdev);
  return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143);
}

class CharDevice final : public FdKind {
 public:
  const char* name() const override { return "character device"; }
  img::Fd::KindCase field() const override { return img::Fd::kChr; }
  Scope scope() const override { return Scope::kPrivate; }
  bool Recognise(const FdSight& s) const override { return S_ISCHR(s.sb.st_mode); }

  Status Read(const FdSight& s, const FdInfo&, DumpContext& ctx, img::Fd* f) const override {
    if (IsTty(s.sb) && !ctx.shell_job()) {
      return Error("a terminal: not supported yet (a shell job needs --shell-job)");
    }
    f->mutable_chr();
    if (s.sb.st_nlink == 0) {
      f->set_path(StripDeleted(s.link));
      *f->mutable_ghost() = GhostOf(s.sb, "");
    }
    return OkStatus();
  }

  Result<UniqueFd> Open(const img::Fd& f, RestoreContext& ctx) const override {
    if (!f.has_ghost()) return OpenByPath(f, f.path(), 0, false, false);
    if (ctx.recreated == nullptr) {
      return Errorf("fd %d: %s is deleted and this restore cannot make it again", f.fd(), f.path().c_str());
    }
    const std::string key = "dev-" + std::to_string(f.dev()) + "-" + std::to_string(f.inode());
    ASSIGN_OR_RETURN(std::string at, MakeGhostNode(key, f.path(), f.ghost(), ctx.recreated));
    return OpenByPath(f, at, 0, false, false);
  }

  std::string Describe(const img::Fd& f) const override {
    return f.path() + " (" + std::to_string(major(f.rdev())) + ":" + std::to_string(minor(f.rdev())) + ")" +
           (f.has_ghost() ? " (deleted)" : "");
  }
};

}  // namespace

const FdKind& CharDeviceKind() {
  static const CharDevice kind;
  return kind;
}

}  // namespace cf::kinds
