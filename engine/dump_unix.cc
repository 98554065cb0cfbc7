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
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "common/fd.h"
#include "engine/shared_files.h"

namespace cf::engine {
namespace {

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

}  // namespace

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

}  // namespace cf::engine
