// Unix sockets: the kind, and the tree-wide pass that decides how each
// socket of the tree is saved.
//
// sock_diag (kinds/unix_diag.h) tells each socket's type, state, name,
// peer and, for a listener, the clients waiting to be accepted. Queues are
// read without consuming them (kinds/unix_queue.h).
//
// Two shapes of object:
//   - UnixPair: a connected pair of unnamed sockets (socketpair()) whose
//     both ends the tree holds, or whose peer is closed. Restore:
//     socketpair() of the saved type, each end's queue sent again from the
//     other end (message by message, so datagram and seqpacket boundaries
//     stay), then the shutdown bits and the socket options (SO_PASSCRED,
//     SO_PEEK_OFF, buffer sizes...: kinds/socket_opts.h); a closed end is closed again once the survivor's queue is in place
//     (a stream or seqpacket survivor then sees the end of the stream after
//     its data, as before).
//   - UnixGroup (kinds/unix_group.h): every other socket, with the sockets
//     its connections link it to (its peer, the listener it waits in, the
//     clients waiting in it), created together by one process.
// A peer that the tree does not hold and that is still open is refused,
// and so is a client waiting to be accepted that the tree does not hold or
// that sent data already (it sits in a socket no descriptor reaches).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/log.h"
#include "kinds/kind.h"
#include "kinds/unix_diag.h"
#include "kinds/unix_flight.h"
#include "kinds/unix_group.h"
#include "kinds/unix_queue.h"

namespace cf::kinds {
namespace {

std::string FamilyName(int family) {
  switch (family) {
    case AF_INET: return "AF_INET";
    case AF_INET6: return "AF_INET6";
    case AF_NETLINK: return "AF_NETLINK";
    case AF_PACKET: return "AF_PACKET";
    case AF_VSOCK: return "AF_VSOCK";
    default: return "family " + std::to_string(family);
  }
}

// The sockets the tree holds, saved once every process is known.
class UnixPass final : public TreePass {
 public:
  explicit UnixPass(DumpContext& ctx) : ctx_(ctx) {}

  Status Add(const FdSight& s, const FdInfo&, bool, img::Fd* f) override {
    Socket& sock = sockets_[f->inode()];
    if (sock.holders.empty()) {
      ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(s.pid, s.fd));
      int family = 0;
      socklen_t len = sizeof(family);
      if (getsockopt(copy.get(), SOL_SOCKET, SO_DOMAIN, &family, &len) != 0) return ErrnoStatus("SO_DOMAIN");
      if (family != AF_UNIX) return Error("a socket of " + FamilyName(family) + ": not supported yet");
      auto info = QueryUnixSocket(f->inode());
      if (!info.ok()) return info.status().WithContext("a unix socket");
      if (info->state != kUnixEstablished && info->state != kUnixClose && info->state != kUnixListen) {
        return Errorf("a unix socket in state %u: not supported", info->state);
      }
      sock.info = *info;
    }
    sock.holders.push_back({s.pid, s.fd});
    return OkStatus();
  }

  Status Finish(TreeFds& fds) override {
    tree_ = &fds;
    RETURN_IF_ERROR(IndexWaiting());
    std::set<uint64_t> done;
    for (pid_t pid : fds.order()) {
      for (img::Fd* f : fds.FdsOf(pid)) {
        if (!f->has_unix_socket() || done.count(f->inode())) continue;
        const std::string name = FdSight{pid, f->fd(), f->path(), {}}.Name();
        ASSIGN_OR_RETURN(bool pair, IsPlainPair(f->inode()));
        img::FileObject obj;
        if (pair) {
          RETURN_IF_ERROR(SavePair(f->inode(), obj.mutable_unix_pair(), &done).WithContext(name));
        } else {
          RETURN_IF_ERROR(SaveGroup(f->inode(), obj.mutable_unix_group(), &done).WithContext(name));
        }
        fds.AddObject(pid, std::move(obj));
      }
    }
    return OkStatus();
  }

 private:
  struct Socket {
    std::vector<std::pair<pid_t, int>> holders;
    UnixSocketInfo info;
  };
  enum class Peer { kNone, kInTree, kClosed, kOutside };

  std::string NameOf(uint64_t ino) const {
    const Socket& s = sockets_.at(ino);
    std::string n = "socket:[" + std::to_string(ino) + "]";
    if (!s.info.name.empty()) n += " (" + s.info.name + ")";
    return n;
  }

