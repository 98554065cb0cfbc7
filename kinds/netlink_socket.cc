// Netlink sockets: protocol, bound port id and multicast groups, connected
// peer, SOL_NETLINK flags and the generic options. A kDescription kind.
//
// Dump, through a copy of the socket: getsockname (the port id; 0 when the
// socket was never bound, not even by a send), NETLINK_LIST_MEMBERSHIPS
// (every group, past the 32 that sockaddr_nl shows), getpeername (a
// connected socket's destination port id and group), the flags.
//
// Restore: socket(), bind() to the saved port id and the first 32 groups,
// the groups beyond them with NETLINK_ADD_MEMBERSHIP, connect(), options.
//
// Messages queued on a netlink socket (kernel replies, notifications) are
// not saved: a log line says how many bytes were dropped. A program
// waiting for a reply to a request sent before the dump would wait
// forever, as after a lost datagram.
#include <fcntl.h>
#include <linux/netlink.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/log.h"
#include "kinds/kind.h"
#include "kinds/socket_opts.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace cf::kinds {
namespace {

struct NlOpt {
  int opt;
  std::optional<int> (*get)(const img::NetlinkSocket&);
  void (*set)(img::NetlinkSocket*, int);
};
#define CF_NL_OPT(opt, field)                                                                                      \
  NlOpt {                                                                                                          \
    opt, [](const img::NetlinkSocket& m) { return m.has_##field() ? std::optional<int>(m.field()) : std::nullopt; }, \
        [](img::NetlinkSocket* m, int v) { m->set_##field(v); }                                                    \
  }
const std::vector<NlOpt>& NlOpts() {
  static const std::vector<NlOpt> opts = {
      CF_NL_OPT(NETLINK_PKTINFO, pktinfo),
      CF_NL_OPT(NETLINK_BROADCAST_ERROR, broadcast_error),
      CF_NL_OPT(NETLINK_NO_ENOBUFS, no_enobufs),
      CF_NL_OPT(NETLINK_LISTEN_ALL_NSID, listen_all_nsid),
      CF_NL_OPT(NETLINK_CAP_ACK, cap_ack),
      CF_NL_OPT(NETLINK_EXT_ACK, ext_ack),
      CF_NL_OPT(NETLINK_GET_STRICT_CHK, get_strict_chk),
  };
  return opts;
}
#undef CF_NL_OPT

Status ReadGroups(int sock, img::NetlinkSocket* out) {
  std::vector<uint32_t> words(8);
  for (;;) {
    socklen_t len = static_cast<socklen_t>(words.size() * sizeof(uint32_t));
    if (getsockopt(sock, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, words.data(), &len) != 0) {
      return ErrnoStatus("getsockopt NETLINK_LIST_MEMBERSHIPS");
    }
    // The kernel reports the length it needs; it copied no more than it had room for.
    const size_t need = (len + sizeof(uint32_t) - 1) / sizeof(uint32_t);
    if (need <= words.size()) {
      words.resize(need);
      break;
    }
    words.assign(need, 0);
  }
  while (!words.empty() && words.back() == 0) words.pop_back();
  for (uint32_t w : words) out->add_groups(w);
  return OkStatus();
}

class NetlinkSocket final : public FdKind {
 public:
  const char* name() const override { return "netlink socket"; }
  img::Fd::KindCase field() const override { return img::Fd::kNetlink; }
  Scope scope() const override { return Scope::kDescription; }
  bool Recognise(const FdSight& s) const override {
    return S_ISSOCK(s.sb.st_mode) && SocketProtocolName(s) == "NETLINK";
  }

  Status Read(const FdSight& s, const FdInfo&, DumpContext&, img::Fd* f) const override {
    ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(s.pid, s.fd));
    const int sock = copy.get();
    img::NetlinkSocket* n = f->mutable_netlink();
    int v = 0;
    socklen_t len = sizeof(v);
    if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &v, &len) != 0) return ErrnoStatus("getsockopt SO_TYPE");
    n->set_type(static_cast<uint32_t>(v));
    len = sizeof(v);
    if (getsockopt(sock, SOL_SOCKET, SO_PROTOCOL, &v, &len) != 0) return ErrnoStatus("getsockopt SO_PROTOCOL");
    n->set_protocol(static_cast<uint32_t>(v));
    sockaddr_nl addr{};
    len = sizeof(addr);
    if (getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return ErrnoStatus("getsockname");
    n->set_portid(addr.nl_pid);
    RETURN_IF_ERROR(ReadGroups(sock, n));
    len = sizeof(addr);
    addr = {};
    if (getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return ErrnoStatus("getpeername");
    // An unconnected netlink socket's peer is the kernel: port 0, no group.
    if (addr.nl_pid != 0 || addr.nl_groups != 0) {
      n->set_connected(true);
      n->set_dst_portid(addr.nl_pid);
      n->set_dst_groups(addr.nl_groups);
    }
    for (const NlOpt& o : NlOpts()) {
      len = sizeof(v);
      if (getsockopt(sock, SOL_NETLINK, o.opt, &v, &len) == 0) o.set(n, v);
    }
    RETURN_IF_ERROR(ReadSocketOpts(sock, f->mutable_socket_opts()));
    int queued = 0;
    if (ioctl(sock, FIONREAD, &queued) == 0 && queued > 0) {
      LOG_WARN("files: %s: a netlink socket's queue is not saved (%d bytes dropped)", s.Name().c_str(), queued);
    }
    return OkStatus();
  }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const auto& [id, f] = *obj.files.begin();
    const img::NetlinkSocket& n = f->netlink();
    const std::string what = "socket:[" + std::to_string(f->inode()) + "] (" + Describe(*f) + ")";
    UniqueFd sock(socket(AF_NETLINK, static_cast<int>(n.type()) | SOCK_CLOEXEC, static_cast<int>(n.protocol())));
    if (!sock.valid()) return ErrnoStatus("socket() for " + what);
    const int fd = sock.get();
    if (f->has_socket_opts()) RETURN_IF_ERROR(ApplyBindOpts(fd, f->socket_opts()).WithContext(what));
    if (n.portid() != 0 || n.groups_size() > 0) {
      sockaddr_nl addr{};
      addr.nl_family = AF_NETLINK;
      addr.nl_pid = n.portid();
      addr.nl_groups = n.groups_size() > 0 ? n.groups(0) : 0;
      if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return ErrnoStatus("bind " + what);
    }
    for (int w = 1; w < n.groups_size(); ++w) {
      for (int bit = 0; bit < 32; ++bit) {
        if (!(n.groups(w) >> bit & 1)) continue;
        const int group = w * 32 + bit + 1;
        if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) != 0) {
          return ErrnoStatus("join netlink group " + std::to_string(group) + " of " + what);
        }
      }
    }
    if (n.connected()) {
      sockaddr_nl addr{};
      addr.nl_family = AF_NETLINK;
      addr.nl_pid = n.dst_portid();
      addr.nl_groups = n.dst_groups();
      if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return ErrnoStatus("connect " + what);
    }
    for (const NlOpt& o : NlOpts()) {
      const std::optional<int> want = o.get(n);
      if (!want) continue;
      int now = 0;
      socklen_t len = sizeof(now);
      if (getsockopt(fd, SOL_NETLINK, o.opt, &now, &len) == 0 && now == *want) continue;
      const int v = *want;
      if (setsockopt(fd, SOL_NETLINK, o.opt, &v, sizeof(v)) != 0) {
        return ErrnoStatus("set netlink option " + std::to_string(o.opt) + " of " + what);
      }
    }
    if (f->has_socket_opts()) RETURN_IF_ERROR(ApplySocketOpts(fd, f->socket_opts()).WithContext(what));
    RETURN_IF_ERROR(SetStatusFlags(fd, f->flags(), O_NONBLOCK, "netlink socket"));
    (*out)[id] = std::move(sock);
    return OkStatus();
  }

  std::string Describe(const img::Fd& f) const override {
    const img::NetlinkSocket& n = f.netlink();
    std::string s = "netlink protocol " + std::to_string(n.protocol()) + " port " + std::to_string(n.portid());
    if (n.groups_size()) {
      s += " groups";
      for (int w = 0; w < n.groups_size(); ++w) {
        for (int bit = 0; bit < 32; ++bit) {
          if (!(n.groups(w) >> bit & 1)) continue;
          s += ' ';
          s += std::to_string(w * 32 + bit + 1);
        }
      }
    }
    if (n.connected()) {
      s += " -> port ";
      s += std::to_string(n.dst_portid());
      s += " groups ";
      s += std::to_string(n.dst_groups());
    }
    return s;
  }
};

}  // namespace

const FdKind& NetlinkSocketKind() {
  static const NetlinkSocket kind;
  return kind;
}

}  // namespace cf::kinds
