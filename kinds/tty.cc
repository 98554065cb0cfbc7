// Pseudo-terminal pairs (/dev/ptmx and /dev/pts/N): one FileObject per
// pair (TtyPair), one TtyEnd per descriptor of either side.
//
// Dump (the tree-wide pass): each pair is read once, through a copy of its
// master when the tree holds one: termios and window size, lock, packet and
// exclusive modes, the session that has it as controlling terminal and its
// foreground group (TIOCGSID, TIOCGPGRP: asked through the master, they
// work from outside the session), whether the slave was closed (the
// master polls POLLHUP), the owner and mode of the slave's devpts node, and
// the bytes queued either way (kinds/tty_state.h: taken, and put back when
// the tree runs on). A pair with slave ends only is either dead (its
// master was closed: the ends are hung up) or a terminal outside the tree,
// taken with --shell-job only (external).
//
// Restore: the owner (the lowest common ancestor of the holders and of the
// session leader whose controlling terminal it is) opens a new pair through
// /dev/ptmx; its number may differ, but every end of one pair in the image
// is an end of one new pair. It sets the settings back, puts the queued
// bytes back, opens one slave description per saved one (TIOCGPTPEER),
// closes the slave again when the tree held none (the master then reads
// EIO as before), closes the master of a dead pair (hanging its slave ends
// up) and locks the pair last when it was locked. Then, before creating
// its children, the session leader makes it its controlling terminal
// (TIOCSCTTY) and the leader of the foreground group makes that group the
// foreground one (kinds/tty_session.cc), so that every process of the
// session inherits it.
//
// An external terminal (--shell-job) becomes criu-fast's own terminal (its
// stdin), as CRIU does: the shell job comes back in the terminal it is
// restored from, with its termios and window size.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/io.h"
#include "common/log.h"
#include "kinds/kind.h"
#include "kinds/tty_session.h"
#include "kinds/tty_state.h"

namespace cf::kinds {
namespace {

constexpr unsigned kPtsMajor = 136;  // UNIX98_PTY_SLAVE_MAJOR, 8 majors
constexpr unsigned kPtsMajors = 8;
constexpr int kTtyFlags = O_NONBLOCK;  // file status flags an end keeps

bool IsMaster(const struct stat& sb) { return S_ISCHR(sb.st_mode) && sb.st_rdev == makedev(5, 2); }
bool IsSlave(const struct stat& sb) {
  return S_ISCHR(sb.st_mode) && major(sb.st_rdev) >= kPtsMajor && major(sb.st_rdev) < kPtsMajor + kPtsMajors;
}
uint32_t SlaveIndex(dev_t rdev) { return (major(rdev) - kPtsMajor) * 256 + minor(rdev); }

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<int> IntIoctl(int fd, unsigned long req, const char* what) {
  int v = 0;
  if (ioctl(fd, req, &v) != 0) return ErrnoStatus(what);
  return v;
}

// A new slave description of the pair of |master|, unlocked for the moment
// if it is locked.
Result<UniqueFd> OpenSlave(int master, int flags) {
  ASSIGN_OR_RETURN(int locked, IntIoctl(master, TIOCGPTLCK, "TIOCGPTLCK"));
  const int zero = 0, one = 1;
  if (locked && ioctl(master, TIOCSPTLCK, &zero) != 0) return ErrnoStatus("unlock the pty");
  UniqueFd s(ioctl(master, TIOCGPTPEER, (flags & O_ACCMODE) | O_NOCTTY | O_CLOEXEC));
  const int err = errno;
  if (locked && ioctl(master, TIOCSPTLCK, &one) != 0) return ErrnoStatus("lock the pty again");
  if (!s.valid()) return ErrnoStatus(err, "open the pty's slave (TIOCGPTPEER)");
  return s;
}

// The controlling terminal and foreground group /proc/PID/stat shows (tty_nr
// and tpgid, fields 7 and 8), and the session (field 6).
struct StatTty {
  pid_t sid = 0;
  dev_t tty = 0;
  pid_t tpgid = 0;
};
Result<StatTty> ReadStatTty(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path);
  char buf[1024];
  const ssize_t n = read(fd.get(), buf, sizeof(buf) - 1);
  if (n <= 0) return ErrnoStatus("read " + path);
  buf[n] = 0;
  const char* p = strrchr(buf, ')');
  int ppid, pgrp, sid, tty_nr, tpgid;
  char state;
  if (p == nullptr || sscanf(p + 1, " %c %d %d %d %d %d", &state, &ppid, &pgrp, &sid, &tty_nr, &tpgid) != 6) {
    return Error("parse " + path);
  }
  StatTty out;
  out.sid = sid;
  // new_encode_dev(): minor bits 0-7 and 20-31, major bits 8-19.
  const auto nr = static_cast<unsigned>(tty_nr);
  out.tty = makedev((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00));
  out.tpgid = tpgid;
  return out;
}

struct Holder {
  pid_t pid;
  int fd;
  std::string link;
};

// What the pass knows of one pair, and what it took from it.
struct PairSeen {
  uint64_t id = 0;
  uint32_t index = 0;
  pid_t carrier = 0;  // the first process holding an end: the object goes in its core
  std::optional<Holder> master;
  std::vector<Holder> slaves;
  bool dead = false;
  // Taken at Finish, kept for PutBack.
  img::TtyPair state;
  UniqueFd master_copy, slave_copy;
  bool taken = false;
};

class PtyPass final : public TreePass {
 public:
  explicit PtyPass(bool shell_job) : shell_job_(shell_job) {}

