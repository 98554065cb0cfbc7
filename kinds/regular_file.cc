// Regular files: opened again by path, with the saved flags and offset.
//
// A file opened by a name that was since removed while another hard link
// remains (nlink > 0) is reachable only by a name it still has, which /proc
// does not tell: with --link-remap (CRIU's option) the dump gives it one, a
// hard link beside the old name (.criu-fast.link_remap.DEV-INO), which
// restore opens it by and then removes; the process holds the same file
// again. Without the option such a file is refused. A dump that fails or
// leaves the tree running keeps the link (as CRIU's does).
//
// A namespace file (/proc/PID/ns/net opened: its link reads "net:[INODE]")
// is opened again as /proc/self/ns/net of the restored process, which must
// be in that same namespace (restore makes no namespaces: a host-flavour
// restore of a process that opened its own namespace).
//
// An unlinked file that a process still holds has its data saved in a ghost
// image (ghost-DEV-INO.img, written once per file however many fds hold it):
// only the extents SEEK_DATA/SEEK_HOLE find, so a sparse file keeps its holes
// and --ghost-limit counts the bytes stored, not the file size. Restore
// recreates the file at its old path, or under a name of its own when that
// is taken by a new file (next to it) or its directory is gone (in the
// nearest directory that still exists), with its mode, owner and times,
// opens every fd of the process on it, and unlinks it once the process's
// fds are all in place (RestoreContext::recreated).
// A file that several processes share one open file description of (one
// offset) is opened once, by their lowest common ancestor; a deleted one is
// not shared so (each process recreates it for itself).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/io.h"
#include "kinds/ghost_file.h"
#include "kinds/ghost_node.h"
#include "kinds/kind.h"
#include "streams/image_file.h"
#include "streams/image_sink.h"

namespace cf::kinds {
namespace {

constexpr size_t kGhostChunk = 1 << 20;
constexpr char kDeleted[] = " (deleted)";

struct Extent {
  uint64_t off, len;
};

// The data extents of |fd| below |size|. A file system without SEEK_DATA
// gives one extent, the whole file.
Result<std::vector<Extent>> DataExtents(int fd, uint64_t size, const std::string& what) {
  std::vector<Extent> out;
  for (uint64_t off = 0; off < size;) {
    const off_t data = lseek(fd, static_cast<off_t>(off), SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    if (data < 0 && errno == EINVAL && off == 0) return std::vector<Extent>{{0, size}};
    if (data < 0) return ErrnoStatus("SEEK_DATA in " + what);
    const off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return ErrnoStatus("SEEK_HOLE in " + what);
    const uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), size);
    if (end <= static_cast<uint64_t>(data)) break;
    out.push_back({static_cast<uint64_t>(data), end - static_cast<uint64_t>(data)});
    off = end;
  }
  return out;
}

Status SaveGhost(int in, const std::string& fd_path, streams::ImageSink* sink, const std::string& name,
                 const std::vector<Extent>& extents) {
  ASSIGN_OR_RETURN(streams::ImageWriter w, sink->Create(name, streams::FileKind::kGhost));
  std::vector<uint8_t> buf(kGhostChunk);
  for (const Extent& e : extents) {
    for (uint64_t done = 0; done < e.len;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), e.len - done));
      ssize_t n = pread(in, buf.data(), want, static_cast<off_t>(e.off + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus("read " + fd_path);
      if (n == 0) return Error(fd_path + " shrank while it was read", EIO);
      RETURN_IF_ERROR(w.WriteChunk(streams::Codec::kNone, static_cast<uint64_t>(n),
                                   {buf.data(), static_cast<size_t>(n)}));
      done += static_cast<uint64_t>(n);
    }
  }
  return w.Finish();
}

// Writes |data|, the next bytes of the ghost image, into the extents of |r|
// (extent *ext, *done bytes of it already written).
Status PlaceData(int fd, const img::RegularFile& r, size_t* ext, uint64_t* done, std::span<const uint8_t> data,
                 const std::string& path) {
  while (!data.empty()) {
    if (*ext * 2 + 1 >= static_cast<size_t>(r.extents_size())) return Error(path + ": more ghost data than extents", EBADMSG);
    const uint64_t off = r.extents(static_cast<int>(*ext * 2)), len = r.extents(static_cast<int>(*ext * 2 + 1));
    const size_t n = static_cast<size_t>(std::min<uint64_t>(len - *done, data.size()));
    for (size_t w = 0; w < n;) {
      ssize_t k = pwrite(fd, data.data() + w, n - w, static_cast<off_t>(off + *done + w));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) return ErrnoStatus("write " + path);
      w += static_cast<size_t>(k);
    }
    data = data.subspan(n);
    *done += n;
    if (*done == len) ++*ext, *done = 0;
  }
  return OkStatus();
}

