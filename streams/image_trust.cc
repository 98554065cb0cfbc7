#include "streams/image_trust.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "common/log.h"

namespace cf::streams {
namespace {

std::string Mode(mode_t m) {
  char buf[16];
  snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

// |what| may be changed only by root or the effective user. A sticky
// directory may be writable by others when |sticky_ok|.
Status CheckOne(const std::string& path, const struct stat& st, bool sticky_ok) {
  const uid_t me = geteuid();
  if (st.st_uid != 0 && st.st_uid != me) {
    return Errorf("%s is owned by uid %u, not by root%s", path.c_str(), static_cast<unsigned>(st.st_uid),
                  me != 0 ? " or you" : "");
  }
  const bool others_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  if (others_write && !(sticky_ok && S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX))) {
    return Error(path + " is writable by its group or others (mode " + Mode(st.st_mode) + ")");
  }
  return OkStatus();
}

// Whether image files are checked again on their open descriptor
// (SetImageOwnerCheck).
bool g_check_opened = false;

Status CheckTree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return ErrnoStatus("stat " + path);
  if (S_ISLNK(st.st_mode)) return Error(path + " is a symbolic link");
  if (!S_ISDIR(st.st_mode)) return CheckOne(path, st, false);
  // The images directory itself may be writable by others (CRIU's zdtm
  // makes its dump directories 0777): others can then remove or rename
  // files in it but not write them, and each image file is checked again
  // on the descriptor restore reads it through (CheckOpenedImage), so a
  // file swapped in after this check is refused too.
  struct stat owner_only = st;
  owner_only.st_mode &= ~static_cast<mode_t>(S_IWGRP | S_IWOTH);
  RETURN_IF_ERROR(CheckOne(path, owner_only, false));
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
    LOG_INFO("restore: images directory %s is writable by its group or others (mode %s): each image is checked "
             "again as it is opened",
             path.c_str(), Mode(st.st_mode).c_str());
  }
  DIR* d = opendir(path.c_str());
  if (!d) return ErrnoStatus("open " + path);
  Status result;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string file = path + "/" + name;
    struct stat fst;
    if (lstat(file.c_str(), &fst) != 0) {
      result = ErrnoStatus("stat " + file);
      break;
    }
    // Image files are plain files; a link could point anywhere. The one
    // exception is the `parent` link of an incremental image (CRIU's
    // layout): the parent directory is checked on its own when restore
    // follows the link.
    if (S_ISLNK(fst.st_mode) && name == "parent") {
      if (fst.st_uid != 0 && fst.st_uid != geteuid()) {
        result = Errorf("%s is owned by uid %u", file.c_str(), static_cast<unsigned>(fst.st_uid));
        break;
      }
      continue;
    }
    if (S_ISLNK(fst.st_mode)) {
      result = Error(file + " is a symbolic link");
      break;
    }
    result = CheckOne(file, fst, false);
    if (!result.ok()) break;
  }
  closedir(d);
  return result;
}

}  // namespace

void SetImageOwnerCheck(bool on) { g_check_opened = on; }

bool ImageOwnerCheckOn() { return g_check_opened; }

Status CheckOpenedImage(int fd, const std::string& path) {
  if (!g_check_opened) return OkStatus();
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus("stat " + path);
  if (!S_ISREG(st.st_mode)) return Error("untrusted images: " + path + " is not a regular file");
  Status s = CheckOne(path, st, false);
  if (s.ok()) return s;
  return Error("untrusted images: " + s.message() + " (pass --allow-untrusted-images to restore anyway)");
}

Status CheckImagesTrusted(const std::string& path) {
  char real[PATH_MAX];
  if (!realpath(path.c_str(), real)) return ErrnoStatus("images " + path);
  const std::string full = real;
  Status s = CheckTree(full);
  // Every directory above: whoever can write one can swap what lies below.
  for (std::string dir = full; s.ok() && dir != "/";) {
    const size_t slash = dir.rfind('/');
    dir = slash == 0 ? "/" : dir.substr(0, slash);
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) {
      s = ErrnoStatus("stat " + dir);
      break;
    }
    s = CheckOne(dir, st, true);
  }
  if (s.ok()) return s;
  return Error("untrusted images: " + s.message() +
               ": restore runs as root and creates processes from the images, so it takes them only from where "
               "no one else can change them (pass --allow-untrusted-images to restore anyway)");
}

}  // namespace cf::streams
