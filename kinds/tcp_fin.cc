#include "kinds/tcp_fin.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/fd.h"
#include "kinds/inet_addr.h"

namespace cf::kinds {
namespace {

constexpr uint32_t kFinWait1 = 4, kFinWait2 = 5, kCloseWait = 8, kLastAck = 9, kClosing = 11;
constexpr uint8_t kFlagFin = 0x01, kFlagRst = 0x04, kFlagAck = 0x10;

uint32_t Bit(uint32_t state) { return 1u << state; }

uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint32_t Add16(const void* data, size_t len, uint32_t sum) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(p[len - 1] << 8);
  return sum;
}

// A bare TCP segment from the peer to the socket, sent through a raw
// socket with its IP header made here (the source is the peer's address).
Status SendSegment(const img::TcpSocket& t, uint32_t seq, uint32_t ack, uint8_t flags) {
  const InetAddr local = InetAddr::Of(static_cast<int>(t.family()), t.src_addr(), t.src_port());
  const InetAddr peer = InetAddr::Of(static_cast<int>(t.family()), t.dst_addr(), t.dst_port());
  const bool v6 = local.WireFamily() == AF_INET6;
  // The packets' own addresses (a v4-mapped one: its last 4 bytes).
  const std::string src = v6 || peer.addr.size() == 4 ? peer.addr : peer.addr.substr(12);
  const std::string dst = v6 || local.addr.size() == 4 ? local.addr : local.addr.substr(12);

  uint8_t tcp[20] = {};
  const uint16_t sport = htons(peer.port), dport = htons(local.port);
  const uint32_t nseq = htonl(seq), nack = htonl(ack);
  const uint16_t win = htons(static_cast<uint16_t>(std::min<uint32_t>(t.conn().rcv_wnd(), 0xffff)));
  memcpy(tcp, &sport, 2);
  memcpy(tcp + 2, &dport, 2);
  memcpy(tcp + 4, &nseq, 4);
  memcpy(tcp + 8, &nack, 4);
  tcp[12] = 5 << 4;  // 20 bytes, no options
  tcp[13] = flags;
  memcpy(tcp + 14, &win, 2);
  // The checksum covers a pseudo header of addresses, protocol and length.
  uint32_t sum = Add16(src.data(), src.size(), 0);
  sum = Add16(dst.data(), dst.size(), sum);
  sum += IPPROTO_TCP + sizeof(tcp);
  sum = Add16(tcp, sizeof(tcp), sum);
  const uint16_t csum = htons(Fold(sum));
  memcpy(tcp + 16, &csum, 2);

  uint8_t packet[60] = {};
  size_t len = 0;
  if (v6) {
    packet[0] = 6 << 4;
    const uint16_t plen = htons(sizeof(tcp));
    memcpy(packet + 4, &plen, 2);
    packet[6] = IPPROTO_TCP;
    packet[7] = 64;
    memcpy(packet + 8, src.data(), 16);
    memcpy(packet + 24, dst.data(), 16);
    len = 40;
  } else {
    packet[0] = 0x45;
    const uint16_t tlen = htons(20 + sizeof(tcp));
    memcpy(packet + 2, &tlen, 2);
    packet[8] = 64;
    packet[9] = IPPROTO_TCP;
    memcpy(packet + 12, src.data(), 4);
    memcpy(packet + 16, dst.data(), 4);
    const uint16_t ipsum = htons(Fold(Add16(packet, 20, 0)));
    memcpy(packet + 10, &ipsum, 2);
    len = 20;
  }
  memcpy(packet + len, tcp, sizeof(tcp));
  len += sizeof(tcp);

  UniqueFd raw(socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
  if (!raw.valid()) return ErrnoStatus("raw socket");
  const int mark = static_cast<int>(kFinMark);
  if (setsockopt(raw.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) return ErrnoStatus("SO_MARK");
  InetAddr to = local;
  to.port = 0;  // raw sockets take no port (a v6 raw socket: the port field is the protocol)
  if (!v6 && to.family == AF_INET6) to = InetAddr::Of(AF_INET, dst, 0);
  socklen_t alen = 0;
  const sockaddr_storage ss = to.ToSockaddr(&alen);
  if (sendto(raw.get(), packet, len, 0, reinterpret_cast<const sockaddr*>(&ss), alen) != static_cast<ssize_t>(len)) {
    return ErrnoStatus("send a FIN segment from " + peer.ToString());
  }
  return OkStatus();
}

// Our FIN back in the send queue: shutdown(SHUT_WR); as sent and
// acknowledged (the send queue's repair mode) when |acked|.
Status OurFin(int fd, bool acked) {
  int q = TCP_SEND_QUEUE;
  if (acked && setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) != 0) {
    return ErrnoStatus("TCP_REPAIR_QUEUE");
  }
  if (shutdown(fd, SHUT_WR) != 0) return ErrnoStatus("shutdown(SHUT_WR)");
  q = TCP_NO_QUEUE;
  if (acked && setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) != 0) {
    return ErrnoStatus("TCP_REPAIR_QUEUE");
  }
  return OkStatus();
}

}  // namespace

