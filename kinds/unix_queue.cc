// Reading a unix socket's queue without consuming it: through a copy of the
// socket (the same socket, taken with pidfd_getfd), with SO_PEEK_OFF set,
// every recv(MSG_PEEK) returns the next bytes, so the walk goes message by
// message (SOCK_DGRAM, SOCK_SEQPACKET: a first peek with MSG_TRUNC and no
// buffer tells the length) or chunk by chunk (SOCK_STREAM, which a single
// peek would stop at the boundary between two writers). The peek offset
// belongs to the socket, so the target's own value is put back afterwards.
#include "kinds/unix_queue.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "kinds/socket_opts.h"

namespace cf::kinds {
namespace {

constexpr size_t kMaxQueued = 64 << 20;  // bytes one socket may have queued in an image

// One recvmsg(MSG_PEEK) into |buf|; the descriptors in flight with it
// (peeking installs copies in criu-fast) go to |fds|.
Result<ssize_t> Peek(int sock, void* buf, size_t len, int flags, std::vector<UniqueFd>* fds,
                     std::string* from = nullptr) {
  iovec iov{buf, len};
  sockaddr_un sender{};
  alignas(cmsghdr) char control[CMSG_SPACE(256 * sizeof(int)) + CMSG_SPACE(sizeof(ucred))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (from) {
    msg.msg_name = &sender;
    msg.msg_namelen = sizeof(sender);
  }
  const ssize_t n = recvmsg(sock, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC | flags);
  if (n < 0) return ErrnoStatus("recv(MSG_PEEK)");
  fds->clear();
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < nfds; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
      fds->emplace_back(fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) return Error("more descriptors in flight with one message than criu-fast takes");
  if (from) {
    const size_t off = offsetof(sockaddr_un, sun_path);
    from->clear();
    if (msg.msg_namelen > off) from->assign(sender.sun_path, msg.msg_namelen - off);
    // A path ends at its 0 byte.
    if (!from->empty() && (*from)[0] != '\0') from->resize(strnlen(from->c_str(), from->size()));
  }
  return n;
}

}  // namespace

Status ReadUnixEnd(int sock, const UnixSocketInfo& info, img::UnixEnd* out, bool queue, InFlightFds* flight) {
  out->set_shutdown(info.shutdown);
  // Before the walk below moves the peek offset.
  RETURN_IF_ERROR(ReadSocketOpts(sock, out->mutable_opts()));
  if (!queue) return OkStatus();
  const int peek_off = out->opts().has_peek_off() ? out->opts().peek_off() : -1;

  int zero = 0;
  if (setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) != 0) return ErrnoStatus("set SO_PEEK_OFF");
  PeekOffsetGuard guard(sock, peek_off);
  const bool stream = info.type == SOCK_STREAM;
  size_t total = 0;
  std::string chunk;
  std::vector<UniqueFd> fds;
  bool after_rights = false;  // a stream chunk after one with descriptors starts an entry of its own
  for (;;) {
    size_t len = 64 << 10;
    if (!stream) {
      // The length of the next message, without moving the offset.
      auto r = Peek(sock, nullptr, 0, MSG_TRUNC, &fds);
      if (!r.ok() && r.status().err() == EAGAIN) break;
      if (!r.ok()) return r.status();
      if (*r == 0 && fds.empty()) {
        // An empty message, or the end of a shut down SOCK_SEQPACKET queue
        // (which looks the same: taken as the end).
        if (info.shutdown & 1) break;
        out->add_queue();
        continue;
      }
      len = std::max<size_t>(static_cast<size_t>(*r), 1);
    }
    if (total + len > kMaxQueued) return Errorf("more than %zu bytes queued in the socket", kMaxQueued);
    chunk.resize(len);
    std::string sender;
    auto r = Peek(sock, chunk.data(), len, 0, &fds, info.type == SOCK_DGRAM ? &sender : nullptr);
    if (!r.ok() && r.status().err() == EAGAIN) break;
    if (!r.ok()) return r.status();
    if (*r == 0 && (stream || fds.empty())) break;  // SOCK_STREAM: the end of a shut down queue
    if (!stream && static_cast<size_t>(*r) != len && !(*r == 0 && len == 1)) {
      return Errorf("peeked %zd of a %zu-byte message", *r, len);
    }
    chunk.resize(static_cast<size_t>(*r));
    total += chunk.size();
    if (stream && out->queue_size() > 0 && fds.empty() && !after_rights) {
      out->mutable_queue(out->queue_size() - 1)->append(chunk);
    } else {
      out->add_queue(chunk);
    }
    if (info.type == SOCK_DGRAM) out->add_senders(sender);
    after_rights = !fds.empty();
    if (!fds.empty()) {
      if (flight == nullptr) return Error("descriptors in flight in the socket's queue (SCM_RIGHTS): not supported here");
      flight->push_back({out->queue_size() - 1, std::move(fds)});
      fds.clear();
    }
  }
  if (std::all_of(out->senders().begin(), out->senders().end(), [](const std::string& a) { return a.empty(); })) {
    out->clear_senders();
  }
  // The kernel's count covers all of a stream queue (only the first message
  // of a datagram one).
  if ((stream || info.type == SOCK_SEQPACKET) && total != info.rqueue) {
    return Errorf("read %zu bytes from the socket's queue, the kernel counts %u", total, info.rqueue);
  }
  return OkStatus();
}

Status Requeue(int from, const img::UnixEnd& to, int type, const sockaddr* addr, unsigned addr_len,
               const InFlightFiles* files, int first, int count) {
  size_t total = 0;
  for (const std::string& m : to.queue()) total += m.size();
  if (total == 0 && to.queue_size() == 0) return OkStatus();
  // Queued bytes count against the sender's buffer: make room for all.
  const int room = static_cast<int>(std::min<size_t>(total + (256 << 10), 1u << 30));
  if (setsockopt(from, SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof(room)) != 0) {
    return ErrnoStatus("SO_SNDBUFFORCE");
  }
  std::map<uint32_t, const img::UnixRights*> rights;  // by message
  for (const img::UnixRights& r : to.rights()) rights[r.msg()] = &r;
  const int end = count < 0 ? to.queue_size() : std::min(to.queue_size(), first + count);
  for (int i = first; i < end; ++i) {
    const std::string& m = to.queue(i);
    // Descriptors go with the first byte of their message.
    std::vector<int> fds;
    if (auto it = rights.find(static_cast<uint32_t>(i)); it != rights.end()) {
      for (uint32_t id : it->second->files()) {
        auto f = files ? files->find(id) : InFlightFiles::const_iterator{};
        if (!files || f == files->end()) return Errorf("message %d: in-flight file %u was not made", i, id);
        fds.push_back(f->second);
      }
    }
    std::vector<char> control(fds.empty() ? 0 : CMSG_SPACE(fds.size() * sizeof(int)));
    size_t off = 0;
    do {
      iovec iov{const_cast<char*>(m.data() + off), m.size() - off};
      msghdr msg{};
      msg.msg_name = const_cast<sockaddr*>(addr);
      msg.msg_namelen = addr_len;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      if (!fds.empty()) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
        memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
      }
      const ssize_t n = sendmsg(from, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus("send a queued message again (" + std::to_string(m.size()) + " bytes)");
      if (type != SOCK_STREAM && static_cast<size_t>(n) != m.size()) return Error("a message was cut", EMSGSIZE);
      off += static_cast<size_t>(n);
      fds.clear();
    } while (off < m.size());
  }
  return OkStatus();
}

Status ApplyUnixEnd(int sock, const img::UnixEnd& e) {
  if ((e.shutdown() & 3) != 0 && shutdown(sock, static_cast<int>(e.shutdown() & 3) - 1) != 0) {
    return ErrnoStatus("shutdown");
  }
  if (e.has_opts()) return ApplySocketOpts(sock, e.opts());
  // An image from before |opts|: the three options it kept.
  img::SocketOpts old;
  old.set_sndbuf(e.sndbuf());
  old.set_rcvbuf(e.rcvbuf());
  if (e.peek_off() >= 0) old.set_peek_off(e.peek_off());
  return ApplySocketOpts(sock, old);
}

}  // namespace cf::kinds
