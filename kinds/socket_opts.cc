// Generic socket options (see socket_opts.h).
//
// Integer options are described by tables (level, option, image field): the
// dump reads each with getsockopt and keeps those the kernel answers for
// this socket; restore compares each kept value with the new socket's and
// sets only those that differ. Comparing instead of setting everything
// matters: setting an option to the value the kernel computed pins it
// (IP_TTL would no longer follow its sysctl), and some options cannot be
// set on every socket even to their current value (IPV6_V6ONLY once bound,
// SO_PEEK_OFF where the protocol has no peek offset).
//
// Options with structures (timeouts, linger, the bound device, buffer sizes
// and their locks, the filter) have their own code. Buffer sizes: getsockopt
// reports twice what setsockopt took, so half is set again, with the FORCE
// variants (beyond the sysctl maxima, as root may); setting a size locks it
// against autotuning, so SO_BUF_LOCK is put back afterwards.
//
// Not covered (not readable back from the kernel): multicast group
// memberships, SO_ATTACH_REUSEPORT_CBPF/EBPF programs, eBPF socket filters
// (refused), IP_OPTIONS.
#include "kinds/socket_opts.h"

#include <linux/filter.h>
#include <linux/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

namespace cf::kinds {
namespace {

// Options newer than some libc headers.
#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#ifndef SO_RESERVE_MEM
#define SO_RESERVE_MEM 73
#endif
#ifndef SO_TXREHASH
#define SO_TXREHASH 74
#endif
#ifndef SO_RCVMARK
#define SO_RCVMARK 75
#endif
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef IP_RECVERR_RFC4884
#define IP_RECVERR_RFC4884 26
#endif
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif
#ifndef IPV6_RECVERR_RFC4884
#define IPV6_RECVERR_RFC4884 31
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

using Opts = img::SocketOpts;
using IpOpts = img::SocketOpts::Ip;
using Ip6Opts = img::SocketOpts::Ip6;

// In the order restore sets them: SO_TIMESTAMP before SO_TIMESTAMPNS (which
// turns the former on as well).
const std::vector<IntOpt<Opts>>& SocketTable() {
  static const std::vector<IntOpt<Opts>> table = {
      CF_INT_OPT(Opts, SOL_SOCKET, SO_REUSEADDR, reuseaddr, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_REUSEPORT, reuseport, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_KEEPALIVE, keepalive, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_BROADCAST, broadcast, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_DONTROUTE, dontroute, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_NO_CHECK, no_check, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_OOBINLINE, oobinline, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_PASSCRED, passcred, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_PASSSEC, passsec, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_PASSPIDFD, passpidfd, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_PRIORITY, priority, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_MARK, mark, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_RCVLOWAT, rcvlowat, 1),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_TIMESTAMP_OLD, timestamp, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_TIMESTAMPNS_OLD, timestampns, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_TIMESTAMP_NEW, timestamp_new, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_TIMESTAMPNS_NEW, timestampns_new, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_TIMESTAMPING_OLD, timestamping, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_RXQ_OVFL, rxq_ovfl, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_WIFI_STATUS, wifi_status, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_SELECT_ERR_QUEUE, select_err_queue, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_BUSY_POLL, busy_poll, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_PREFER_BUSY_POLL, prefer_busy_poll, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_BUSY_POLL_BUDGET, busy_poll_budget, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_TXREHASH, txrehash, 255),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_RCVMARK, rcvmark, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_ZEROCOPY, zerocopy, 0),
      CF_INT_OPT(Opts, SOL_SOCKET, SO_PEEK_OFF, peek_off, -1),
  };
  return table;
}

