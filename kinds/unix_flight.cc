// Files in flight in unix socket queues (see unix_flight.h).
#include "kinds/unix_flight.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "common/io.h"
#include "proc/fdinfo_kinds.h"

namespace cf::kinds {

struct FlightFiles::File {
  UniqueFd fd;
  FdSight sight;
  FdInfo info;
  img::Fd record;
  const FdKind* kind = nullptr;
};

FlightFiles::FlightFiles(DumpContext& ctx, TreeFds* tree) : ctx_(ctx), tree_(tree), order_{getpid()} {}
FlightFiles::~FlightFiles() = default;

std::vector<img::Fd*> FlightFiles::FdsOf(pid_t) {
  std::vector<img::Fd*> out;
  for (auto& f : files_) out.push_back(&f->record);
  return out;
}

Result<std::vector<uint32_t>> FlightFiles::Add(std::vector<UniqueFd> fds) {
  std::vector<uint32_t> ids;
  const pid_t self = getpid();
  for (UniqueFd& fd : fds) {
    auto f = std::make_unique<File>();
    f->sight.pid = self;
    f->sight.fd = fd.get();
    const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
    ASSIGN_OR_RETURN(f->sight.link, ReadLink(path));
    if (stat(path.c_str(), &f->sight.sb) != 0) return ErrnoStatus("stat " + path);
    // The same open file description sent before: the same file.
    uint32_t seen = 0;
    for (size_t i = 0; i < files_.size() && !seen; ++i) {
      const File& o = *files_[i];
      if (o.sight.sb.st_dev == f->sight.sb.st_dev && o.sight.sb.st_ino == f->sight.sb.st_ino &&
          syscall(SYS_kcmp, self, self, KCMP_FILE, o.fd.get(), fd.get()) == 0) {
        seen = o.record.file_id();
      }
    }
    if (seen) {
      ids.push_back(seen);
      continue;
    }
    f->kind = Recognise(f->sight);
    if (f->kind == nullptr) return Error("a file in flight (" + f->sight.link + ") of no known kind");
    if (f->kind->field() == img::Fd::kUnixSocket) {
      return Error("a unix socket in flight in a socket's queue (" + f->sight.link + "): not supported yet");
    }
    ASSIGN_OR_RETURN(f->info, proc::ReadFdInfo(self, fd.get()));
    img::Fd& r = f->record;
    r.set_fd(fd.get());
    r.set_dev(f->sight.sb.st_dev);
    r.set_inode(f->sight.sb.st_ino);
    r.set_mode(f->sight.sb.st_mode);
    r.set_rdev(f->sight.sb.st_rdev);
    r.set_size(static_cast<uint64_t>(f->sight.sb.st_size));
    r.set_path(f->sight.link);
    r.set_file_id(static_cast<uint32_t>(files_.size() + 1));
    SetFdInfo(f->info, &r);
    RETURN_IF_ERROR(f->kind->Read(f->sight, f->info, ctx_, &r).WithContext("a file in flight (" + f->sight.link + ")"));
    ids.push_back(r.file_id());
    f->fd = std::move(fd);
    files_.push_back(std::move(f));
  }
  return ids;
}

Result<bool> FlightFiles::LinkToTree(File& f) {
  if (tree_ == nullptr || f.kind->scope() == Scope::kPrivate) return false;
  const ObjectKey key = f.kind->KeyOf(f.record);
  const bool object = f.kind->scope() == Scope::kObject;
  const pid_t self = getpid();
  bool same_object = false;
  for (pid_t pid : tree_->order()) {
    for (const img::Fd* held : tree_->FdsOf(pid)) {
      if (KindOf(*held) != f.kind || held->file_id() == 0) continue;
      if (syscall(SYS_kcmp, self, pid, KCMP_FILE, f.fd.get(), held->fd()) == 0) {
        f.record.set_tree_file_id(held->file_id());
        return true;
      }
      same_object = same_object || (object && f.kind->KeyOf(*held) == key);
    }
  }
  if (!same_object) return false;
  const uint32_t id = tree_->NewFileId();
  if (id == 0) return Error("a " + std::string(f.kind->name()) + " in flight (" + f.sight.link +
                            ") that the tree holds too, where files cannot be numbered: not supported");
  f.record.set_tree_file_id(id);
  return true;
}

Status FlightFiles::ReadEpoll(File& f, const std::set<uint64_t>& object_socks) {
  ASSIGN_OR_RETURN(std::vector<proc::EpollTargetInfo> targets, proc::ParseEpollTargets(f.info));
  const pid_t self = getpid();
  std::map<int32_t, uint32_t> seen;  // tfd -> entries with that number so far
  for (const proc::EpollTargetInfo& t : targets) {
    const std::string what = "an epoll instance in flight, watching fd " + std::to_string(t.tfd);
    kcmp_epoll_slot slot{static_cast<uint32_t>(f.fd.get()), static_cast<uint32_t>(t.tfd), seen[t.tfd]++};
    if (!object_socks.count(t.ino)) {
      return Error(what + " (inode " + std::to_string(t.ino) +
                   "), which is not a unix socket of the socket in whose queue it is: not supported");
    }
    // The inode alone could be a file of another filesystem: the tree must
    // hold that very socket.
    bool found = false;
    for (pid_t pid : tree_ ? tree_->order() : std::vector<pid_t>{}) {
      for (const img::Fd* held : tree_->FdsOf(pid)) {
        if (found || held->inode() != t.ino || !held->has_unix_socket()) continue;
        found = syscall(SYS_kcmp, pid, self, KCMP_EPOLL_TFD, held->fd(), reinterpret_cast<unsigned long>(&slot)) == 0;
      }
      if (found) break;
    }
    if (!found) return Error(what + ": no process of the tree holds the watched socket: not supported");
    img::EpollTarget* et = f.record.mutable_epoll()->add_targets();
    et->set_tfd(t.tfd);
    et->set_events(t.events);
    et->set_data(t.data);
    et->set_flight_sock(t.ino);
  }
  return OkStatus();
}

Status FlightFiles::Finish(google::protobuf::RepeatedPtrField<img::Fd>* fds,
                           google::protobuf::RepeatedPtrField<img::FileObject>* objects,
                           const std::set<uint64_t>& object_socks) {
  std::map<const FdKind*, std::unique_ptr<TreePass>> passes;
  for (auto& f : files_) {
    // The tree's pass saves the object of a file it shares.
    ASSIGN_OR_RETURN(bool linked, LinkToTree(*f));
    if (linked) continue;
    if (f->kind->field() == img::Fd::kEpoll) {
      RETURN_IF_ERROR(ReadEpoll(*f, object_socks));
      continue;
    }
    auto it = passes.find(f->kind);
    if (it == passes.end()) it = passes.emplace(f->kind, f->kind->NewPassFor(ctx_)).first;
    if (it->second) RETURN_IF_ERROR(it->second->Add(f->sight, f->info, true, &f->record));
  }
  for (auto& [kind, pass] : passes) {
    if (pass) RETURN_IF_ERROR(pass->Finish(*this));
  }
  for (auto& f : files_) *fds->Add() = f->record;
  for (img::FileObject& o : objects_) *objects->Add() = std::move(o);
  return OkStatus();
}

Result<std::map<uint32_t, UniqueFd>> MakeFlightFiles(const google::protobuf::RepeatedPtrField<img::Fd>& fds,
                                                     const google::protobuf::RepeatedPtrField<img::FileObject>& objects,
                                                     RestoreContext& ctx) {
  std::map<uint32_t, UniqueFd> made;
  for (const img::Fd& f : fds) {
    if (f.tree_file_id() == 0) continue;
    auto it = ctx.tree_files ? ctx.tree_files->find(f.tree_file_id()) : std::map<uint32_t, int>::const_iterator{};
    if (!ctx.tree_files || it == ctx.tree_files->end()) {
      return Errorf("in-flight file %u: open file %u of the tree was not created here", f.file_id(), f.tree_file_id());
    }
    UniqueFd copy(fcntl(it->second, F_DUPFD_CLOEXEC, 0));
    if (!copy.valid()) return ErrnoStatus("copy open file " + std::to_string(f.tree_file_id()));
    made[f.file_id()] = std::move(copy);
  }
  for (const img::FileObject& o : objects) {
    const FdKind* kind = ObjectKind(o);
    if (kind == nullptr) return Error("an in-flight file object of no known kind");
    SharedObject so;
    so.kind = kind;
    so.object = &o;
    const std::vector<ObjectKey> keys = kind->ObjectKeys(o);
    for (const img::Fd& f : fds) {
      if (KindOf(f) == kind && std::find(keys.begin(), keys.end(), kind->KeyOf(f)) != keys.end()) {
        so.files.emplace(f.file_id(), &f);
      }
    }
    CreatedFiles created;
    RETURN_IF_ERROR(kind->Create(so, ctx, &created).WithContext(std::string("an in-flight ") + kind->name()));
    for (auto& [id, fd] : created) made[id] = std::move(fd);
  }
  for (const img::Fd& f : fds) {
    if (made.count(f.file_id())) continue;
    const FdKind* kind = KindOf(f);
    if (kind == nullptr) return Errorf("in-flight file %u of no known kind", f.file_id());
    const std::string what = std::string("an in-flight ") + kind->name() + " (" + f.path() + ")";
    if (kind->scope() == Scope::kPrivate) {
      auto fd = kind->Open(f, ctx);
      if (!fd.ok()) return fd.status().WithContext(what);
      made[f.file_id()] = std::move(*fd);
      continue;
    }
    SharedObject so;
    so.kind = kind;
    so.files.emplace(f.file_id(), &f);
    CreatedFiles created;
    RETURN_IF_ERROR(kind->Create(so, ctx, &created).WithContext(what));
    for (auto& [id, fd] : created) made[id] = std::move(fd);
  }
  return made;
}

Status AddFlightEpollTargets(const google::protobuf::RepeatedPtrField<img::Fd>& fds,
                             const std::map<uint32_t, UniqueFd>& made, const std::map<uint64_t, int>& socks) {
  for (const img::Fd& f : fds) {
    if (!f.has_epoll() || f.tree_file_id() != 0 || f.epoll().targets().empty()) continue;
    auto e = made.find(f.file_id());
    if (e == made.end()) return Errorf("in-flight epoll instance %u was not made", f.file_id());
    for (const img::EpollTarget& t : f.epoll().targets()) {
      auto s = socks.find(t.flight_sock());
      if (s == socks.end() || s->second < 0) {
        return Errorf("in-flight epoll instance %u watches socket:[%lu], which its socket object does not hold",
                      f.file_id(), static_cast<unsigned long>(t.flight_sock()));
      }
      RETURN_IF_ERROR(AddEpollTarget(e->second.get(), t, s->second).WithContext("in-flight epoll instance"));
    }
  }
  return OkStatus();
}

}  // namespace cf::kinds
