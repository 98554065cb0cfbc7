// The kinds registry: everything criu-fast knows about one kind of kernel
// object a descriptor may refer to lives in one file, kinds/<kind>.cc, as an
// FdKind: how the dump recognises it, what it reads, how restore creates it
// again and finishes it once every descriptor is in place, what `show` says
// about it and what `check` probes for it. kinds/registry.cc lists them.
//
// The generic code (engine/shared_files.cc and engine/collect_files.cc at
// dump, restore/shared_files.cc and restore/files.cc at restore) has no
// per-kind branch: it asks the registry.
//
// Three scopes decide who handles a descriptor:
//   kPrivate      each process opens it by itself (a regular file, a
//                 directory, a character device, a memfd). Two processes
//                 holding one open file description (one offset) get it
//                 like a kDescription (file_id, created by their lowest
//                 common ancestor), when Shareable() says so.
//   kDescription  the state belongs to the open file description (eventfd,
//                 timerfd, signalfd, inotify, epoll): read once per
//                 description, created once at restore by the lowest common
//                 ancestor of the processes holding it, inherited by the rest.
//   kObject       several descriptions share one kernel object (the two ends
//                 of a pipe, a socket pair): the object is a FileObject saved
//                 once in a core; the kind creates every description of it.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "criu_fast.pb.h"
#include "proc/proc_parse.h"

namespace cf::streams {
class ImageSink;
}

