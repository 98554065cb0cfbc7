// Directories: opened again by path (O_DIRECTORY), with the saved flags.
// Several processes sharing one open file description of a directory get
// it from their lowest common ancestor.
//
// A removed directory (nlink 0) is made again and removed once the process's
// fds hold it (kinds/ghost_node.h). When it is also the process's working
// directory, the process already made it again as its cwd (cwd_root in
// kinds/process_props.cc): the fd is opened through /proc/self/cwd, so both
// are one directory again.
#include <fcntl.h>
#include <sys/stat.h>

#include <string>

#include "kinds/ghost_node.h"
#include "kinds/kind.h"

namespace cf::kinds {
namespace {

class Directory final : public FdKind {
 public:
  const char* name() const override { return "directory"; }
  img::Fd::KindCase field() const override { return img::Fd::kDir; }
  Scope scope() const override { return Scope::kPrivate; }
  bool Recognise(const FdSight& s) const override { return S_ISDIR(s.sb.st_mode); }
  // A removed one is made again by each process that holds it.
  bool Shareable(const FdSight& s) const override { return s.sb.st_nlink > 0; }

  Status Read(const FdSight& s, const FdInfo&, DumpContext&, img::Fd* f) const override {
    img::Directory* d = f->mutable_dir();
    if (s.sb.st_nlink > 0) return OkStatus();
    f->set_path(StripDeleted(s.link));
    *f->mutable_ghost() = GhostOf(s.sb, "");
    struct stat cwd;
    const std::string cwd_link = "/proc/" + std::to_string(s.pid) + "/cwd";
    d->set_is_cwd(stat(cwd_link.c_str(), &cwd) == 0 && cwd.st_dev == s.sb.st_dev && cwd.st_ino == s.sb.st_ino);
    return OkStatus();
  }

  Result<UniqueFd> Open(const img::Fd& f, RestoreContext& ctx) const override {
    if (!f.has_ghost()) return OpenByPath(f, f.path(), O_DIRECTORY, false, false);
    if (f.dir().is_cwd()) return OpenByPath(f, "/proc/self/cwd", O_DIRECTORY, false, false);
    if (ctx.recreated == nullptr) {
      return Errorf("fd %d: %s is removed and this restore cannot make it again", f.fd(), f.path().c_str());
    }
    const std::string key = "dir-" + std::to_string(f.dev()) + "-" + std::to_string(f.inode());
    ASSIGN_OR_RETURN(std::string at, MakeGhostNode(key, f.path(), f.ghost(), ctx.recreated));
    return OpenByPath(f, at, O_DIRECTORY, false, false);
  }

  std::string Describe(const img::Fd& f) const override {
    return f.path() + (f.has_ghost() ? f.dir().is_cwd() ? " (removed, the cwd)" : " (removed)" : "");
  }
};

}  // namespace

const FdKind& DirectoryKind() {
  static const Directory kind;
  return kind;
}

}  // namespace cf::kinds
