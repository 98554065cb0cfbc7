// Fanotify groups: the fanotify_init() flags and every mark (inode marks,
// by the path their file handle leads to; mount marks, by the mount point
// of their mount id). Filesystem marks are refused. Events queued at dump
// time are not saved.
//
// Restore: fanotify_init() with the saved flags, then each mark added again
// (in the order that makes fdinfo list them as before):
// its mask with FAN_MARK_ADD, its ignored mask with FAN_MARK_IGNORED_MASK
// (or FAN_MARK_IGNORE, the newer form, when the mark had it) and the
// IGNORED_SURV_MODIFY flag it had.
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <string>

#include "common/fd.h"
#include "common/log.h"
#include "kinds/kind.h"
#include "kinds/notify_path.h"
#include "proc/fdinfo_kinds.h"

#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x00000200
#endif
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x00000400
#endif

namespace cf::kinds {
namespace {

Status AddMark(int fd, const img::FanotifyMark& m) {
  const unsigned where = m.mount() ? FAN_MARK_MOUNT : 0;
  const unsigned evictable = m.mflags() & FAN_MARK_EVICTABLE;
  const std::string what = std::string(m.mount() ? "mount mark on " : "mark on ") + m.path();
  if (m.mask() != 0 &&
      fanotify_mark(fd, FAN_MARK_ADD | where | evictable, m.mask(), AT_FDCWD, m.path().c_str()) != 0) {
    return ErrnoStatus("fanotify " + what);
  }
  if (m.ignored_mask() != 0) {
    const unsigned ignore = (m.mflags() & FAN_MARK_IGNORE) ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK;
    const unsigned flags = FAN_MARK_ADD | where | evictable | ignore | (m.mflags() & FAN_MARK_IGNORED_SURV_MODIFY);
    if (fanotify_mark(fd, flags, m.ignored_mask(), AT_FDCWD, m.path().c_str()) != 0) {
      return ErrnoStatus("fanotify ignored mask of " + what);
    }
  }
  return OkStatus();
}

class Fanotify final : public FdKind {
 public:
  const char* name() const override { return "fanotify group"; }
  img::Fd::KindCase field() const override { return img::Fd::kFanotify; }
  Scope scope() const override { return Scope::kDescription; }
  bool Recognise(const FdSight& s) const override { return s.link == "anon_inode:[fanotify]"; }

  Status Read(const FdSight& s, const FdInfo& info, DumpContext&, img::Fd* f) const override {
    ASSIGN_OR_RETURN(proc::FanotifyInfo fa, proc::ParseFanotify(info));
    img::Fanotify* out = f->mutable_fanotify();
    out->set_flags(fa.flags);
    out->set_event_flags(fa.event_flags);
    for (const proc::FanotifyMarkInfo& m : fa.marks) {
      img::FanotifyMark* om = out->add_marks();
      om->set_mflags(m.mflags);
      om->set_mask(m.mask);
      om->set_ignored_mask(m.ignored_mask);
      if (m.kind == proc::FanotifyMarkInfo::kFilesystem) {
        return Errorf("a filesystem mark (device %x): not supported yet", m.sdev);
      }
      if (m.kind == proc::FanotifyMarkInfo::kMount) {
        om->set_mount(true);
        ASSIGN_OR_RETURN(std::string point, MountPoint(s.pid, m.mnt_id));
        om->set_path(point);
        continue;
      }
      // The kernel prints its own dev_t: 12 bits of major above 20 of minor.
      const dev_t dev = makedev(m.sdev >> 20, m.sdev & 0xfffff);
      auto path = PathByHandle(s.pid, m.ino, dev, m.fhandle_type, m.fhandle);
      if (!path.ok()) return path.status().WithContext("fanotify mark on inode " + std::to_string(m.ino));
      om->set_path(*path);
      om->set_dev(dev);
      om->set_inode(m.ino);
    }
    LOG_DEBUG("files: %s: fanotify flags %#x, %d marks", s.Name().c_str(), fa.flags, out->marks_size());
    return OkStatus();
  }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const auto& [id, f] = *obj.files.begin();
    const img::Fanotify& fa = f->fanotify();
    UniqueFd fd(fanotify_init(fa.flags(), fa.event_flags()));
    if (!fd.valid()) return ErrnoStatus("fanotify_init");
    // fdinfo lists the newest mark first: added oldest first, they come
    // back in the same order.
    for (int i = fa.marks_size() - 1; i >= 0; --i) RETURN_IF_ERROR(AddMark(fd.get(), fa.marks(i)));
    if (fcntl(fd.get(), F_SETFD, FD_CLOEXEC) != 0) return ErrnoStatus("fanotify: F_SETFD");
    (*out)[id] = std::move(fd);
    return OkStatus();
  }

  std::string Describe(const img::Fd& f) const override {
    std::string out = std::to_string(f.fanotify().marks_size()) + " marks";
    for (const img::FanotifyMark& m : f.fanotify().marks()) out += (m.mount() ? ", mount " : ", ") + m.path();
    return out;
  }
};

}  // namespace

const FdKind& FanotifyKind() {
  static const Fanotify kind;
  return kind;
}

}  // namespace cf::kinds