namespace cf::kinds {

using proc::FdInfo;
class NetLock;

enum class Scope { kPrivate, kDescription, kObject };

// One descriptor of a process being dumped, as /proc shows it.
struct FdSight {
  pid_t pid = 0;
  int fd = 0;
  std::string link;    // readlink of /proc/PID/fd/FD
  struct stat sb {};   // stat of it
  // "process P fd N (link)", for messages.
  std::string Name() const;
};

// What dump-side hooks may use besides the descriptor.
class DumpContext {
 public:
  virtual ~DumpContext() = default;
  // Where kinds that save contents of their own (a deleted file) write them.
  virtual streams::ImageSink* sink() = 0;
  virtual bool shell_job() const = 0;
  // The largest deleted-but-open file whose contents are saved (--ghost-limit).
  virtual uint64_t ghost_limit() const = 0;
  // Whether held file locks are saved (--file-locks) or refused.
  virtual bool file_locks() const = 0;
  // --link-remap: a file whose name was removed while another hard link
  // remains gets a hard link of criu-fast's to be opened by at restore.
  virtual bool link_remap() const { return false; }
  // A link made for --link-remap: removed again unless the dump ends with
  // the tree killed (a failed dump, or -R, leaves the filesystem as it was).
  virtual void NoteLinkRemap(const std::string& /*path*/) {}
  // Whether unix socket |inode|, connected to a socket outside the tree, is
  // dumped all the same (--ext-unix-sk).
  virtual bool ext_unix_sk(uint64_t /*inode*/) const { return false; }
  // The shared memory object of memfd |s| (kinds/shmem.h), saved in |core|
  // the first time the dump sees it; returns its id.
  virtual Result<uint32_t> AddMemfd(pid_t pid, const img::Fd& f, img::Process* core) = 0;
  // TCP: whether established connections are saved (--tcp-established),
  // whether connections not accepted yet are dropped (--skip-in-flight),
  // and the network lock of the dump (kinds/net_lock.h), started on first use.
  virtual bool tcp_established() const { return false; }
  virtual bool skip_in_flight() const { return false; }
  // --tcp-close: connections are saved without their state (restored closed).
  virtual bool tcp_close() const { return false; }
  virtual Result<NetLock*> net_lock() { return Error("no network lock in this context"); }
};

// The descriptors the tree-wide pass keeps, for kinds that finish their
// work once every process is known (TreePass::Finish).
class TreeFds {
 public:
  virtual ~TreeFds() = default;
  // The processes, root first.
  virtual const std::vector<pid_t>& order() const = 0;
  // Every kept fd of |pid|, by fd number (the pass's own records).
  virtual std::vector<img::Fd*> FdsOf(pid_t pid) = 0;
  // Saves |obj| in the core of |pid|.
  virtual void AddObject(pid_t pid, img::FileObject obj) = 0;
  // A file_id for an open file description no descriptor of the tree holds
  // (one in flight in a socket's queue); 0 where there is no such numbering.
  virtual uint32_t NewFileId() { return 0; }
};

// Per-dump state of a kind, for the tree-wide pass (at most one per kind).
class TreePass {
 public:
  virtual ~TreePass() = default;
  // Every descriptor of the kind, in dump order, after Read (|first|: the
  // first one of its open file description).
  virtual Status Add(const FdSight& s, const FdInfo& info, bool first, img::Fd* f) = 0;
  // Once, after every process.
  virtual Status Finish(TreeFds& fds) = 0;
  // The tree runs on (a failed dump, or -R): puts back what Finish had to
  // consume to read it (a terminal's queued bytes).
  virtual void PutBack() {}
};

// A kernel object to create at restore, with the open file descriptions
// the tree had on it (one Fd each: the first seen, by file_id).
struct SharedObject {
  const class FdKind* kind = nullptr;
  pid_t owner = 0;
  const img::FileObject* object = nullptr;   // kObject kinds
  std::map<uint32_t, const img::Fd*> files;
  // Descriptions of other objects that creating this one takes (by
  // file_id, in RestoreContext::tree_files): files in flight in a socket's
  // queue that the tree holds too. Created first.
  std::vector<uint32_t> needs;
};

// What restore-side hooks may use.
struct RestoreContext {
  std::string dir;                              // the image directory
  const std::map<uint32_t, int>* shmem = nullptr;  // shared memory object id -> fd
  // Ghost image -> the path this process made the file at again from it
  // (unlinked at the end).
  std::map<std::string, std::string>* recreated = nullptr;
  bool tcp_close = false;  // --tcp-close: TCP connections come back closed
  // The descriptions this process created or inherited so far, by file_id
  // (what SharedObject::needs names).
  const std::map<uint32_t, int>* tree_files = nullptr;
  // Files already compared with their dumped identity (path, dev, inode):
  // many descriptors of one file are checked (and warned about) once.
  std::set<std::string> identity_checked = {};
};

// One descriptor per open file description of a SharedObject, by file_id.
using CreatedFiles = std::map<uint32_t, UniqueFd>;

// Identifies a FileObject and the descriptors of it: the object's oneof
// case, then two numbers the kind chooses (a pipe: dev and inode).
struct ObjectKey {
  int object_case = 0;
  uint64_t a = 0, b = 0;
  auto operator<=>(const ObjectKey&) const = default;
};

// A kernel feature `check` probes for a kind, on a real object.
struct ProbeResult {
  bool ok = false;
  std::string why;  // when not ok
};
struct Probe {
  const char* name;
  const char* cost;   // what its absence costs
  ProbeResult (*run)();
};
ProbeResult ProbeFailed(const std::string& what, int err);  // "what: strerror(err)"

class FdKind {
 public:
  virtual ~FdKind() = default;
  // "eventfd": in messages and in `show`.
  virtual const char* name() const = 0;
  // Its message in Fd's oneof.
  virtual img::Fd::KindCase field() const = 0;
  virtual Scope scope() const = 0;

  // --- dump
  // True when |s| is of this kind (the registry asks in its order).
  virtual bool Recognise(const FdSight& s) const = 0;
  // kPrivate kinds: whether the tree-wide pass may treat |s| as a shared
  // description (a deleted file may not: each holder recreates it).
  virtual bool Shareable(const FdSight&) const { return false; }
  // Fills the kind's message of |f| (its common fields are set): for each
  // fd of a kPrivate kind, for the first fd of a description otherwise.
  // An error refuses the dump of the descriptor.
  virtual Status Read(const FdSight& s, const FdInfo& info, DumpContext& ctx, img::Fd* f) const = 0;
  // Once the fd is in |core| (kept by the tree pass or not).
  virtual Status Attach(pid_t, DumpContext&, img::Fd*, img::Process*) const { return OkStatus(); }
  virtual std::unique_ptr<TreePass> NewPass() const { return nullptr; }
  // The same, for a kind whose pass needs the dump's options.
  virtual std::unique_ptr<TreePass> NewPassFor(DumpContext&) const { return NewPass(); }

