// Unix socket pairs: what a socket is (sock_diag) and what it has queued.
//
// sock_diag (NETLINK_SOCK_DIAG, one exact request per inode) tells a unix
// socket's type, state, name, peer inode, shutdown bits and queue length.
// The queue is read without consuming it through a copy of the socket (the
// same socket, taken with pidfd_getfd): with SO_PEEK_OFF set, every
// recv(MSG_PEEK) returns the next bytes, so the walk goes message by message
// (SOCK_DGRAM, SOCK_SEQPACKET: a first peek with MSG_TRUNC and no buffer
// tells the length) or chunk by chunk (SOCK_STREAM, which a single peek
// would stop at the boundary between two writers). The peek offset belongs to
// the socket, so the target's own value is put back afterwards.
//
// Only connected pairs of unnamed sockets (socketpair()) whose both ends the
// tree holds (or whose peer is closed) are dumped; anything else is refused.
//
// Restore: socketpair() of the saved type, each end's
// queue sent again from the other end (message by message, so datagram and
// seqpacket boundaries stay), then the shutdown bits, the peek offset and
// the buffer sizes. An end that was closed at dump time is closed again
// once the survivor's queue is in place (a stream or seqpacket survivor
// then sees the end of the stream after its data, as before).
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/log.h"
#include "kinds/kind.h"

namespace cf::kinds {
namespace {

// What sock_diag tells about a unix socket.
struct UnixSocketInfo {
  uint32_t type = 0;       // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
  uint32_t state = 0;      // the kernel's sk_state
  bool connected = false;  // state TCP_ESTABLISHED
  uint64_t peer = 0;       // the peer's inode (0: none)
  std::string name;        // empty: unnamed; "@..." abstract
  uint32_t shutdown = 0;   // sk_shutdown: 1 receive, 2 send
  uint32_t rqueue = 0;     // bytes queued (SOCK_DGRAM: of the first message)
};

constexpr size_t kMaxQueued = 64 << 20;  // bytes one socket end may have queued in an image
constexpr int kTcpEstablished = 1;       // sk_state of a connected unix socket

// Puts the socket's peek offset back when the walk ends.
class PeekOffsetGuard {
 public:
  PeekOffsetGuard(int sock, int saved) : sock_(sock), saved_(saved) {}
  ~PeekOffsetGuard() { setsockopt(sock_, SOL_SOCKET, SO_PEEK_OFF, &saved_, sizeof(saved_)); }

 private:
  int sock_;
  int saved_;
};

Result<int> GetIntOpt(int sock, int opt, const char* name) {
  int v = 0;
  socklen_t len = sizeof(v);
  if (getsockopt(sock, SOL_SOCKET, opt, &v, &len) != 0) return ErrnoStatus(std::string("getsockopt ") + name);
  return v;
}

// One recvmsg(MSG_PEEK) into |buf|; fails on descriptors in flight.
Result<ssize_t> Peek(int sock, void* buf, size_t len, int flags) {
  iovec iov{buf, len};
  alignas(cmsghdr) char control[256];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(sock, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC | flags);
  if (n < 0) return ErrnoStatus("recv(MSG_PEEK)");
  bool rights = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    rights = true;
    const size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < nfds; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
      close(fd);  // peeking installed a copy in criu-fast
    }
  }
  if (rights || (msg.msg_flags & MSG_CTRUNC)) {
    return Error("descriptors in flight in the socket's queue (SCM_RIGHTS): not supported yet");
  }
  return n;
}

