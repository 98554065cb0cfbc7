#include "kinds/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>

#include "common/io.h"
#include "common/log.h"

namespace cf::kinds {
namespace {

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    if (end > start) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool IsV2(const std::string& controllers) { return controllers.empty(); }

// The control files saved per controller, in the order they are written
// back (a cpuset needs cpus and mems before anything joins it; memsw is
// bounded below by the memory limit).
struct ControllerProps {
  const char* controller;
  std::vector<const char*> files;
};
const std::vector<ControllerProps>& PropTable() {
  static const std::vector<ControllerProps> kTable = {
      {"cpu", {"cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.rt_period_us", "cpu.rt_runtime_us"}},
      {"cpuset",
       {"cpuset.cpus", "cpuset.mems", "cpuset.cpu_exclusive", "cpuset.mem_exclusive", "cpuset.mem_hardwall",
        "cpuset.memory_migrate", "cpuset.memory_spread_page", "cpuset.memory_spread_slab",
        "cpuset.sched_load_balance", "cpuset.sched_relax_domain_level"}},
      {"memory",
       {"memory.use_hierarchy", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
        "memory.soft_limit_in_bytes", "memory.swappiness", "memory.move_charge_at_immigrate",
        "memory.oom_control"}},
      {"devices", {"devices.list"}},
      {"blkio", {"blkio.weight"}},
      {"pids", {"pids.max"}},
      {"net_cls", {"net_cls.classid"}},
      {"net_prio", {"net_prio.ifpriomap"}},
  };
  return kTable;
}
const std::vector<const char*> kV1Common = {"notify_on_release", "cgroup.clone_children"};
const std::vector<const char*> kV2Props = {"cgroup.type",  "cgroup.subtree_control", "cpuset.cpus", "cpuset.mems",
                                           "cpu.weight",   "cpu.max",                "memory.min",  "memory.low",
                                           "memory.high",  "memory.max",             "memory.swap.max", "pids.max",
                                           "io.weight"};

std::vector<const char*> PropFiles(const std::string& controllers) {
  if (IsV2(controllers)) return kV2Props;
  std::vector<const char*> files = kV1Common;
  for (const std::string& c : Split(controllers, ',')) {
    for (const ControllerProps& cp : PropTable()) {
      if (c == cp.controller) files.insert(files.end(), cp.files.begin(), cp.files.end());
    }
  }
  return files;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// What to write to restore a property read as |value|. Most files take back
// what they gave; a few are written differently, or not at all.
std::vector<std::pair<std::string, std::string>> Writes(const std::string& dir, const img::CgroupProp& p) {
  const std::string& n = p.name();
  std::vector<std::pair<std::string, std::string>> w;
  if (n == "devices.list") {
    // Deny everything, then allow each saved rule again.
    w.emplace_back(dir + "/devices.deny", "a");
    for (const std::string& rule : Split(p.value(), '\n')) w.emplace_back(dir + "/devices.allow", rule);
  } else if (n == "memory.oom_control") {
    // "oom_kill_disable N\nunder_oom ...": only the first is settable.
    std::istringstream in(p.value());
    std::string key, val;
    if (in >> key >> val && key == "oom_kill_disable") w.emplace_back(dir + "/" + n, val);
  } else if (n == "cgroup.subtree_control") {
    std::string enable;
    for (const std::string& c : Split(p.value(), ' ')) enable += (enable.empty() ? "+" : " +") + c;
    if (!enable.empty()) w.emplace_back(dir + "/" + n, enable);
  } else if (n == "cgroup.type") {
    if (p.value() == "threaded") w.emplace_back(dir + "/" + n, "threaded");
  } else if (n == "net_prio.ifpriomap") {
    for (const std::string& line : Split(p.value(), '\n')) w.emplace_back(dir + "/" + n, line);
  } else {
    w.emplace_back(dir + "/" + n, p.value());
  }
  return w;
}

Status WriteValue(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path);
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    errno = n < 0 ? err : EIO;
    return ErrnoStatus("write '" + value + "' to " + path);
  }
  return OkStatus();
}

// The controllers of a cgroup v1 mount, from its super options.
std::set<std::string> MountControllers(const std::string& superopts, const std::set<std::string>& known) {
  std::set<std::string> out;
  for (const std::string& o : Split(superopts, ',')) {
    if (o.rfind("name=", 0) == 0 || known.count(o)) out.insert(o);
  }
  return out;
}

std::set<std::string> KnownControllers() {
  std::set<std::string> known;
  auto text = ReadFile("/proc/cgroups");
  if (!text.ok()) return known;
  for (const std::string& line : Split(*text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    known.insert(line.substr(0, line.find('\t')));
  }
  return known;
}

// An existing mount of the root of hierarchy |controllers|, or "".
std::string FindMount(const std::string& controllers) {
  auto text = ReadFile("/proc/self/mountinfo");
  if (!text.ok()) return "";
  const std::set<std::string> known = KnownControllers();
  const std::vector<std::string> wanted_list = Split(controllers, ',');
  const std::set<std::string> wanted(wanted_list.begin(), wanted_list.end());
  for (const std::string& line : Split(*text, '\n')) {
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const std::vector<std::string> head = Split(line.substr(0, dash), ' ');
    const std::vector<std::string> tail = Split(line.substr(dash + 3), ' ');
    if (head.size() < 5 || tail.size() < 3 || head[3] != "/") continue;
    if (IsV2(controllers) ? tail[0] != "cgroup2" : tail[0] != "cgroup") continue;
    if (!IsV2(controllers) && MountControllers(tail[2], known) != wanted) continue;
    if (head[4].find('\\') != std::string::npos) continue;  // an escaped path: not worth decoding
    return head[4];
  }
  return "";
}

bool Exists(const std::string& path) {
  struct stat sb;
  return stat(path.c_str(), &sb) == 0;
}

// |path| equals |own| or lies above it ("/" is above everything).
bool AtOrAbove(const std::string& path, const std::string& own) {
  if (path == "/" || path == own) return true;
  return own.size() > path.size() && own.compare(0, path.size(), path) == 0 && own[path.size()] == '/';
}

// The member of hierarchy |controllers| in |v| (a vector or a repeated field).
template <typename Members>
const img::CgroupMember* Find(const Members& v, const std::string& controllers) {
  for (const img::CgroupMember& m : v) {
    if (m.controllers() == controllers) return &m;
  }
  return nullptr;
}

// The directory of cgroup |m| in our mounts.
Result<std::string> MemberDir(const CgroupPlan& plan, const img::CgroupMember& m) {
  auto root = plan.roots.find(m.controllers());
  if (root == plan.roots.end()) return Errorf("no mount of cgroup hierarchy '%s'", m.controllers().c_str());
  return root->second + (m.path() == "/" ? "" : m.path());
}

bool SameMembers(const std::vector<img::CgroupMember>& a, const std::vector<img::CgroupMember>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].controllers() != b[i].controllers() || a[i].path() != b[i].path()) return false;
  }
  return true;
}

