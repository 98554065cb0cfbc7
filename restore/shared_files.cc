// Planning and creating the shared objects (see shared_files.h).
//
// Planning runs in criu-fast before the tree exists: it gathers the objects
// saved in every core (pipes, socket pairs), gives each eventfd, timerfd,
// signalfd, inotify and epoll description (and each regular file or
// directory description held by several processes) an object of its own,
// maps every fd that names an open file description
// (file_id) to its object, and makes the lowest common ancestor of the
// processes holding an object its owner.
#include "restore/shared_files.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <optional>
#include <set>
#include <string>

#include "common/log.h"

namespace cf::restore {
namespace {

using ParentMap = std::map<pid_t, pid_t>;  // pid -> parent, for every process of the image

// True when |anc| is |pid| or one of its ancestors in the image.
bool IsAncestorOrSelf(pid_t anc, pid_t pid, const ParentMap& parent) {
  for (;;) {
    if (pid == anc) return true;
    auto it = parent.find(pid);
    if (it == parent.end() || !parent.count(it->second)) return false;
    pid = it->second;
  }
}

// The lowest process of the image that is an ancestor (or self) of every
// process of |users|.
Result<pid_t> LowestCommonAncestor(const std::set<pid_t>& users, const ParentMap& parent) {
  for (pid_t c = *users.begin();;) {
    bool all = true;
    for (pid_t u : users) all = all && IsAncestorOrSelf(c, u, parent);
    if (all) return c;
    auto it = parent.find(c);
    if (it == parent.end() || !parent.count(it->second)) break;
    c = it->second;
  }
  return Errorf("processes %d and others share a file but have no common ancestor in the image", *users.begin());
}

// Room for descriptors up to |top| (criu-fast may run with a lower
// RLIMIT_NOFILE than the target had; the target's limits come later).

}  // namespace

Status EnsureFdRoom(int top) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return ErrnoStatus("getrlimit");
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > static_cast<rlim_t>(top)) return OkStatus();
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= static_cast<rlim_t>(top)) {
    return Errorf("descriptor %d is above the hard RLIMIT_NOFILE (%lu)", top, rl.rlim_max);
  }
  rl.rlim_cur = static_cast<rlim_t>(top) + 1;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return ErrnoStatus("raise RLIMIT_NOFILE");
  return OkStatus();
}

