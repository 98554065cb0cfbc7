// Eventfds: the counter and the mode.
//
// Dump: fdinfo prints the counter in hex ("eventfd-count") and, on newer
// kernels, the mode ("eventfd-semaphore"). Without that line the mode is
// found by one read through a copy of the descriptor, written back at once:
// a semaphore gives 1, a counter all of it. With a counter below 2 both read
// alike: taken as a counter.
// Restore: a new eventfd in the saved mode, its counter written in
// (eventfd() takes only 32 bits of initial value), then the file flags.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/log.h"
#include "kinds/kind.h"
#include "proc/fdinfo_kinds.h"

namespace cf::kinds {
namespace {

class EventFd final : public FdKind {
 public:
  const char* name() const override { return "eventfd"; }
  img::Fd::KindCase field() const override { return img::Fd::kEventfd; }
  Scope scope() const override { return Scope::kDescription; }
  bool Recognise(const FdSight& s) const override { return s.link == "anon_inode:[eventfd]"; }

  Status Read(const FdSight& s, const FdInfo& info, DumpContext&, img::Fd* f) const override {
    img::EventFd* out = f->mutable_eventfd();
    const std::string* count_text = proc::FdInfoExtra(info, "eventfd-count");
    if (!count_text) return Error("no eventfd-count in its fdinfo");
    char* end = nullptr;
    errno = 0;
    const uint64_t count = strtoull(count_text->c_str(), &end, 16);
    if (errno != 0 || end == count_text->c_str() || *end != '\0') {
      return Error("bad eventfd-count '" + *count_text + "' in its fdinfo");
    }
    out->set_count(count);
    if (const std::string* sem = proc::FdInfoExtra(info, "eventfd-semaphore")) {
      if (*sem != "0" && *sem != "1") return Error("bad eventfd-semaphore '" + *sem + "' in its fdinfo");
      out->set_semaphore(*sem == "1");
      return OkStatus();
    }
    if (count < 2) {
      LOG_DEBUG("files: %s: eventfd mode unknown (old kernel, counter %lu): a counter", s.Name().c_str(), count);
      return OkStatus();
    }
    ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(s.pid, s.fd));
    uint64_t got = 0;
    if (read(copy.get(), &got, sizeof(got)) != static_cast<ssize_t>(sizeof(got))) return ErrnoStatus("read eventfd");
    if (write(copy.get(), &got, sizeof(got)) != static_cast<ssize_t>(sizeof(got))) {
      return ErrnoStatus("write the eventfd's counter back");
    }
    out->set_semaphore(got == 1);
    return OkStatus();
  }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const auto& [id, f] = *obj.files.begin();
    const img::EventFd& e = f->eventfd();
    UniqueFd efd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | (e.semaphore() ? EFD_SEMAPHORE : 0)));
    if (!efd.valid()) return ErrnoStatus("eventfd");
    const uint64_t count = e.count();
    if (count != 0 && write(efd.get(), &count, sizeof(count)) != static_cast<ssize_t>(sizeof(count))) {
      return ErrnoStatus("set the eventfd counter to " + std::to_string(count));
    }
    RETURN_IF_ERROR(SetStatusFlags(efd.get(), f->flags(), O_NONBLOCK, "eventfd"));
    (*out)[id] = std::move(efd);
    return OkStatus();
  }

  std::string Describe(const img::Fd& f) const override {
    return "counter " + std::to_string(f.eventfd().count()) + (f.eventfd().semaphore() ? ", semaphore" : "");
  }
};

}  // namespace

const FdKind& EventFdKind() {
  static const EventFd kind;
  return kind;
}

}  // namespace cf::kinds