// Files whose owner and mode are saved, but not their content (delegating a
// cgroup to a user is done by chowning these).
const char* const kPermsOnly[] = {"cgroup.procs", "tasks", "cgroup.threads", "cgroup.subtree_control"};

// The cgroup directory |dir| (|full| in our mounts) as saved: owner, mode
// and, with |props|, its control files.
Result<img::CgroupDir> SaveDir(const std::string& controllers, const std::string& dir, const std::string& full,
                               bool props) {
  struct stat sb;
  if (stat(full.c_str(), &sb) != 0) return ErrnoStatus("stat cgroup " + full);
  img::CgroupDir d;
  d.set_controllers(controllers);
  d.set_path(dir);
  d.set_mode(sb.st_mode & 07777);
  d.set_uid(sb.st_uid);
  d.set_gid(sb.st_gid);
  if (!props) return d;
  auto add = [&](const char* file, bool perms_only) {
    const std::string path = full + "/" + file;
    struct stat fs;
    if (stat(path.c_str(), &fs) != 0) return;  // not offered by this kernel or controller
    std::string value;
    if (!perms_only) {
      auto v = ReadFile(path);
      if (!v.ok()) return;
      value = Trim(*v);
    }
    img::CgroupProp* p = d.add_props();
    p->set_name(file);
    p->set_value(value);
    p->set_mode(fs.st_mode & 07777);
    p->set_uid(fs.st_uid);
    p->set_gid(fs.st_gid);
    p->set_perms_only(perms_only);
  };
  for (const char* file : PropFiles(controllers)) add(file, false);
  for (const char* file : kPermsOnly) {
    bool listed = false;
    for (const img::CgroupProp& p : d.props()) listed = listed || p.name() == file;
    if (!listed) add(file, true);
  }
  return d;
}