  // Every client waiting in a listener of the tree must be held by the tree.
  Status IndexWaiting() {
    for (const auto& [ino, s] : sockets_) {
      if (s.info.state != kUnixListen) continue;
      for (uint32_t c : s.info.icons) {
        if (c == 0) {
          return Error(NameOf(ino) + ": a connection waiting to be accepted whose client was closed: not supported");
        }
        if (!sockets_.count(c)) {
          return Error(NameOf(ino) + ": a connection waiting to be accepted from socket:[" + std::to_string(c) +
                       "], which no process of the tree holds: not supported");
        }
        waiting_in_[c] = ino;
      }
    }
    return OkStatus();
  }

  Result<Peer> PeerOf(uint64_t ino) const {
    const UnixSocketInfo& i = sockets_.at(ino).info;
    if (i.peer == 0) {
      // A connected socket without a peer inode: waiting to be accepted, or
      // its peer was closed.
      if (!i.connected || waiting_in_.count(ino)) return Peer::kNone;
      return Peer::kClosed;
    }
    if (sockets_.count(i.peer)) return Peer::kInTree;
    auto q = QueryUnixSocket(i.peer);
    if (q.ok()) return Peer::kOutside;
    if (q.status().err() != ENOENT) return q.status();
    return Peer::kClosed;
  }

  // A peer outside the tree: a datagram socket connects to it again by
  // name with --ext-unix-sk (as in CRIU); anything else is refused.
  Status External(uint64_t ino, img::UnixSock* out) const {
    const UnixSocketInfo& i = sockets_.at(ino).info;
    auto q = QueryUnixSocket(i.peer);
    std::string peer = "socket:[" + std::to_string(i.peer) + "]";
    if (q.ok() && !q->name.empty()) peer += " (" + q->name + ")";
    const std::string what = "its peer, " + peer + ", is held by no process of the tree";
    if (i.type != SOCK_DGRAM) return Error(what + ": not supported for a stream or seqpacket socket");
    if (!q.ok() || q->raw_name.empty()) return Error(what + " and has no name to connect to again");
    if (!ctx_.ext_unix_sk(ino) && !ctx_.ext_unix_sk(i.peer)) {
      return Error(what + " (--ext-unix-sk dumps it and connects it to that name again at restore)");
    }
    out->set_ext_peer_name(q->raw_name);
    return OkStatus();
  }

  // A connected pair of unnamed sockets, or one whose peer is closed.
  Result<bool> IsPlainPair(uint64_t ino) const {
    const UnixSocketInfo& i = sockets_.at(ino).info;
    if (!i.name.empty() || !i.connected || waiting_in_.count(ino)) return false;
    ASSIGN_OR_RETURN(Peer p, PeerOf(ino));
    if (p == Peer::kClosed) return true;
    if (p != Peer::kInTree) return false;
    const UnixSocketInfo& pi = sockets_.at(i.peer).info;
    return pi.name.empty() && pi.peer == ino && pi.type == i.type;
  }

  Status SavePair(uint64_t ino, img::UnixPair* pair, std::set<uint64_t>* done) const {
    const Socket& s = sockets_.at(ino);
    ASSIGN_OR_RETURN(Peer p, PeerOf(ino));
    const uint64_t peer = p == Peer::kInTree ? s.info.peer : 0;
    pair->set_type(s.info.type);
    FlightFiles flight(ctx_, tree_);
    RETURN_IF_ERROR(ReadEnd(ino, pair->mutable_a(), &flight));
    if (peer) RETURN_IF_ERROR(ReadEnd(peer, pair->mutable_b(), &flight));
    std::set<uint64_t> own{ino};
    if (peer) own.insert(peer);
    RETURN_IF_ERROR(flight.Finish(pair->mutable_flight_fds(), pair->mutable_flight_objects(), own));
    done->insert(ino);
    done->insert(peer);
    LOG_DEBUG("files: socket pair %lu-%lu (type %u): %d and %d messages queued", ino, peer, pair->type(),
              pair->a().queue_size(), pair->b().queue_size());
    return OkStatus();
  }

  Status ReadEnd(uint64_t inode, img::UnixEnd* out, FlightFiles* flight) const {
    const Socket& s = sockets_.at(inode);
    const auto& [pid, fd] = s.holders.front();
    const std::string name = FdSight{pid, fd, "socket:[" + std::to_string(inode) + "]", {}}.Name();
    out->set_inode(inode);
    ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(pid, fd));
    InFlightFds got;
    RETURN_IF_ERROR(ReadUnixEnd(copy.get(), s.info, out, true, &got).WithContext(name));
    return AddRights(std::move(got), out, flight).WithContext(name);
  }

  // Describes the descriptors in flight of |got| in |flight|, naming them
  // in |end|'s rights.
  static Status AddRights(InFlightFds got, img::UnixEnd* end, FlightFiles* flight) {
    for (auto& [msg, fds] : got) {
      ASSIGN_OR_RETURN(std::vector<uint32_t> ids, flight->Add(std::move(fds)));
      img::UnixRights* r = end->add_rights();
      r->set_msg(static_cast<uint32_t>(msg));
      for (uint32_t id : ids) r->add_files(id);
    }
    return OkStatus();
  }

