// Cgroups: which cgroup each process and thread of the tree belongs to, in
// every hierarchy (v1 controllers, named v1 hierarchies, cgroup2), and with
// --manage-cgroups the properties of those cgroups.
//
// Dump reads /proc/PID/task/TID/cgroup of every thread (Process.cgroups;
// Thread.cgroups only where a thread differs), and the directories on those
// paths below the cgroup criu-fast itself runs in (Inventory.cgroup_dirs:
// owner and mode always, the control files of kCgroupProps with a managing
// mode).
//
// Restore, before any process is created, finds a mount of each hierarchy
// (criu-fast's mountinfo, or one it mounts in a private directory for the
// time of the restore), creates the directories that are missing and writes
// their properties back as the mode says. Each new process then joins its
// cgroups itself, first thing (so its memory is charged where it was), and
// criu-fast moves the threads that differ once they exist.
//
// --cgroup-root [CONTROLLER:]/PATH (CRIU's): at dump, the cgroup the saved
// tree of directories starts at, for the hierarchies holding CONTROLLER
// (all others without one): it and everything below it are saved, empty
// cgroups too. Without it, the tree starts at the root process's cgroup.
// The image records that start (Inventory.cgroup_roots). At restore, the
// saved start moves to PATH: every cgroup below it, the processes' and the
// saved directories', is made and joined below PATH instead.
//
// Cgroup namespaces: a process in a cgroup namespace other than
// criu-fast's is saved with the namespace's root in each hierarchy (read
// from inside the namespace); at restore the one process that entered it
// joins the roots, unshares CLONE_NEWCGROUP there and then joins its own
// cgroups; its children inherit the namespace.
//
// Modes (CRIU's --manage-cgroups): none: cgroups are neither created nor
// given properties (membership only); props: properties of existing
// cgroups, none created; soft (the option without a mode, and the default
// on restore): missing cgroups are created and only those get their
// properties; full and strict: every saved cgroup gets its properties;
// ignore: cgroups are left alone (the restored tree stays in criu-fast's).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"

namespace cf::kinds {

enum class CgroupMode { kNone, kProps, kSoft, kFull, kStrict, kIgnore };

// CRIU's mode names; nullptr (the option without a mode) is soft.
Result<CgroupMode> ParseCgroupMode(const char* name);

// One line per hierarchy of /proc/PID/task/TID/cgroup (TID 0: the process).
Result<std::vector<img::CgroupMember>> ReadCgroups(pid_t pid, pid_t tid = 0);
// The same, from the file's text.
Result<std::vector<img::CgroupMember>> ParseCgroups(std::string_view text);

// Hierarchies by their controllers string, each at a directory of ours:
// an existing mount of the hierarchy's root, or, for a hierarchy mounted
// nowhere, a mount of criu-fast's own that no one else sees (detached at
// once, reached through a descriptor this object holds).
class CgroupMounts {
 public:
  CgroupMounts() = default;
  CgroupMounts(CgroupMounts&& o) noexcept;
  CgroupMounts& operator=(CgroupMounts&&) = delete;
  CgroupMounts(const CgroupMounts&) = delete;
  ~CgroupMounts();
  // The root directory of the hierarchy named |controllers|.
  Result<std::string> Root(const std::string& controllers);
  // What the hierarchies were resolved to so far (a restored process
  // reads it after fork: it mounts nothing itself).
  const std::map<std::string, std::string>& roots() const { return roots_; }

