// Packet sockets (AF_PACKET: SOCK_RAW, SOCK_DGRAM and the old SOCK_PACKET):
// protocol, bound device, SOL_PACKET options, rings, fanout group and
// multicast/promiscuous memberships. A kDescription kind.
//
// Dump: packet_diag (a sock_diag dump of AF_PACKET sockets, the only way
// it answers) gives the protocol, the bound device, the ring geometries
// and the membership list, which getsockopt cannot read; getsockopt gives
// the options and the fanout group.
//
// Restore: socket(); the options (PACKET_VERSION, PACKET_RESERVE and the
// others must come before the rings, the kernel refuses them after); the
// rings; bind() to the device, by its saved name when it still exists
// (else by index); the fanout group (a bound socket joins it, the first
// one creates it); the memberships, each as many times as it was added.
//
// Not saved: the packets queued (dropped with a log line), the contents of
// the rings, and mappings of the rings (a process that mapped a ring is
// refused by the memory dump, not here).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/packet_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <net/ethernet.h>
#include <net/if.h>
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

namespace cf::kinds {
namespace {

// In the order restore sets them: PACKET_VERSION first.
const std::vector<IntOpt<img::PacketSocket>>& PacketOpts() {
  static const std::vector<IntOpt<img::PacketSocket>> opts = {
      CF_INT_OPT(img::PacketSocket, SOL_PACKET, PACKET_VERSION, version, 0),
      CF_INT_OPT(img::PacketSocket, SOL_PACKET, PACKET_RESERVE, reserve, 0),
      CF_INT_OPT(img::PacketSocket, SOL_PACKET, PACKET_AUXDATA, auxdata, 0),
      CF_INT_OPT(img::PacketSocket, SOL_PACKET, PACKET_ORIGDEV, origdev, 0),
      CF_INT_OPT(img::PacketSocket, SOL_PACKET, PACKET_VNET_HDR, vnet_hdr, 0),
      CF_INT_OPT(img::PacketSocket, SOL_PACKET, PACKET_LOSS, loss, 0),
      CF_INT_OPT(img::PacketSocket, SOL_PACKET, PACKET_TIMESTAMP, timestamp, 0),
      CF_INT_OPT(img::PacketSocket, SOL_PACKET, PACKET_TX_HAS_OFF, tx_has_off, 0),
      CF_INT_OPT(img::PacketSocket, SOL_PACKET, PACKET_QDISC_BYPASS, qdisc_bypass, 0),
      CF_INT_OPT(img::PacketSocket, SOL_PACKET, PACKET_IGNORE_OUTGOING, ignore_outgoing, 0),
  };
  return opts;
}

void ToImage(const packet_diag_ring& r, img::PacketRing* out) {
  out->set_block_size(r.pdr_block_size);
  out->set_block_nr(r.pdr_block_nr);
  out->set_frame_size(r.pdr_frame_size);
  out->set_frame_nr(r.pdr_frame_nr);
  out->set_retire_tmo(r.pdr_retire_tmo);
  out->set_sizeof_priv(r.pdr_sizeof_priv);
  out->set_features(r.pdr_features);
}

// What packet_diag says of the socket |inode|: fills protocol, ifindex,
// copy_thresh, rings and memberships of |out|.
Status QueryPacketDiag(uint64_t inode, img::PacketSocket* out) {
  packet_diag_req req{};
  req.sdiag_family = AF_PACKET;
  req.pdiag_show = PACKET_SHOW_INFO | PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG;
  ASSIGN_OR_RETURN(bool found, SockDiag(&req, sizeof(req), true, "packet_diag", [&](const DiagReply& r) {
    const auto* m = r.As<packet_diag_msg>();
    if (m == nullptr || m->pdiag_ino != inode) return false;
    out->set_protocol(m->pdiag_num);
    r.ForEachAttr<packet_diag_msg>([&](const rtattr* a) {
      const void* data = RTA_DATA(a);
      const size_t plen = RTA_PAYLOAD(a);
      if (a->rta_type == PACKET_DIAG_INFO && plen >= sizeof(packet_diag_info)) {
        packet_diag_info i;
        memcpy(&i, data, sizeof(i));
        out->set_ifindex(static_cast<int32_t>(i.pdi_index));
        out->set_copy_thresh(i.pdi_copy_thresh);
      } else if (a->rta_type == PACKET_DIAG_MCLIST) {
        for (size_t off = 0; off + sizeof(packet_diag_mclist) <= plen; off += sizeof(packet_diag_mclist)) {
          packet_diag_mclist mc;
          memcpy(&mc, static_cast<const char*>(data) + off, sizeof(mc));
          img::PacketMembership* p = out->add_mclist();
          p->set_ifindex(static_cast<int32_t>(mc.pdmc_index));
          p->set_type(mc.pdmc_type);
          p->set_count(mc.pdmc_count);
          p->set_addr(mc.pdmc_addr, std::min<size_t>(mc.pdmc_alen, sizeof(mc.pdmc_addr)));
        }
      } else if ((a->rta_type == PACKET_DIAG_RX_RING || a->rta_type == PACKET_DIAG_TX_RING) &&
                 plen >= sizeof(packet_diag_ring)) {
        packet_diag_ring ring;
        memcpy(&ring, data, sizeof(ring));
        ToImage(ring, a->rta_type == PACKET_DIAG_RX_RING ? out->mutable_rx_ring() : out->mutable_tx_ring());
      }
    });
    return true;
  }));
  if (!found) return Error("packet_diag does not list socket " + std::to_string(inode), ENOENT);
  return OkStatus();
}

Status SetRing(int sock, int opt, int version, const img::PacketRing& r) {
  tpacket_req3 req{};
  req.tp_block_size = r.block_size();
  req.tp_block_nr = r.block_nr();
  req.tp_frame_size = r.frame_size();
  req.tp_frame_nr = r.frame_nr();
  req.tp_retire_blk_tov = r.retire_tmo();
  req.tp_sizeof_priv = r.sizeof_priv();
  req.tp_feature_req_word = r.features();
  const socklen_t len = version == TPACKET_V3 ? sizeof(tpacket_req3) : sizeof(tpacket_req);
  if (setsockopt(sock, SOL_PACKET, opt, &req, len) != 0) {
    return ErrnoStatus(std::string(opt == PACKET_RX_RING ? "PACKET_RX_RING" : "PACKET_TX_RING") + " of " +
                       std::to_string(r.block_nr()) + " blocks of " + std::to_string(r.block_size()) + " bytes");
  }
  return OkStatus();
}

// The device index to bind to: the saved name's, when it still names one.
int DeviceIndex(const img::PacketSocket& p) {
  if (!p.ifname().empty()) {
    const unsigned idx = if_nametoindex(p.ifname().c_str());
    if (idx != 0) return static_cast<int>(idx);
  }
  return p.ifindex();
}

Status Bind(int sock, const img::PacketSocket& p) {
  if (p.type() == SOCK_PACKET) {
    if (p.ifname().empty()) return OkStatus();
    // The kernel takes a plain sockaddr: the device name in sa_data, the
    // protocol from socket().
    sockaddr a{};
    a.sa_family = AF_PACKET;
    strncpy(a.sa_data, p.ifname().c_str(), sizeof(a.sa_data) - 1);
    if (bind(sock, &a, sizeof(a)) != 0) return ErrnoStatus("bind to " + p.ifname());
    return OkStatus();
  }
  if (p.ifindex() == 0) return OkStatus();
  sockaddr_ll a{};
  a.sll_family = AF_PACKET;
  a.sll_protocol = htons(static_cast<uint16_t>(p.protocol()));
  a.sll_ifindex = DeviceIndex(p);
  if (bind(sock, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return ErrnoStatus("bind to device " + p.ifname() + " (index " + std::to_string(a.sll_ifindex) + ")");
  }
  return OkStatus();
}

Status AddMemberships(int sock, const img::PacketSocket& p) {
  for (const img::PacketMembership& m : p.mclist()) {
    packet_mreq req{};
    req.mr_ifindex = m.ifindex();
    req.mr_type = static_cast<unsigned short>(m.type());
    req.mr_alen = static_cast<unsigned short>(std::min<size_t>(m.addr().size(), sizeof(req.mr_address)));
    memcpy(req.mr_address, m.addr().data(), req.mr_alen);
    for (uint32_t i = 0; i < std::max<uint32_t>(m.count(), 1); ++i) {
      if (setsockopt(sock, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &req, sizeof(req)) != 0) {
        return ErrnoStatus("PACKET_ADD_MEMBERSHIP of type " + std::to_string(m.type()) + " on device " +
                           std::to_string(m.ifindex()));
      }
    }
  }
  return OkStatus();
}

class PacketSocket final : public FdKind {
 public:
  const char* name() const override { return "packet socket"; }
  img::Fd::KindCase field() const override { return img::Fd::kPacket; }
  Scope scope() const override { return Scope::kDescription; }
  bool Recognise(const FdSight& s) const override {
    return S_ISSOCK(s.sb.st_mode) && SocketProtocolName(s) == "PACKET";
  }

  Status Read(const FdSight& s, const FdInfo&, DumpContext&, img::Fd* f) const override {
    ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(s.pid, s.fd));
    const int sock = copy.get();
    img::PacketSocket* p = f->mutable_packet();
    int v = 0;
    socklen_t len = sizeof(v);
    if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &v, &len) != 0) return ErrnoStatus("getsockopt SO_TYPE");
    p->set_type(static_cast<uint32_t>(v));
    RETURN_IF_ERROR(QueryPacketDiag(f->inode(), p));
    char name[IF_NAMESIZE] = {};
    if (p->ifindex() != 0 && if_indextoname(static_cast<unsigned>(p->ifindex()), name)) p->set_ifname(name);
    RETURN_IF_ERROR(ReadIntOpts(sock, PacketOpts(), p));
    len = sizeof(v);
    if (getsockopt(sock, SOL_PACKET, PACKET_FANOUT, &v, &len) == 0) p->set_fanout(static_cast<uint32_t>(v));
    RETURN_IF_ERROR(ReadSocketOpts(sock, f->mutable_socket_opts()));
    int queued = 0;
    if (ioctl(sock, FIONREAD, &queued) == 0 && queued > 0) {
      LOG_WARN("files: %s: a packet socket's queue is not saved (%d bytes dropped)", s.Name().c_str(), queued);
    }
    return OkStatus();
  }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const auto& [id, f] = *obj.files.begin();
    const img::PacketSocket& p = f->packet();
    const std::string what = "socket:[" + std::to_string(f->inode()) + "] (" + Describe(*f) + ")";
    UniqueFd sock(socket(AF_PACKET, static_cast<int>(p.type()) | SOCK_CLOEXEC,
                         htons(static_cast<uint16_t>(p.protocol()))));
    if (!sock.valid()) return ErrnoStatus("socket() for " + what);
    const int fd = sock.get();
    if (f->has_socket_opts()) RETURN_IF_ERROR(ApplyBindOpts(fd, f->socket_opts()).WithContext(what));
    RETURN_IF_ERROR(ApplyIntOpts(fd, PacketOpts(), p).WithContext(what));
    if (p.copy_thresh() != 0) {
      const int v = static_cast<int>(p.copy_thresh());
      if (setsockopt(fd, SOL_PACKET, PACKET_COPY_THRESH, &v, sizeof(v)) != 0) {
        return ErrnoStatus("PACKET_COPY_THRESH of " + what);
      }
    }
    if (p.has_rx_ring()) RETURN_IF_ERROR(SetRing(fd, PACKET_RX_RING, p.version(), p.rx_ring()).WithContext(what));
    if (p.has_tx_ring()) RETURN_IF_ERROR(SetRing(fd, PACKET_TX_RING, p.version(), p.tx_ring()).WithContext(what));
    RETURN_IF_ERROR(Bind(fd, p).WithContext(what));
    if (p.fanout() != 0) {
      const int v = static_cast<int>(p.fanout());
      if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &v, sizeof(v)) != 0) {
        return ErrnoStatus("join fanout group " + std::to_string(p.fanout() & 0xffff) + " of " + what);
      }
    }
    RETURN_IF_ERROR(AddMemberships(fd, p).WithContext(what));
    if (f->has_socket_opts()) RETURN_IF_ERROR(ApplySocketOpts(fd, f->socket_opts()).WithContext(what));
    RETURN_IF_ERROR(SetStatusFlags(fd, f->flags(), O_NONBLOCK, "packet socket"));
    (*out)[id] = std::move(sock);
    return OkStatus();
  }

  std::string Describe(const img::Fd& f) const override {
    const img::PacketSocket& p = f.packet();
    char proto[16];
    snprintf(proto, sizeof(proto), "0x%04x", p.protocol());
    std::string s = std::string(p.type() == SOCK_RAW ? "raw" : p.type() == SOCK_DGRAM ? "dgram" : "packet") +
                    " protocol " + proto;
    if (p.ifindex()) s += " on " + (p.ifname().empty() ? std::to_string(p.ifindex()) : p.ifname());
    if (p.has_rx_ring()) s += ", rx ring";
    if (p.has_tx_ring()) s += ", tx ring";
    if (p.fanout()) s += ", fanout " + std::to_string(p.fanout() & 0xffff);
    if (p.mclist_size()) s += ", " + std::to_string(p.mclist_size()) + " memberships";
    return s;
  }
};

}  // namespace

const FdKind& PacketSocketKind() {
  static const PacketSocket kind;
  return kind;
}

}  // namespace cf::kinds