  // The sockets linked to |ino| (peer, listener, waiting clients) and theirs.
  std::vector<uint64_t> GroupOf(uint64_t ino) const {
    std::set<uint64_t> seen{ino};
    std::deque<uint64_t> todo{ino};
    auto visit = [&](uint64_t n) {
      if (n && sockets_.count(n) && seen.insert(n).second) todo.push_back(n);
    };
    while (!todo.empty()) {
      const uint64_t n = todo.front();
      todo.pop_front();
      const UnixSocketInfo& i = sockets_.at(n).info;
      visit(i.peer);
      if (auto it = waiting_in_.find(n); it != waiting_in_.end()) visit(it->second);
      for (uint32_t c : i.icons) visit(c);
      // Datagram sockets connected to this one.
      for (const auto& [other, s] : sockets_) {
        if (s.info.peer == n) visit(other);
      }
    }
    return {seen.begin(), seen.end()};
  }

  Status SaveGroup(uint64_t ino, img::UnixGroup* group, std::set<uint64_t>* done) const {
    FlightFiles flight(ctx_, tree_);
    const std::vector<uint64_t> members = GroupOf(ino);
    for (uint64_t n : members) {
      const Socket& s = sockets_.at(n);
      const auto& [pid, fd] = s.holders.front();
      const std::string name = FdSight{pid, fd, NameOf(n), {}}.Name();
      img::UnixSock* out = group->add_socks();
      InFlightFds got;
      RETURN_IF_ERROR(ReadUnixSock({pid, fd, s.info}, out, &got).WithContext(name));
      RETURN_IF_ERROR(AddRights(std::move(got), out->mutable_end(), &flight).WithContext(name));
      ASSIGN_OR_RETURN(Peer p, PeerOf(n));
      switch (p) {
        case Peer::kInTree: out->set_peer(s.info.peer); break;
        case Peer::kClosed: out->set_peer_closed(true); break;
        case Peer::kOutside: RETURN_IF_ERROR(External(n, out).WithContext(name)); break;
        case Peer::kNone: break;
      }
      if (auto it = waiting_in_.find(n); it != waiting_in_.end()) {
        if (s.info.wqueue != 0) {
          // (The kernel counts buffer memory here, not bytes.)
          return Error(name + ": data was sent on a connection not accepted yet: not supported");
        }
        out->set_listener(it->second);
      }
      for (uint32_t c : s.info.icons) out->add_pending(c);
      done->insert(n);
    }
    RETURN_IF_ERROR(flight.Finish(group->mutable_flight_fds(), group->mutable_flight_objects(),
                                  std::set<uint64_t>(members.begin(), members.end())));
    LOG_DEBUG("files: a group of %d unix sockets", group->socks_size());
    return OkStatus();
  }

  DumpContext& ctx_;
  TreeFds* tree_ = nullptr;                     // in Finish
  std::map<uint64_t, Socket> sockets_;          // by inode
  std::map<uint64_t, uint64_t> waiting_in_;     // client -> the listener it waits in
};

// The in-flight files of a socket object, made again; |fds| holds them.
Result<InFlightFiles> MakeFlight(const google::protobuf::RepeatedPtrField<img::Fd>& flight_fds,
                                 const google::protobuf::RepeatedPtrField<img::FileObject>& flight_objects,
                                 RestoreContext& ctx, std::map<uint32_t, UniqueFd>* fds) {
  ASSIGN_OR_RETURN(*fds, MakeFlightFiles(flight_fds, flight_objects, ctx));
  InFlightFiles files;
  for (const auto& [id, fd] : *fds) files[id] = fd.get();
  return files;
}