  Status Add(const FdSight& s, const FdInfo&, bool, img::Fd* f) override {
    const img::TtyEnd& end = f->tty();
    auto [it, fresh] = pairs_.try_emplace(end.pair());
    PairSeen& p = it->second;
    if (fresh) {
      p.id = end.pair();
      p.index = end.index();
      p.carrier = s.pid;
      order_.push_back(end.pair());
    }
    if (end.master()) {
      if (!p.master) p.master = Holder{s.pid, s.fd, s.link};
    } else {
      p.slaves.push_back({s.pid, s.fd, s.link});
      p.dead = p.dead || EndsWith(s.link, " (deleted)");
    }
    return OkStatus();
  }

  Status Finish(TreeFds& fds) override {
    for (uint64_t id : order_) {
      PairSeen& p = pairs_.at(id);
      const Holder& first = p.master ? *p.master : p.slaves.front();
      const std::string name = FdSight{first.pid, first.fd, first.link, {}}.Name();
      img::FileObject obj;
      img::TtyPair* t = obj.mutable_tty_pair();
      t->set_pair(p.id);
      t->set_index(p.index);
      if (p.master) {
        RETURN_IF_ERROR(ReadPair(&p, t).WithContext(name));
      } else {
        RETURN_IF_ERROR(ReadSlavesOnly(&p, t).WithContext(name));
      }
      LOG_DEBUG("files: pty %u%s: sid %d, foreground %d, %d input lines + %zu bytes, %zu output bytes", p.index,
                t->external() ? " (external)" : t->hung_up() ? " (hung up)" : "", t->sid(), t->fg_pgid(),
                t->input_lines_size(), t->input_tail().size(), t->output().size());
      p.state = *t;
      fds.AddObject(p.carrier, std::move(obj));
    }
    return OkStatus();
  }

  void PutBack() override {
    for (auto& [id, p] : pairs_) {
      if (!p.taken || !HasQueued(p.state)) continue;
      Status st = PutQueued(p.slave_copy.get(), p.state);
      if (!st.ok()) LOG_WARN("files: pty %u: its queued bytes could not be put back: %s", p.index, st.ToString().c_str());
      p.taken = false;
    }
  }

