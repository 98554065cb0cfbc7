#include "kinds/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
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

Status RestorePerms(const std::string& path, uint32_t mode, uint32_t uid, uint32_t gid) {
  struct stat sb;
  if (stat(path.c_str(), &sb) != 0) return ErrnoStatus("stat " + path);
  if ((sb.st_uid != uid || sb.st_gid != gid) && chown(path.c_str(), uid, gid) != 0) return ErrnoStatus("chown " + path);
  if ((sb.st_mode & 07777) != mode && chmod(path.c_str(), mode) != 0) return ErrnoStatus("chmod " + path);
  return OkStatus();
}

}  // namespace

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

CgroupMounts::CgroupMounts(CgroupMounts&& o) noexcept
    : roots_(std::move(o.roots_)), mounted_(std::move(o.mounted_)), yard_(std::move(o.yard_)) {
  o.mounted_.clear();
  o.yard_.clear();
}

CgroupMounts::~CgroupMounts() {
  for (const std::string& m : mounted_) {
    umount2(m.c_str(), MNT_DETACH);
    rmdir(m.c_str());
  }
  if (!yard_.empty()) rmdir(yard_.c_str());
}

Result<std::string> CgroupMounts::Root(const std::string& controllers) {
  if (auto it = roots_.find(controllers); it != roots_.end()) return it->second;
  std::string dir = FindMount(controllers);
  if (dir.empty()) {
    if (yard_.empty()) {
      char tmpl[] = "/tmp/criu-fast-cgyard.XXXXXX";
      if (!mkdtemp(tmpl)) return ErrnoStatus("make a directory for cgroup mounts");
      yard_ = tmpl;
    }
    dir = yard_ + "/" + std::to_string(mounted_.size());
    if (mkdir(dir.c_str(), 0700) != 0) return ErrnoStatus("mkdir " + dir);
    int rc;
    if (IsV2(controllers)) {
      rc = mount("none", dir.c_str(), "cgroup2", 0, nullptr);
    } else {
      // A named hierarchy alone is mounted with "none,name=X".
      bool only_names = true;
      for (const std::string& c : Split(controllers, ',')) only_names = only_names && c.rfind("name=", 0) == 0;
      const std::string opts = (only_names ? "none," : "") + controllers;
      rc = mount("none", dir.c_str(), "cgroup", 0, opts.c_str());
    }
    if (rc != 0) {
      Status s = ErrnoStatus("mount the cgroup hierarchy '" + controllers + "'");
      rmdir(dir.c_str());
      return s;
    }
    mounted_.push_back(dir);
  }
  roots_[controllers] = dir;
  return dir;
}

Result<CgroupCollect> CgroupCollect::Read(const std::map<pid_t, std::vector<pid_t>>& threads, bool props) {
  CgroupCollect c;
  std::set<std::pair<std::string, std::string>> used;
  for (const auto& [pid, tids] : threads) {
    ASSIGN_OR_RETURN(c.by_tid_[pid], ReadCgroups(pid));
    for (pid_t tid : tids) {
      if (tid == pid) continue;
      c.leader_[tid] = pid;
      ASSIGN_OR_RETURN(std::vector<img::CgroupMember> m, ReadCgroups(pid, tid));
      if (!SameMembers(m, c.by_tid_[pid])) c.by_tid_[tid] = std::move(m);
    }
  }
  for (const auto& [tid, members] : c.by_tid_) {
    for (const img::CgroupMember& m : members) used.emplace(m.controllers(), m.path());
  }
  ASSIGN_OR_RETURN(std::vector<img::CgroupMember> own, ReadCgroups(getpid()));
  CgroupMounts mounts;
  std::set<std::pair<std::string, std::string>> saved;
  for (const auto& [controllers, path] : used) {
    const img::CgroupMember* mine = Find(own, controllers);
    // Every directory on the path, from the top, but criu-fast's own
    // cgroup and those above it (they exist as long as criu-fast does);
    // with the properties, also every cgroup below the task's.
    std::vector<std::string> dirs;
    std::string dir;
    for (const std::string& part : Split(path, '/')) {
      dir += "/" + part;
      dirs.push_back(dir);
    }
    ASSIGN_OR_RETURN(std::string root, mounts.Root(controllers));
    if (props) RETURN_IF_ERROR(ListSubtree(root + (path == "/" ? "" : path), path == "/" ? "" : path, &dirs));
    for (const std::string& d : dirs) {
      if ((mine && AtOrAbove(d, mine->path())) || !saved.emplace(controllers, d).second) continue;
      ASSIGN_OR_RETURN(img::CgroupDir cd, SaveDir(controllers, d, root + d, props));
      c.dirs_.push_back(std::move(cd));
    }
  }
  return c;
}

void CgroupCollect::Fill(img::Process* p) const {
  if (auto it = by_tid_.find(p->pid()); it != by_tid_.end()) {
    for (const img::CgroupMember& m : it->second) *p->add_cgroups() = m;
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
  for (const img::Process* p : processes) any = any || p->cgroups_size() > 0;
  if (mode == CgroupMode::kIgnore || !any) return plan;
  plan.enabled = true;
  ASSIGN_OR_RETURN(plan.own, ReadCgroups(getpid()));
  const bool create = mode == CgroupMode::kSoft || mode == CgroupMode::kFull || mode == CgroupMode::kStrict;
  for (const img::CgroupDir& d : inv.cgroup_dirs()) {
    ASSIGN_OR_RETURN(std::string root, mounts->Root(d.controllers()));
    const std::string full = root + d.path();
    bool created = false;
    if (!Exists(full) && create) {
      if (mkdir(full.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("create cgroup " + full);
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
  // write to it.
  for (const img::Process* p : processes) {
    for (const img::CgroupMember& m : p->cgroups()) {
      ASSIGN_OR_RETURN(std::string root, mounts->Root(m.controllers()));
      if (!Exists(root + m.path())) {
        return Errorf("cgroup %s of hierarchy '%s' (process %d) does not exist%s", m.path().c_str(),
                      m.controllers().c_str(), p->pid(),
                      create ? "" : ": create it, or restore with --manage-cgroups");
      }
    }
    for (const img::Thread& t : p->threads()) {
      for (const img::CgroupMember& m : t.cgroups()) RETURN_IF_ERROR(mounts->Root(m.controllers()).status());
    }
  }
  plan.roots = mounts->roots();
  return plan;
}

Status JoinCgroups(const CgroupPlan& plan, pid_t pid, const img::Process& self, const img::Process* parent) {
  if (!plan.enabled) return OkStatus();
  for (const img::CgroupMember& m : self.cgroups()) {
    const img::CgroupMember* was = parent ? Find(parent->cgroups(), m.controllers()) : Find(plan.own, m.controllers());
    if (was && was->path() == m.path()) continue;  // inherited already
    ASSIGN_OR_RETURN(std::string dir, MemberDir(plan, m));
    RETURN_IF_ERROR(WriteValue(dir + "/cgroup.procs", std::to_string(pid)).WithContext("join cgroup " + m.path()));
  }
  return OkStatus();
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