// The cgroups below |full| (directories only), parents before children.
Status ListSubtree(const std::string& full, const std::string& dir, std::vector<std::string>* out) {
  DIR* dp = opendir(full.c_str());
  if (!dp) return ErrnoStatus("list cgroup " + full);
  std::vector<std::string> names;
  while (dirent* e = readdir(dp)) {
    if (e->d_type == DT_DIR && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
  }
  closedir(dp);
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) {
    out->push_back(dir + "/" + n);
    RETURN_IF_ERROR(ListSubtree(full + "/" + n, dir + "/" + n, out));
  }
  return OkStatus();
}

// The inode of /proc/|proc|/ns/cgroup; 0 when the kernel has no cgroup
// namespaces.
Result<uint64_t> NamespaceInode(const std::string& proc) {
  struct stat sb;
  const std::string path = "/proc/" + proc + "/ns/cgroup";
  if (stat(path.c_str(), &sb) != 0) {
    if (errno == ENOENT && proc == "self") return uint64_t{0};
    return ErrnoStatus("stat " + path);
  }
  return static_cast<uint64_t>(sb.st_ino);
}

// /proc/PID/cgroup as a reader inside |pid|'s cgroup namespace sees it (its
// paths start at the namespace's roots): read by a child that enters it.
Result<std::string> ReadCgroupsInNamespace(pid_t pid) {
  const std::string ns_path = "/proc/" + std::to_string(pid) + "/ns/cgroup";
  const std::string file = "/proc/" + std::to_string(pid) + "/cgroup";
  int ns = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) return ErrnoStatus("open " + ns_path);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    Status s = ErrnoStatus("pipe");
    close(ns);
    return s;
  }
  const pid_t child = fork();
  if (child == 0) {
    // Only async-signal-safe calls here: criu-fast may have threads.
    close(p[0]);
    char buf[8192];
    if (setns(ns, CLONE_NEWCGROUP) != 0) _exit(2);
    int fd = open(file.c_str(), O_RDONLY);
    if (fd < 0) _exit(3);
    for (;;) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0) _exit(4);
      if (n == 0) break;
      if (write(p[1], buf, static_cast<size_t>(n)) != n) _exit(5);
    }
    _exit(0);
  }
  const int err = errno;
  close(ns);
  close(p[1]);
  if (child < 0) {
    close(p[0]);
    errno = err;
    return ErrnoStatus("fork");
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = read(p[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(p[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Errorf("could not read %s from inside its cgroup namespace (step %d failed)", file.c_str(),
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  return text;
}

// |path| with its start |from| replaced by |to|; |path| must be |from| or
// below it.
std::string Rebase(const std::string& path, const std::string& from, const std::string& to) {
  const std::string rest = from == "/" ? (path == "/" ? "" : path) : path.substr(from.size());
  const std::string out = (to == "/" ? "" : to) + rest;
  return out.empty() ? "/" : out;
}

// A cgroup v1 cpuset made here starts with no CPUs and no memory nodes,
// and nothing can join it: it gets its parent's (saved properties, when
// there are, are written over them afterwards).
Status InheritCpuset(const std::string& dir) {
  const std::string parent = dir.substr(0, dir.rfind('/'));
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    auto cur = ReadFile(dir + "/" + file);
    if (!cur.ok() || !Trim(*cur).empty()) continue;  // not a v1 cpuset, or set already
    ASSIGN_OR_RETURN(std::string value, ReadFile(parent + "/" + file));
    value = Trim(value);
    if (!value.empty()) RETURN_IF_ERROR(WriteValue(dir + "/" + file, value).WithContext("new cpuset cgroup"));
  }
  return OkStatus();
}

// Makes cgroup |path| and those above it that are missing, down from
// |root| (which exists); each one made is added to |made|.
Status MakeCgroupPath(const std::string& controllers, const std::string& root, const std::string& path,
                      CreatedCgroups* made) {
  std::string dir = root;
  for (const std::string& part : Split(path, '/')) {
    dir += "/" + part;
    if (mkdir(dir.c_str(), 0755) == 0) {
      made->Add(dir);
      if (!IsV2(controllers)) RETURN_IF_ERROR(InheritCpuset(dir));
    } else if (errno != EEXIST) {
      return ErrnoStatus("create cgroup " + dir);
    }
  }
  return OkStatus();
}

Status RestorePerms(const std::string& path, uint32_t mode, uint32_t uid, uint32_t gid) {
  struct stat sb;
  if (stat(path.c_str(), &sb) != 0) return ErrnoStatus("stat " + path);
  if ((sb.st_uid != uid || sb.st_gid != gid) && chown(path.c_str(), uid, gid) != 0) return ErrnoStatus("chown " + path);
  if ((sb.st_mode & 07777) != mode && chmod(path.c_str(), mode) != 0) return ErrnoStatus("chmod " + path);
  return OkStatus();
}

}  // namespace

CreatedCgroups& CreatedCgroups::operator=(CreatedCgroups&& o) noexcept {
  if (this != &o) {
    RemoveAll();
    dirs_ = std::move(o.dirs_);
    o.dirs_.clear();
  }
  return *this;
}

void CreatedCgroups::RemoveAll() {
  // Deepest first: a directory was made after the one above it. A cgroup
  // whose last process has just been reaped may still read as busy for a
  // moment; give it up to a second.
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    for (int tries = 0; rmdir(it->c_str()) != 0; ++tries) {
      if (errno != EBUSY || tries >= 100) {
        if (errno != ENOENT) LOG_WARN("cgroup %s made by the restore not removed: %m", it->c_str());
        break;
      }
      usleep(10000);
    }
  }
  dirs_.clear();
}

Result<CgroupMode> ParseCgroupMode(const char* name) {
  if (name == nullptr) return CgroupMode::kSoft;
  static const std::pair<const char*, CgroupMode> kModes[] = {
      {"none", CgroupMode::kNone}, {"props", CgroupMode::kProps},   {"soft", CgroupMode::kSoft},
      {"full", CgroupMode::kFull}, {"strict", CgroupMode::kStrict}, {"ignore", CgroupMode::kIgnore}};
  for (const auto& [n, m] : kModes) {
    if (strcmp(name, n) == 0) return m;
  }
  return Error(std::string("bad --manage-cgroups mode '") + name + "'");
}

std::string MatchCgroupRoot(const CgroupRootOptions& roots, const std::string& controllers) {
  const std::vector<std::string> names = Split(controllers, ',');
  std::string global;
  for (const auto& [ctl, path] : roots) {
    if (ctl.empty()) {
      global = path;
    } else if (ctl == controllers || std::find(names.begin(), names.end(), ctl) != names.end()) {
      return path;
    }
  }
  return global;
}

Status MoveCgroupRoots(const CgroupRootOptions& roots, img::Inventory* inv,
                       const std::vector<img::Process*>& processes) {
  if (roots.empty() || processes.empty()) return OkStatus();
  // Each hierarchy's saved start (images without one: the root process's
  // cgroup), and where it goes.
  std::map<std::string, std::pair<std::string, std::string>> moves;
  for (const img::CgroupMember& m : processes[0]->cgroups()) {
    const std::string to = MatchCgroupRoot(roots, m.controllers());
    if (to.empty()) continue;
    std::string from = m.path();
    if (const img::CgroupMember* saved = Find(inv->cgroup_roots(), m.controllers())) from = saved->path();
    moves[m.controllers()] = {from, to};
    LOG_INFO("cgroups of hierarchy '%s': %s moves to %s", m.controllers().c_str(), from.c_str(), to.c_str());
  }
  auto move = [&](img::CgroupMember* m) {
    auto it = moves.find(m->controllers());
    if (it != moves.end() && AtOrAbove(it->second.first, m->path())) {
      m->set_path(Rebase(m->path(), it->second.first, it->second.second));
    }
  };
  for (img::Process* p : processes) {
    for (img::CgroupMember& m : *p->mutable_cgroups()) move(&m);
    for (img::CgroupMember& m : *p->mutable_cgroupns_roots()) move(&m);
    for (img::Thread& t : *p->mutable_threads()) {
      for (img::CgroupMember& m : *t.mutable_cgroups()) move(&m);
    }
  }
  // Saved directories below a start move with it; those above it
  // described where it was and go.
  google::protobuf::RepeatedPtrField<img::CgroupDir> dirs;
  for (img::CgroupDir& d : *inv->mutable_cgroup_dirs()) {
    auto it = moves.find(d.controllers());
    if (it != moves.end()) {
      const auto& [from, to] = it->second;
      if (AtOrAbove(from, d.path())) {
        d.set_path(Rebase(d.path(), from, to));
      } else if (AtOrAbove(d.path(), from)) {
        continue;
      }
    }
    *dirs.Add() = std::move(d);
  }
  inv->mutable_cgroup_dirs()->Swap(&dirs);
  for (img::CgroupMember& m : *inv->mutable_cgroup_roots()) {
    if (auto it = moves.find(m.controllers()); it != moves.end()) m.set_path(it->second.second);
  }
  return OkStatus();
}

Result<std::vector<img::CgroupMember>> ParseCgroups(std::string_view text) {
  std::vector<img::CgroupMember> out;
  for (const std::string& line : Split(text, '\n')) {
    // "ID:controllers:path"; the path may hold ':' itself.
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos || b + 1 >= line.size() || line[b + 1] != '/') {
      return Error("malformed cgroup line '" + line + "'");
    }
    img::CgroupMember m;
    m.set_controllers(line.substr(a + 1, b - a - 1));
    m.set_path(line.substr(b + 1));
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<img::CgroupMember>> ReadCgroups(pid_t pid, pid_t tid) {
  const std::string path = tid == 0 ? "/proc/" + std::to_string(pid) + "/cgroup"
                                    : "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/cgroup";
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto r = ParseCgroups(text);
  if (!r.ok()) return r.status().WithContext(path);
  return r;
}

CgroupMounts::CgroupMounts(CgroupMounts&& o) noexcept : roots_(std::move(o.roots_)), held_(std::move(o.held_)) {
  o.held_.clear();
}

CgroupMounts::~CgroupMounts() {
  for (int fd : held_) close(fd);
}

Result<std::string> CgroupMounts::Root(const std::string& controllers) {
  if (auto it = roots_.find(controllers); it != roots_.end()) return it->second;
  std::string dir = FindMount(controllers);
  if (dir.empty()) {
    // Mounted in a directory of our own, held by a descriptor and detached
    // at once: nothing else ever sees the mount, and nothing is left
    // mounted if criu-fast dies (the descriptor was the last user). The
    // hierarchy is reached through /proc/PID/fd/N of criu-fast, from the
    // restored processes too.
    char tmpl[] = "/tmp/criu-fast-cgroup.XXXXXX";
    if (!mkdtemp(tmpl)) return ErrnoStatus("make a directory for a cgroup mount");
    int rc;
    if (IsV2(controllers)) {
      rc = mount("none", tmpl, "cgroup2", 0, nullptr);
    } else {
      // A named hierarchy alone is mounted with "none,name=X".
      bool only_names = true;
      for (const std::string& c : Split(controllers, ',')) only_names = only_names && c.rfind("name=", 0) == 0;
      const std::string opts = (only_names ? "none," : "") + controllers;
      rc = mount("none", tmpl, "cgroup", 0, opts.c_str());
    }
    if (rc != 0) {
      Status s = ErrnoStatus("mount the cgroup hierarchy '" + controllers + "'");
      rmdir(tmpl);
      return s;
    }
    const int fd = open(tmpl, O_PATH | O_DIRECTORY | O_CLOEXEC);
    const int err = errno;
    umount2(tmpl, MNT_DETACH);
    rmdir(tmpl);
    if (fd < 0) {
      errno = err;
      return ErrnoStatus("open the cgroup hierarchy '" + controllers + "' mounted at " + tmpl);
    }
    held_.push_back(fd);
    dir = "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(fd);
    LOG_INFO("cgroups: hierarchy '%s' is mounted nowhere here: mounted for criu-fast alone (%s)",
             controllers.c_str(), dir.c_str());
  }
  roots_[controllers] = dir;
  return dir;
}

Result<CgroupCollect> CgroupCollect::Read(const CgroupDumpInput& in) {
  CgroupCollect c;
  std::set<std::pair<std::string, std::string>> used;
  for (const auto& [pid, tids] : in.threads) {
    ASSIGN_OR_RETURN(c.by_tid_[pid], ReadCgroups(pid));
    for (pid_t tid : tids) {
      if (tid == pid) continue;
      c.leader_[tid] = pid;
      ASSIGN_OR_RETURN(std::vector<img::CgroupMember> m, ReadCgroups(pid, tid));
      if (!SameMembers(m, c.by_tid_[pid])) c.by_tid_[tid] = std::move(m);
    }
  }
  RETURN_IF_ERROR(c.ReadNamespaces(in));
  for (const auto& [tid, members] : c.by_tid_) {
    for (const img::CgroupMember& m : members) used.emplace(m.controllers(), m.path());
  }
  // Where the saved tree starts in each hierarchy: --cgroup-root, else the
  // root process's cgroup. A start given by the option is saved with
  // everything below it, like the tasks' own cgroups.
  std::set<std::pair<std::string, std::string>> starts;
  if (auto it = c.by_tid_.find(in.root); it != c.by_tid_.end()) {
    for (const img::CgroupMember& m : it->second) {
      img::CgroupMember r = m;
      const std::string given = MatchCgroupRoot(in.roots, m.controllers());
      if (!given.empty()) {
        r.set_path(given);
        starts.emplace(m.controllers(), given);
      }
      c.roots_.push_back(std::move(r));
    }
  }
  used.insert(starts.begin(), starts.end());
  ASSIGN_OR_RETURN(std::vector<img::CgroupMember> own, ReadCgroups(getpid()));
  CgroupMounts mounts;
  std::set<std::pair<std::string, std::string>> saved;
  for (const auto& [controllers, path] : used) {
    const img::CgroupMember* mine = Find(own, controllers);
    // Every directory on the path, from the top, but criu-fast's own
    // cgroup and those above it (they exist as long as criu-fast does);
    // with the properties (or from a --cgroup-root), also every cgroup
    // below.
    std::vector<std::string> dirs;
    std::string dir;
    for (const std::string& part : Split(path, '/')) {
      dir += "/" + part;
      dirs.push_back(dir);
    }
    const bool list = in.props || starts.count({controllers, path});
    // A hierarchy with nothing to save is not looked at (not mounted for
    // the dump when nothing mounts it).
    bool any = list;
    for (const std::string& d : dirs) any = any || !(mine && AtOrAbove(d, mine->path()));
    if (!any) continue;
    ASSIGN_OR_RETURN(std::string root, mounts.Root(controllers));
    const std::string full = root + (path == "/" ? "" : path);
    if (starts.count({controllers, path}) && !Exists(full)) {
      return Errorf("--cgroup-root %s: no such cgroup in hierarchy '%s'", path.c_str(), controllers.c_str());
    }
    if (list) {
      RETURN_IF_ERROR(ListSubtree(full, path == "/" ? "" : path, &dirs));
    }
    for (const std::string& d : dirs) {
      if ((mine && AtOrAbove(d, mine->path())) || !saved.emplace(controllers, d).second) continue;
      ASSIGN_OR_RETURN(img::CgroupDir cd, SaveDir(controllers, d, root + d, in.props));
      c.dirs_.push_back(std::move(cd));
    }
  }
  return c;
}

// The cgroup namespace of every process that is not in criu-fast's: its
// root in each hierarchy is what the process's cgroup path, as seen from
// the host, has before the path seen from inside the namespace.
Status CgroupCollect::ReadNamespaces(const CgroupDumpInput& in) {
  ASSIGN_OR_RETURN(uint64_t ours, NamespaceInode("self"));
  if (ours == 0) return OkStatus();  // no cgroup namespaces in this kernel
  std::map<uint64_t, std::vector<pid_t>> members;
  for (const auto& [pid, tids] : in.threads) {
    ASSIGN_OR_RETURN(uint64_t ns, NamespaceInode(std::to_string(pid)));
    if (ns != ours) members[ns].push_back(pid);
  }
  for (const auto& [ns, pids] : members) {
    // Restore makes each namespace once, in the process that entered it;
    // the others must be its descendants, made in it.
    const std::set<pid_t> in_ns(pids.begin(), pids.end());
    std::vector<pid_t> entered;
    for (pid_t pid : pids) {
      auto parent = in.parents.find(pid);
      if (pid == in.root || parent == in.parents.end() || !in_ns.count(parent->second)) entered.push_back(pid);
    }
    if (entered.size() > 1) {
      return Errorf("processes %d and %d entered one cgroup namespace separately (setns): not supported", entered[0],
                    entered[1]);
    }
    ASSIGN_OR_RETURN(std::string inside, ReadCgroupsInNamespace(pids[0]));
    ASSIGN_OR_RETURN(std::vector<img::CgroupMember> seen, ParseCgroups(inside));
    const std::vector<img::CgroupMember>& host = by_tid_[pids[0]];
    Namespace n;
    n.inode = ns;
    for (const img::CgroupMember& h : host) {
      const img::CgroupMember* s = Find(seen, h.controllers());
      if (!s) {
        return Errorf("process %d: hierarchy '%s' not seen from its cgroup namespace", pids[0],
                      h.controllers().c_str());
      }
      const std::string& hp = h.path();
      const std::string& sp = s->path();
      std::string root;
      if (sp == "/") {
        root = hp;
      } else if (sp.rfind("/..", 0) != 0 && hp.size() >= sp.size() &&
                 hp.compare(hp.size() - sp.size(), sp.size(), sp) == 0) {
        root = hp.substr(0, hp.size() - sp.size());
        if (root.empty()) root = "/";
      } else {
        return Errorf("process %d lives outside the root of its cgroup namespace (%s in hierarchy '%s'): not supported",
                      pids[0], sp.c_str(), h.controllers().c_str());
      }
      img::CgroupMember r;
      r.set_controllers(h.controllers());
      r.set_path(root);
      n.roots.push_back(std::move(r));
    }
    for (pid_t pid : pids) ns_[pid] = n;
  }
  return OkStatus();
}

void CgroupCollect::Fill(img::Process* p) const {
  if (auto it = by_tid_.find(p->pid()); it != by_tid_.end()) {
    for (const img::CgroupMember& m : it->second) *p->add_cgroups() = m;
  }
  if (auto it = ns_.find(p->pid()); it != ns_.end()) {
    p->set_cgroupns(it->second.inode);
    for (const img::CgroupMember& m : it->second.roots) *p->add_cgroupns_roots() = m;
  }
  for (img::Thread& t : *p->mutable_threads()) {
    if (t.tid() == p->pid()) continue;
    if (auto it = by_tid_.find(t.tid()); it != by_tid_.end()) {
      for (const img::CgroupMember& m : it->second) *t.add_cgroups() = m;
    }
  }
}

Result<CgroupPlan> PrepareCgroups(const img::Inventory& inv, const std::vector<const img::Process*>& processes,
                                  CgroupMode mode, CgroupMounts* mounts) {
  CgroupPlan plan;
  bool any = false;
  for (const img::Process* p : processes) {
    any = any || p->cgroups_size() > 0;
    if (p->cgroupns() != 0 && mode == CgroupMode::kIgnore) {
      return Errorf("process %d lives in a cgroup namespace of its own: it cannot be restored with "
                    "--manage-cgroups=ignore (its roots are cgroups)",
                    p->pid());
    }
  }
  if (mode == CgroupMode::kIgnore || !any) return plan;
  plan.enabled = true;
  ASSIGN_OR_RETURN(plan.own, ReadCgroups(getpid()));
  const bool create = mode == CgroupMode::kSoft || mode == CgroupMode::kFull || mode == CgroupMode::kStrict;
  for (const img::CgroupDir& d : inv.cgroup_dirs()) {
    ASSIGN_OR_RETURN(std::string root, mounts->Root(d.controllers()));
    const std::string full = root + d.path();
    bool created = false;
    if (!Exists(full) && create) {
      // Those above it exist unless --cgroup-root moved it somewhere new.
      RETURN_IF_ERROR(
          MakeCgroupPath(d.controllers(), root, d.path().substr(0, d.path().rfind('/')), &plan.created));
      if (mkdir(full.c_str(), 0700) == 0) {
        plan.created.Add(full);
      } else if (errno != EEXIST) {
        return ErrnoStatus("create cgroup " + full);
      }
      if (!IsV2(d.controllers())) RETURN_IF_ERROR(InheritCpuset(full));
      RETURN_IF_ERROR(RestorePerms(full, d.mode(), d.uid(), d.gid()));
      created = true;
    }
    const bool set = mode == CgroupMode::kFull || mode == CgroupMode::kStrict || mode == CgroupMode::kProps ||
                     (mode == CgroupMode::kSoft && created);
    if (!set || !Exists(full)) continue;
    if (!created) RETURN_IF_ERROR(RestorePerms(full, d.mode(), d.uid(), d.gid()));
    for (const img::CgroupProp& p : d.props()) {
      RETURN_IF_ERROR(RestorePerms(full + "/" + p.name(), p.mode(), p.uid(), p.gid()));
      if (p.perms_only()) continue;
      // A value equal to the current one needs no write (and some files
      // refuse to be written in some states even with the same value).
      if (auto cur = ReadFile(full + "/" + p.name()); cur.ok() && Trim(*cur) == p.value()) continue;
      for (const auto& [file, value] : Writes(full, p)) {
        RETURN_IF_ERROR(WriteValue(file, value).WithContext("restore cgroup property " + p.name()));
      }
    }
  }
  // Every hierarchy a process joins is resolved now: the processes only
  // write to it. A cgroup not saved as a directory (criu-fast's own, or
  // where --cgroup-root moved it) is made here when the mode creates.
  for (const img::Process* p : processes) {
    std::vector<img::CgroupMember> wanted(p->cgroups().begin(), p->cgroups().end());
    wanted.insert(wanted.end(), p->cgroupns_roots().begin(), p->cgroupns_roots().end());
    for (const img::CgroupMember& m : wanted) {
      // criu-fast's own cgroup: the processes there need no mount of it
      // (one there already inherits it; one joining it from elsewhere has
      // a parent elsewhere, whose cgroup resolves the hierarchy).
      if (const img::CgroupMember* mine = Find(plan.own, m.controllers()); mine && mine->path() == m.path()) continue;
      ASSIGN_OR_RETURN(std::string root, mounts->Root(m.controllers()));
      if (!Exists(root + m.path()) && create) {
        RETURN_IF_ERROR(MakeCgroupPath(m.controllers(), root, m.path(), &plan.created));
      }
      if (!Exists(root + m.path())) {
        return Errorf("cgroup %s of hierarchy '%s' (process %d) does not exist%s", m.path().c_str(),
                      m.controllers().c_str(), p->pid(),
                      create ? "" : ": create it, or restore with --manage-cgroups");
      }
    }
    for (const img::Thread& t : p->threads()) {
      for (const img::CgroupMember& m : t.cgroups()) {
        if (const img::CgroupMember* mine = Find(plan.own, m.controllers()); mine && mine->path() == m.path()) {
          const img::CgroupMember* proc = Find(p->cgroups(), m.controllers());
          if (proc && proc->path() == m.path()) continue;  // with its process: never moved
        }
        ASSIGN_OR_RETURN(std::string root, mounts->Root(m.controllers()));
        if (!Exists(root + m.path()) && create) {
          RETURN_IF_ERROR(MakeCgroupPath(m.controllers(), root, m.path(), &plan.created));
        }
      }
    }
  }
  plan.roots = mounts->roots();
  return plan;
}

Status JoinCgroups(const CgroupPlan& plan, pid_t pid, const img::Process& self, const img::Process* parent) {
  if (!plan.enabled) return OkStatus();
  const bool new_ns = self.cgroupns() != 0 && (parent == nullptr || parent->cgroupns() != self.cgroupns());
  if (new_ns) {
    // The namespace's roots are where the process stands when it unshares;
    // it then joins its own cgroups, at or below them.
    for (const img::CgroupMember& r : self.cgroupns_roots()) {
      const img::CgroupMember* was =
          parent ? Find(parent->cgroups(), r.controllers()) : Find(plan.own, r.controllers());
      if (was && was->path() == r.path()) continue;  // there already
      ASSIGN_OR_RETURN(std::string dir, MemberDir(plan, r));
      RETURN_IF_ERROR(WriteValue(dir + "/cgroup.procs", std::to_string(pid))
                          .WithContext("join cgroup namespace root " + r.path()));
    }
    if (unshare(CLONE_NEWCGROUP) != 0) return ErrnoStatus("unshare(CLONE_NEWCGROUP)");
  }
  for (const img::CgroupMember& m : self.cgroups()) {
    const img::CgroupMember* was = new_ns   ? Find(self.cgroupns_roots(), m.controllers())
                                   : parent ? Find(parent->cgroups(), m.controllers())
                                            : Find(plan.own, m.controllers());
    if (was && was->path() == m.path()) continue;  // inherited already
    ASSIGN_OR_RETURN(std::string dir, MemberDir(plan, m));
    RETURN_IF_ERROR(WriteValue(dir + "/cgroup.procs", std::to_string(pid)).WithContext("join cgroup " + m.path()));
  }
  return OkStatus();
}

ProbeResult ProbeCgroupNamespaces() {
  struct stat sb;
  if (stat("/proc/self/ns/cgroup", &sb) != 0) return ProbeFailed("/proc/self/ns/cgroup", errno);
  return {true, ""};
}

Status MoveThreads(const CgroupPlan& plan, const img::Process& p) {
  if (!plan.enabled) return OkStatus();
  for (const img::Thread& t : p.threads()) {
    for (const img::CgroupMember& m : t.cgroups()) {
      const img::CgroupMember* proc = Find(p.cgroups(), m.controllers());
      if (proc && proc->path() == m.path()) continue;
      ASSIGN_OR_RETURN(std::string dir, MemberDir(plan, m));
      const std::string file = IsV2(m.controllers()) ? "/cgroup.threads" : "/tasks";
      RETURN_IF_ERROR(WriteValue(dir + file, std::to_string(t.tid()))
                          .WithContext("move thread " + std::to_string(t.tid()) + " to cgroup " + m.path()));
    }
  }
  return OkStatus();
}

}  // namespace cf::kinds
