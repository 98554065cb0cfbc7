// Saving and creating unix socket groups (see unix_group.h).
//
// Restore creates a group in one process, in this order:
//   1. the sockets: a connected pair (each the other's peer) with
//      socketpair(), a socket whose peer was closed with socketpair() and
//      the spare end closed at the end, any other with socket(); each end
//      of a socketpair gets its queue from the other end;
//   2. names, in two rounds: first the paths that were deleted (several
//      sockets may have been bound to one path, all but the last deleted),
//      then the others. In each round every socket of the round is bound
//      (a stale socket file left at the path by the dumped tree is
//      removed; a relative path is bound from its directory), its file gets
//      its mode and owner back, a listener listens, a bound datagram
//      socket gets its queue (from a socket of its own, or from its peer
//      once it is connected); then every client waiting in a listener of
//      the round connects to it, in accept order, and every datagram
//      socket connected to a socket of the round connects; a deleted path
//      is unlinked at the end of its round;
//   3. peers outside the tree (--ext-unix-sk) are connected to by name;
//   4. shutdown bits and socket options last (a shut down socket could
//      not be refilled, a lowered buffer size could not take its queue).
// A connected stream or seqpacket socket is not bound (as in CRIU): an
// accepted socket has its listener's name, which only the listener can
// hold.
#include "kinds/unix_group.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <functional>
#include <vector>

#include "common/io.h"
#include "common/log.h"
#include "kinds/kind.h"
#include "kinds/unix_queue.h"

namespace cf::kinds {
namespace {

bool IsPath(const std::string& name) { return !name.empty() && name[0] != '\0'; }

// A path name's file: deleted (or replaced), or its mode and owner.
Status ReadPath(const UnixSockSight& s, img::UnixSock* out) {
  const std::string& name = s.info.raw_name;
  const std::string proc = "/proc/" + std::to_string(s.pid);
  std::string where = proc + "/root" + name;
  if (name[0] != '/') {
    // Relative to the binder's cwd at bind time, which is not known: the
    // holder's cwd now is the best guess (CRIU's too); the file's inode
    // tells whether it is right.
    ASSIGN_OR_RETURN(std::string cwd, ReadLink(proc + "/cwd"));
    out->set_dir(cwd);
    where = proc + "/cwd/" + name;
  }
  struct stat st;
  if (stat(where.c_str(), &st) != 0 || !s.info.has_vfs || st.st_ino != s.info.vfs_ino ||
      st.st_dev != s.info.vfs_dev) {
    out->set_deleted(true);
    return OkStatus();
  }
  out->set_file_mode(st.st_mode & 07777);
  out->set_file_uid(st.st_uid);
  out->set_file_gid(st.st_gid);
  return OkStatus();
}

struct Addr {
  sockaddr_un sun{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&sun); }
};

Result<Addr> MakeAddr(const std::string& name) {
  Addr a;
  a.sun.sun_family = AF_UNIX;
  const size_t room = sizeof(a.sun.sun_path) - (IsPath(name) ? 1 : 0);
  if (name.size() > room) return Error("unix socket name longer than sun_path", ENAMETOOLONG);
  memcpy(a.sun.sun_path, name.data(), name.size());
  a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (IsPath(name) ? 1 : 0));
  return a;
}

// Runs |fn| with the cwd at |dir| (a relative name's directory), if any.
Status InDir(const std::string& dir, const std::function<Status()>& fn) {
  if (dir.empty()) return fn();
  UniqueFd here(open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!here.valid()) return ErrnoStatus("open the cwd");
  if (chdir(dir.c_str()) != 0) return ErrnoStatus("chdir " + dir);
  Status st = fn();
  if (fchdir(here.get()) != 0 && st.ok()) st = ErrnoStatus("fchdir back");
  return st;
}

// Removes a socket file left at |path| by a socket that is gone (a connect
// is refused); leaves anything else, which bind() then reports.
void RemoveStale(const std::string& path, int type) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return;
  UniqueFd probe(socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  auto a = MakeAddr(path);
  if (!probe.valid() || !a.ok()) return;
  if (connect(probe.get(), a->get(), a->len) != 0 && errno == ECONNREFUSED) unlink(path.c_str());
}

