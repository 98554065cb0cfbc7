// Directories: opened again by path (O_DIRECTORY), with the saved flags.
// Several processes sharing one open file description of a directory get
// it from their lowest common ancestor.
#include <fcntl.h>
#include <sys/stat.h>

#include <string>

#include "kinds/kind.h"

namespace cf::kinds {
namespace {

class Directory final : public FdKind {
 public:
  const char* name() const override { return "directory"; }
  img::Fd::KindCase field() const override { return img::Fd::kDir; }
  Scope scope() const override { return Scope::kPrivate; }
  bool Recognise(const FdSight& s) const override { return S_ISDIR(s.sb.st_mode); }
  bool Shareable(const FdSight&) const override { return true; }

  Status Read(const FdSight&, const FdInfo&, DumpContext&, img::Fd* f) const override {
    f->mutable_dir();
    return OkStatus();
  }

  Result<UniqueFd> Open(const img::Fd& f, RestoreContext&) const override {
    return OpenByPath(f, f.path(), O_DIRECTORY, false, false);
  }

  std::string Describe(const img::Fd& f) const override { return f.path(); }
};

}  // namespace

const FdKind& DirectoryKind() {
  static const Directory kind;
  return kind;
}

}  // namespace cf::kinds
