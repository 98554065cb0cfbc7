// Pipes and FIFOs: the capacity and the bytes queued, read without
// consuming them. The pipe is reached through a read end of our own (a copy
// of the target's fd taken with pidfd_getfd, or, for a write end, a new read
// end opened through /proc/PID/fd/N); tee() then duplicates the queued
// buffers into a private pipe, which we read. The target is frozen, so
// nothing moves the data meanwhile.
// The pipe is saved once (a FileObject), in the core of the first process
// that holds one of its ends; each end is a PipeEnd.
//
// Restore: the pipe with its capacity and queued bytes, and
// one descriptor per open file description the tree had on it.
//
// An anonymous pipe comes from pipe(): its two ends serve the first
// read-only and the first write-only description; any further description
// is opened again through /proc/self/fd/N (that makes a new description of
// the same pipe). A FIFO is opened by its path: first O_RDWR (which never
// blocks and makes the pipe exist), then once per description. The bytes
// are written back before anyone reads: the dump saved at most the pipe's
// capacity, so they fit without a reader. A FIFO whose name was removed is
// made again (kinds/ghost_node.h), opened so, and its name removed once the
// creating process's fds are in place.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>

#include "common/fd.h"
#include "common/io.h"
#include "common/log.h"
#include "kinds/ghost_node.h"
#include "kinds/kind.h"

namespace cf::kinds {
namespace {

// A bound on what one pipe may hold in an image (the default maximum pipe
// size is 1 MiB; root may set more).
constexpr int kMaxPipeData = 64 << 20;

// File status flags a pipe description keeps (F_SETFL).
constexpr int kPipeFlags = O_NONBLOCK | O_DIRECT;

Status WriteQueued(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      return Errorf("the pipe's %zu queued bytes do not fit in it (%zu written)", data.size(), off);
    }
    if (n <= 0) return ErrnoStatus("write the pipe's queued bytes");
    off += static_cast<size_t>(n);
  }
  return OkStatus();
}

// The capacity and queued bytes of the pipe behind fd |fd| of |pid| (|flags|
// from its fdinfo), read without consuming them.
Status ReadPipe(pid_t pid, int fd, uint32_t flags, img::Pipe* out) {
  UniqueFd src;
  if ((flags & O_ACCMODE) == O_WRONLY) {
    const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    src.reset(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!src.valid()) return ErrnoStatus("open a read end of the pipe through " + path);
  } else {
    ASSIGN_OR_RETURN(src, TakeFd(pid, fd));
  }
  const int size = fcntl(src.get(), F_GETPIPE_SZ);
  if (size < 0) return ErrnoStatus("F_GETPIPE_SZ");
  out->set_size(static_cast<uint32_t>(size));
  int queued = 0;
  if (ioctl(src.get(), FIONREAD, &queued) != 0) return ErrnoStatus("FIONREAD");
  if (queued == 0) return OkStatus();
  if (queued > kMaxPipeData) {
    return Errorf("%d bytes queued in the pipe: more than an image takes (%d)", queued, kMaxPipeData);
  }

  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus("pipe");
  UniqueFd copy_r(p[0]), copy_w(p[1]);
  // As many slots as the source: tee() then takes every buffer in one call.
  if (fcntl(copy_w.get(), F_SETPIPE_SZ, size) < 0) return ErrnoStatus("F_SETPIPE_SZ " + std::to_string(size));
  const ssize_t n = tee(src.get(), copy_w.get(), static_cast<size_t>(queued), SPLICE_F_NONBLOCK);
  if (n < 0) return ErrnoStatus("tee");
  if (n != queued) return Errorf("tee copied %zd of the %d bytes queued in the pipe", n, queued);
  std::string data(static_cast<size_t>(queued), '\0');
  ASSIGN_OR_RETURN(size_t got, ReadFull(copy_r.get(), data.data(), data.size(), "pipe copy"));
  if (got != data.size()) return Errorf("read %zu of the %d bytes queued in the pipe", got, queued);
  out->set_data(std::move(data));
  return OkStatus();
}

// Reads each pipe once, through its first fd in dump order.
class PipePass final : public TreePass {
 public:
  Status Add(const FdSight&, const FdInfo&, bool, img::Fd* f) override {
    const uint32_t access = f->flags() & O_ACCMODE;
    ends_[{f->dev(), f->inode()}] |= access == O_RDONLY ? 1 : access == O_WRONLY ? 2 : 3;
    return OkStatus();
  }

  Status Finish(TreeFds& fds) override {
    std::set<std::pair<uint64_t, uint64_t>> done;
    for (pid_t pid : fds.order()) {
      for (img::Fd* f : fds.FdsOf(pid)) {
        if (!f->has_pipe() || !done.insert({f->dev(), f->inode()}).second) continue;
        const std::string name = FdSight{pid, f->fd(), f->path(), {}}.Name();
        img::FileObject obj;
        img::Pipe* p = obj.mutable_pipe();
        p->set_dev(f->dev());
        p->set_inode(f->inode());
        RETURN_IF_ERROR(ReadPipe(pid, f->fd(), f->flags(), p).WithContext(name));
        LOG_DEBUG("files: pipe %lu: %zu bytes queued, size %u", f->inode(), p->data().size(), p->size());
        const int have = ends_[{f->dev(), f->inode()}];
        if (!f->pipe().fifo() && have != 3) {
          LOG_WARN("files: %s: no process of the tree holds the pipe's %s end: restored, that end is closed",
                   name.c_str(), have == 1 ? "write" : "read");
        }
        fds.AddObject(pid, std::move(obj));
      }
    }
    return OkStatus();
  }