struct Sock {
  const img::UnixSock* s = nullptr;
  UniqueFd fd;
  UniqueFd spare;        // the other end for a closed peer
  bool filled = false;   // its queue is in place
  bool connected = false;
  bool bound = false;
};

class GroupBuilder {
 public:
  GroupBuilder(const img::UnixGroup& g, const InFlightFiles& files) : files_(files) {
    for (const img::UnixSock& s : g.socks()) socks_[s.inode()].s = &s;
  }

  Status Run(std::map<uint64_t, UniqueFd>* out) {
    for (auto& [ino, k] : socks_) RETURN_IF_ERROR(Open(k).WithContext(UnixSockName(*k.s)));
    // Deleted paths one at a time: several sockets may have had one path.
    for (auto& [ino, k] : socks_) {
      const img::UnixSock* x = k.s;
      if (Binds(*x) && x->deleted()) RETURN_IF_ERROR(Round([x](const img::UnixSock& s) { return &s == x; }, true));
    }
    RETURN_IF_ERROR(Round([](const img::UnixSock& s) { return Binds(s) && !s.deleted(); }, false));
    for (auto& [ino, k] : socks_) {
      const img::UnixSock& s = *k.s;
      const std::string what = UnixSockName(s);
      if (!s.ext_peer_name().empty()) {
        ASSIGN_OR_RETURN(Addr a, MakeAddr(s.ext_peer_name()));
        if (connect(k.fd.get(), a.get(), a.len) != 0) return ErrnoStatus(what + ": connect to its peer outside the tree");
        k.connected = true;
      }
      if (!k.filled && s.end().queue_size() > 0) {
        return Error(what + ": its queue can be sent again by no socket (an unnamed socket connected one way)");
      }
      RETURN_IF_ERROR(ApplyUnixEnd(k.fd.get(), s.end()).WithContext(what));
      k.spare.reset();
      (*out)[ino] = std::move(k.fd);
    }
    return OkStatus();
  }

 private:
  bool Mutual(const img::UnixSock& s) const {
    // (A datagram socket connected to itself is not a pair.)
    auto it = s.peer() && s.peer() != s.inode() ? socks_.find(s.peer()) : socks_.end();
    return it != socks_.end() && it->second.s->peer() == s.inode();
  }

