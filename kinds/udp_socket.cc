// Inet datagram sockets: UDP and UDP-Lite, ping (ICMP echo) and raw
// sockets, IPv4 and IPv6 (also v4-mapped). One kDescription kind: the state
// belongs to the socket, which processes share by inheriting it.
//
// Recognised by the protocol name the kernel gives the socket's file
// ("UDP", "UDPv6", "UDP-Lite", "UDPLITEv6", "RAW", "RAWv6", "PING",
// "PINGv6": getxattr system.sockprotoname).
//
// Dump, through a copy of the socket (pidfd_getfd): family, type and
// protocol; getsockname and getpeername; the shutdown bits from sock_diag
// (UDP and UDP-Lite: the kernel's udp_diag); the UDP level options; the
// generic options (kinds/socket_opts.h); and for UDP and UDP-Lite the
// queued datagrams with their sources, peeked one by one with SO_PEEK_OFF
// as for unix sockets (the target's peek offset is put back). Raw and ping
// sockets' queues are not saved: a log line says how many bytes were
// dropped.
//
// Restore: socket(), the options that matter for bind, bind() to the saved
// address when the socket had one (or an autobound port), then the queue,
// then connect() and shutdown(), then every option.
//
// The queue is sent again to the restored socket's address as crafted
// packets on a raw IPPROTO_RAW socket (header included), so each datagram
// keeps its source address and port even when another socket holds that
// port now (the peer in the same tree, restored first), and even when the
// restored socket is connected elsewhere (the datagrams go in before the
// connect). A socket bound to a wildcard address gets them at the loopback
// address of its family (v4-mapped sources: 127.0.0.1). A socket bound to
// an address that is not local (IP_FREEBIND) cannot be reached: its queue
// is dropped with a warning.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/log.h"
#include "kinds/kind.h"
#include "kinds/sock_diag.h"
#include "kinds/socket_opts.h"

#ifndef UDP_NO_CHECK6_TX
#define UDP_NO_CHECK6_TX 101
#define UDP_NO_CHECK6_RX 102
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11
#endif
#ifndef SOL_ICMPV6
#define SOL_ICMPV6 58
#endif
#ifndef SOL_RAW
#define SOL_RAW 255
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef SOL_UDPLITE
#define SOL_UDPLITE 136
#endif

namespace cf::kinds {
namespace {

constexpr size_t kMaxQueued = 64 << 20;  // bytes one socket may have queued in an image
constexpr size_t kMaxDatagram = 65536;

// ---- addresses

void ToImage(const sockaddr_storage& ss, img::UdpAddr* out) {
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    if (a.sin_addr.s_addr != 0) out->set_addr(&a.sin_addr, 4);
    out->set_port(ntohs(a.sin_port));
  } else if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    if (!IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr)) out->set_addr(&a.sin6_addr, 16);
    out->set_port(ntohs(a.sin6_port));
    out->set_flowinfo(ntohl(a.sin6_flowinfo));
    out->set_scope_id(a.sin6_scope_id);
  }
}

