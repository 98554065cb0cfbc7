// Signalfds: the set of signals they read (fdinfo "sigmask", the kernel's
// sigset: signal n is bit n-1). What is queued belongs to the process's
// signal queues, which are dumped with the process; a signalfd holds none.
// Restore makes a new one for the saved set; the signals it will read are
// those queued to the process (restored with the process).
#include <fcntl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/log.h"
#include "kinds/kind.h"
#include "proc/fdinfo_kinds.h"

namespace cf::kinds {
namespace {

class SignalFd final : public FdKind {
 public:
  const char* name() const override { return "signalfd"; }
  img::Fd::KindCase field() const override { return img::Fd::kSignalfd; }
  Scope scope() const override { return Scope::kDescription; }
  bool Recognise(const FdSight& s) const override { return s.link == "anon_inode:[signalfd]"; }

  Status Read(const FdSight& s, const FdInfo& info, DumpContext&, img::Fd* f) const override {
    ASSIGN_OR_RETURN(uint64_t mask, proc::ParseSignalFdMask(info));
    f->mutable_signalfd()->set_mask(mask);
    LOG_DEBUG("files: %s: signalfd for mask %#lx", s.Name().c_str(), mask);
    return OkStatus();
  }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const auto& [id, f] = *obj.files.begin();
    // The raw system call takes the kernel's 8-byte sigset as saved.
    const uint64_t mask = f->signalfd().mask();
    UniqueFd sfd(static_cast<int>(syscall(SYS_signalfd4, -1, &mask, sizeof(mask), SFD_CLOEXEC | SFD_NONBLOCK)));
    if (!sfd.valid()) return ErrnoStatus("signalfd for mask " + std::to_string(mask));
    RETURN_IF_ERROR(SetStatusFlags(sfd.get(), f->flags(), O_NONBLOCK, "signalfd"));
    (*out)[id] = std::move(sfd);
    return OkStatus();
  }

  std::string Describe(const img::Fd& f) const override {
    char buf[32];
    snprintf(buf, sizeof(buf), "mask %#lx", static_cast<unsigned long>(f.signalfd().mask()));
    return buf;
  }
};

}  // namespace

const FdKind& SignalFdKind() {
  static const SignalFd kind;
  return kind;
}

}  // namespace cf::kinds