const std::vector<IntOpt<IpOpts>>& IpTable() {
  static const std::vector<IntOpt<IpOpts>> table = {
      CF_INT_OPT(IpOpts, SOL_IP, IP_TOS, tos, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_TTL, ttl, 64),
      CF_INT_OPT(IpOpts, SOL_IP, IP_FREEBIND, freebind, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_TRANSPARENT, transparent, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_RECVERR, recverr, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_PKTINFO, pktinfo, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_RECVTTL, recvttl, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_RECVTOS, recvtos, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_RECVOPTS, recvopts, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_RETOPTS, retopts, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_MTU_DISCOVER, mtu_discover, IP_PMTUDISC_WANT),
      CF_INT_OPT(IpOpts, SOL_IP, IP_MULTICAST_TTL, multicast_ttl, 1),
      CF_INT_OPT(IpOpts, SOL_IP, IP_MULTICAST_LOOP, multicast_loop, 1),
      CF_INT_OPT(IpOpts, SOL_IP, IP_MULTICAST_ALL, multicast_all, 1),
      CF_INT_OPT(IpOpts, SOL_IP, IP_MULTICAST_IF, multicast_if, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_HDRINCL, hdrincl, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_NODEFRAG, nodefrag, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_BIND_ADDRESS_NO_PORT, bind_address_no_port, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_RECVORIGDSTADDR, recvorigdstaddr, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_PASSSEC, passsec, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_MINTTL, minttl, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_RECVFRAGSIZE, recvfragsize, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_CHECKSUM, checksum, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_RECVERR_RFC4884, recverr_rfc4884, 0),
      CF_INT_OPT(IpOpts, SOL_IP, IP_LOCAL_PORT_RANGE, local_port_range, 0),
  };
  return table;
}

const std::vector<IntOpt<Ip6Opts>>& Ip6Table() {
  static const std::vector<IntOpt<Ip6Opts>> table = {
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_V6ONLY, v6only, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_UNICAST_HOPS, unicast_hops, 64),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_MULTICAST_HOPS, multicast_hops, 1),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_MULTICAST_LOOP, multicast_loop, 1),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_MULTICAST_IF, multicast_if, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_MULTICAST_ALL, multicast_all, 1),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_RECVPKTINFO, recvpktinfo, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_2292PKTINFO, pktinfo_2292, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_RECVHOPLIMIT, recvhoplimit, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_2292HOPLIMIT, hoplimit_2292, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_RECVRTHDR, recvrthdr, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_RECVHOPOPTS, recvhopopts, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_RECVDSTOPTS, recvdstopts, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_RECVTCLASS, recvtclass, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_TCLASS, tclass, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_RECVPATHMTU, recvpathmtu, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_RECVERR, recverr, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_MTU_DISCOVER, mtu_discover, IPV6_PMTUDISC_WANT),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_FREEBIND, freebind, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_TRANSPARENT, transparent, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_RECVORIGDSTADDR, recvorigdstaddr, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_AUTOFLOWLABEL, autoflowlabel, 1),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_DONTFRAG, dontfrag, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_ADDR_PREFERENCES, addr_preferences, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_MINHOPCOUNT, minhopcount, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_RECVFRAGSIZE, recvfragsize, 0),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_CHECKSUM, checksum, -1),
      CF_INT_OPT(Ip6Opts, SOL_IPV6, IPV6_RECVERR_RFC4884, recverr_rfc4884, 0),
  };
  return table;
}

template <typename Msg>
Status ApplyNamed(int sock, const std::vector<IntOpt<Msg>>& table, const Msg& m, int opt) {
  for (const IntOpt<Msg>& e : table) {
    if (e.opt == opt) return ApplyIntOpt(sock, e, m);
  }
  return OkStatus();
}

Result<int> SocketFamily(int sock) {
  int family = 0;
  socklen_t len = sizeof(family);
  if (getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0) return ErrnoStatus("getsockopt SO_DOMAIN");
  return family;
}

uint64_t ToMicros(const timeval& tv) {
  return static_cast<uint64_t>(tv.tv_sec) * 1000000 + static_cast<uint64_t>(tv.tv_usec);
}

Status ReadTimeout(int sock, int opt, uint64_t* out) {
  timeval tv{};
  socklen_t len = sizeof(tv);
  if (getsockopt(sock, SOL_SOCKET, opt, &tv, &len) != 0) return ErrnoStatus("getsockopt SO_SNDTIMEO/SO_RCVTIMEO");
  *out = ToMicros(tv);
  return OkStatus();
}

Status ApplyTimeout(int sock, int opt, uint64_t us) {
  timeval tv{};
  socklen_t len = sizeof(tv);
  if (getsockopt(sock, SOL_SOCKET, opt, &tv, &len) == 0 && ToMicros(tv) == us) return OkStatus();
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  if (setsockopt(sock, SOL_SOCKET, opt, &tv, sizeof(tv)) != 0) return ErrnoStatus("set SO_SNDTIMEO/SO_RCVTIMEO");
  return OkStatus();
}