 private:
  // A pair whose master the tree holds.
  Status ReadPair(PairSeen* p, img::TtyPair* t) {
    ASSIGN_OR_RETURN(p->master_copy, TakeFd(p->master->pid, p->master->fd));
    const int m = p->master_copy.get();
    RETURN_IF_ERROR(ReadTermios(m, t->mutable_termios()));
    RETURN_IF_ERROR(ReadWinsize(m, t->mutable_winsize()));
    ASSIGN_OR_RETURN(int locked, IntIoctl(m, TIOCGPTLCK, "TIOCGPTLCK"));
    ASSIGN_OR_RETURN(int packet, IntIoctl(m, TIOCGPKT, "TIOCGPKT"));
    ASSIGN_OR_RETURN(int excl, IntIoctl(m, TIOCGEXCL, "TIOCGEXCL"));
    t->set_locked(locked);
    t->set_packet(packet);
    t->set_master_exclusive(excl);
    // Not a controlling terminal: ENOTTY.
    int v = 0;
    if (ioctl(m, TIOCGSID, &v) == 0) {
      t->set_sid(v);
      if (ioctl(m, TIOCGPGRP, &v) == 0) t->set_fg_pgid(v);
    }
    pollfd pfd{m, POLLIN, 0};
    if (poll(&pfd, 1, 0) < 0) return ErrnoStatus("poll the master");
    t->set_slave_closed(p->slaves.empty() && (pfd.revents & POLLHUP));
    // The input queue needs a slave end: the tree's, or one of our own
    // when the slave was opened before (never opened: not read, see
    // tty_state.h).
    if (!p->slaves.empty()) {
      ASSIGN_OR_RETURN(p->slave_copy, TakeFd(p->slaves.front().pid, p->slaves.front().fd));
    } else if (t->slave_closed()) {
      ASSIGN_OR_RETURN(p->slave_copy, OpenSlave(m, O_RDWR));
    }
    if (p->slave_copy.valid()) {
      const int s = p->slave_copy.get();
      ASSIGN_OR_RETURN(int sexcl, IntIoctl(s, TIOCGEXCL, "TIOCGEXCL of the slave"));
      t->set_slave_exclusive(sexcl);
      struct stat sb;
      if (fstat(s, &sb) != 0) return ErrnoStatus("stat the slave");
      t->set_slave_uid(sb.st_uid);
      t->set_slave_gid(sb.st_gid);
      t->set_slave_mode(sb.st_mode & 07777);
    } else {
      const std::string path = "/dev/pts/" + std::to_string(p->index);
      struct stat sb;
      if (stat(path.c_str(), &sb) == 0 && IsSlave(sb) && SlaveIndex(sb.st_rdev) == p->index) {
        t->set_slave_uid(sb.st_uid);
        t->set_slave_gid(sb.st_gid);
        t->set_slave_mode(sb.st_mode & 07777);
      }
    }
    RETURN_IF_ERROR(TakeQueued(m, p->slave_copy.valid() ? p->slave_copy.get() : -1, t));
    p->taken = true;
    if (!HasQueued(*t)) return OkStatus();
    if (!p->slave_copy.valid()) return Error("bytes queued for a slave that was never opened");
    return OkStatus();
  }

  // Slave ends only: a dead pair, or a terminal outside the tree.
  Status ReadSlavesOnly(PairSeen* p, img::TtyPair* t) {
    if (p->dead) {
      t->set_hung_up(true);
      return OkStatus();
    }
    if (!shell_job_) {
      return Error("a terminal whose master is outside the tree: not supported (a shell job needs --shell-job)");
    }
    t->set_external(true);
    ASSIGN_OR_RETURN(UniqueFd s, TakeFd(p->slaves.front().pid, p->slaves.front().fd));
    RETURN_IF_ERROR(ReadTermios(s.get(), t->mutable_termios()));
    RETURN_IF_ERROR(ReadWinsize(s.get(), t->mutable_winsize()));
    // Which session has it (the master is not ours to ask): a holder whose
    // controlling terminal it is says so, with the foreground group.
    struct stat sb;
    if (fstat(s.get(), &sb) != 0) return ErrnoStatus("stat the terminal");
    for (const Holder& h : p->slaves) {
      ASSIGN_OR_RETURN(StatTty st, ReadStatTty(h.pid));
      if (st.tty != sb.st_rdev) continue;
      t->set_sid(st.sid);
      t->set_fg_pgid(st.tpgid > 0 ? st.tpgid : 0);
      break;
    }
    return OkStatus();
  }

  bool shell_job_;
  std::map<uint64_t, PairSeen> pairs_;
  std::vector<uint64_t> order_;
};

// Creates the pair |t| and its ends.
class PairMaker {
 public:
  PairMaker(const img::TtyPair& t, const SharedObject& obj) : t_(t), obj_(obj) {}

