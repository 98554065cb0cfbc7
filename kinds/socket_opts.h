// The options every socket kind shares: SOL_SOCKET options, an attached
// classic BPF filter, and the IP-level options of inet sockets, carried in
// Fd.socket_opts (img::SocketOpts). A socket kind reads them at dump from
// its copy of the socket and applies them to the socket it creates at
// restore, in two steps around bind():
//
//   socket() -> ApplyBindOpts -> bind/connect/refill queues -> ApplySocketOpts
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"

namespace cf::kinds {

// The protocol name the kernel gives the socket |s| ("UDP", "TCPv6",
// "UNIX-STREAM", "PACKET", "NETLINK"...: getxattr system.sockprotoname of
// its file), without taking the socket; empty when it cannot be read.
std::string SocketProtocolName(const FdSight& s);

// Reads the options of |sock| (criu-fast's copy of a target's socket).
// Options the kernel does not offer for this socket are left unset; a
// filter that cannot be read back (an eBPF program) is an error.
Status ReadSocketOpts(int sock, img::SocketOpts* out);

// Before bind(): the options that decide whether the saved address can be
// bound again (SO_REUSEADDR, SO_REUSEPORT, SO_BINDTODEVICE, IPV6_V6ONLY,
// IP_TRANSPARENT), and IP_FREEBIND on for the bind whatever its saved value
// (a socket may have bound a foreign address and cleared it since);
// ApplySocketOpts puts the saved value back.
Status ApplyBindOpts(int sock, const img::SocketOpts& o);

// Once the socket is bound, connected and its queues refilled: every
// option (again: what ApplyBindOpts set is compared and left alone), the
// buffer sizes and their locks, the filter, then SO_LOCK_FILTER.
Status ApplySocketOpts(int sock, const img::SocketOpts& o);

// ---- integer option tables, for any level

// One integer option and the optional field of message |Msg| that keeps it.
// |def| is the usual default, only for `show`.
template <typename Msg>
struct IntOpt {
  int level;
  int opt;
  const char* name;
  std::optional<int> (*get)(const Msg&);
  void (*set)(Msg*, int);
  int def;
};

#define CF_INT_OPT(Msg, level, opt, field, def)                                                      \
  ::cf::kinds::IntOpt<Msg> {                                                                       \
    level, opt, #field, [](const Msg& m) { return m.has_##field() ? std::optional<int>(m.field()) : std::nullopt; }, \
        [](Msg* m, int v) { m->set_##field(v); }, def                                              \
  }

// The answers of getsockopt for an option this socket does not have.
// (ENOTCONN: options that only a connected socket has.)
inline bool OptionNotOffered(int err) {
  return err == ENOPROTOOPT || err == EOPNOTSUPP || err == EINVAL || err == ENOTSUP || err == ENOTCONN;
}

// Reads each option of |table| that the kernel offers for |sock| into
// |out|, at each row's level (|level| instead when not 0).
template <typename Msg>
Status ReadIntOpts(int sock, const std::vector<IntOpt<Msg>>& table, Msg* out, int level = 0) {
  for (const IntOpt<Msg>& e : table) {
    int v = 0;
    socklen_t len = sizeof(v);
    if (getsockopt(sock, level ? level : e.level, e.opt, &v, &len) != 0) {
      if (OptionNotOffered(errno)) continue;
      return ErrnoStatus(std::string("getsockopt socket option ") + e.name);
    }
    e.set(out, v);
  }
  return OkStatus();
}

// Sets |e| to its value saved in |m| unless it is unset or the socket has
// it already (see socket_opts.cc: setting pins what the kernel computes).
template <typename Msg>
Status ApplyIntOpt(int sock, const IntOpt<Msg>& e, const Msg& m, int level = 0) {
  const std::optional<int> want = e.get(m);
  if (!want) return OkStatus();
  if (level == 0) level = e.level;
  int now = 0;
  socklen_t len = sizeof(now);
  if (getsockopt(sock, level, e.opt, &now, &len) == 0 && now == *want) return OkStatus();
  const int v = *want;
  if (setsockopt(sock, level, e.opt, &v, sizeof(v)) != 0) {
    return ErrnoStatus(std::string("set socket option ") + e.name + " to " + std::to_string(v));
  }
  return OkStatus();
}

// ApplyIntOpt for each row of |table|, in order.
template <typename Msg>
Status ApplyIntOpts(int sock, const std::vector<IntOpt<Msg>>& table, const Msg& m, int level = 0) {
  for (const IntOpt<Msg>& e : table) RETURN_IF_ERROR(ApplyIntOpt(sock, e, m, level));
  return OkStatus();
}

// ---- helpers

// Puts |sock|'s peek offset back to |saved| when a walk of its queue with
// MSG_PEEK (which moves the offset) ends.
class PeekOffsetGuard {
 public:
  PeekOffsetGuard(int sock, int saved) : sock_(sock), saved_(saved) {}
  ~PeekOffsetGuard() { setsockopt(sock_, SOL_SOCKET, SO_PEEK_OFF, &saved_, sizeof(saved_)); }
  PeekOffsetGuard(const PeekOffsetGuard&) = delete;
  PeekOffsetGuard& operator=(const PeekOffsetGuard&) = delete;

 private:
  int sock_;
  int saved_;
};

// Sets SO_SNDBUF or SO_RCVBUF (|opt|) so that getsockopt reports
// |reported| again (the kernel doubles what it is given), beyond the sysctl
// maxima with the FORCE variant where allowed; nothing when it does already
// or |reported| is 0.
Status ApplyBufferSize(int sock, int opt, uint32_t reported);

// The options that differ from a fresh socket's defaults, for `show`:
// "reuseaddr=1 sndbuf=4608 filter=4 insns" (empty when none is known).
std::string DescribeSocketOpts(const img::SocketOpts& o);

}  // namespace cf::kinds