Status ReadFilter(int sock, img::SocketOpts* out) {
  socklen_t count = 0;
  if (getsockopt(sock, SOL_SOCKET, SO_GET_FILTER, nullptr, &count) != 0) {
    if (errno == EACCES) return Error("an eBPF socket filter (SO_ATTACH_BPF): not supported");
    return ErrnoStatus("getsockopt SO_GET_FILTER");
  }
  if (count == 0) return OkStatus();
  // The length is counted in instructions, not bytes.
  std::vector<sock_filter> insns(count);
  if (getsockopt(sock, SOL_SOCKET, SO_GET_FILTER, insns.data(), &count) != 0) {
    return ErrnoStatus("getsockopt SO_GET_FILTER");
  }
  insns.resize(count);
  for (const sock_filter& i : insns) {
    img::SocketOpts::BpfInsn* o = out->add_filter();
    o->set_code(i.code);
    o->set_jt(i.jt);
    o->set_jf(i.jf);
    o->set_k(i.k);
  }
  int locked = 0;
  socklen_t len = sizeof(locked);
  if (getsockopt(sock, SOL_SOCKET, SO_LOCK_FILTER, &locked, &len) != 0) return ErrnoStatus("getsockopt SO_LOCK_FILTER");
  out->set_lock_filter(locked != 0);
  return OkStatus();
}

Status ApplyFilter(int sock, const img::SocketOpts& o) {
  if (o.filter_size() == 0) return OkStatus();
  std::vector<sock_filter> insns;
  insns.reserve(static_cast<size_t>(o.filter_size()));
  for (const img::SocketOpts::BpfInsn& i : o.filter()) {
    insns.push_back({static_cast<uint16_t>(i.code()), static_cast<uint8_t>(i.jt()), static_cast<uint8_t>(i.jf()),
                     i.k()});
  }
  sock_fprog prog{static_cast<unsigned short>(insns.size()), insns.data()};
  if (setsockopt(sock, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0) {
    return ErrnoStatus("attach the socket filter (" + std::to_string(insns.size()) + " instructions)");
  }
  const int one = 1;
  if (o.lock_filter() && setsockopt(sock, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)) != 0) {
    return ErrnoStatus("SO_LOCK_FILTER");
  }
  return OkStatus();
}


Status ReadStructured(int sock, img::SocketOpts* out) {
  int v = 0;
  socklen_t len = sizeof(v);
  if (getsockopt(sock, SOL_SOCKET, SO_SNDBUF, &v, &len) != 0) return ErrnoStatus("getsockopt SO_SNDBUF");
  out->set_sndbuf(static_cast<uint32_t>(v));
  len = sizeof(v);
  if (getsockopt(sock, SOL_SOCKET, SO_RCVBUF, &v, &len) != 0) return ErrnoStatus("getsockopt SO_RCVBUF");
  out->set_rcvbuf(static_cast<uint32_t>(v));
  len = sizeof(v);
  if (getsockopt(sock, SOL_SOCKET, SO_BUF_LOCK, &v, &len) == 0) {
    out->set_buf_lock(v);
  } else if (!OptionNotOffered(errno)) {
    return ErrnoStatus("getsockopt SO_BUF_LOCK");
  }
  uint64_t rate = 0;
  len = sizeof(rate);
  if (getsockopt(sock, SOL_SOCKET, SO_MAX_PACING_RATE, &rate, &len) == 0 && len == sizeof(rate)) {
    out->set_max_pacing_rate(rate);
  }
  uint64_t us = 0;
  RETURN_IF_ERROR(ReadTimeout(sock, SO_SNDTIMEO_OLD, &us));
  out->set_sndtimeo_us(us);
  RETURN_IF_ERROR(ReadTimeout(sock, SO_RCVTIMEO_OLD, &us));
  out->set_rcvtimeo_us(us);
  linger lg{};
  len = sizeof(lg);
  if (getsockopt(sock, SOL_SOCKET, SO_LINGER, &lg, &len) != 0) return ErrnoStatus("getsockopt SO_LINGER");
  out->set_linger(lg.l_onoff != 0);
  out->set_linger_s(lg.l_linger);
  char dev[IFNAMSIZ + 1] = {};
  len = IFNAMSIZ;
  if (getsockopt(sock, SOL_SOCKET, SO_BINDTODEVICE, dev, &len) != 0) return ErrnoStatus("getsockopt SO_BINDTODEVICE");
  out->set_bound_dev(std::string(dev, strnlen(dev, len)));
  return ReadFilter(sock, out);
}