socklen_t FromImage(int family, const img::UdpAddr& a, sockaddr_storage* ss) {
  memset(ss, 0, sizeof(*ss));
  if (family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(ss);
    s->sin_family = AF_INET;
    if (a.addr().size() == 4) memcpy(&s->sin_addr, a.addr().data(), 4);
    s->sin_port = htons(static_cast<uint16_t>(a.port()));
    return sizeof(*s);
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(ss);
  s->sin6_family = AF_INET6;
  if (a.addr().size() == 16) memcpy(&s->sin6_addr, a.addr().data(), 16);
  s->sin6_port = htons(static_cast<uint16_t>(a.port()));
  s->sin6_flowinfo = htonl(a.flowinfo());
  s->sin6_scope_id = a.scope_id();
  return sizeof(*s);
}

std::string AddrText(const img::UdpAddr& a) {
  char buf[INET6_ADDRSTRLEN] = "*";
  if (a.addr().size() == 4) inet_ntop(AF_INET, a.addr().data(), buf, sizeof(buf));
  if (a.addr().size() == 16) inet_ntop(AF_INET6, a.addr().data(), buf, sizeof(buf));
  std::string s = buf;
  if (a.addr().size() == 16) s = '[' + s + ']';
  s += ':';
  s += std::to_string(a.port());
  return s;
}

bool IsQueued(int type, int protocol) {
  return type == SOCK_DGRAM && (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE);
}

// ---- dump

// sk_shutdown of a UDP or UDP-Lite socket, from a sock_diag dump of the
// family's sockets of that protocol (udp_diag looks single sockets up by
// address, which an unbound one has not).
Result<uint32_t> QueryShutdown(int family, int protocol, uint64_t inode) {
  inet_diag_req_v2 req{};
  req.sdiag_family = static_cast<uint8_t>(family);
  req.sdiag_protocol = static_cast<uint8_t>(protocol);
  req.idiag_states = ~0u;
  uint32_t shutdown = 0;
  ASSIGN_OR_RETURN(bool found, SockDiag(&req, sizeof(req), true, "sock_diag", [&](const DiagReply& r) {
    const auto* m = r.As<inet_diag_msg>();
    if (m == nullptr || m->idiag_inode != inode) return false;
    r.ForEachAttr<inet_diag_msg>([&](const rtattr* a) {
      if (a->rta_type == INET_DIAG_SHUTDOWN && RTA_PAYLOAD(a) >= 1) shutdown = *static_cast<const uint8_t*>(RTA_DATA(a));
    });
    return true;
  }));
  if (!found) return Error("sock_diag does not list socket " + std::to_string(inode), ENOENT);
  return shutdown;
}

// The queued datagrams, peeked: each peek moves the peek offset past the
// datagram it returned, so the next one returns the next datagram.
Status ReadQueue(int sock, img::UdpSocket* out) {
  int saved = -1;
  socklen_t len = sizeof(saved);
  if (getsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &saved, &len) != 0) return ErrnoStatus("getsockopt SO_PEEK_OFF");
  const int zero = 0;
  if (setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) != 0) return ErrnoStatus("set SO_PEEK_OFF");
  PeekOffsetGuard guard(sock, saved);
  std::string buf(kMaxDatagram, '\0');
  size_t total = 0;
  for (;;) {
    sockaddr_storage from{};
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = recvmsg(sock, &msg, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) return ErrnoStatus("recv(MSG_PEEK) of a queued datagram");
    if (msg.msg_flags & MSG_TRUNC) return Errorf("a queued datagram of more than %zu bytes", kMaxDatagram);
    total += static_cast<size_t>(n);
    if (total > kMaxQueued) return Errorf("more than %zu bytes queued in the socket", kMaxQueued);
    img::UdpDatagram* d = out->add_queue();
    d->set_data(buf.data(), static_cast<size_t>(n));
    ToImage(from, d->mutable_from());
    // A zero-length datagram does not move the offset: the kernel skips it
    // on the next peek as one already peeked.
  }
  return OkStatus();
}

// The SOL_UDP options (SOL_UDPLITE for UDP-Lite sockets), with their image fields.
const std::vector<IntOpt<img::UdpSocket>>& UdpOpts() {
  static const std::vector<IntOpt<img::UdpSocket>> opts = {
      CF_INT_OPT(img::UdpSocket, SOL_UDP, UDP_CORK, cork, 0),
      CF_INT_OPT(img::UdpSocket, SOL_UDP, UDP_SEGMENT, segment, 0),
      CF_INT_OPT(img::UdpSocket, SOL_UDP, UDP_GRO, gro, 0),
      CF_INT_OPT(img::UdpSocket, SOL_UDP, UDP_NO_CHECK6_TX, no_check6_tx, 0),
      CF_INT_OPT(img::UdpSocket, SOL_UDP, UDP_NO_CHECK6_RX, no_check6_rx, 0),
      CF_INT_OPT(img::UdpSocket, SOL_UDP, UDPLITE_SEND_CSCOV, send_cscov, 0),
      CF_INT_OPT(img::UdpSocket, SOL_UDP, UDPLITE_RECV_CSCOV, recv_cscov, 0),
  };
  return opts;
}

int UdpLevel(int protocol) { return protocol == IPPROTO_UDPLITE ? SOL_UDPLITE : SOL_UDP; }