  Status Open(Sock& k) {
    if (k.fd.valid()) return OkStatus();
    const img::UnixSock& s = *k.s;
    const int type = static_cast<int>(s.type());
    if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) return Errorf("type %d", type);
    if (Mutual(s) || s.peer_closed()) {
      int sv[2];
      if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) return ErrnoStatus("socketpair");
      k.fd.reset(sv[0]);
      Sock* other = nullptr;
      if (s.peer_closed()) {
        k.spare.reset(sv[1]);
      } else {
        other = &socks_.at(s.peer());
        other->fd.reset(sv[1]);
        RETURN_IF_ERROR(Requeue(k.fd.get(), other->s->end(), type, nullptr, 0, &files_).WithContext(UnixSockName(*other->s)));
        other->filled = other->connected = true;
      }
      RETURN_IF_ERROR(Requeue(sv[1], s.end(), type, nullptr, 0, &files_));
      k.filled = k.connected = true;
      return OkStatus();
    }
    k.fd.reset(socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
    if (!k.fd.valid()) return ErrnoStatus("socket");
    return OkStatus();
  }

  // Whether |s| gets its name back (see the top of the file).
  static bool Binds(const img::UnixSock& s) {
    return !s.name().empty() && (s.type() == SOCK_DGRAM || s.state() != kUnixEstablished);
  }

  Status Bind(Sock& k) {
    const img::UnixSock& s = *k.s;
    ASSIGN_OR_RETURN(Addr a, MakeAddr(s.name()));
    RETURN_IF_ERROR(InDir(s.dir(), [&]() -> Status {
      if (IsPath(s.name())) RemoveStale(s.name(), static_cast<int>(s.type()));
      if (!s.name().empty() && s.name()[0] == '/' && s.deleted()) MakeParents(s.name());
      if (IsPath(s.name()) && s.deleted()) RETURN_IF_ERROR(MoveAside(s.name()));
      if (bind(k.fd.get(), a.get(), a.len) != 0) return ErrnoStatus("bind");
      if (IsPath(s.name()) && !s.deleted()) {
        if (chmod(s.name().c_str(), s.file_mode()) != 0) return ErrnoStatus("chmod the socket file");
        if (lchown(s.name().c_str(), s.file_uid(), s.file_gid()) != 0) return ErrnoStatus("chown the socket file");
      }
      return OkStatus();
    }));
    k.bound = true;
    if (s.state() == kUnixListen) {
      // Room for every waiting client first; the saved backlog afterwards.
      const int room = std::max<int>(static_cast<int>(s.backlog()), s.pending_size() + 1);
      if (listen(k.fd.get(), room) != 0) return ErrnoStatus("listen");
    }
    if (s.type() == SOCK_DGRAM && !k.filled) {
      // From its peer when it is connected already (it takes no other
      // sender then), else from a socket of our own.
      UniqueFd own;
      int from = -1;
      if (k.connected) {
        from = socks_.at(s.peer()).fd.get();
      } else {
        own.reset(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!own.valid()) return ErrnoStatus("socket");
        from = own.get();
      }
      RETURN_IF_ERROR(InDir(s.dir(), [&]() -> Status {
        if (s.end().senders_size() == 0) return Requeue(from, s.end(), SOCK_DGRAM, a.get(), a.len, &files_);
        for (int i = 0; i < s.end().queue_size(); ++i) {
          UniqueFd named;
          const int sender = SenderFor(i < s.end().senders_size() ? s.end().senders(i) : std::string(), from, &named);
          RETURN_IF_ERROR(Requeue(sender, s.end(), SOCK_DGRAM, a.get(), a.len, &files_, i, 1));
          if (named.valid() && IsPath(s.end().senders(i))) unlink(s.end().senders(i).c_str());
        }
        return OkStatus();
      }));
      k.filled = true;
    }
    return OkStatus();
  }

  // A socket to send a message from |name| (its sender's address): a
  // socket of our own bound to it (|named|) while the name is free, the
  // group's socket holding it, or |fallback| (the address is lost).
  int SenderFor(const std::string& name, int fallback, UniqueFd* named) {
    if (name.empty()) return fallback;
    auto a = MakeAddr(name);
    named->reset(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (a.ok() && named->valid() && bind(named->get(), a->get(), a->len) == 0) return named->get();
    named->reset();
    for (auto& [ino, k] : socks_) {
      if (k.bound && k.s->type() == SOCK_DGRAM && k.s->name() == name) return k.fd.get();
    }
    return fallback;
  }

  Status ConnectTo(Sock& k, const Sock& target) {
    const img::UnixSock& t = *target.s;
    ASSIGN_OR_RETURN(Addr a, MakeAddr(t.name()));
    RETURN_IF_ERROR(InDir(t.dir(), [&]() -> Status {
      if (connect(k.fd.get(), a.get(), a.len) != 0) return ErrnoStatus("connect to " + UnixSockName(t));
      return OkStatus();
    }));
    k.connected = true;
    return OkStatus();
  }

  // Binds the sockets |in_round| takes and connects the sockets waiting in
  // them or connected to them; then unlinks their names when |deleted|.
  Status Round(const std::function<bool(const img::UnixSock&)>& in_round, bool deleted) {
    for (auto& [ino, k] : socks_) {
      if (in_round(*k.s)) RETURN_IF_ERROR(Bind(k).WithContext(UnixSockName(*k.s)));
    }
    for (auto& [ino, k] : socks_) {
      const img::UnixSock& s = *k.s;
      if (!in_round(s)) continue;
      if (s.state() == kUnixListen) {
        for (uint64_t c : s.pending()) {
          Sock& client = socks_.at(c);
          RETURN_IF_ERROR(ConnectTo(client, k).WithContext(UnixSockName(*client.s)));
        }
        if (listen(k.fd.get(), static_cast<int>(s.backlog())) != 0) return ErrnoStatus("listen");
      }
    }
    for (auto& [ino, k] : socks_) {
      const img::UnixSock& s = *k.s;
      if (k.connected || s.type() != SOCK_DGRAM || !s.peer() || !socks_.count(s.peer())) continue;
      Sock& target = socks_.at(s.peer());
      if (!in_round(*target.s)) continue;
      RETURN_IF_ERROR(ConnectTo(k, target).WithContext(UnixSockName(s)));
    }
    if (!deleted) return OkStatus();
    for (auto& [ino, k] : socks_) {
      const img::UnixSock& s = *k.s;
      if (!in_round(s) || !IsPath(s.name())) continue;
      RETURN_IF_ERROR(InDir(s.dir(), [&]() -> Status {
        if (unlink(s.name().c_str()) != 0) return ErrnoStatus("unlink the deleted name " + s.name());
        if (!aside_.empty() && rename(aside_.c_str(), s.name().c_str()) != 0) {
          return ErrnoStatus("put " + s.name() + " back");
        }
        aside_.clear();
        return OkStatus();
      }));
    }
    for (auto it = made_dirs_.rbegin(); it != made_dirs_.rend(); ++it) rmdir(it->c_str());
    made_dirs_.clear();
    return OkStatus();
  }

  // A deleted name's path may lead to another file now (a socket of the
  // tree bound there later, a FIFO made there): it is moved aside while
  // the deleted socket is bound and connected to, then put back.
  Status MoveAside(const std::string& path) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return OkStatus();
    const std::string aside = path + ".cf-aside." + std::to_string(getpid());
    if (rename(path.c_str(), aside.c_str()) != 0) return ErrnoStatus("move " + path + " aside");
    aside_ = aside;
    return OkStatus();
  }

  // A deleted name's directories may be gone too: they are made for the
  // time of the round.
  void MakeParents(const std::string& path) {
    for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
      const std::string dir = path.substr(0, pos);
      if (mkdir(dir.c_str(), 0755) == 0) made_dirs_.push_back(dir);
    }
  }

  const InFlightFiles& files_;
  std::map<uint64_t, Sock> socks_;
  std::vector<std::string> made_dirs_;
  std::string aside_;   // where the file at the deleted path of this round waits   // absolute or relative to the cwd they were made in
};

}  // namespace

