// Reading a unix socket's queue without consuming it: through a copy of the
// socket (the same socket, taken with pidfd_getfd), with SO_PEEK_OFF set,
// every recv(MSG_PEEK) returns the next bytes, so the walk goes message by
// message (SOCK_DGRAM, SOCK_SEQPACKET: a first peek with MSG_TRUNC and no
// buffer tells the length) or chunk by chunk (SOCK_STREAM, which a single
// peek would stop at the boundary between two writers). The peek offset
// belongs to the socket, so the target's own value is put back afterwards.
#include "kinds/unix_queue.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace cf::kinds {
namespace {

constexpr size_t kMaxQueued = 64 << 20;  // bytes one socket may have queued in an image

// Puts the socket's peek offset back when the walk ends.
class PeekOffsetGuard {
 public:
  PeekOffsetGuard(int sock, int saved) : sock_(sock), saved_(saved) {}
  ~PeekOffsetGuard() { setsockopt(sock_, SOL_SOCKET, SO_PEEK_OFF, &saved_, sizeof(saved_)); }

 private:
  int sock_;
  int saved_;
};

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

}  // namespace

Result<int> GetIntOpt(int sock, int opt, const char* name) {
  int v = 0;
  socklen_t len = sizeof(v);
  if (getsockopt(sock, SOL_SOCKET, opt, &v, &len) != 0) return ErrnoStatus(std::string("getsockopt ") + name);
  return v;
}

Status ReadUnixEnd(int sock, const UnixSocketInfo& info, img::UnixEnd* out, bool queue) {
  out->set_shutdown(info.shutdown);
  ASSIGN_OR_RETURN(int sndbuf, GetIntOpt(sock, SO_SNDBUF, "SO_SNDBUF"));
  ASSIGN_OR_RETURN(int rcvbuf, GetIntOpt(sock, SO_RCVBUF, "SO_RCVBUF"));
  ASSIGN_OR_RETURN(int peek_off, GetIntOpt(sock, SO_PEEK_OFF, "SO_PEEK_OFF"));
  out->set_sndbuf(static_cast<uint32_t>(sndbuf));
  out->set_rcvbuf(static_cast<uint32_t>(rcvbuf));
  out->set_peek_off(peek_off);
  if (!queue) return OkStatus();

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

Status Requeue(int from, const img::UnixEnd& to, int type, const struct sockaddr* addr, unsigned addr_len) {
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
      const ssize_t n = sendto(from, m.data() + off, m.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL, addr, addr_len);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus("send a queued message again (" + std::to_string(m.size()) + " bytes)");
      if (type != SOCK_STREAM && static_cast<size_t>(n) != m.size()) return Error("a message was cut", EMSGSIZE);
      off += static_cast<size_t>(n);
    } while (off < m.size());
  }
  return OkStatus();
}

Status ApplyUnixEnd(int sock, const img::UnixEnd& e) {
  if ((e.shutdown() & 3) != 0 && shutdown(sock, static_cast<int>(e.shutdown() & 3) - 1) != 0) {
    return ErrnoStatus("shutdown");
  }
  RETURN_IF_ERROR(SetBuffer(sock, SO_SNDBUF, SO_SNDBUFFORCE, e.sndbuf()));
  RETURN_IF_ERROR(SetBuffer(sock, SO_RCVBUF, SO_RCVBUFFORCE, e.rcvbuf()));
  const int peek_off = e.peek_off();
  if (peek_off >= 0 && setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off)) != 0) {
    return ErrnoStatus("SO_PEEK_OFF");
  }
  return OkStatus();
}

}  // namespace cf::kinds
