#include "engine/malloc_choice.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

// jemalloc's control interface; weak, so builds without jemalloc link too.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace cf::engine {
namespace {

bool IsProcessImage(std::string_view name) {
  return name.size() > std::string_view("core-.img").size() && name.starts_with("core-") && name.ends_with(".img");
}

}  // namespace

bool HasProcessImages(const char* dir, int n) {
  const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  alignas(8) char buf[8192];
  int found = 0;
  while (found < n) {
    const long got = syscall(SYS_getdents64, fd, buf, sizeof(buf));
    if (got <= 0) break;
    for (long off = 0; off < got && found < n;) {
      // struct linux_dirent64: inode, offset, record length, type, name.
      uint16_t reclen;
      memcpy(&reclen, buf + off + offsetof(dirent64, d_reclen), sizeof(reclen));
      if (reclen == 0) break;
      if (IsProcessImage(buf + off + offsetof(dirent64, d_name))) ++found;
      off += reclen;
    }
  }
  close(fd);
  return found >= n;
}

const char* ChooseMallocConf(int argc, const char* const* argv) {
  bool restore = false;
  const char* dir = ".";
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "restore") {
      restore = true;
    } else if (a == "--stream" || a.starts_with("--stream-from")) {
      return kMallocConfHuge;
    } else if (a == "-D" || a == "--images-dir") {
      if (i + 1 < argc) dir = argv[++i];
    } else if (a.starts_with("--images-dir=")) {
      dir = argv[i] + std::string_view("--images-dir=").size();
    } else if (a.starts_with("-D")) {
      dir = argv[i] + 2;
    }
  }
  return restore && HasProcessImages(dir, 2) ? kMallocConfSmall : kMallocConfHuge;
}

const char* MallocThpMode() {
  const char* mode = nullptr;
  size_t len = sizeof(mode);
  if (mallctl == nullptr || mallctl("opt.thp", &mode, &len, nullptr, 0) != 0 || mode == nullptr) return "none";
  return mode;
}

}  // namespace cf::engine