Status ApplyStructured(int sock, const img::SocketOpts& o) {
  RETURN_IF_ERROR(ApplyBufferSize(sock, SO_SNDBUF, o.sndbuf()));
  RETURN_IF_ERROR(ApplyBufferSize(sock, SO_RCVBUF, o.rcvbuf()));
  if (o.has_buf_lock()) {
    int now = -1;
    socklen_t len = sizeof(now);
    const int want = o.buf_lock();
    if ((getsockopt(sock, SOL_SOCKET, SO_BUF_LOCK, &now, &len) != 0 || now != want) &&
        setsockopt(sock, SOL_SOCKET, SO_BUF_LOCK, &want, sizeof(want)) != 0) {
      return ErrnoStatus("set SO_BUF_LOCK to " + std::to_string(want));
    }
  }
  if (o.has_max_pacing_rate()) {
    uint64_t now = 0;
    socklen_t len = sizeof(now);
    const uint64_t want = o.max_pacing_rate();
    if ((getsockopt(sock, SOL_SOCKET, SO_MAX_PACING_RATE, &now, &len) != 0 || now != want) &&
        setsockopt(sock, SOL_SOCKET, SO_MAX_PACING_RATE, &want, sizeof(want)) != 0) {
      return ErrnoStatus("set SO_MAX_PACING_RATE");
    }
  }
  RETURN_IF_ERROR(ApplyTimeout(sock, SO_SNDTIMEO_OLD, o.sndtimeo_us()));
  RETURN_IF_ERROR(ApplyTimeout(sock, SO_RCVTIMEO_OLD, o.rcvtimeo_us()));
  if (o.linger() || o.linger_s() != 0) {
    linger lg{o.linger() ? 1 : 0, o.linger_s()};
    if (setsockopt(sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0) return ErrnoStatus("set SO_LINGER");
  }
  return ApplyFilter(sock, o);
}

Status ApplyBoundDev(int sock, const img::SocketOpts& o) {
  if (o.bound_dev().empty()) return OkStatus();
  char dev[IFNAMSIZ + 1] = {};
  socklen_t len = IFNAMSIZ;
  if (getsockopt(sock, SOL_SOCKET, SO_BINDTODEVICE, dev, &len) == 0 &&
      std::string(dev, strnlen(dev, len)) == o.bound_dev()) {
    return OkStatus();
  }
  const std::string& name = o.bound_dev();
  if (setsockopt(sock, SOL_SOCKET, SO_BINDTODEVICE, name.c_str(), static_cast<socklen_t>(name.size() + 1)) != 0) {
    return ErrnoStatus("bind the socket to device " + name + " (SO_BINDTODEVICE)");
  }
  return OkStatus();
}

template <typename Msg>
void DescribeInts(const std::vector<IntOpt<Msg>>& table, const Msg& m, const char* prefix, std::string* out) {
  for (const IntOpt<Msg>& e : table) {
    const std::optional<int> v = e.get(m);
    if (!v || *v == e.def) continue;
    if (!out->empty()) *out += ' ';
    *out += std::string(prefix) + e.name + "=" + std::to_string(*v);
  }
}

}  // namespace

std::string SocketProtocolName(const FdSight& s) {
  const std::string path = "/proc/" + std::to_string(s.pid) + "/fd/" + std::to_string(s.fd);
  char name[64];
  const ssize_t n = getxattr(path.c_str(), "system.sockprotoname", name, sizeof(name) - 1);
  if (n <= 0) return "";
  return std::string(name, strnlen(name, static_cast<size_t>(n)));
}

Status ApplyBufferSize(int sock, int opt, uint32_t reported) {
  if (reported == 0) return OkStatus();
  int now = 0;
  socklen_t len = sizeof(now);
  if (getsockopt(sock, SOL_SOCKET, opt, &now, &len) == 0 && static_cast<uint32_t>(now) == reported) {
    return OkStatus();
  }
  const int force_opt = opt == SO_SNDBUF ? SO_SNDBUFFORCE : SO_RCVBUFFORCE;
  const int half = static_cast<int>(reported / 2);
  if (setsockopt(sock, SOL_SOCKET, force_opt, &half, sizeof(half)) != 0 &&
      setsockopt(sock, SOL_SOCKET, opt, &half, sizeof(half)) != 0) {
    return ErrnoStatus(opt == SO_SNDBUF ? "set SO_SNDBUF" : "set SO_RCVBUF");
  }
  return OkStatus();
}

