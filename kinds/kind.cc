// Helpers the kinds share, and the FdKind defaults (see kind.h).
#include "kinds/kind.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"

namespace cf::kinds {

std::string FdSight::Name() const {
  return "process " + std::to_string(pid) + " fd " + std::to_string(fd) + " (" + link + ")";
}

ProbeResult ProbeFailed(const std::string& what, int err) { return {false, what + ": " + strerror(err)}; }

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

Result<UniqueFd> TakeFdThrough(int pidfd, int fd) {
  const int got = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
  if (got < 0) return ErrnoStatus("pidfd_getfd fd " + std::to_string(fd));
  return UniqueFd(got);
}

Result<UniqueFd> TakeFd(pid_t pid, int fd) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return ErrnoStatus("pidfd_open " + std::to_string(pid));
  Result<UniqueFd> got = TakeFdThrough(pidfd.get(), fd);
  if (!got.ok()) return got.status().WithContext("process " + std::to_string(pid));
  return got;
}

void SetFdInfo(const FdInfo& info, img::Fd* f) {
  f->set_flags(info.flags & ~static_cast<uint32_t>(O_CLOEXEC));
  f->set_cloexec(info.flags & O_CLOEXEC);
  f->set_pos(info.pos);
  f->set_mnt_id(info.mnt_id);
}

Status SetStatusFlags(int fd, uint32_t flags, int keep, const char* what) {
  if (fcntl(fd, F_SETFL, static_cast<int>(flags) & keep) != 0) {
    return ErrnoStatus(std::string("set the flags of the ") + what);
  }
  return OkStatus();
}

Result<UniqueFd> OpenByPath(const img::Fd& f, const std::string& path, int extra, bool seek, bool check_identity) {
  // O_TMPFILE made a file that is now opened by name.
  const int flags = static_cast<int>(f.flags()) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_TMPFILE);
  UniqueFd fd(open(path.c_str(), flags | extra | (f.cloexec() ? O_CLOEXEC : 0)));
  if (!fd.valid()) return ErrnoStatus("reopen fd " + std::to_string(f.fd()) + " (" + f.path() + ")");
  struct stat sb;
  if (check_identity && fstat(fd.get(), &sb) == 0 && (sb.st_ino != f.inode() || sb.st_dev != f.dev())) {
    LOG_WARN("restore: fd %d: %s is another file than at dump time", f.fd(), f.path().c_str());
  }
  // A file opened anew is at offset 0: no seek needed there.
  if (seek && f.pos() != 0 && lseek(fd.get(), static_cast<off_t>(f.pos()), SEEK_SET) < 0) {
    return ErrnoStatus("seek fd " + std::to_string(f.fd()) + " (" + f.path() + ")");
  }
  return fd;
}

Result<UniqueFd> FdKind::Open(const img::Fd& f, RestoreContext&) const {
  return Errorf("fd %d: a %s is not opened by path", f.fd(), name());
}

Status FdKind::Create(const SharedObject& obj, RestoreContext& ctx, CreatedFiles* out) const {
  if (scope() != Scope::kPrivate) return Errorf("a %s cannot be created", name());
  const auto& [id, f] = *obj.files.begin();
  ASSIGN_OR_RETURN((*out)[id], Open(*f, ctx));
  return OkStatus();
}

}  // namespace cf::kinds