  Status Make(CreatedFiles* out) {
    master_.reset(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master_.valid()) return ErrnoStatus("open /dev/ptmx");
    const int zero = 0, one = 1;
    if (ioctl(master_.get(), TIOCSPTLCK, &zero) != 0) return ErrnoStatus("unlock the new pty");
    const bool slave_held = HoldsSlave();
    if (!t_.hung_up()) {
      // Through the master: the slave may never have been opened.
      RETURN_IF_ERROR(ApplyTermios(master_.get(), t_.termios()));
      RETURN_IF_ERROR(ApplyWinsize(master_.get(), t_.winsize()));
    }
    if (slave_held || t_.slave_closed() || HasQueued(t_)) {
      ASSIGN_OR_RETURN(slave_, OpenSlave(master_.get(), O_RDWR));
      if (t_.slave_mode() != 0) {
        if (fchown(slave_.get(), t_.slave_uid(), t_.slave_gid()) != 0) return ErrnoStatus("chown the slave");
        if (fchmod(slave_.get(), t_.slave_mode()) != 0) return ErrnoStatus("chmod the slave");
      }
      if (HasQueued(t_)) RETURN_IF_ERROR(PutQueued(slave_.get(), t_).WithContext("put the queued bytes back"));
    }
    if (t_.packet() && ioctl(master_.get(), TIOCPKT, &one) != 0) return ErrnoStatus("TIOCPKT");
    bool slave_used = false;
    for (const auto& [id, f] : obj_.files) {
      UniqueFd d;
      if (f->tty().master()) {
        d.reset(fcntl(master_.get(), F_DUPFD_CLOEXEC, 0));
        if (!d.valid()) return ErrnoStatus("dup the master");
      } else if (!slave_used && slave_.valid() && (f->flags() & O_ACCMODE) == O_RDWR) {
        d = std::move(slave_);
        slave_used = true;
      } else {
        ASSIGN_OR_RETURN(d, OpenSlave(master_.get(), static_cast<int>(f->flags())));
      }
      RETURN_IF_ERROR(SetStatusFlags(d.get(), f->flags(), kTtyFlags, "pty end"));
      if (!f->tty().master()) any_slave_ = d.get();
      (*out)[id] = std::move(d);
    }
    if (t_.master_exclusive() && ioctl(master_.get(), TIOCEXCL) != 0) return ErrnoStatus("TIOCEXCL");
    if (t_.slave_exclusive() && any_slave_ >= 0 && ioctl(any_slave_, TIOCEXCL) != 0) {
      return ErrnoStatus("TIOCEXCL on the slave");
    }
    if (t_.locked() && ioctl(master_.get(), TIOCSPTLCK, &one) != 0) return ErrnoStatus("lock the pty");
    // Our own slave (when unused) and master close here: a dead pair's
    // slave ends hang up.
    return OkStatus();
  }

 private:
  bool HoldsSlave() const {
    for (const auto& [id, f] : obj_.files) {
      if (!f->tty().master()) return true;
    }
    return false;
  }

  const img::TtyPair& t_;
  const SharedObject& obj_;
  UniqueFd master_, slave_;
  int any_slave_ = -1;
};

// A terminal outside the tree: criu-fast's own (its stdin, which every
// process of the tree still has before its descriptors are placed).
Status MakeExternal(const img::TtyPair& t, const SharedObject& obj, CreatedFiles* out) {
  if (!isatty(STDIN_FILENO)) {
    return Error("the tree had a terminal outside it (--shell-job), and criu-fast's stdin is no terminal to give it");
  }
  UniqueFd term(fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0));
  if (!term.valid()) return ErrnoStatus("dup criu-fast's terminal");
  RETURN_IF_ERROR(ApplyTermios(term.get(), t.termios()).WithContext("criu-fast's terminal"));
  RETURN_IF_ERROR(ApplyWinsize(term.get(), t.winsize()).WithContext("criu-fast's terminal"));
  bool first = true;
  for (const auto& [id, f] : obj.files) {
    UniqueFd d;
    if (first) {
      d = std::move(term);
      first = false;
    } else {
      const std::string path = "/proc/self/fd/" + std::to_string((*out).begin()->second.get());
      d.reset(open(path.c_str(), (static_cast<int>(f->flags()) & O_ACCMODE) | O_NOCTTY | O_CLOEXEC));
      if (!d.valid()) return ErrnoStatus("open criu-fast's terminal again");
    }
    RETURN_IF_ERROR(SetStatusFlags(d.get(), f->flags(), kTtyFlags, "terminal"));
    (*out)[id] = std::move(d);
  }
  LOG_INFO("restore: the shell job's terminal (pts %u) is criu-fast's own", t.index());
  return OkStatus();
}