Status ReadSocketOpts(int sock, img::SocketOpts* out) {
  RETURN_IF_ERROR(ReadIntOpts(sock, SocketTable(), out));
  RETURN_IF_ERROR(ReadStructured(sock, out));
  ASSIGN_OR_RETURN(int family, SocketFamily(sock));
  if (family == AF_INET || family == AF_INET6) RETURN_IF_ERROR(ReadIntOpts(sock, IpTable(), out->mutable_ip()));
  if (family == AF_INET6) RETURN_IF_ERROR(ReadIntOpts(sock, Ip6Table(), out->mutable_ip6()));
  return OkStatus();
}

Status ApplyBindOpts(int sock, const img::SocketOpts& o) {
  RETURN_IF_ERROR(ApplyNamed(sock, SocketTable(), o, SO_REUSEADDR));
  RETURN_IF_ERROR(ApplyNamed(sock, SocketTable(), o, SO_REUSEPORT));
  RETURN_IF_ERROR(ApplyBoundDev(sock, o));
  if (o.has_ip6()) RETURN_IF_ERROR(ApplyNamed(sock, Ip6Table(), o.ip6(), IPV6_V6ONLY));
  if (o.has_ip()) {
    RETURN_IF_ERROR(ApplyNamed(sock, IpTable(), o.ip(), IP_TRANSPARENT));
    RETURN_IF_ERROR(ApplyNamed(sock, IpTable(), o.ip(), IP_BIND_ADDRESS_NO_PORT));
  }
  // (Raw IPv6 sockets have no SOL_IP level: IPV6_FREEBIND is the same flag.)
  const int one = 1;
  if (o.ip().has_freebind() && setsockopt(sock, SOL_IP, IP_FREEBIND, &one, sizeof(one)) != 0) {
    return ErrnoStatus("set IP_FREEBIND for bind");
  }
  if (!o.ip().has_freebind() && o.ip6().has_freebind() &&
      setsockopt(sock, SOL_IPV6, IPV6_FREEBIND, &one, sizeof(one)) != 0) {
    return ErrnoStatus("set IPV6_FREEBIND for bind");
  }
  return OkStatus();
}

Status ApplySocketOpts(int sock, const img::SocketOpts& o) {
  RETURN_IF_ERROR(ApplyBoundDev(sock, o));
  // IP_TOS sets SO_PRIORITY as a side effect: the IP level goes first.
  if (o.has_ip()) RETURN_IF_ERROR(ApplyIntOpts(sock, IpTable(), o.ip()));
  if (o.has_ip6()) RETURN_IF_ERROR(ApplyIntOpts(sock, Ip6Table(), o.ip6()));
  RETURN_IF_ERROR(ApplyIntOpts(sock, SocketTable(), o));
  return ApplyStructured(sock, o);
}

std::string DescribeSocketOpts(const img::SocketOpts& o) {
  std::string s;
  DescribeInts(SocketTable(), o, "", &s);
  if (o.has_ip()) DescribeInts(IpTable(), o.ip(), "ip.", &s);
  if (o.has_ip6()) DescribeInts(Ip6Table(), o.ip6(), "ip6.", &s);
  auto add = [&s](const std::string& item) { s += (s.empty() ? "" : " ") + item; };
  if (o.has_buf_lock() && o.buf_lock() != 0) {
    if (o.buf_lock() & 1) add("sndbuf=" + std::to_string(o.sndbuf()));
    if (o.buf_lock() & 2) add("rcvbuf=" + std::to_string(o.rcvbuf()));
  }
  if (o.sndtimeo_us()) add("sndtimeo=" + std::to_string(o.sndtimeo_us()) + "us");
  if (o.rcvtimeo_us()) add("rcvtimeo=" + std::to_string(o.rcvtimeo_us()) + "us");
  if (o.linger()) add("linger=" + std::to_string(o.linger_s()) + "s");
  if (!o.bound_dev().empty()) add("dev=" + o.bound_dev());
  if (o.filter_size()) add("filter=" + std::to_string(o.filter_size()) + " insns" + (o.lock_filter() ? " locked" : ""));
  return s;
}

}  // namespace cf::kinds
