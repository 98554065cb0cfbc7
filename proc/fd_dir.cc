#include "proc/fd_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>

#include "common/interrupt.h"
#include "common/io.h"

namespace cf::proc {
namespace {

std::string Name(int fd) { return std::to_string(fd); }

std::string What(pid_t pid, const char* dir, int fd) {
  return "/proc/" + std::to_string(pid) + "/" + dir + "/" + std::to_string(fd);
}

}  // namespace

Result<FdDir> FdDir::Open(pid_t pid) {
  FdDir d;
  d.pid_ = pid;
  const std::string base = "/proc/" + std::to_string(pid);
  d.fd_dir_.reset(open((base + "/fd").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.fd_dir_.valid()) return ErrnoStatus("open " + base + "/fd");
  d.fdinfo_dir_.reset(open((base + "/fdinfo").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.fdinfo_dir_.valid()) return ErrnoStatus("open " + base + "/fdinfo");
  return d;
}

Result<std::vector<int>> FdDir::List() const {
  const std::string what = "/proc/" + std::to_string(pid_) + "/fdinfo";
  // fdinfo/ lists what fd/ does; listing makes a dentry and an inode for
  // each name (the costly part of the listing), which Info's openat then
  // finds. A directory stream of its own (fdopendir takes the descriptor),
  // read from the start.
  const int copy = openat(fdinfo_dir_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (copy < 0) return ErrnoStatus("open " + what);
  struct Closer {
    void operator()(DIR* d) const { closedir(d); }
  };
  std::unique_ptr<DIR, Closer> dir(fdopendir(copy));
  if (!dir) {
    const Status st = ErrnoStatus("fdopendir " + what);
    close(copy);
    return st;
  }
  std::vector<int> out;
  for (;;) {
    errno = 0;
    const dirent* de = readdir(dir.get());
    if (de == nullptr) {
      if (errno != 0) return ErrnoStatus("readdir " + what);
      break;
    }
    const char* end = de->d_name + strlen(de->d_name);
    int n = 0;
    auto [p, ec] = std::from_chars(de->d_name, end, n);
    if (ec == std::errc() && p == end && p != de->d_name) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<bool> FdDir::ReadLink(int fd, std::string* link) const {
  const std::string name = Name(fd);
  link->resize(256);
  for (;;) {
    const ssize_t n = readlinkat(fd_dir_.get(), name.c_str(), link->data(), link->size());
    if (n < 0) {
      if (errno == ENOENT) return false;
      return ErrnoStatus("readlink " + What(pid_, "fd", fd));
    }
    if (static_cast<size_t>(n) < link->size()) {
      link->resize(static_cast<size_t>(n));
      break;
    }
    link->resize(link->size() * 2);
  }
  return true;
}

Result<bool> FdDir::Look(int fd, std::string* link, struct stat* sb) const {
  ASSIGN_OR_RETURN(bool open, ReadLink(fd, link));
  if (!open) return false;
  const std::string name = Name(fd);
  if (fstatat(fd_dir_.get(), name.c_str(), sb, 0) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoStatus("stat " + What(pid_, "fd", fd));
  }
  return true;
}

Result<FdInfo> FdDir::Info(int fd) const {
  UniqueFd f(openat(fdinfo_dir_.get(), Name(fd).c_str(), O_RDONLY | O_CLOEXEC));
  if (!f.valid()) return ErrnoStatus("open " + What(pid_, "fdinfo", fd));
  // fdinfo is made whole by one show() of a single_open seq file: a read
  // that does not fill the buffer returned all of it, so no read to see
  // the end is needed then.
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = read(f.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        RETURN_IF_ERROR(CheckTerminated());
        continue;
      }
      return ErrnoStatus("read " + What(pid_, "fdinfo", fd));
    }
    text.append(buf, static_cast<size_t>(n));
    if (static_cast<size_t>(n) < sizeof(buf)) break;
  }
  Result<FdInfo> info = ParseFdInfo(text);
  if (!info.ok()) return info.status().WithContext(What(pid_, "fdinfo", fd));
  return info;
}

}  // namespace cf::proc