// The ICMP type filter of a raw ICMP or ICMPv6 socket: its level and option.
std::optional<std::pair<int, int>> IcmpFilterOpt(const img::UdpSocket& u) {
  if (u.type() != SOCK_RAW) return std::nullopt;
  if (u.family() == AF_INET && u.protocol() == IPPROTO_ICMP) return std::pair{SOL_RAW, ICMP_FILTER};
  if (u.family() == AF_INET6 && u.protocol() == IPPROTO_ICMPV6) return std::pair{SOL_ICMPV6, ICMPV6_FILTER};
  return std::nullopt;
}

Status ReadIcmpFilter(int sock, img::UdpSocket* u) {
  const auto opt = IcmpFilterOpt(*u);
  if (!opt) return OkStatus();
  char buf[64];
  socklen_t len = sizeof(buf);
  if (getsockopt(sock, opt->first, opt->second, buf, &len) != 0) return ErrnoStatus("getsockopt ICMP_FILTER");
  u->set_icmp_filter(buf, len);
  return OkStatus();
}

Status ApplyIcmpFilter(int sock, const img::UdpSocket& u) {
  const auto opt = IcmpFilterOpt(u);
  if (!opt || u.icmp_filter().empty()) return OkStatus();
  const std::string& f = u.icmp_filter();
  if (setsockopt(sock, opt->first, opt->second, f.data(), static_cast<socklen_t>(f.size())) != 0) {
    return ErrnoStatus("set ICMP_FILTER");
  }
  return OkStatus();
}

// ---- restore: the queue

uint32_t SumWords(const void* data, size_t len, uint32_t sum) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(p[len - 1] << 8);
  return sum;
}

uint16_t FoldSum(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  const auto c = static_cast<uint16_t>(~sum);
  return c == 0 ? 0xffff : c;  // 0 means "no checksum" in UDP
}

// A UDP (or UDP-Lite, full coverage) datagram from |src| to |dst| (both of
// |family|, addresses of 4 or 16 bytes), with its IP header.
std::string CraftPacket(int family, int protocol, const std::string& src, uint16_t sport, const std::string& dst,
                        uint16_t dport, const std::string& payload) {
  const size_t ulen = sizeof(udphdr) + payload.size();
  udphdr uh{};
  uh.source = htons(sport);
  uh.dest = htons(dport);
  uh.len = htons(protocol == IPPROTO_UDPLITE ? 0 : static_cast<uint16_t>(ulen));  // UDP-Lite: coverage 0 = all
  // The pseudo header: addresses, protocol, length.
  uint32_t sum = SumWords(src.data(), src.size(), 0);
  sum = SumWords(dst.data(), dst.size(), sum);
  sum += static_cast<uint32_t>(protocol) + static_cast<uint32_t>(ulen & 0xffff) + static_cast<uint32_t>(ulen >> 16);
  std::string udp(reinterpret_cast<const char*>(&uh), sizeof(uh));
  udp += payload;
  uh.check = htons(FoldSum(SumWords(udp.data(), udp.size(), sum)));
  memcpy(udp.data(), &uh, sizeof(uh));
  if (family == AF_INET) {
    iphdr ip{};
    ip.version = 4;
    ip.ihl = 5;
    ip.ttl = 64;
    ip.protocol = static_cast<uint8_t>(protocol);
    ip.tot_len = htons(static_cast<uint16_t>(sizeof(ip) + ulen));  // the kernel fills the checksum and id
    memcpy(&ip.saddr, src.data(), 4);
    memcpy(&ip.daddr, dst.data(), 4);
    return std::string(reinterpret_cast<const char*>(&ip), sizeof(ip)) + udp;
  }
  ip6_hdr ip{};
  ip.ip6_flow = htonl(6u << 28);
  ip.ip6_plen = htons(static_cast<uint16_t>(ulen));
  ip.ip6_nxt = static_cast<uint8_t>(protocol);
  ip.ip6_hlim = 64;
  memcpy(&ip.ip6_src, src.data(), 16);
  memcpy(&ip.ip6_dst, dst.data(), 16);
  return std::string(reinterpret_cast<const char*>(&ip), sizeof(ip)) + udp;
}

const uint8_t kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool IsV4Mapped(const std::string& a) { return a.size() == 16 && memcmp(a.data(), kV4Mapped, 12) == 0; }