// What pty pairs need: a new pair through /dev/ptmx, its index in fdinfo
// (the dump pairs ends by it) and TIOCGPTPEER (Linux 4.13: restore opens
// slaves through the master, whatever number the pair got).
ProbeResult ProbePty() {
  UniqueFd m(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!m.valid()) return ProbeFailed("open /dev/ptmx", errno);
  auto info = ReadFile("/proc/self/fdinfo/" + std::to_string(m.get()));
  if (!info.ok() || info->find("tty-index:") == std::string::npos) return {false, "no tty-index in a pty's fdinfo"};
  const int zero = 0;
  if (ioctl(m.get(), TIOCSPTLCK, &zero) != 0) return ProbeFailed("TIOCSPTLCK", errno);
  UniqueFd s(ioctl(m.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  return s.valid() ? ProbeResult{true, ""} : ProbeFailed("TIOCGPTPEER", errno);
}

class Pty final : public FdKind {
 public:
  const char* name() const override { return "pty"; }
  img::Fd::KindCase field() const override { return img::Fd::kTty; }
  Scope scope() const override { return Scope::kObject; }
  bool Recognise(const FdSight& s) const override { return IsMaster(s.sb) || IsSlave(s.sb); }

  Status Read(const FdSight& s, const FdInfo& info, DumpContext&, img::Fd* f) const override {
    img::TtyEnd* end = f->mutable_tty();
    if (IsMaster(s.sb)) {
      end->set_master(true);
      bool found = false;
      for (const auto& [key, value] : info.extra) {
        if (key != "tty-index") continue;
        end->set_index(static_cast<uint32_t>(strtoul(value.c_str(), nullptr, 10)));
        found = true;
      }
      if (!found) return Error("a pty master without tty-index in its fdinfo");
      end->set_pair(end->index());
      return OkStatus();
    }
    end->set_index(SlaveIndex(s.sb.st_rdev));
    const bool dead = EndsWith(s.link, " (deleted)");
    end->set_pair(dead ? (uint64_t{1} << 32 | s.sb.st_ino) : end->index());
    if (dead) return OkStatus();
    // One description hung up while the pair lives (vhangup, its session
    // leader's exit) cannot be made again on its own.
    ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(s.pid, s.fd));
    termios tio;
    if (tcgetattr(copy.get(), &tio) != 0 && errno == EIO) {
      return Error("a hung-up end of a pty that is still open: not supported");
    }
    return OkStatus();
  }
  std::unique_ptr<TreePass> NewPassFor(DumpContext& ctx) const override {
    return std::make_unique<PtyPass>(ctx.shell_job());
  }

  int object_case() const override { return img::FileObject::kTtyPair; }
  std::vector<ObjectKey> ObjectKeys(const img::FileObject& o) const override {
    return {{object_case(), o.tty_pair().pair(), 0}};
  }
  ObjectKey KeyOf(const img::Fd& f) const override { return {object_case(), f.tty().pair(), 0}; }
  std::vector<pid_t> ExtraUsers(const img::FileObject& o) const override {
    const img::TtyPair& t = o.tty_pair();
    if (t.external() || t.hung_up() || t.sid() == 0) return {};
    return {t.sid()};
  }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const img::TtyPair& t = obj.object->tty_pair();
    const std::string what = "pty " + std::to_string(t.index());
    if (t.external()) return MakeExternal(t, obj, out).WithContext(what);
    PairMaker maker(t, obj);
    return maker.Make(out).WithContext(what);
  }

  Status BeforeChildren(const SharedObject& obj, const img::Process& core,
                        const std::map<uint32_t, int>& inherited) const override {
    const img::TtyPair& t = obj.object->tty_pair();
    if (t.hung_up()) return OkStatus();
    const std::string what = "pty " + std::to_string(t.index());
    if (!t.external() && core.pid() == t.sid()) {
      // Any description of the pair this process has leads to it.
      for (const auto& [id, f] : obj.files) {
        auto it = inherited.find(id);
        if (it == inherited.end()) continue;
        return SetControllingTty(it->second, f->tty().master()).WithContext(what);
      }
      return Errorf("process %d: its controlling terminal (%s) was not created before it", core.pid(), what.c_str());
    }
    return SetForeground(core, t.sid(), t.fg_pgid(), t.external()).WithContext(what);
  }

  std::vector<Probe> Probes() const override {
    return {{"pty", "pseudo-terminal pairs cannot be dumped or restored", ProbePty}};
  }

  std::string Describe(const img::Fd& f) const override {
    const img::TtyEnd& e = f.tty();
    return std::string(e.master() ? "pty master" : "pty slave") + " of pts " + std::to_string(e.index());
  }
};