// Writes the contents saved in the ghost image of |f| through |fd|, then its
// size, owner, mode and times (in that order: chown clears set-id bits,
// writing moves mtime).
Status FillGhost(int fd, const std::string& image, const std::string& path, const img::Fd& f) {
  const img::RegularFile& r = f.reg();
  ASSIGN_OR_RETURN(streams::ImageReader rd, streams::ImageReader::Open(image, streams::FileKind::kGhost));
  streams::Record rec;
  std::vector<uint8_t> data;
  size_t ext = 0;
  uint64_t done = 0;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, rd.Next(&rec));
    if (!more) break;
    RETURN_IF_ERROR(streams::DecodeChunk(rec, &data, image));
    if (r.has_extents()) {
      RETURN_IF_ERROR(PlaceData(fd, r, &ext, &done, data, path));
    } else {
      RETURN_IF_ERROR(WriteAll(fd, data.data(), data.size(), path));
    }
  }
  if (r.has_extents() && ftruncate(fd, static_cast<off_t>(f.size())) != 0) return ErrnoStatus("truncate " + path);
  if (r.has_extents() && fchown(fd, r.uid(), r.gid()) != 0) return ErrnoStatus("chown " + path);
  // The process's umask is already restored: set the bits it had exactly.
  if (fchmod(fd, f.mode() & 07777) != 0) return ErrnoStatus("chmod " + path);
  if (r.has_extents()) {
    const struct timespec times[2] = {{r.atime_ns() / 1000000000, r.atime_ns() % 1000000000},
                                      {r.mtime_ns() / 1000000000, r.mtime_ns() % 1000000000}};
    if (futimens(fd, times) != 0) return ErrnoStatus("set the times of " + path);
  }
  return OkStatus();
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// A name of this process's own for the deleted file of |f|, for when its
// old name is taken: in the file's directory, or in the nearest one above
// that still exists.
std::string GhostPath(const img::Fd& f) {
  std::string dir = Dirname(f.path());
  struct stat sb;
  while (dir != "/" && (stat(dir.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode))) dir = Dirname(dir);
  std::string name = f.reg().ghost_file();
  if (name.size() > 4 && name.compare(name.size() - 4, 4, ".img") == 0) name.resize(name.size() - 4);
  return (dir == "/" ? "" : dir) + "/.criu-fast." + name + "." + std::to_string(getpid());
}

UniqueFd CreateExcl(const std::string& path, uint32_t mode) {
  return UniqueFd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777));
}

// Recreates the deleted file of |f| from its ghost image, at its old path
// when that is free, else at GhostPath(); returns the path. A failure
// removes what it created.
Result<std::string> RecreateGhost(const std::string& image, const img::Fd& f) {
  std::string path = f.path();
  UniqueFd fd = CreateExcl(path, f.mode());
  if (!fd.valid() && (errno == EEXIST || errno == ENOENT || errno == ENOTDIR)) {
    path = GhostPath(f);
    fd = CreateExcl(path, f.mode());
    // Left by an earlier restore of this same pid that died: the name is ours.
    if (!fd.valid() && errno == EEXIST && unlink(path.c_str()) == 0) fd = CreateExcl(path, f.mode());
  }
  if (!fd.valid()) return ErrnoStatus("recreate deleted file " + f.path() + " as " + path);
  Status s = FillGhost(fd.get(), image, path, f);
  if (!s.ok()) {
    unlink(path.c_str());
    return s;
  }
  return path;
}