Status RestoreReset(int fd, const img::TcpSocket& t) {
  // The stand-in peer: the socket's own address, port 1 (a connection the
  // kernel could not have: port 1 is not ephemeral).
  img::TcpSocket with = t;
  with.set_dst_addr(t.src_addr());
  with.set_dst_port(1);
  const InetAddr peer = InetAddr::Of(static_cast<int>(t.family()), with.dst_addr(), 1);
  const std::string& data = t.conn().recv_queue();
  constexpr uint32_t kSeq = 1000;
  auto set = [fd](int opt, int v, const char* what) -> Status {
    if (setsockopt(fd, IPPROTO_TCP, opt, &v, sizeof(v)) != 0) return ErrnoStatus(what);
    return OkStatus();
  };
  RETURN_IF_ERROR(set(TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "TCP_REPAIR_QUEUE"));
  RETURN_IF_ERROR(set(TCP_QUEUE_SEQ, static_cast<int>(kSeq), "TCP_QUEUE_SEQ"));
  RETURN_IF_ERROR(set(TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "TCP_REPAIR_QUEUE"));
  RETURN_IF_ERROR(set(TCP_QUEUE_SEQ, static_cast<int>(kSeq), "TCP_QUEUE_SEQ"));
  socklen_t alen = 0;
  const sockaddr_storage ss = peer.ToSockaddr(&alen);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&ss), alen) != 0) return ErrnoStatus("connect (repair mode)");
  RETURN_IF_ERROR(set(TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "TCP_REPAIR_QUEUE"));
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, std::min<size_t>(data.size() - off, 64 << 10), MSG_DONTWAIT);
    if (n <= 0) return ErrnoStatus("restore the receive queue");
    off += static_cast<size_t>(n);
  }
  RETURN_IF_ERROR(set(TCP_REPAIR_QUEUE, TCP_NO_QUEUE, "TCP_REPAIR_QUEUE"));
  const uint32_t rst_seq = kSeq + static_cast<uint32_t>(data.size());
  RETURN_IF_ERROR(SendSegment(with, rst_seq, 0, kFlagRst));
  RETURN_IF_ERROR(set(TCP_REPAIR, TCP_REPAIR_OFF_NO_WP, "TCP_REPAIR off"));
  // The reset is taken when the kernel gets to it, which may be after the
  // socket left repair mode or not at all while it was in it (one restore
  // in three left the connection open, zdtm socket-tcp-reseted): wait for
  // the socket to close, and send the reset again if it does not.
  auto closed = [fd]() {
    tcp_info ti{};
    socklen_t len = sizeof(ti);
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == 7;  // TCP_CLOSE
  };
  for (int i = 0; i < 400; ++i) {
    if (closed()) return OkStatus();
    if (i == 20) RETURN_IF_ERROR(SendSegment(with, rst_seq, 0, kFlagRst));  // after 20 ms
    usleep(1000);
  }
  return Error("a reset connection did not close again at restore", ETIMEDOUT);
}

bool SentFin(uint32_t s) { return Bit(s) & (Bit(kFinWait1) | Bit(kFinWait2) | Bit(kClosing) | Bit(kLastAck)); }
bool GotFin(uint32_t s) { return Bit(s) & (Bit(kCloseWait) | Bit(kLastAck) | Bit(kClosing)); }
bool IsClosingState(uint32_t s) { return s < 32 && (SentFin(s) || GotFin(s)); }

void SeqsWithoutFins(const img::TcpSocket& t, uint32_t* snd_seq, uint32_t* rcv_seq) {
  *snd_seq = t.conn().snd_seq() - (SentFin(t.state()) ? 1 : 0);
  *rcv_seq = t.conn().rcv_seq() - (GotFin(t.state()) ? 1 : 0);
}

Status RestoreFins(int fd, const img::TcpSocket& t) {
  const uint32_t s = t.state();
  uint32_t snd_seq, rcv_seq;
  SeqsWithoutFins(t, &snd_seq, &rcv_seq);
  const uint32_t snd_una = snd_seq - static_cast<uint32_t>(t.conn().send_queue().size());
  // The order of the original exchange: a FIN we sent first, the peer's,
  // a FIN we sent second, the peer's acknowledgement of ours.
  if (s == kFinWait1 || s == kFinWait2 || s == kClosing) RETURN_IF_ERROR(OurFin(fd, s == kFinWait2));
  if (GotFin(s)) RETURN_IF_ERROR(SendSegment(t, rcv_seq, snd_una, kFlagFin | kFlagAck));
  if (s == kLastAck) RETURN_IF_ERROR(OurFin(fd, false));
  if (s == kFinWait2) RETURN_IF_ERROR(SendSegment(t, rcv_seq, snd_seq + 1, kFlagAck));
  return OkStatus();
}

}  // namespace cf::kinds
