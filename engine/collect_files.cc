// Descriptors: regular files, directories and character devices are dumped
// here; pipes, FIFOs, unix socket pairs, eventfds, timerfds, signalfds,
// inotify and epoll instances come from the tree-wide pass
// (engine/shared_files.h); every other kind is refused with a message
// naming the fd and its kind until its own dumper exists. A deleted-but-open
// regular file has its contents saved in a ghost image (ghost-DEV-INO.img)
// so restore can recreate it. A memfd is saved as a shmem object.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <set>
#include <vector>

#include "common/fd.h"
#include "common/io.h"
#include "common/log.h"
#include "proc/open_file_index.h"
#include "engine/collect.h"
#include "proc/proc_parse.h"
#include "engine/shared_files.h"
#include "engine/shmem.h"
#include "streams/image_file.h"
#include "streams/image_sink.h"

namespace cf::engine {
using namespace ::cf::proc;  // /proc parsing, the layer below
namespace {

constexpr size_t kGhostChunk = 1 << 20;
constexpr uint64_t kMaxGhostSize = 1ull << 30;

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// A name for the kind of a descriptor we cannot dump yet, from its link text.
std::string UnsupportedKind(const std::string& link, const struct stat& sb) {
  if (StartsWith(link, "pipe:") || S_ISFIFO(sb.st_mode)) return "pipe";
  if (StartsWith(link, "socket:") || S_ISSOCK(sb.st_mode)) return "socket";
  if (StartsWith(link, "anon_inode:")) {
    std::string k = link.substr(11);
    if (!k.empty() && k.front() == '[') k = k.substr(1, k.size() - 2);
    return k;  // pidfd, io_uring, userfaultfd, fanotify, perf_event...
  }
  return "";
}

bool IsTty(const struct stat& sb) {
  if (!S_ISCHR(sb.st_mode)) return false;
  const unsigned maj = major(sb.st_rdev);
  return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143);
}

Status SaveGhost(const std::string& fd_path, streams::ImageSink* sink, const std::string& name, uint64_t size) {
  if (size > kMaxGhostSize) return Errorf("deleted file is too large to save (%lu bytes)", size);
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

}  // namespace

Status CollectFds(pid_t pid, bool shell_job, streams::ImageSink* sink, const SharedFiles& shared, img::Process* out) {
  const std::string proc = "/proc/" + std::to_string(pid);
  ASSIGN_OR_RETURN(std::vector<int> fds, ListFds(pid));
  OpenFileIndex own_files;  // dups within this process: value = first fd
  for (int fd : fds) {
    const std::string fd_path = proc + "/fd/" + std::to_string(fd);
    auto link = ReadLink(fd_path);
    if (!link.ok()) {
      if (link.status().err() == ENOENT) continue;  // closed meanwhile (only with -R)
      return link.status();
    }
    if (const img::Fd* s = shared.Find(pid, fd)) {
      *out->add_fds() = *s;
      continue;
    }
    struct stat sb;
    if (stat(fd_path.c_str(), &sb) != 0) return ErrnoStatus("stat " + fd_path);
    const std::string kind = UnsupportedKind(*link, sb);
    if (!kind.empty()) {
      return Errorf("process %d fd %d is a %s (%s): not supported yet", pid, fd, kind.c_str(), link->c_str());
    }
    if (IsTty(sb) && !shell_job) {
      return Errorf("process %d fd %d is a terminal (%s): not supported yet (a shell job needs --shell-job)",
                    pid, fd, link->c_str());
    }
    ASSIGN_OR_RETURN(FdInfo info, ReadFdInfo(pid, fd));
    img::Fd* f = out->add_fds();
    f->set_fd(fd);
    f->set_flags(info.flags & ~static_cast<uint32_t>(O_CLOEXEC));
    f->set_cloexec(info.flags & O_CLOEXEC);
    f->set_pos(info.pos);
    f->set_mnt_id(info.mnt_id);
    f->set_dev(sb.st_dev);
    f->set_inode(sb.st_ino);
    f->set_mode(sb.st_mode);
    f->set_rdev(sb.st_rdev);
    f->set_size(static_cast<uint64_t>(sb.st_size));
    std::string path = *link;
    const std::string kDeleted = " (deleted)";
    // A memfd is saved with the shared memory objects (engine/shmem.h): the
    // dumper fills in its shmem_id.
    std::string memfd_name;
    const bool memfd = S_ISREG(sb.st_mode) && ParseMemfdPath(*link, &memfd_name);
    const bool deleted = S_ISREG(sb.st_mode) && sb.st_nlink == 0 && !memfd;
    if (deleted && path.size() > kDeleted.size() &&
        path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
      path.resize(path.size() - kDeleted.size());
    }
    f->set_path(path);
    ASSIGN_OR_RETURN(std::optional<uint32_t> first,
                     own_files.FindOrAdd(pid, fd, f->dev(), f->inode(), static_cast<uint32_t>(fd)));
    if (first) {
      f->set_is_dup(true);
      f->set_dup_of(static_cast<int32_t>(*first));
    }
    if (memfd) {
      f->set_type(img::Fd::MEMFD);
    } else if (S_ISREG(sb.st_mode)) {
      f->set_type(img::Fd::REG);
    } else if (S_ISDIR(sb.st_mode)) {
      f->set_type(img::Fd::DIR);
    } else if (S_ISCHR(sb.st_mode)) {
      f->set_type(img::Fd::CHR);
    } else {
      return Errorf("process %d fd %d (%s): unsupported file type %o", pid, fd, link->c_str(), sb.st_mode & S_IFMT);
    }
    if (deleted) {
      const std::string name = "ghost-" + std::to_string(sb.st_dev) + "-" + std::to_string(sb.st_ino) + ".img";
      f->set_deleted(true);
      f->set_ghost_file(name);
      if (!sink->Has(name)) {
        RETURN_IF_ERROR(SaveGhost(fd_path, sink, name, static_cast<uint64_t>(sb.st_size))
                            .WithContext("process " + std::to_string(pid) + " fd " + std::to_string(fd)));
      }
    }
  }
  shared.AddObjects(pid, out);
  LOG_INFO("files: process %d has %d descriptors", pid, out->fds_size());
  return OkStatus();
}

}  // namespace cf::engine