  // --- restore
  // Checks, before any process is created, that what |f| refers to outside
  // the core is in the image (|shmem_ids|: the shared memory objects).
  virtual Status Validate(const img::Fd&, const std::set<uint32_t>& /*shmem_ids*/) const { return OkStatus(); }
  // kObject kinds: the object message this kind creates (0: none), the keys
  // it is known by, and the key a descriptor names.
  virtual int object_case() const { return 0; }
  // Whether this kind creates |obj| (by default: the objects of its case).
  virtual bool Creates(const img::FileObject& obj) const {
    return object_case() != 0 && object_case() == static_cast<int>(obj.kind_case());
  }
  virtual std::vector<ObjectKey> ObjectKeys(const img::FileObject&) const { return {}; }
  virtual ObjectKey KeyOf(const img::Fd&) const { return {}; }
  // Processes that need |obj| without holding a descriptor of it (the
  // session leader whose controlling terminal it is): the object's owner is
  // their ancestor too.
  virtual std::vector<pid_t> ExtraUsers(const img::FileObject&) const { return {}; }
  // Descriptions of other objects of the tree that creating |obj| takes,
  // each with its tree_file_id (see SharedObject::needs).
  virtual std::vector<const img::Fd*> NeededFiles(const img::FileObject&) const { return {}; }
  // kPrivate kinds: one descriptor as it was (any number), close-on-exec
  // as |f| says (f.cloexec(): restore/files.cc then needs no fcntl to set
  // it; nothing execs in the restoring process meanwhile).
  virtual Result<UniqueFd> Open(const img::Fd& f, RestoreContext& ctx) const;
  // The object and one descriptor per description of |obj|. kPrivate kinds
  // held by several processes: Open of the description's first Fd.
  virtual Status Create(const SharedObject& obj, RestoreContext& ctx, CreatedFiles* out) const;
  // In every process, for every object of the image, once the process
  // created the objects it owns and before it creates its children:
  // |inherited| holds a descriptor per description it has (file_id -> fd).
  // For what the children inherit (a controlling terminal).
  virtual Status BeforeChildren(const SharedObject&, const img::Process& /*core*/,
                                const std::map<uint32_t, int>& /*inherited*/) const {
    return OkStatus();
  }
  // After every descriptor of the process is at its number.
  virtual Status AfterPlacement(const img::Fd&, RestoreContext&) const { return OkStatus(); }

  // --- show and check
  // A one-line summary of the kind's state.
  virtual std::string Describe(const img::Fd& f) const = 0;
  virtual std::vector<Probe> Probes() const { return {}; }
};

// --- the registry (kinds/registry.cc)
// Every kind, in recognition order.
const std::vector<const FdKind*>& AllKinds();
// The kind of |s|, or null when no kind takes it.
const FdKind* Recognise(const FdSight& s);
// The kind of a saved descriptor, or null when its kind field is unset.
const FdKind* KindOf(const img::Fd& f);
// The kind creating objects of |obj|'s case, or null.
const FdKind* ObjectKind(const img::FileObject& obj);

// --- helpers for kinds (kinds/kind.cc)
// A copy, in criu-fast, of fd |fd| of |pid|: the same open file description.
Result<UniqueFd> TakeFd(pid_t pid, int fd);
// The same through |pidfd|, a pidfd of the process (one for many fds).
Result<UniqueFd> TakeFdThrough(int pidfd, int fd);
// The common fields from fdinfo: flags (without O_CLOEXEC), cloexec, pos, mnt_id.
void SetFdInfo(const FdInfo& info, img::Fd* f);
// Sets |fd|'s file status flags to the saved |flags| masked by |keep|.
Status SetStatusFlags(int fd, uint32_t flags, int keep, const char* what);
bool StartsWith(const std::string& s, const char* prefix);
// Opens |f| again by its path with its saved flags (plus |extra|) and its
// close-on-exec flag, at its saved offset when |seek|; warns when
// |check_identity| and the path now leads to another file.
Result<UniqueFd> OpenByPath(const img::Fd& f, const std::string& path, int extra, bool seek, bool check_identity);

}  // namespace cf::kinds
