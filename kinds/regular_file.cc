// Regular files: opened again by path, with the saved flags and offset.
//
// An unlinked file that a process still holds has its contents saved in a
// ghost image (ghost-DEV-INO.img, written once per file however many fds
// hold it); restore recreates the file at its old path from it, opens every
// fd on it, and unlinks it again once the process's fds are all in place.
// A file that several processes share one open file description of (one
// offset) is opened once, by their lowest common ancestor; a deleted one is
// not shared so (each process recreates it for itself).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/fd.h"
#include "common/io.h"
#include "kinds/kind.h"
#include "streams/image_file.h"
#include "streams/image_sink.h"

namespace cf::kinds {
namespace {

constexpr size_t kGhostChunk = 1 << 20;
constexpr char kDeleted[] = " (deleted)";

Status SaveGhost(const std::string& fd_path, streams::ImageSink* sink, const std::string& name, uint64_t size,
                 uint64_t limit) {
  if (size > limit) {
    return Errorf("a deleted file of %lu bytes, more than --ghost-limit (%lu bytes) lets an image take", size, limit);
  }
  UniqueFd in(open(fd_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return ErrnoStatus("open " + fd_path);
  ASSIGN_OR_RETURN(streams::ImageWriter w, sink->Create(name, streams::FileKind::kGhost));
  std::vector<uint8_t> buf(kGhostChunk);
  for (uint64_t off = 0; off < size;) {
    ssize_t n = pread(in.get(), buf.data(), buf.size(), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read " + fd_path);
    if (n == 0) break;
    RETURN_IF_ERROR(w.WriteChunk(streams::Codec::kNone, static_cast<uint64_t>(n),
                                 {buf.data(), static_cast<size_t>(n)}));
    off += static_cast<uint64_t>(n);
  }
  return w.Finish();
}

// Writes the contents saved in ghost image |image| through |fd|.
Status FillGhost(int fd, const std::string& image, const std::string& path, uint32_t mode) {
  ASSIGN_OR_RETURN(streams::ImageReader r, streams::ImageReader::Open(image, streams::FileKind::kGhost));
  // The process's umask is already restored: set the bits it had exactly.
  if (fchmod(fd, mode & 07777) != 0) return ErrnoStatus("chmod " + path);
  streams::Record rec;
  std::vector<uint8_t> data;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, r.Next(&rec));
    if (!more) break;
    RETURN_IF_ERROR(streams::DecodeChunk(rec, &data, image));
    RETURN_IF_ERROR(WriteAll(fd, data.data(), data.size(), path));
  }
  return OkStatus();
}

// Recreates a deleted file at |path| (which must not exist) from ghost image
// |image|. A failure removes what it created.
Status RecreateGhost(const std::string& image, const std::string& path, uint32_t mode) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777));
  if (!fd.valid()) return ErrnoStatus("recreate deleted file " + path);
  Status s = FillGhost(fd.get(), image, path, mode);
  if (!s.ok()) unlink(path.c_str());
  return s;
}

class RegularFile final : public FdKind {
 public:
  const char* name() const override { return "regular file"; }
  img::Fd::KindCase field() const override { return img::Fd::kReg; }
  Scope scope() const override { return Scope::kPrivate; }
  bool Recognise(const FdSight& s) const override {
    return S_ISREG(s.sb.st_mode) && !StartsWith(s.link, "anon_inode:");
  }
  bool Shareable(const FdSight& s) const override { return s.sb.st_nlink > 0; }

  Status Read(const FdSight& s, const FdInfo&, DumpContext& ctx, img::Fd* f) const override {
    img::RegularFile* r = f->mutable_reg();
    if (s.sb.st_nlink > 0) return OkStatus();
    std::string path = s.link;
    const size_t dl = sizeof(kDeleted) - 1;
    if (path.size() > dl && path.compare(path.size() - dl, dl, kDeleted) == 0) path.resize(path.size() - dl);
    f->set_path(path);
    const std::string name = "ghost-" + std::to_string(s.sb.st_dev) + "-" + std::to_string(s.sb.st_ino) + ".img";
    r->set_deleted(true);
    r->set_ghost_file(name);
    if (ctx.sink()->Has(name)) return OkStatus();
    const std::string fd_path = "/proc/" + std::to_string(s.pid) + "/fd/" + std::to_string(s.fd);
    return SaveGhost(fd_path, ctx.sink(), name, static_cast<uint64_t>(s.sb.st_size), ctx.ghost_limit());
  }

  Result<UniqueFd> Open(const img::Fd& f, RestoreContext& ctx) const override {
    // Only a file made here is in |recreated| (and unlinked again at the
    // end): a file already at that path is neither used nor removed.
    if (f.reg().deleted() && ctx.recreated == nullptr) {
      return Errorf("fd %d: %s is deleted and this restore cannot recreate it", f.fd(), f.path().c_str());
    }
    if (f.reg().deleted() && !ctx.recreated->count(f.path())) {
      RETURN_IF_ERROR(RecreateGhost(ctx.dir + "/" + f.reg().ghost_file(), f.path(), f.mode()));
      ctx.recreated->insert(f.path());
    }
    return OpenByPath(f, f.path(), 0, true, !f.reg().deleted());
  }

  std::string Describe(const img::Fd& f) const override {
    return f.path() + (f.reg().deleted() ? " (deleted, in " + f.reg().ghost_file() + ")" : "") + ", offset " +
           std::to_string(f.pos());
  }
};

}  // namespace

const FdKind& RegularFileKind() {
  static const RegularFile kind;
  return kind;
}

}  // namespace cf::kinds
