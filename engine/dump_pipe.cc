// Pipes and FIFOs: the capacity and the bytes queued, read without
// consuming them. The pipe is reached through a read end of our own (a copy
// of the target's fd taken with pidfd_getfd, or, for a write end, a new read
// end opened through /proc/PID/fd/N); tee() then duplicates the queued
// buffers into a private pipe, which we read. The target is frozen, so
// nothing moves the data meanwhile.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "common/fd.h"
#include "common/io.h"
#include "engine/shared_files.h"

namespace cf::engine {
namespace {

// A bound on what one pipe may hold in an image (the default maximum pipe
// size is 1 MiB; root may set more).
constexpr int kMaxPipeData = 64 << 20;

}  // namespace

Result<UniqueFd> TakeFd(pid_t pid, int fd) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return ErrnoStatus("pidfd_open " + std::to_string(pid));
  const int got = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0));
  if (got < 0) return ErrnoStatus("pidfd_getfd fd " + std::to_string(fd) + " of " + std::to_string(pid));
  return UniqueFd(got);
}

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

}  // namespace cf::engine