 private:
  std::map<std::pair<uint64_t, uint64_t>, int> ends_;  // (dev, inode) -> ends held: 1 read, 2 write
};

class Pipe final : public FdKind {
 public:
  const char* name() const override { return "pipe"; }
  img::Fd::KindCase field() const override { return img::Fd::kPipe; }
  Scope scope() const override { return Scope::kObject; }
  bool Recognise(const FdSight& s) const override { return StartsWith(s.link, "pipe:") || S_ISFIFO(s.sb.st_mode); }

  Status Read(const FdSight& s, const FdInfo&, DumpContext&, img::Fd* f) const override {
    const bool fifo = !StartsWith(s.link, "pipe:");
    if (fifo && s.sb.st_nlink == 0) {
      f->set_path(StripDeleted(s.link));
      *f->mutable_ghost() = GhostOf(s.sb, "");
    }
    f->mutable_pipe()->set_fifo(fifo);
    return OkStatus();
  }
  std::unique_ptr<TreePass> NewPass() const override { return std::make_unique<PipePass>(); }

  int object_case() const override { return img::FileObject::kPipe; }
  std::vector<ObjectKey> ObjectKeys(const img::FileObject& o) const override {
    return {{object_case(), o.pipe().dev(), o.pipe().inode()}};
  }
  ObjectKey KeyOf(const img::Fd& f) const override { return {object_case(), f.dev(), f.inode()}; }

  Status Create(const SharedObject& obj, RestoreContext& ctx, CreatedFiles* out) const override {
    const img::Pipe& p = obj.object->pipe();
    const img::Fd& any = *obj.files.begin()->second;
    const bool fifo = any.pipe().fifo();
    const std::string what = fifo ? "FIFO " + any.path() : "pipe " + std::to_string(p.inode());
    UniqueFd rd, wr;       // the ends our data goes through
    std::string reopen;    // where further descriptions of this pipe are opened
    if (fifo) {
      reopen = any.path();
      if (any.has_ghost()) {
        if (ctx.recreated == nullptr) return Error(what + " is deleted and this restore cannot make it again");
        const std::string key = "fifo-" + std::to_string(p.dev()) + "-" + std::to_string(p.inode());
        ASSIGN_OR_RETURN(reopen, MakeGhostNode(key, any.path(), any.ghost(), ctx.recreated));
      }
      wr.reset(open(reopen.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
      if (!wr.valid()) return ErrnoStatus("open " + what);
      struct stat sb;
      if (fstat(wr.get(), &sb) != 0) return ErrnoStatus("stat " + what);
      if (!S_ISFIFO(sb.st_mode)) return Error(any.path() + " is no longer a FIFO");
    } else {
      int fds[2];
      if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus("pipe");
      rd.reset(fds[0]);
      wr.reset(fds[1]);
      reopen = "/proc/self/fd/" + std::to_string(rd.get());  // stays open: in rd or in *out
    }
    if (p.size() != 0 && fcntl(wr.get(), F_GETPIPE_SZ) != static_cast<int>(p.size()) &&
        fcntl(wr.get(), F_SETPIPE_SZ, static_cast<int>(p.size())) < 0) {
      return ErrnoStatus("set the size of " + what + " to " + std::to_string(p.size()));
    }
    RETURN_IF_ERROR(WriteQueued(wr.get(), p.data()).WithContext(what));

    for (const auto& [id, f] : obj.files) {
      const int access = static_cast<int>(f->flags()) & O_ACCMODE;
      UniqueFd d;
      if (!fifo && access == O_RDONLY && rd.valid()) {
        d = std::move(rd);
      } else if (!fifo && access == O_WRONLY && wr.valid()) {
        d = std::move(wr);
      } else {
        d.reset(open(reopen.c_str(), access | O_NONBLOCK | O_CLOEXEC));
        if (!d.valid()) return ErrnoStatus("open another description of " + what);
      }
      RETURN_IF_ERROR(SetStatusFlags(d.get(), f->flags(), kPipeFlags, fifo ? "FIFO" : "pipe"));
      (*out)[id] = std::move(d);
    }
    return OkStatus();
  }

  std::string Describe(const img::Fd& f) const override {
    const uint32_t access = f.flags() & O_ACCMODE;
    return std::string(f.pipe().fifo() ? "FIFO " + f.path() : "pipe:[" + std::to_string(f.inode()) + "]") +
           (f.has_ghost() ? " (deleted)" : "") +
           (access == O_RDONLY ? ", read end" : access == O_WRONLY ? ", write end" : ", read-write");
  }
};

}  // namespace

const FdKind& PipeKind() {
  static const Pipe kind;
  return kind;
}

}  // namespace cf::kinds