// Saves the deleted file |src| (a /proc path that opens it; |link| its
// /proc link, |sb| its stat) in its ghost image, once per file, and
// describes it in |f|.
Status ReadGhost(const std::string& src, const std::string& link, const struct stat& sb, DumpContext& ctx,
                 img::Fd* f) {
  img::RegularFile* r = f->mutable_reg();
  std::string path = link;
  const size_t dl = sizeof(kDeleted) - 1;
  if (path.size() > dl && path.compare(path.size() - dl, dl, kDeleted) == 0) path.resize(path.size() - dl);
  f->set_path(path);
  const std::string name = "ghost-" + std::to_string(sb.st_dev) + "-" + std::to_string(sb.st_ino) + ".img";
  r->set_deleted(true);
  r->set_ghost_file(name);
  r->set_uid(sb.st_uid);
  r->set_gid(sb.st_gid);
  r->set_atime_ns(static_cast<int64_t>(sb.st_atim.tv_sec) * 1000000000 + sb.st_atim.tv_nsec);
  r->set_mtime_ns(static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000000 + sb.st_mtim.tv_nsec);
  // Every fd of the file records its extents: each may be the one restore
  // recreates the file from.
  UniqueFd in(open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return ErrnoStatus("open " + src);
  const uint64_t size = static_cast<uint64_t>(sb.st_size);
  ASSIGN_OR_RETURN(std::vector<Extent> extents, DataExtents(in.get(), size, src));
  uint64_t stored = 0;
  r->set_has_extents(true);
  for (const Extent& e : extents) {
    r->add_extents(e.off);
    r->add_extents(e.len);
    stored += e.len;
  }
  if (stored > ctx.ghost_limit()) {
    return Errorf("a deleted file with %lu bytes of data (size %lu), more than --ghost-limit (%lu bytes) lets an "
                  "image take", stored, size, ctx.ghost_limit());
  }
  if (ctx.sink()->Has(name)) return OkStatus();
  return SaveGhost(in.get(), src, ctx.sink(), name, extents);
}

// Recreates the file of |f| (deleted) once per ghost image; returns its path.
Result<std::string> Recreated(const img::Fd& f, RestoreContext& ctx) {
  // Only a file made here is in |recreated| (and unlinked again at the
  // end): a file already at the old path is neither used nor removed.
  if (ctx.recreated == nullptr) {
    return Errorf("%s is deleted and this restore cannot recreate it", f.path().c_str());
  }
  // By ghost image: two deleted files may have had one name.
  auto [it, first] = ctx.recreated->try_emplace(f.reg().ghost_file());
  if (first) {
    Result<std::string> made = RecreateGhost(ctx.dir + "/" + f.reg().ghost_file(), f);
    if (!made.ok()) {
      ctx.recreated->erase(it);
      return made.status();
    }
    it->second = std::move(*made);
  }
  return it->second;
}

// "net:[4026531840]": the link of a namespace file. Returns its type.
std::string NamespaceType(const std::string& link) {
  const size_t colon = link.find(":[");
  if (colon == std::string::npos || colon == 0 || link.back() != ']' || link[0] == '/') return "";
  for (size_t i = 0; i < colon; ++i) {
    if (!islower(static_cast<unsigned char>(link[i])) && link[i] != '_') return "";
  }
  return link.substr(0, colon);
}

Result<UniqueFd> OpenNamespace(const img::Fd& f, const std::string& type) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenByPath(f, "/proc/self/ns/" + type, 0, false, false));
  struct stat sb;
  if (fstat(fd.get(), &sb) != 0) return ErrnoStatus("stat /proc/self/ns/" + type);
  if (sb.st_ino != f.inode()) {
    return Errorf("fd %d: the namespace file %s is of a namespace the restored process is not in (it is in %s:[%lu])"
                  ": not supported", f.fd(), f.path().c_str(), type.c_str(), static_cast<uint64_t>(sb.st_ino));
  }
  return fd;
}