Result<UnixSocketInfo> QueryUnixSocket(uint64_t inode) {
  UniqueFd nl(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl.valid()) return ErrnoStatus("socket(NETLINK_SOCK_DIAG)");
  struct {
    nlmsghdr nlh;
    unix_diag_req req;
  } request{};
  request.nlh.nlmsg_len = sizeof(request);
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.nlh.nlmsg_flags = NLM_F_REQUEST;
  request.nlh.nlmsg_seq = 1;
  request.req.sdiag_family = AF_UNIX;
  request.req.udiag_states = ~0u;
  request.req.udiag_ino = static_cast<uint32_t>(inode);
  request.req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN;
  request.req.udiag_cookie[0] = request.req.udiag_cookie[1] = ~0u;  // no cookie: look up by inode
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(nl.get(), &request, sizeof(request), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    return ErrnoStatus("sock_diag request");
  }
  alignas(nlmsghdr) char buf[8192];
  ssize_t n;
  do {
    n = recv(nl.get(), buf, sizeof(buf), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus("sock_diag reply");
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf);
  if (!NLMSG_OK(nlh, static_cast<size_t>(n))) return Error("sock_diag: short reply", EPROTO);
  if (nlh->nlmsg_type == NLMSG_ERROR) {
    const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(nlh));
    return ErrnoStatus(-e->error, "sock_diag: unix socket " + std::to_string(inode));
  }
  if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(unix_diag_msg))) {
    return Error("sock_diag: unexpected reply", EPROTO);
  }
  const auto* m = static_cast<const unix_diag_msg*>(NLMSG_DATA(nlh));
  if (m->udiag_ino != static_cast<uint32_t>(inode)) return Error("sock_diag: reply for another socket", EPROTO);
  UnixSocketInfo info;
  info.type = m->udiag_type;
  info.state = m->udiag_state;
  int len = static_cast<int>(nlh->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
  for (auto* a = reinterpret_cast<const rtattr*>(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    const void* data = RTA_DATA(a);
    const size_t plen = RTA_PAYLOAD(a);
    if (a->rta_type == UNIX_DIAG_NAME) {
      // A path ends at its 0 byte; an abstract name starts with one (its 0
      // bytes shown as '@'); an empty name is a name all the same.
      info.name.assign(static_cast<const char*>(data), plen);
      if (!info.name.empty() && info.name[0] != '\0') {
        info.name.resize(strnlen(info.name.c_str(), info.name.size()));
      } else {
        info.name.resize(std::max<size_t>(info.name.size(), 1));
        std::replace(info.name.begin(), info.name.end(), '\0', '@');
      }
    } else if (a->rta_type == UNIX_DIAG_PEER && plen >= sizeof(uint32_t)) {
      uint32_t peer;
      memcpy(&peer, data, sizeof(peer));
      info.peer = peer;
    } else if (a->rta_type == UNIX_DIAG_RQLEN && plen >= sizeof(unix_diag_rqlen)) {
      unix_diag_rqlen rq;
      memcpy(&rq, data, sizeof(rq));
      info.rqueue = rq.udiag_rqueue;
    } else if (a->rta_type == UNIX_DIAG_SHUTDOWN && plen >= 1) {
      info.shutdown = *static_cast<const uint8_t*>(data);
    }
  }
  info.connected = info.state == kTcpEstablished;
  return info;
}

Status ReadUnixEnd(int sock, const UnixSocketInfo& info, img::UnixEnd* out) {
  out->set_shutdown(info.shutdown);
  ASSIGN_OR_RETURN(int sndbuf, GetIntOpt(sock, SO_SNDBUF, "SO_SNDBUF"));
  ASSIGN_OR_RETURN(int rcvbuf, GetIntOpt(sock, SO_RCVBUF, "SO_RCVBUF"));
  ASSIGN_OR_RETURN(int peek_off, GetIntOpt(sock, SO_PEEK_OFF, "SO_PEEK_OFF"));
  out->set_sndbuf(static_cast<uint32_t>(sndbuf));
  out->set_rcvbuf(static_cast<uint32_t>(rcvbuf));
  out->set_peek_off(peek_off);

  int zero = 0;
  if (setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) != 0) return ErrnoStatus("set SO_PEEK_OFF");
  PeekOffsetGuard guard(sock, peek_off);
  const bool stream = info.type == SOCK_STREAM;
  size_t total = 0;
  std::string chunk;
  for (;;) {
    size_t len = 64 << 10;
    if (!stream) {
      // The length of the next message, without moving the offset.
      auto r = Peek(sock, nullptr, 0, MSG_TRUNC);
      if (!r.ok() && r.status().err() == EAGAIN) break;
      if (!r.ok()) return r.status();
      if (*r == 0) {
        // An empty message, or the end of a shut down SOCK_SEQPACKET queue
        // (which looks the same: taken as the end).
        if (info.shutdown & 1) break;
        out->add_queue();
        continue;
      }
      len = static_cast<size_t>(*r);
    }
    if (total + len > kMaxQueued) return Errorf("more than %zu bytes queued in the socket", kMaxQueued);
    chunk.resize(len);
    auto r = Peek(sock, chunk.data(), len, 0);
    if (!r.ok() && r.status().err() == EAGAIN) break;
    if (!r.ok()) return r.status();
    if (*r == 0) break;  // SOCK_STREAM: the end of a shut down queue
    if (!stream && static_cast<size_t>(*r) != len) return Errorf("peeked %zd of a %zu-byte message", *r, len);
    chunk.resize(static_cast<size_t>(*r));
    total += chunk.size();
    if (stream && out->queue_size() == 1) {
      out->mutable_queue(0)->append(chunk);
    } else {
      out->add_queue(chunk);
    }
  }
  // The kernel's count covers all of a stream queue (only the first message
  // of a datagram one).
  if ((stream || info.type == SOCK_SEQPACKET) && total != info.rqueue) {
    return Errorf("read %zu bytes from the socket's queue, the kernel counts %u", total, info.rqueue);
  }
  return OkStatus();
}