// /dev/tty: the process's controlling terminal, whatever it is, opened
// again once the process has it back (after its session leader set it).
class CurrentTty final : public FdKind {
 public:
  const char* name() const override { return "/dev/tty"; }
  img::Fd::KindCase field() const override { return img::Fd::kCurrentTty; }
  Scope scope() const override { return Scope::kPrivate; }
  bool Recognise(const FdSight& s) const override {
    return S_ISCHR(s.sb.st_mode) && s.sb.st_rdev == makedev(5, 0);
  }
  Status Read(const FdSight&, const FdInfo&, DumpContext&, img::Fd* f) const override {
    f->mutable_current_tty();
    return OkStatus();
  }
  Result<UniqueFd> Open(const img::Fd& f, RestoreContext&) const override {
    return OpenByPath(f, "/dev/tty", O_NOCTTY, false, false);
  }
  std::string Describe(const img::Fd&) const override { return "/dev/tty"; }
};

// Other terminals (the console, virtual consoles, serial lines): opened
// again by path, with their settings when they could be read.
class TtyDevice final : public FdKind {
 public:
  const char* name() const override { return "terminal"; }
  img::Fd::KindCase field() const override { return img::Fd::kTtyDevice; }
  Scope scope() const override { return Scope::kPrivate; }
  bool Recognise(const FdSight& s) const override {
    return S_ISCHR(s.sb.st_mode) && (major(s.sb.st_rdev) == 4 || s.sb.st_rdev == makedev(5, 1));
  }
  Status Read(const FdSight& s, const FdInfo&, DumpContext&, img::Fd* f) const override {
    img::TtyDevice* d = f->mutable_tty_device();
    ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(s.pid, s.fd));
    img::TtyTermios tio;
    img::TtyWinsize ws;
    if (ReadTermios(copy.get(), &tio).ok() && ReadWinsize(copy.get(), &ws).ok()) {
      *d->mutable_termios() = tio;
      *d->mutable_winsize() = ws;
    }
    return OkStatus();
  }
  Result<UniqueFd> Open(const img::Fd& f, RestoreContext&) const override {
    ASSIGN_OR_RETURN(UniqueFd fd, OpenByPath(f, f.path(), O_NOCTTY, false, true));
    const img::TtyDevice& d = f.tty_device();
    if (d.has_termios()) {
      RETURN_IF_ERROR(ApplyTermios(fd.get(), d.termios()).WithContext(f.path()));
      RETURN_IF_ERROR(ApplyWinsize(fd.get(), d.winsize()).WithContext(f.path()));
    }
    return fd;
  }
  std::string Describe(const img::Fd& f) const override {
    return "terminal " + f.path() + " (" + std::to_string(major(f.rdev())) + ":" + std::to_string(minor(f.rdev())) +
           ")";
  }
};

}  // namespace

const FdKind& PtyKind() {
  static const Pty kind;
  return kind;
}

const FdKind& CurrentTtyKind() {
  static const CurrentTty kind;
  return kind;
}

const FdKind& TtyDeviceKind() {
  static const TtyDevice kind;
  return kind;
}

}  // namespace cf::kinds