// The link --link-remap makes for the file of |s| (see the top), in |f|.
Status LinkRemap(const FdSight& s, DumpContext& ctx, img::Fd* f) {
  const std::string path = StripDeleted(s.link);
  if (!ctx.link_remap()) {
    return Error("a file opened by a name since removed, with another hard link left: dump with --link-remap");
  }
  const std::string remap =
      Dirname(path) + "/.criu-fast.link_remap." + std::to_string(s.sb.st_dev) + "-" + std::to_string(s.sb.st_ino);
  const std::string fd_path = "/proc/" + std::to_string(s.pid) + "/fd/" + std::to_string(s.fd);
  if (linkat(AT_FDCWD, fd_path.c_str(), AT_FDCWD, remap.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    const int err = errno;
    struct stat sb;
    // Made already for another fd of the file.
    const bool ours = err == EEXIST && stat(remap.c_str(), &sb) == 0 && sb.st_ino == s.sb.st_ino &&
                      sb.st_dev == s.sb.st_dev;
    if (!ours) return Error("--link-remap: link " + remap + " to it", err);
  } else {
    ctx.NoteLinkRemap(remap);
  }
  f->set_path(path);
  f->mutable_reg()->set_link_remap(remap);
  return OkStatus();
}

// Whether the name of |s| was removed ("PATH (deleted)" and no such file
// at PATH (deleted) either).
bool NameRemoved(const FdSight& s) {
  if (StripDeleted(s.link) == s.link) return false;
  struct stat sb;
  return stat(s.link.c_str(), &sb) != 0 || sb.st_ino != s.sb.st_ino || sb.st_dev != s.sb.st_dev;
}

class RegularFile final : public FdKind {
 public:
  const char* name() const override { return "regular file"; }
  img::Fd::KindCase field() const override { return img::Fd::kReg; }
  Scope scope() const override { return Scope::kPrivate; }
  bool Recognise(const FdSight& s) const override {
    return S_ISREG(s.sb.st_mode) && !StartsWith(s.link, "anon_inode:");
  }
  bool Shareable(const FdSight& s) const override { return s.sb.st_nlink > 0; }

  Status Read(const FdSight& s, const FdInfo&, DumpContext& ctx, img::Fd* f) const override {
    f->mutable_reg();
    if (s.sb.st_nlink > 0) return NameRemoved(s) ? LinkRemap(s, ctx, f) : OkStatus();
    const std::string fd_path = "/proc/" + std::to_string(s.pid) + "/fd/" + std::to_string(s.fd);
    return ReadGhost(fd_path, s.link, s.sb, ctx, f);
  }

  Result<UniqueFd> Open(const img::Fd& f, RestoreContext& ctx) const override {
    // An O_PATH descriptor has no offset (lseek fails on it).
    const bool seek = !(f.flags() & O_PATH);
    if (const std::string ns = NamespaceType(f.path()); !ns.empty() && !f.reg().deleted()) return OpenNamespace(f, ns);
    if (!f.reg().link_remap().empty()) {
      ASSIGN_OR_RETURN(UniqueFd fd, OpenByPath(f, f.reg().link_remap(), 0, seek, true));
      // Removed with the recreated files, once the fds are in place.
      if (ctx.recreated) (*ctx.recreated)["link_remap:" + f.reg().link_remap()] = f.reg().link_remap();
      return fd;
    }
    if (!f.reg().deleted()) {
      // A file opened many times is compared with its dumped self once.
      const bool check = ctx.identity_checked
                             .insert(f.path() + '\n' + std::to_string(f.dev()) + ':' + std::to_string(f.inode()))
                             .second;
      return OpenByPath(f, f.path(), 0, seek, check);
    }
    Result<std::string> path = Recreated(f, ctx);
    if (!path.ok()) return path.status().WithContext("fd " + std::to_string(f.fd()));
    return OpenByPath(f, *path, 0, seek, false);
  }

  std::string Describe(const img::Fd& f) const override {
    if (!f.reg().link_remap().empty()) return f.path() + " (removed, linked as " + f.reg().link_remap() + ")";
    return f.path() + (f.reg().deleted() ? " (deleted, in " + f.reg().ghost_file() + ")" : "") + ", offset " +
           std::to_string(f.pos());
  }
};

}  // namespace

Status SaveMappedGhosts(pid_t pid, DumpContext& ctx, img::Process* core) {
  for (img::Vma& v : *core->mutable_vmas()) {
    // Shared memory objects (memfds, shared anonymous memory) are saved by
    // kinds/shmem.h, AIO rings by kinds/aio.h.
    if (!v.deleted() || v.shmem_id() != 0 || StartsWith(v.path(), "/memfd:") || v.path() == "/dev/zero" ||
        v.has_aio()) {
      continue;
    }
    if (v.kind() != img::Vma::FILE_PRIVATE && v.kind() != img::Vma::FILE_SHARED) continue;
    char range[64];
    snprintf(range, sizeof(range), "%lx-%lx", v.start(), v.end());
    const std::string src = "/proc/" + std::to_string(pid) + "/map_files/" + range;
    struct stat sb;
    if (stat(src.c_str(), &sb) != 0) return ErrnoStatus("stat " + src);
    img::Fd* g = v.mutable_ghost();
    g->set_flags(v.kind() == img::Vma::FILE_SHARED ? O_RDWR : O_RDONLY);
    g->set_dev(sb.st_dev);
    g->set_inode(sb.st_ino);
    g->set_mode(sb.st_mode);
    g->set_size(static_cast<uint64_t>(sb.st_size));
    RETURN_IF_ERROR(ReadGhost(src, v.path() + kDeleted, sb, ctx, g)
                        .WithContext("process " + std::to_string(pid) + " maps the deleted file " + v.path()));
  }
  return OkStatus();
}

Status RecreateMappedGhosts(const img::Process& core, RestoreContext& ctx) {
  for (const img::Vma& v : core.vmas()) {
    if (!v.has_ghost()) continue;
    RETURN_IF_ERROR(Recreated(v.ghost(), ctx).status().WithContext("vma " + std::to_string(v.start())));
  }
  return OkStatus();
}

std::string MappedGhostPath(const img::Vma& v, const std::map<std::string, std::string>* recreated) {
  if (!v.has_ghost() || recreated == nullptr) return v.path();
  auto it = recreated->find(v.ghost().reg().ghost_file());
  return it == recreated->end() ? v.path() : it->second;
}

const FdKind& RegularFileKind() {
  static const RegularFile kind;
  return kind;
}

}  // namespace cf::kinds