Status CreatePair(const img::UnixPair& pair, const SharedObject& obj, RestoreContext& ctx, CreatedFiles* out) {
  const int type = static_cast<int>(pair.type());
  if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
    return Errorf("unix socket pair of type %d", type);
  }
  const std::string what = "socket pair " + std::to_string(pair.a().inode()) + "-" + std::to_string(pair.b().inode());
  int sv[2];
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) return ErrnoStatus("socketpair");
  UniqueFd socks[2] = {UniqueFd(sv[0]), UniqueFd(sv[1])};
  const img::UnixEnd* ends[2] = {&pair.a(), &pair.b()};
  std::map<uint32_t, UniqueFd> made;  // closed once sent
  ASSIGN_OR_RETURN(InFlightFiles files, MakeFlight(pair.flight_fds(), pair.flight_objects(), ctx, &made));
  for (int i = 0; i < 2; ++i) {
    RETURN_IF_ERROR(Requeue(socks[1 - i].get(), *ends[i], type, nullptr, 0, &files).WithContext(what));
  }
  for (int i = 0; i < 2; ++i) {
    if (ends[i]->inode() == 0) continue;
    RETURN_IF_ERROR(ApplyUnixEnd(socks[i].get(), *ends[i]).WithContext(what));
  }
  RETURN_IF_ERROR(AddFlightEpollTargets(pair.flight_fds(), made,
                                        {{pair.a().inode(), socks[0].get()}, {pair.b().inode(), socks[1].get()}})
                      .WithContext(what));
  for (const auto& [id, f] : obj.files) {
    const int i = f->inode() == pair.a().inode() ? 0 : f->inode() == pair.b().inode() ? 1 : -1;
    if (i < 0 || !socks[i].valid()) return Errorf("%s: a second open file of one end, or of neither", what.c_str());
    RETURN_IF_ERROR(SetStatusFlags(socks[i].get(), f->flags(), O_NONBLOCK, "socket pair"));
    (*out)[id] = std::move(socks[i]);
  }
  return OkStatus();  // a closed end is closed here
}

Status CreateGroup(const img::UnixGroup& group, const SharedObject& obj, RestoreContext& ctx, CreatedFiles* out) {
  std::map<uint32_t, UniqueFd> made;  // closed once sent
  ASSIGN_OR_RETURN(InFlightFiles files, MakeFlight(group.flight_fds(), group.flight_objects(), ctx, &made));
  std::map<uint64_t, UniqueFd> socks;
  RETURN_IF_ERROR(CreateUnixGroup(group, files, &socks));
  std::map<uint64_t, int> by_inode;
  for (const auto& [ino, fd] : socks) by_inode[ino] = fd.get();
  RETURN_IF_ERROR(AddFlightEpollTargets(group.flight_fds(), made, by_inode));
  for (const auto& [id, f] : obj.files) {
    auto it = socks.find(f->inode());
    if (it == socks.end() || !it->second.valid()) {
      return Errorf("socket:[%lu]: a second open file of it, or not in its group", f->inode());
    }
    RETURN_IF_ERROR(SetStatusFlags(it->second.get(), f->flags(), O_NONBLOCK, "unix socket"));
    (*out)[id] = std::move(it->second);
  }
  return OkStatus();
}

class UnixSocket final : public FdKind {
 public:
  const char* name() const override { return "unix socket"; }
  img::Fd::KindCase field() const override { return img::Fd::kUnixSocket; }
  Scope scope() const override { return Scope::kObject; }
  bool Recognise(const FdSight& s) const override { return S_ISSOCK(s.sb.st_mode); }

  Status Read(const FdSight&, const FdInfo&, DumpContext&, img::Fd* f) const override {
    f->mutable_unix_socket();  // the socket is saved by the tree pass
    return OkStatus();
  }
  std::unique_ptr<TreePass> NewPassFor(DumpContext& ctx) const override { return std::make_unique<UnixPass>(ctx); }

  // Both objects are known by their sockets' inodes, under one case.
  int object_case() const override { return img::FileObject::kUnixPair; }
  bool Creates(const img::FileObject& o) const override { return o.has_unix_pair() || o.has_unix_group(); }
  std::vector<ObjectKey> ObjectKeys(const img::FileObject& o) const override {
    std::vector<ObjectKey> keys;
    if (o.has_unix_group()) {
      for (const img::UnixSock& s : o.unix_group().socks()) keys.push_back({object_case(), s.inode(), 0});
      return keys;
    }
    for (uint64_t ino : {o.unix_pair().a().inode(), o.unix_pair().b().inode()}) {
      if (ino) keys.push_back({object_case(), ino, 0});
    }
    return keys;
  }
  ObjectKey KeyOf(const img::Fd& f) const override { return {object_case(), f.inode(), 0}; }
  std::vector<const img::Fd*> NeededFiles(const img::FileObject& o) const override {
    std::vector<const img::Fd*> out;
    for (const img::Fd& f : o.has_unix_group() ? o.unix_group().flight_fds() : o.unix_pair().flight_fds()) {
      if (f.tree_file_id() != 0) out.push_back(&f);
    }
    return out;
  }

  Status Create(const SharedObject& obj, RestoreContext& ctx, CreatedFiles* out) const override {
    if (obj.object->has_unix_group()) return CreateGroup(obj.object->unix_group(), obj, ctx, out);
    return CreatePair(obj.object->unix_pair(), obj, ctx, out);
  }

  std::string Describe(const img::Fd& f) const override { return "socket:[" + std::to_string(f.inode()) + "]"; }
};

}  // namespace

const FdKind& UnixSocketKind() {
  static const UnixSocket kind;
  return kind;
}

}  // namespace cf::kinds
