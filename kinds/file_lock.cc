#include "kinds/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/text.h"
#include "kinds/lease.h"

namespace cf::kinds {
namespace {

std::string Describe(const img::FileLock& l) {
  static const char* const kTypes[] = {"flock", "POSIX lock", "OFD lock"};
  std::string d = std::string(l.write() ? "write " : "read ") + kTypes[l.type()];
  if (l.type() != img::FileLock::FLOCK) {
    d += " on bytes " + std::to_string(l.start()) + ".." + (l.end() < 0 ? "EOF" : std::to_string(l.end()));
  }
  return d;
}

}  // namespace

Result<img::FileLock> ParseLockLine(std::string_view value) {
  // id: TYPE ADVISORY|MANDATORY READ|WRITE PID MAJ:MIN:INO START END
  const std::vector<std::string_view> w = Words(value);
  if (w.size() != 8 || w[0].empty() || w[0].back() != ':') return Error("malformed lock line '" + std::string(value) + "'");
  img::FileLock l;
  if (w[1] == "FLOCK") {
    l.set_type(img::FileLock::FLOCK);
  } else if (w[1] == "POSIX") {
    l.set_type(img::FileLock::POSIX);
  } else if (w[1] == "OFDLCK") {
    l.set_type(img::FileLock::OFD);
  } else {
    return Error("a " + std::string(w[1]) + " lock: not supported");
  }
  if (w[2] != "ADVISORY") return Error("a " + std::string(w[2]) + " lock: only advisory locks are supported");
  if (w[3] == "WRITE") {
    l.set_write(true);
  } else if (w[3] != "READ") {
    return Error("a lock in state " + std::string(w[3]) + ": not supported");
  }
  long long pid, start, end = -1;
  const bool to_eof = w[7] == "EOF";
  if (!ParseNum(w[4], 10, &pid) || !ParseNum(w[6], 10, &start) || start < 0 ||
      (!to_eof && (!ParseNum(w[7], 10, &end) || end < start))) {
    return Error("malformed lock line '" + std::string(value) + "'");
  }
  l.set_pid(static_cast<int32_t>(pid));
  l.set_start(static_cast<uint64_t>(start));
  l.set_end(end);
  return l;
}

Status ReadLocks(const FdSight& s, const FdInfo& info, DumpContext& ctx, img::Fd* f) {
  f->clear_locks();
  f->clear_lease();
  for (const auto& [key, value] : info.extra) {
    if (key != "lock") continue;
    if (!ctx.file_locks()) {
      return Error(s.Name() + " holds a file lock (" + value + "): pass --file-locks to dump it");
    }
    if (IsLeaseLine(value)) {
      Result<img::Lease> lease = ParseLeaseLine(value);
      if (!lease.ok()) return Error(s.Name() + " holds " + lease.status().message());
      *f->mutable_lease() = *lease;
      continue;
    }
    Result<img::FileLock> l = ParseLockLine(value);
    if (!l.ok()) return Error(s.Name() + " holds " + l.status().message());
    // A POSIX lock shows on every descriptor of the file in every process
    // sharing the descriptor table; it belongs to one process.
    if (l->type() == img::FileLock::POSIX && l->pid() != s.pid) continue;
    *f->add_locks() = std::move(*l);
  }
  return OkStatus();
}

Status ApplyLocks(const img::Fd& f) {
  RETURN_IF_ERROR(ApplyLease(f));
  for (const img::FileLock& l : f.locks()) {
    int r;
    if (l.type() == img::FileLock::FLOCK) {
      r = flock(f.fd(), (l.write() ? LOCK_EX : LOCK_SH) | LOCK_NB);
    } else {
      struct flock fl = {};
      fl.l_type = l.write() ? F_WRLCK : F_RDLCK;
      fl.l_whence = SEEK_SET;
      fl.l_start = static_cast<off_t>(l.start());
      fl.l_len = l.end() < 0 ? 0 : static_cast<off_t>(l.end() - static_cast<int64_t>(l.start()) + 1);
      if (l.type() == img::FileLock::POSIX && l.pid() != getpid()) continue;
      r = fcntl(f.fd(), l.type() == img::FileLock::OFD ? F_OFD_SETLK : F_SETLK, &fl);
    }
    if (r != 0) {
      return ErrnoStatus("take the " + Describe(l) + " on fd " + std::to_string(f.fd()) + " (" + f.path() + ") again");
    }
  }
  return OkStatus();
}

}  // namespace cf::kinds