// The address the restored socket receives its queue at, in the family of
// the datagram's source |src_len| (4 or 16 bytes); empty when none works.
std::string Destination(const img::UdpAddr& local, size_t src_len) {
  const std::string& a = local.addr();
  if (src_len == 4) {
    if (a.empty()) return std::string("\x7f\0\0\x01", 4);
    if (a.size() == 4) return a;
    return IsV4Mapped(a) ? a.substr(12) : "";
  }
  if (a.empty()) {
    std::string lo(16, '\0');
    lo[15] = 1;
    return lo;
  }
  return a.size() == 16 && !IsV4Mapped(a) ? a : "";
}

Status Requeue(const img::UdpSocket& u, const std::string& what) {
  if (u.queue_size() == 0) return OkStatus();
  UniqueFd raw[2];  // AF_INET, AF_INET6
  size_t sent = 0;
  for (const img::UdpDatagram& d : u.queue()) {
    std::string src = d.from().addr();
    if (src.empty()) src.assign(u.family() == AF_INET ? 4 : 16, '\0');
    if (IsV4Mapped(src)) src = src.substr(12);
    const int family = src.size() == 4 ? AF_INET : AF_INET6;
    const std::string dst = Destination(u.local(), src.size());
    if (dst.empty()) {
      LOG_WARN("restore: %s: bound to %s, which its queue cannot be sent to: %d datagrams dropped", what.c_str(),
               AddrText(u.local()).c_str(), u.queue_size() - static_cast<int>(sent));
      return OkStatus();
    }
    UniqueFd& s = raw[family == AF_INET ? 0 : 1];
    if (!s.valid()) {
      s.reset(socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
      if (!s.valid()) return ErrnoStatus("socket(SOCK_RAW, IPPROTO_RAW) to send the queue again");
    }
    const std::string pkt = CraftPacket(family, static_cast<int>(u.protocol()), src,
                                        static_cast<uint16_t>(d.from().port()), dst,
                                        static_cast<uint16_t>(u.local().port()), d.data());
    sockaddr_storage to{};
    socklen_t to_len;
    if (family == AF_INET) {
      auto* t = reinterpret_cast<sockaddr_in*>(&to);
      t->sin_family = AF_INET;
      memcpy(&t->sin_addr, dst.data(), 4);
      to_len = sizeof(*t);
    } else {
      auto* t = reinterpret_cast<sockaddr_in6*>(&to);
      t->sin6_family = AF_INET6;
      memcpy(&t->sin6_addr, dst.data(), 16);
      to_len = sizeof(*t);
    }
    if (sendto(s.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), to_len) !=
        static_cast<ssize_t>(pkt.size())) {
      return ErrnoStatus("send a queued datagram again (" + std::to_string(d.data().size()) + " bytes from " +
                         AddrText(d.from()) + ")");
    }
    ++sent;
  }
  return OkStatus();
}

// Waits until |n| datagrams are in |sock|'s queue: loopback delivers them
// from a softirq, not within sendto().
// Zero-length ones are not counted: a peek skips those it saw before.
Status AwaitQueue(int sock, int n) {
  for (int tries = 0; tries < 2000; ++tries) {
    int count = 0;
    const int zero = 0;
    if (setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) != 0) return ErrnoStatus("set SO_PEEK_OFF");
    char byte;
    // MSG_TRUNC peeks move the offset by the whole datagram.
    ssize_t got;
    for (int i = 0; i < (1 << 20) && (got = recv(sock, &byte, 1, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC)) >= 0; ++i) {
      count += got > 0 ? 1 : 0;
    }
    const int off = -1;
    setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
    if (count >= n) return OkStatus();
    usleep(1000);
  }
  return Errorf("%d datagrams sent to the restored socket did not all arrive", n);
}

// "udp", "udplite6", "raw(17)", "ping6".
std::string Kind(const img::UdpSocket& u) {
  std::string s = u.type() == SOCK_RAW                ? "raw" + std::string(u.family() == AF_INET6 ? "6" : "") + "(" +
                                                            std::to_string(u.protocol()) + ")"
                  : u.protocol() == IPPROTO_UDPLITE   ? "udplite"
                  : u.protocol() == IPPROTO_UDP       ? "udp"
                                                      : "ping";
  if (u.type() != SOCK_RAW && u.family() == AF_INET6) s += "6";
  return s;
}