Result<SharedFilePlan> PlanSharedFiles(const ImageSet& images) {
  SharedFilePlan plan;
  ParentMap parent;
  for (const ProcessImages& p : images.processes) parent[p.core.pid()] = p.core.ppid();

  std::map<kinds::ObjectKey, size_t> by_key;  // -> object
  for (const ProcessImages& p : images.processes) {
    for (const img::FileObject& obj : p.core.file_objects()) {
      const kinds::FdKind* kind = kinds::ObjectKind(obj);
      if (kind == nullptr) return Errorf("core-%d.img: a shared file object of no known kind", p.core.pid());
      for (const kinds::ObjectKey& key : kind->ObjectKeys(obj)) {
        if (!by_key.emplace(key, plan.objects.size()).second) {
          return Errorf("core-%d.img: a %s object (%lu) saved twice", p.core.pid(), kind->name(), key.b ? key.b : key.a);
        }
      }
      SharedObject o;
      o.kind = kind;
      o.object = &obj;
      plan.objects.push_back(std::move(o));
    }
  }

  std::map<uint32_t, size_t> file_object;  // file_id -> object
  std::vector<std::set<pid_t>> users(plan.objects.size());
  int max_fd = 2;
  for (const ProcessImages& p : images.processes) {
    const pid_t pid = p.core.pid();
    for (const img::Fd& f : p.core.fds()) {
      max_fd = std::max(max_fd, f.fd());
      const kinds::FdKind* kind = kinds::KindOf(f);
      if (kind == nullptr) return Errorf("core-%d.img: fd %d is of no known kind", pid, f.fd());
      if (f.file_id() == 0) {
        if (kind->scope() != kinds::Scope::kPrivate) {
          return Errorf("core-%d.img: fd %d: a %s without its open file id", pid, f.fd(), kind->name());
        }
        continue;
      }
      size_t obj = 0;
      if (kind->scope() == kinds::Scope::kObject) {
        auto it = by_key.find(kind->KeyOf(f));
        if (it == by_key.end()) {
          return Errorf("core-%d.img: fd %d: its %s (inode %lu) is not in the image", pid, f.fd(), kind->name(),
                        f.inode());
        }
        obj = it->second;
        if (plan.objects[obj].kind != kind) {
          return Errorf("core-%d.img: fd %d: a %s naming a %s object", pid, f.fd(), kind->name(),
                        plan.objects[obj].kind->name());
        }
      } else if (auto it = file_object.find(f.file_id()); it != file_object.end()) {
        obj = it->second;
      } else {
        obj = plan.objects.size();
        SharedObject o;
        o.kind = kind;
        plan.objects.push_back(std::move(o));
        users.emplace_back();
      }
      auto [it, inserted] = file_object.emplace(f.file_id(), obj);
      if (!inserted && it->second != obj) {
        return Errorf("core-%d.img: fd %d: open file %u belongs to two objects", pid, f.fd(), f.file_id());
      }
      if (plan.objects[obj].kind != kind) {
        return Errorf("core-%d.img: fd %d: open file %u is a %s and a %s", pid, f.fd(), f.file_id(), kind->name(),
                      plan.objects[obj].kind->name());
      }
      plan.objects[obj].files.emplace(f.file_id(), &f);
      users[obj].insert(pid);
    }
  }
  for (size_t i = 0; i < plan.objects.size(); ++i) {
    SharedObject& o = plan.objects[i];
    if (users[i].empty()) return Errorf("a %s of the image is held by no descriptor", o.kind->name());
    if (o.object) {
      for (pid_t u : o.kind->ExtraUsers(*o.object)) {
        if (parent.count(u)) users[i].insert(u);
      }
    }
    ASSIGN_OR_RETURN(o.owner, LowestCommonAncestor(users[i], parent));
  }
  // Descriptions an object takes from others (files in flight in a socket's
  // queue): made by their object's creator, which must then be the taker or
  // an ancestor of it.
  for (size_t i = 0; i < plan.objects.size(); ++i) {
    SharedObject& o = plan.objects[i];
    if (o.object == nullptr) continue;
    for (const img::Fd* f : o.kind->NeededFiles(*o.object)) {
      const uint32_t id = f->tree_file_id();
      const kinds::FdKind* kind = kinds::KindOf(*f);
      if (kind == nullptr) return Errorf("a %s needs open file %u, of no known kind", o.kind->name(), id);
      size_t obj = 0;
      if (auto it = file_object.find(id); it != file_object.end()) {
        obj = it->second;
      } else if (auto k = by_key.find(kind->KeyOf(*f)); kind->scope() == kinds::Scope::kObject && k != by_key.end()) {
        obj = k->second;
        file_object.emplace(id, obj);
        plan.objects[obj].files.emplace(id, f);
      } else {
        return Errorf("a %s needs open file %u (a %s), which is not in the image", o.kind->name(), id, kind->name());
      }
      if (obj == i) return Errorf("a %s needs an open file of its own", o.kind->name());
      o.needs.push_back(id);
      users[obj].insert(o.owner);
      ASSIGN_OR_RETURN(plan.objects[obj].owner, LowestCommonAncestor(users[obj], parent));
    }
  }
  plan.temp_base = max_fd + 1;
  return plan;
}

Status CreateOwnedFiles(const SharedFilePlan& plan, pid_t pid, kinds::RestoreContext& ctx, InheritedFiles* files) {
  size_t n = 0;
  for (const SharedObject& o : plan.objects) {
    if (o.owner == pid) n += o.files.size();
  }
  if (n == 0) return OkStatus();
  // What this process inherited sits at temp_base and up too.
  RETURN_IF_ERROR(EnsureFdRoom(plan.temp_base + static_cast<int>(files->size() + n) + 16));
  ctx.tree_files = files;
  // Objects that take descriptions of others after those.
  for (bool needing : {false, true}) {
    for (const SharedObject& o : plan.objects) {
      if (o.owner != pid || o.needs.empty() == needing) continue;
      CreatedFiles created;
      RETURN_IF_ERROR(o.kind->Create(o, ctx, &created));
      for (auto& [id, fd] : created) {
        const int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, plan.temp_base);
        if (moved < 0) return ErrnoStatus(std::string("move a new ") + o.kind->name() + " descriptor");
        (*files)[id] = moved;
      }
    }
  }
  ctx.tree_files = nullptr;
  return OkStatus();
}

}  // namespace cf::restore