std::string UnixSockName(const img::UnixSock& s) {
  std::string out = "socket:[" + std::to_string(s.inode()) + "]";
  if (!s.name().empty()) {
    std::string n = s.name();
    for (char& c : n) c = c == '\0' ? '@' : c;
    out += " (" + n + ")";
  }
  return out;
}

Status ReadUnixSock(const UnixSockSight& s, img::UnixSock* out, InFlightFds* flight) {
  const UnixSocketInfo& i = s.info;
  out->set_inode(i.inode);
  out->set_type(i.type);
  out->set_state(i.state);
  out->set_name(i.raw_name);
  if (IsPath(i.raw_name)) RETURN_IF_ERROR(ReadPath(s, out));
  if (i.state == kUnixListen) out->set_backlog(i.wqueue);
  ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(s.pid, s.fd));
  // A stream or seqpacket socket that is not connected has no queue.
  const bool queue = i.type == SOCK_DGRAM || i.state == kUnixEstablished;
  return ReadUnixEnd(copy.get(), i, out->mutable_end(), queue, flight);
}

Status CreateUnixGroup(const img::UnixGroup& g, const InFlightFiles& files, std::map<uint64_t, UniqueFd>* out) {
  return GroupBuilder(g, files).Run(out);
}

}  // namespace cf::kinds
