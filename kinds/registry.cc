// The kinds registry: one line per kind (kinds/<kind>.cc defines it). The
// order is the order of recognition: the first kind whose Recognise() takes
// a descriptor is its kind, so narrower kinds come before broader ones (a
// memfd before a regular file).
#include "kinds/kind.h"

namespace cf::kinds {

#define CF_FD_KINDS(X) \
  X(Pipe)              \
  X(TcpSocket)         \
  X(UdpSocket)         \
  X(NetlinkSocket)     \
  X(PacketSocket)      \
  X(UnixSocket)        \
  X(EventFd)           \
  X(TimerFd)           \
  X(SignalFd)          \
  X(Inotify)           \
  X(Epoll)             \
  X(PidFd)             \
  X(DeadPidFd)         \
  X(Fanotify)          \
  X(Memfd)             \
  X(RegularFile)       \
  X(Directory)         \
  X(Pty)               \
  X(CurrentTty)        \
  X(TtyDevice)         \
  X(Symlink)           \
  X(CharDevice)

// Each kind file defines `const FdKind& <Name>Kind()`.
#define CF_DECLARE_KIND(name) const FdKind& name##Kind();
CF_FD_KINDS(CF_DECLARE_KIND)
#undef CF_DECLARE_KIND

const std::vector<const FdKind*>& AllKinds() {
#define CF_KIND_ENTRY(name) &name##Kind(),
  static const std::vector<const FdKind*> kinds = {CF_FD_KINDS(CF_KIND_ENTRY)};
#undef CF_KIND_ENTRY
  return kinds;
}

const FdKind* Recognise(const FdSight& s) {
  for (const FdKind* k : AllKinds()) {
    if (k->Recognise(s)) return k;
  }
  return nullptr;
}

const FdKind* KindOf(const img::Fd& f) {
  for (const FdKind* k : AllKinds()) {
    if (k->field() == f.kind_case()) return k;
  }
  return nullptr;
}

const FdKind* ObjectKind(const img::FileObject& obj) {
  for (const FdKind* k : AllKinds()) {
    if (k->Creates(obj)) return k;
  }
  return nullptr;
}

}  // namespace cf::kinds