class UdpSocket final : public FdKind {
 public:
  const char* name() const override { return "inet datagram socket"; }
  img::Fd::KindCase field() const override { return img::Fd::kUdp; }
  Scope scope() const override { return Scope::kDescription; }

  bool Recognise(const FdSight& s) const override {
    if (!S_ISSOCK(s.sb.st_mode)) return false;
    const std::string p = SocketProtocolName(s);
    return p == "UDP" || p == "UDPv6" || p == "UDP-Lite" || p == "UDPLITEv6" || p == "RAW" || p == "RAWv6" ||
           p == "PING" || p == "PINGv6";
  }

  Status Read(const FdSight& s, const FdInfo&, DumpContext&, img::Fd* f) const override {
    ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(s.pid, s.fd));
    const int sock = copy.get();
    img::UdpSocket* u = f->mutable_udp();
    int v[3];
    const int opts[3] = {SO_DOMAIN, SO_TYPE, SO_PROTOCOL};
    for (int i = 0; i < 3; ++i) {
      socklen_t len = sizeof(v[i]);
      if (getsockopt(sock, SOL_SOCKET, opts[i], &v[i], &len) != 0) return ErrnoStatus("getsockopt SO_DOMAIN/TYPE");
    }
    u->set_family(static_cast<uint32_t>(v[0]));
    u->set_type(static_cast<uint32_t>(v[1]));
    u->set_protocol(static_cast<uint32_t>(v[2]));
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(sock, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return ErrnoStatus("getsockname");
    ToImage(ss, u->mutable_local());
    len = sizeof(ss);
    if (getpeername(sock, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      ToImage(ss, u->mutable_peer());
    } else if (errno != ENOTCONN) {
      return ErrnoStatus("getpeername");
    }
    RETURN_IF_ERROR(ReadSocketOpts(sock, f->mutable_socket_opts()));
    if (IsQueued(v[1], v[2])) {
      // A socket never bound is in no table sock_diag walks: taken as not
      // shut down.
      auto shut = QueryShutdown(v[0], v[2], f->inode());
      if (!shut.ok() && !(shut.status().err() == ENOENT && u->local().port() == 0)) return shut.status();
      u->set_shutdown(shut.ok() ? *shut : 0);
      RETURN_IF_ERROR(ReadIntOpts(sock, UdpOpts(), u, UdpLevel(v[2])));
      // Datagrams held back by UDP_CORK sit in the send queue, which no
      // call reads back: refused rather than lost.
      int unsent = 0;
      if (u->cork() && ioctl(sock, SIOCOUTQ, &unsent) == 0 && unsent > 0) {
        return Errorf("corked (UDP_CORK) with %d bytes not sent yet: they cannot be saved", unsent);
      }
      RETURN_IF_ERROR(ReadQueue(sock, u));
    } else {
      RETURN_IF_ERROR(ReadIcmpFilter(sock, u));
      int queued = 0;
      if (ioctl(sock, FIONREAD, &queued) == 0 && queued > 0) {
        LOG_WARN("files: %s: a %s socket's queue is not saved (%d bytes dropped)", s.Name().c_str(),
                 SocketProtocolName(s).c_str(), queued);
      }
    }
    return OkStatus();
  }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const auto& [id, f] = *obj.files.begin();
    const img::UdpSocket& u = f->udp();
    const std::string what = "socket:[" + std::to_string(f->inode()) + "] (" + Kind(u) + " " + AddrText(u.local()) + ")";
    const int family = static_cast<int>(u.family());
    if (family != AF_INET && family != AF_INET6) return Errorf("%s: family %d", what.c_str(), family);
    UniqueFd sock(socket(family, static_cast<int>(u.type()) | SOCK_CLOEXEC, static_cast<int>(u.protocol())));
    if (!sock.valid()) return ErrnoStatus("socket() for " + what);
    const int fd = sock.get();
    if (f->has_socket_opts()) RETURN_IF_ERROR(ApplyBindOpts(fd, f->socket_opts()).WithContext(what));
    sockaddr_storage ss;
    const bool raw = u.type() == SOCK_RAW;
    if (!u.local().addr().empty() || (!raw && u.local().port() != 0)) {
      const socklen_t len = FromImage(family, u.local(), &ss);
      if (raw) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = 0;
      if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        return ErrnoStatus("bind " + what + " to " + AddrText(u.local()));
      }
    }
    if (u.queue_size() > 0) {
      // Room for the whole queue whatever the saved buffer size (set last).
      const int room = static_cast<int>(std::min<size_t>(u.queue_size() * 4096 + (1 << 20), 1u << 30));
      setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &room, sizeof(room));
      RETURN_IF_ERROR(Requeue(u, what));
      int nonempty = 0;
      for (const img::UdpDatagram& d : u.queue()) nonempty += d.data().empty() ? 0 : 1;
      RETURN_IF_ERROR(AwaitQueue(fd, nonempty).WithContext(what));
    }
    if (u.has_peer()) {
      const socklen_t len = FromImage(family, u.peer(), &ss);
      if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        return ErrnoStatus("connect " + what + " to " + AddrText(u.peer()));
      }
    }
    if ((u.shutdown() & 3) != 0 && shutdown(fd, static_cast<int>(u.shutdown() & 3) - 1) != 0 &&
        !(errno == ENOTCONN && !u.has_peer())) {
      return ErrnoStatus("shutdown " + what);
    }
    RETURN_IF_ERROR(ApplyIntOpts(fd, UdpOpts(), u, UdpLevel(static_cast<int>(u.protocol()))).WithContext(what));
    RETURN_IF_ERROR(ApplyIcmpFilter(fd, u).WithContext(what));
    if (f->has_socket_opts()) RETURN_IF_ERROR(ApplySocketOpts(fd, f->socket_opts()).WithContext(what));
    RETURN_IF_ERROR(SetStatusFlags(fd, f->flags(), O_NONBLOCK, "socket"));
    (*out)[id] = std::move(sock);
    return OkStatus();
  }

  std::vector<Probe> Probes() const override {
    return {{"udp sock_diag", "UDP sockets cannot be dumped (their shutdown state is unknown)",
             [] {
               UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
               sockaddr_in a{};
               a.sin_family = AF_INET;
               a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
               struct stat sb;
               if (!s.valid() || bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
                   fstat(s.get(), &sb) != 0) {
                 return ProbeFailed("a bound UDP socket", errno);
               }
               auto r = QueryShutdown(AF_INET, IPPROTO_UDP, sb.st_ino);
               return r.ok() ? ProbeResult{true, ""} : ProbeResult{false, r.status().ToString()};
             }},
            {"raw sockets", "raw sockets cannot be restored, nor UDP queues sent again",
             [] {
               UniqueFd s(socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
               return s.valid() ? ProbeResult{true, ""} : ProbeFailed("socket(AF_INET6, SOCK_RAW)", errno);
             }},
            {"SO_BUF_LOCK", "buffer sizes set by hand are not kept from autotuning after restore",
             [] {
               UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
               int v = 0;
               socklen_t len = sizeof(v);
               return s.valid() && getsockopt(s.get(), SOL_SOCKET, 72 /* SO_BUF_LOCK */, &v, &len) == 0
                          ? ProbeResult{true, ""}
                          : ProbeFailed("getsockopt SO_BUF_LOCK", errno);
             }},
            {"IPV6_FREEBIND", "IPv6 sockets lose IPV6_FREEBIND", [] {
               UniqueFd s(socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
               const int one = 1;
               return s.valid() && setsockopt(s.get(), SOL_IPV6, 78 /* IPV6_FREEBIND */, &one, sizeof(one)) == 0
                          ? ProbeResult{true, ""}
                          : ProbeFailed("setsockopt IPV6_FREEBIND", errno);
             }}};
  }

  std::string Describe(const img::Fd& f) const override {
    const img::UdpSocket& u = f.udp();
    std::string s = Kind(u) + " " + AddrText(u.local());
    if (u.has_peer()) s += " -> " + AddrText(u.peer());
    if (u.shutdown()) s += " shutdown " + std::to_string(u.shutdown());
    if (u.queue_size()) s += ", " + std::to_string(u.queue_size()) + " datagrams queued";
    if (f.has_socket_opts()) {
      const std::string o = DescribeSocketOpts(f.socket_opts());
      if (!o.empty()) s += ", " + o;
    }
    return s;
  }
};

}  // namespace

const FdKind& UdpSocketKind() {
  static const UdpSocket kind;
  return kind;
}

}  // namespace cf::kinds
