#include "common/interrupt.h"
#include "common/io.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/fd.h"

namespace cf {

Result<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path);
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        RETURN_IF_ERROR(CheckTerminated());
        continue;
      }
      return ErrnoStatus("read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> ReadLink(const std::string& path) {
  std::string out(256, '\0');
  for (;;) {
    ssize_t n = readlink(path.c_str(), out.data(), out.size());
    if (n < 0) return ErrnoStatus("readlink " + path);
    if (static_cast<size_t>(n) < out.size()) {
      out.resize(static_cast<size_t>(n));
      return out;
    }
    out.resize(out.size() * 2);
  }
}

Status WriteAll(int fd, const void* buf, size_t len, const std::string& what) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) {
        RETURN_IF_ERROR(CheckTerminated());
        continue;
      }
      return ErrnoStatus("write " + what);
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return OkStatus();
}

Result<size_t> ReadFull(int fd, void* buf, size_t len, const std::string& what) {
  char* p = static_cast<char*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = read(fd, p + done, len - done);
    if (n < 0) {
      if (errno == EINTR) {
        RETURN_IF_ERROR(CheckTerminated());
        continue;
      }
      return ErrnoStatus("read " + what);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

}  // namespace cf
