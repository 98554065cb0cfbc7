// Restoring a unix socket pair: socketpair() of the saved type, each end's
// queue sent again from the other end (message by message, so datagram and
// seqpacket boundaries stay), then the shutdown bits, the peek offset and
// the buffer sizes. An end that was closed at dump time is closed again
// once the survivor's queue is in place (a stream or seqpacket survivor
// then sees the end of the stream after its data, as before).
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "restore/shared_files.h"

namespace cf::restore {
namespace {

Result<int> GetIntOpt(int sock, int opt) {
  int v = 0;
  socklen_t len = sizeof(v);
  if (getsockopt(sock, SOL_SOCKET, opt, &v, &len) != 0) return ErrnoStatus("getsockopt");
  return v;
}

// Sets SO_SNDBUF/SO_RCVBUF to what getsockopt reported at dump time (the
// kernel doubles what it is given), beyond the sysctl maximum if need be.
Status SetBuffer(int sock, int opt, int force_opt, uint32_t reported) {
  if (reported == 0) return OkStatus();
  ASSIGN_OR_RETURN(int now, GetIntOpt(sock, opt));
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

}  // namespace

Status CreateUnixPair(const SharedObject& obj, CreatedFiles* out) {
  const img::UnixPair& pair = *obj.pair;
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
    if (fcntl(socks[i].get(), F_SETFL, static_cast<int>(f->flags()) & O_NONBLOCK) != 0) {
      return ErrnoStatus("set the flags of " + what);
    }
    (*out)[id] = std::move(socks[i]);
  }
  return OkStatus();  // a closed end is closed here
}

}  // namespace cf::restore