// Sets SO_SNDBUF/SO_RCVBUF to what getsockopt reported at dump time (the
// kernel doubles what it is given), beyond the sysctl maximum if need be.
Status SetBuffer(int sock, int opt, int force_opt, uint32_t reported) {
  if (reported == 0) return OkStatus();
  ASSIGN_OR_RETURN(int now, GetIntOpt(sock, opt, "the buffer size"));
  if (static_cast<uint32_t>(now) == reported) return OkStatus();
  const int half = static_cast<int>(reported / 2);
  if (setsockopt(sock, SOL_SOCKET, force_opt, &half, sizeof(half)) != 0 &&
      setsockopt(sock, SOL_SOCKET, opt, &half, sizeof(half)) != 0) {
    return ErrnoStatus("set socket buffer size");
  }
  return OkStatus();
}

// Sends |to|'s saved queue from |from|, its peer.
Status Requeue(int from, const img::UnixEnd& to, int type) {
  size_t total = 0;
  for (const std::string& m : to.queue()) total += m.size();
  if (total == 0 && to.queue_size() == 0) return OkStatus();
  // Queued bytes count against the sender's buffer: make room for all.
  const int room = static_cast<int>(std::min<size_t>(total + (256 << 10), 1u << 30));
  if (setsockopt(from, SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof(room)) != 0) {
    return ErrnoStatus("SO_SNDBUFFORCE");
  }
  for (const std::string& m : to.queue()) {
    size_t off = 0;
    do {
      const ssize_t n = send(from, m.data() + off, m.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus("send a queued message again (" + std::to_string(m.size()) + " bytes)");
      if (type != SOCK_STREAM && static_cast<size_t>(n) != m.size()) return Error("a message was cut", EMSGSIZE);
      off += static_cast<size_t>(n);
    } while (off < m.size());
  }
  return OkStatus();
}

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

// The sockets the tree holds, paired once every process is known: each
// with its peer, which the tree must hold too (or which is closed: a socket
// the kernel no longer knows).
class UnixPass final : public TreePass {
 public:
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
      if (!info->name.empty()) return Error("a unix socket bound to " + info->name + ": not supported yet");
      if (!info->connected) {
        return Error("a unix socket that is not connected (state " + std::to_string(info->state) +
                     "): not supported yet");
      }
      sock.info = *info;
    }
    sock.holders.push_back({s.pid, s.fd});
    return OkStatus();
  }

  Status Finish(TreeFds& fds) override {
    std::set<uint64_t> done;
    for (pid_t pid : fds.order()) {
      for (img::Fd* f : fds.FdsOf(pid)) {
        if (!f->has_unix_socket() || done.count(f->inode())) continue;
        const Socket& s = sockets_.at(f->inode());
        const std::string name = FdSight{pid, f->fd(), f->path(), {}}.Name();
        uint64_t peer = s.info.peer;
        if (peer && !sockets_.count(peer)) {
          auto q = QueryUnixSocket(peer);
          if (q.ok()) {
            return Error(name + ": its peer, socket:[" + std::to_string(peer) +
                         "], is held by no process of the tree: not supported yet");
          }
          if (q.status().err() != ENOENT) return q.status().WithContext(name);
          peer = 0;  // closed
        }
        if (peer) {
          const Socket& ps = sockets_.at(peer);
          if (ps.info.peer != f->inode() || ps.info.type != s.info.type) {
            return Error(name + ": its peer socket:[" + std::to_string(peer) + "] is connected elsewhere");
          }
        }
        img::FileObject obj;
        img::UnixPair* pair = obj.mutable_unix_pair();
        pair->set_type(s.info.type);
        RETURN_IF_ERROR(ReadEnd(f->inode(), pair->mutable_a()));
        if (peer) RETURN_IF_ERROR(ReadEnd(peer, pair->mutable_b()));
        done.insert(f->inode());
        done.insert(peer);
        LOG_DEBUG("files: socket pair %lu-%lu (type %u): %d and %d messages queued", f->inode(), peer, pair->type(),
                  pair->a().queue_size(), pair->b().queue_size());
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

  Status ReadEnd(uint64_t inode, img::UnixEnd* out) const {
    const Socket& s = sockets_.at(inode);
    const auto& [pid, fd] = s.holders.front();
    const std::string name = FdSight{pid, fd, "socket:[" + std::to_string(inode) + "]", {}}.Name();
    out->set_inode(inode);
    ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(pid, fd));
    return ReadUnixEnd(copy.get(), s.info, out).WithContext(name);
  }

  std::map<uint64_t, Socket> sockets_;  // by inode
};

class UnixSocket final : public FdKind {
 public:
  const char* name() const override { return "unix socket"; }
  img::Fd::KindCase field() const override { return img::Fd::kUnixSocket; }
  Scope scope() const override { return Scope::kObject; }
  bool Recognise(const FdSight& s) const override { return S_ISSOCK(s.sb.st_mode); }

  Status Read(const FdSight&, const FdInfo&, DumpContext&, img::Fd* f) const override {
    f->mutable_unix_socket();  // the pair is saved by the tree pass
    return OkStatus();
  }
  std::unique_ptr<TreePass> NewPass() const override { return std::make_unique<UnixPass>(); }

  int object_case() const override { return img::FileObject::kUnixPair; }
  std::vector<ObjectKey> ObjectKeys(const img::FileObject& o) const override {
    std::vector<ObjectKey> keys;
    for (uint64_t ino : {o.unix_pair().a().inode(), o.unix_pair().b().inode()}) {
      if (ino) keys.push_back({object_case(), ino, 0});
    }
    return keys;
  }
  ObjectKey KeyOf(const img::Fd& f) const override { return {object_case(), f.inode(), 0}; }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const img::UnixPair& pair = obj.object->unix_pair();
    const int type = static_cast<int>(pair.type());
    if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
      return Errorf("unix socket pair of type %d", type);
    }
    const std::string what = "socket pair " + std::to_string(pair.a().inode()) + "-" + std::to_string(pair.b().inode());
    int sv[2];
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) return ErrnoStatus("socketpair");
    UniqueFd socks[2] = {UniqueFd(sv[0]), UniqueFd(sv[1])};
    const img::UnixEnd* ends[2] = {&pair.a(), &pair.b()};
    for (int i = 0; i < 2; ++i) {
      RETURN_IF_ERROR(Requeue(socks[1 - i].get(), *ends[i], type).WithContext(what));
    }
    for (int i = 0; i < 2; ++i) {
      const int fd = socks[i].get();
      const img::UnixEnd& e = *ends[i];
      if (e.inode() == 0) continue;
      if ((e.shutdown() & 3) != 0 && shutdown(fd, static_cast<int>(e.shutdown() & 3) - 1) != 0) {
        return ErrnoStatus("shutdown " + what);
      }
      RETURN_IF_ERROR(SetBuffer(fd, SO_SNDBUF, SO_SNDBUFFORCE, e.sndbuf()).WithContext(what));
      RETURN_IF_ERROR(SetBuffer(fd, SO_RCVBUF, SO_RCVBUFFORCE, e.rcvbuf()).WithContext(what));
      const int peek_off = e.peek_off();
      if (peek_off >= 0 && setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off)) != 0) {
        return ErrnoStatus("SO_PEEK_OFF " + what);
      }
    }
    for (const auto& [id, f] : obj.files) {
      const int i = f->inode() == pair.a().inode() ? 0 : f->inode() == pair.b().inode() ? 1 : -1;
      if (i < 0 || !socks[i].valid()) return Errorf("%s: a second open file of one end, or of neither", what.c_str());
      RETURN_IF_ERROR(SetStatusFlags(socks[i].get(), f->flags(), O_NONBLOCK, "socket pair"));
      (*out)[id] = std::move(socks[i]);
    }
    return OkStatus();  // a closed end is closed here
  }

  std::string Describe(const img::Fd& f) const override { return "socket:[" + std::to_string(f.inode()) + "]"; }
};

}  // namespace

const FdKind& UnixSocketKind() {
  static const UnixSocket kind;
  return kind;
}

}  // namespace cf::kinds