 private:
  std::map<std::string, std::string> roots_;
  std::vector<int> held_;  // descriptors of our detached mounts
};

// --cgroup-root options: (controller, path), "" for the one without.
using CgroupRootOptions = std::vector<std::pair<std::string, std::string>>;

// The path |roots| gives hierarchy |controllers|: the option naming one of
// its controllers, else the one without a controller; "" when none.
std::string MatchCgroupRoot(const CgroupRootOptions& roots, const std::string& controllers);

// What the dump reads the cgroups of.
struct CgroupDumpInput {
  std::map<pid_t, std::vector<pid_t>> threads;  // each process's pid and its threads' ids
  std::map<pid_t, pid_t> parents;               // each process's parent (the root's: outside the tree)
  pid_t root = 0;                               // the root process
  bool props = false;                           // directories' control files too (--manage-cgroups)
  CgroupRootOptions roots;                      // dump --cgroup-root
};

// Dump: the cgroups of every thread of the tree, read once.
class CgroupCollect {
 public:
  static Result<CgroupCollect> Read(const CgroupDumpInput& in);
  // Sets p->cgroups, its cgroup namespace and each thread's cgroups (the
  // threads already in |p|).
  void Fill(img::Process* p) const;
  const std::vector<img::CgroupDir>& dirs() const { return dirs_; }
  // Per hierarchy, where the saved directories start.
  const std::vector<img::CgroupMember>& roots() const { return roots_; }

 private:
  struct Namespace {
    uint64_t inode = 0;
    std::vector<img::CgroupMember> roots;
  };
  Status ReadNamespaces(const CgroupDumpInput& in);
  std::map<pid_t, std::vector<img::CgroupMember>> by_tid_;  // process and thread ids
  std::map<pid_t, pid_t> leader_;                            // tid -> its process
  std::map<pid_t, Namespace> ns_;                            // processes in a cgroup namespace not ours
  std::vector<img::CgroupDir> dirs_;
  std::vector<img::CgroupMember> roots_;
};

// Restore --cgroup-root: moves, in |inv| and |processes|, every cgroup below
// the saved start of a hierarchy the options name to below the new path
// (the saved directories above the start are dropped). |processes|: the
// root process first.
Status MoveCgroupRoots(const CgroupRootOptions& roots, img::Inventory* inv,
                       const std::vector<img::Process*>& processes);

// The cgroup directories a restore made, removed again (deepest first)
// unless the restore kept them: a failed restore leaves none behind. The
// processes in them must be gone first (restore kills and reaps its
// half-made tree before this is destroyed).
class CreatedCgroups {
 public:
  CreatedCgroups() = default;
  CreatedCgroups(CreatedCgroups&& o) noexcept : dirs_(std::move(o.dirs_)) { o.dirs_.clear(); }
  CreatedCgroups& operator=(CreatedCgroups&& o) noexcept;
  CreatedCgroups(const CreatedCgroups&) = delete;
  CreatedCgroups& operator=(const CreatedCgroups&) = delete;
  ~CreatedCgroups() { RemoveAll(); }

  void Add(std::string dir) { dirs_.push_back(std::move(dir)); }
  void Keep() { dirs_.clear(); }
  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  void RemoveAll();
  std::vector<std::string> dirs_;  // in the order made
};

// Restore: what each new process needs to join its cgroups.
struct CgroupPlan {
  bool enabled = false;                         // false: ignore mode, or nothing saved
  std::map<std::string, std::string> roots;     // hierarchy -> directory
  std::vector<img::CgroupMember> own;           // criu-fast's own cgroups
  CreatedCgroups created;                       // made by PrepareCgroups: Keep() once restored
};

// Restore, before any process exists: mounts, creates and sets what the
// mode says. |mounts| must outlive the restore.
Result<CgroupPlan> PrepareCgroups(const img::Inventory& inv, const std::vector<const img::Process*>& processes,
                                  CgroupMode mode, CgroupMounts* mounts);

// In a new process (its pid |pid|), first thing: joins the cgroups of |self|
// that differ from |parent|'s (nullptr: from criu-fast's own), and enters a
// new cgroup namespace where |self| lives in one its parent does not.
Status JoinCgroups(const CgroupPlan& plan, pid_t pid, const img::Process& self, const img::Process* parent);

// The kernel has cgroup namespaces (`check --feature cgroupns`).
ProbeResult ProbeCgroupNamespaces();

// Moves the threads of |p| whose cgroups differ from the process's (they
// exist by now: criu-fast holds them stopped).
Status MoveThreads(const CgroupPlan& plan, const img::Process& p);

}  // namespace cf::kinds
