// Restoring a pipe or FIFO: the pipe with its capacity and queued bytes, and
// one descriptor per open file description the tree had on it.
//
// An anonymous pipe comes from pipe(): its two ends serve the first
// read-only and the first write-only description; any further description
// is opened again through /proc/self/fd/N (that makes a new description of
// the same pipe). A FIFO is opened by its path: first O_RDWR (which never
// blocks and makes the pipe exist), then once per description. The bytes
// are written back before anyone reads: the dump saved at most the pipe's
// capacity, so they fit without a reader.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "restore/shared_files.h"

namespace cf::restore {
namespace {

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

}  // namespace

Status CreatePipe(const SharedObject& obj, CreatedFiles* out) {
  const img::Pipe& p = *obj.pipe;
  const img::Fd& any = *obj.files.begin()->second;
  const bool fifo = any.type() == img::Fd::FIFO;
  const std::string what = fifo ? "FIFO " + any.path() : "pipe " + std::to_string(p.inode());
  UniqueFd rd, wr;       // the ends our data goes through
  std::string reopen;    // where further descriptions of this pipe are opened
  if (fifo) {
    wr.reset(open(any.path().c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!wr.valid()) return ErrnoStatus("open " + what);
    struct stat sb;
    if (fstat(wr.get(), &sb) != 0) return ErrnoStatus("stat " + what);
    if (!S_ISFIFO(sb.st_mode)) return Error(any.path() + " is no longer a FIFO");
    reopen = any.path();
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
    if (fcntl(d.get(), F_SETFL, static_cast<int>(f->flags()) & kPipeFlags) != 0) {
      return ErrnoStatus("set the flags of " + what);
    }
    (*out)[id] = std::move(d);
  }
  return OkStatus();
}

}  // namespace cf::restore
