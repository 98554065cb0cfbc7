#include "restore/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "common/fault.h"
#include "common/fd.h"
#include "common/io.h"
#include "common/log.h"
#include "streams/image_file.h"

namespace cf::restore {
namespace {

// Writes the contents saved in ghost image |image| to a new file at |path|.
Status RecreateGhost(const std::string& image, const std::string& path, uint32_t mode) {
  ASSIGN_OR_RETURN(streams::ImageReader r, streams::ImageReader::Open(image, streams::FileKind::kGhost));
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777));
  if (!fd.valid()) return ErrnoStatus("recreate deleted file " + path);
  // The process's umask is already restored: set the bits it had exactly.
  if (fchmod(fd.get(), mode & 07777) != 0) return ErrnoStatus("chmod " + path);
  streams::Record rec;
  std::vector<uint8_t> data;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, r.Next(&rec));
    if (!more) break;
    RETURN_IF_ERROR(streams::DecodeChunk(rec, &data, image));
    RETURN_IF_ERROR(WriteAll(fd.get(), data.data(), data.size(), path));
  }
  return OkStatus();
}

// Opens one descriptor as it was; returns the new fd (any number).
Result<int> OpenFd(const img::Fd& f) {
  int flags = static_cast<int>(f.flags()) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
  if (f.type() == img::Fd::DIR) flags |= O_DIRECTORY;
  int fd = open(f.path().c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("reopen fd " + std::to_string(f.fd()) + " (" + f.path() + ")");
  if (f.type() == img::Fd::REG) {
    struct stat sb;
    if (fstat(fd, &sb) == 0 && !f.deleted() && (sb.st_ino != f.inode() || sb.st_dev != f.dev())) {
      LOG_WARN("restore: fd %d: %s is another file than at dump time", f.fd(), f.path().c_str());
    }
    if (lseek(fd, static_cast<off_t>(f.pos()), SEEK_SET) < 0) {
      Status s = ErrnoStatus("seek fd " + std::to_string(f.fd()) + " (" + f.path() + ")");
      close(fd);
      return s;
    }
  }
  return fd;
}


// A memfd descriptor: a new open file description of the recreated object,
// with the saved flags and offset.
Result<int> ReopenMemfd(const img::Fd& f, const ShmemFds& shmem) {
  auto it = shmem.find(f.shmem_id());
  if (it == shmem.end()) return Errorf("fd %d: shared memory object %u missing", f.fd(), f.shmem_id());
  const std::string path = "/proc/self/fd/" + std::to_string(it->second);
  const int flags = static_cast<int>(f.flags()) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
  int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("reopen memfd fd " + std::to_string(f.fd()));
  if (lseek(fd, static_cast<off_t>(f.pos()), SEEK_SET) < 0) {
    Status s = ErrnoStatus("seek memfd fd " + std::to_string(f.fd()));
    close(fd);
    return s;
  }
  return fd;
}

// Closes every descriptor but those in |keep|.
void CloseAllBut(const std::vector<int>& keep) {
  std::vector<int> open_fds;
  if (DIR* d = opendir("/proc/self/fd")) {
    const int self = dirfd(d);
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      const int fd = atoi(e->d_name);
      if (fd != self) open_fds.push_back(fd);
    }
    closedir(d);
  }
  for (int fd : open_fds) {
    if (std::find(keep.begin(), keep.end(), fd) == keep.end()) close(fd);
  }
}

}  // namespace

Status CreateSharedFile(const SharedObject& obj, const std::map<uint32_t, int>* shmem, CreatedFiles* out) {
  const auto& [id, f] = *obj.files.begin();
  int fd = -1;
  if (f->type() == img::Fd::MEMFD) {
    if (shmem == nullptr) return Errorf("fd %d: memfd without its shared memory objects", f->fd());
    ASSIGN_OR_RETURN(fd, ReopenMemfd(*f, *shmem));
  } else {
    ASSIGN_OR_RETURN(fd, OpenFd(*f));
  }
  (*out)[id] = UniqueFd(fd);
  return OkStatus();
}

Status RestoreFds(const img::Process& core, const std::string& dir, const InheritedFiles& inherited,
                  const ShmemFds& shmem, std::vector<int*> keep) {
  FAULT_POINT("restore-files");
  // From here on descriptor numbers belong to the restored process: a log
  // line would land in one of its files.
  DetachLogging();
  int max_fd = 2;
  for (const img::Fd& f : core.fds()) max_fd = std::max(max_fd, f.fd());
  // Move our own descriptors out of the way.
  for (int* k : keep) {
    const int moved = fcntl(*k, F_DUPFD_CLOEXEC, max_fd + 1);
    if (moved < 0) return ErrnoStatus("move internal descriptor");
    close(*k);
    *k = moved;
  }
  std::vector<int> open_fds;
  for (int* k : keep) open_fds.push_back(*k);
  for (const auto& [id, fd] : inherited) open_fds.push_back(fd);
  for (const auto& [id, fd] : shmem) open_fds.push_back(fd);
  CloseAllBut(open_fds);

  std::map<std::string, std::string> ghosts;  // ghost image -> recreated path
  for (const img::Fd& f : core.fds()) {
    if (!f.deleted() || ghosts.count(f.ghost_file())) continue;
    RETURN_IF_ERROR(RecreateGhost(dir + "/" + f.ghost_file(), f.path(), f.mode()));
    ghosts[f.ghost_file()] = f.path();
  }
  Status status;
  for (const img::Fd& f : core.fds()) {
    int fd = -1;
    if (f.file_id() != 0) {
      // A shared object's description: put it at its number, keep the
      // temporary descriptor for other fds of the same description.
      auto it = inherited.find(f.file_id());
      if (it == inherited.end()) {
        status = Errorf("fd %d: its open file %u was not created", f.fd(), f.file_id());
      } else if (dup2(it->second, f.fd()) < 0) {
        status = ErrnoStatus("place fd " + std::to_string(f.fd()));
      }
      if (!status.ok()) break;
      fd = f.fd();
    } else if (f.is_dup()) {
      fd = fcntl(f.dup_of(), F_DUPFD_CLOEXEC, 0);
      if (fd < 0) status = ErrnoStatus("dup fd " + std::to_string(f.dup_of()));
    } else if (f.type() == img::Fd::MEMFD) {
      auto r = ReopenMemfd(f, shmem);
      if (r.ok()) fd = *r;
      else status = r.status();
    } else {
      auto r = OpenFd(f);
      if (r.ok()) fd = *r;
      else status = r.status();
    }
    if (!status.ok()) break;
    if (fd != f.fd()) {
      if (dup2(fd, f.fd()) < 0) {
        status = ErrnoStatus("place fd " + std::to_string(f.fd()));
        break;
      }
      close(fd);
    }
    if (fcntl(f.fd(), F_SETFD, f.cloexec() ? FD_CLOEXEC : 0) != 0) {
      status = ErrnoStatus("set fd flags of " + std::to_string(f.fd()));
      break;
    }
  }
  for (const auto& [id, fd] : inherited) close(fd);
  for (const auto& [id, fd] : shmem) close(fd);
  // Epoll targets are other fds of ours: all of them are in place now.
  for (const img::Fd& f : core.fds()) {
    if (!status.ok()) break;
    if (f.type() == img::Fd::EPOLL && f.epoll_targets_size() > 0) status = AddEpollTargets(f);
  }
  // Deleted files go away again once every descriptor holds them.
  for (const auto& [image, path] : ghosts) unlink(path.c_str());
  return status;
}

}  // namespace cf::restore
