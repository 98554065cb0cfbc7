// TCP sockets, AF_INET and AF_INET6 (v4-mapped addresses included).
//
// Recognised by the socket's protocol name (the "system.sockprotoname"
// attribute sockfs gives every socket: "TCP", "TCPv6"), read through a copy
// of the socket taken with pidfd_getfd:
//   - unconnected (TCP_CLOSE): bound or not; restored by socket() and bind();
//   - listening: its address, options and backlog (sock_diag); restored by
//     bind() and listen(). Connections waiting in its accept queue cannot
//     be put back: the dump fails on them unless --skip-in-flight (they are
//     dropped, their peers see a reset);
//   - established, with --tcp-established only: the connection is locked
//     first (kinds/net_lock.h), then put in repair mode (TCP_REPAIR), where
//     the kernel shows its sequence numbers, both queues (peeked), its
//     negotiated options and window, and out of it again (the lock keeps
//     the connection still meanwhile; a dump that kills the tree puts it
//     back in repair mode before the last close, which then sends nothing).
//     With --tcp-close only the addresses are saved. Restore makes a socket in repair mode,
//     binds it, sets the sequence numbers, "connects" (repair mode sends
//     nothing and goes straight to ESTABLISHED), puts the options,
//     timestamp offset, queues and window back and leaves repair mode; the
//     bytes never sent are sent again normally. The peer sees nothing but
//     retransmissions.
//   - closing (FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, CLOSING), with
//     --tcp-established: as an established connection, then its FINs put
//     back (kinds/tcp_fin.h).
//   - SYN_SENT: the SYN is sent again after restore, from its sequence number;
//   - closed after a reset with data left unread: the data, then a reset
//     (kinds/tcp_fin.h).
#include <fcntl.h>
#include <signal.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/fault.h"
#include "common/fd.h"
#include "common/log.h"
#include "kinds/inet_addr.h"
#include "kinds/kind.h"
#include "kinds/netns.h"
#include "kinds/sock_diag.h"
#include "kinds/socket_opts.h"
#include "kinds/net_lock.h"
#include "kinds/tcp_fin.h"
#include "kinds/tcp_socket.h"

namespace cf::kinds {
namespace {

constexpr uint32_t kEstablished = 1;  // linux/tcp_states.h
constexpr uint32_t kSynSent = 2;
constexpr uint32_t kClose = 7;
constexpr uint32_t kListen = 10;
constexpr uint32_t kBoundInactive = 13;
// TCP option kinds (RFC 793, 7323, 2018), as TCP_REPAIR_OPTIONS takes them.
constexpr uint32_t kOptMss = 2, kOptWindow = 3, kOptSackPerm = 4, kOptTimestamp = 8;
constexpr size_t kMaxQueue = 256 << 20;  // bytes of one queue an image may hold

// A state of a connection (established, being opened or being closed).
bool IsConnected(uint32_t s) { return s >= 1 && s != kClose && s != kListen && s != 6 /* TIME_WAIT */ && s <= 11; }

const char* StateName(uint32_t s) {
  static const char* const kNames[] = {"?",        "ESTABLISHED", "SYN_SENT", "SYN_RECV",  "FIN_WAIT1",
                                       "FIN_WAIT2", "TIME_WAIT",  "CLOSE",    "CLOSE_WAIT", "LAST_ACK",
                                       "LISTEN",    "CLOSING",    "NEW_SYN_RECV"};
  return s < sizeof(kNames) / sizeof(kNames[0]) ? kNames[s] : "?";
}

Result<int> GetOpt(int fd, int level, int opt, const char* name) {
  int v = 0;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, level, opt, &v, &len) != 0) return ErrnoStatus(std::string("getsockopt ") + name);
  return v;
}

Status SetOpt(int fd, int level, int opt, int v, const char* name) {
  if (setsockopt(fd, level, opt, &v, sizeof(v)) != 0) return ErrnoStatus(std::string("setsockopt ") + name);
  return OkStatus();
}

// What sock_diag tells of socket |inode| beyond the socket calls: the
// accept queue's length and limit of a listening socket, the shutdown bits.
struct DiagInfo {
  uint32_t rqueue = 0, wqueue = 0, shutdown = 0;
  InetAddr peer;  // which getpeername() does not tell before the connection is made
};

Result<DiagInfo> QueryDiag(int family, uint32_t states, uint64_t inode) {
  inet_diag_req_v2 req{};
  req.sdiag_family = static_cast<uint8_t>(family);
  req.sdiag_protocol = IPPROTO_TCP;
  req.idiag_states = states;
  DiagInfo d;
  ASSIGN_OR_RETURN(bool found, SockDiag(&req, sizeof(req), true, "sock_diag", [&](const DiagReply& r) {
    const auto* m = r.As<inet_diag_msg>();
    if (m == nullptr || m->idiag_inode != inode) return false;
    d.rqueue = m->idiag_rqueue;
    d.peer.family = family;
    d.peer.addr.assign(reinterpret_cast<const char*>(m->id.idiag_dst), family == AF_INET6 ? 16 : 4);
    d.peer.port = ntohs(m->id.idiag_dport);
    d.wqueue = m->idiag_wqueue;
    r.ForEachAttr<inet_diag_msg>([&](const rtattr* a) {
      if (a->rta_type == INET_DIAG_SHUTDOWN) d.shutdown = *static_cast<const uint8_t*>(RTA_DATA(a));
    });
    return true;
  }));
  if (!found) return Errorf("sock_diag: no TCP socket with inode %lu", inode);
  return d;
}

// Restore recreates sockets in the namespace of the tree (kinds/netns.h),
// and sock_diag sees only that one: a socket of another one is refused.
Status CheckSameNetns(int fd) { return CheckTreeNetns(fd).WithContext("TCP"); }

// The options of any TCP socket.
Status ReadOptions(int fd, int family, img::TcpSocket* t) {
  ASSIGN_OR_RETURN(int reuseaddr, GetOpt(fd, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR"));
  ASSIGN_OR_RETURN(int reuseport, GetOpt(fd, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT"));
  ASSIGN_OR_RETURN(int sndbuf, GetOpt(fd, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF"));
  ASSIGN_OR_RETURN(int rcvbuf, GetOpt(fd, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF"));
  ASSIGN_OR_RETURN(int nodelay, GetOpt(fd, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY"));
  ASSIGN_OR_RETURN(int cork, GetOpt(fd, IPPROTO_TCP, TCP_CORK, "TCP_CORK"));
  ASSIGN_OR_RETURN(int keepalive, GetOpt(fd, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE"));
  ASSIGN_OR_RETURN(int keepidle, GetOpt(fd, IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE"));
  ASSIGN_OR_RETURN(int keepintvl, GetOpt(fd, IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL"));
  ASSIGN_OR_RETURN(int keepcnt, GetOpt(fd, IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT"));
  ASSIGN_OR_RETURN(int freebind, GetOpt(fd, family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
                                        family == AF_INET6 ? IPV6_FREEBIND : IP_FREEBIND, "IP_FREEBIND"));
  linger lg{};
  socklen_t len = sizeof(lg);
  if (getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len) != 0) return ErrnoStatus("getsockopt SO_LINGER");
  if (family == AF_INET6) {
    ASSIGN_OR_RETURN(int v6only, GetOpt(fd, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY"));
    t->set_v6only(v6only != 0);
  }
  t->set_reuseaddr(reuseaddr != 0);
  t->set_reuseport(reuseport != 0);
  t->set_sndbuf(static_cast<uint32_t>(sndbuf));
  t->set_rcvbuf(static_cast<uint32_t>(rcvbuf));
  t->set_nodelay(nodelay != 0);
  t->set_cork(cork != 0);
  t->set_keepalive(keepalive != 0);
  t->set_keepidle(static_cast<uint32_t>(keepidle));
  t->set_keepintvl(static_cast<uint32_t>(keepintvl));
  t->set_keepcnt(static_cast<uint32_t>(keepcnt));
  t->set_freebind(freebind != 0);
  t->set_linger(lg.l_onoff != 0);
  t->set_linger_secs(static_cast<uint32_t>(lg.l_linger));
  return OkStatus();
}

// Peeks |len| bytes of the queue selected by TCP_REPAIR_QUEUE.
// |fin|: the queue ends with a FIN, which the kernel counts and which holds
// no data.
Result<std::string> PeekQueue(int fd, int queue, int len_ioctl, bool fin, const char* what) {
  RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue, "TCP_REPAIR_QUEUE"));
  int len = 0;
  if (ioctl(fd, len_ioctl, &len) != 0) return ErrnoStatus(std::string("the length of the ") + what);
  if (fin && len > 0) --len;
  if (static_cast<size_t>(len) > kMaxQueue) return Errorf("%d bytes in the %s: more than %zu", len, what, kMaxQueue);
  std::string data(static_cast<size_t>(len), '\0');
  if (len > 0) {
    const ssize_t n = recv(fd, data.data(), data.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) return ErrnoStatus(std::string("peek the ") + what);
    if (n != len) return Errorf("peeked %zd bytes of the %s, the kernel counts %d", n, what, len);
  }
  return data;
}

// The connection's state in repair mode (the socket is in it already).
Status ReadConnection(int fd, uint32_t state, img::TcpConnection* c) {
  // SIOCINQ counts data only; SIOCOUTQ and SIOCOUTQNSD count our FIN.
  ASSIGN_OR_RETURN(std::string recvq, PeekQueue(fd, TCP_RECV_QUEUE, SIOCINQ, false, "receive queue"));
  ASSIGN_OR_RETURN(int rcv_seq, GetOpt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, "TCP_QUEUE_SEQ"));
  ASSIGN_OR_RETURN(std::string sendq, PeekQueue(fd, TCP_SEND_QUEUE, SIOCOUTQ, SentFin(state), "send queue"));
  ASSIGN_OR_RETURN(int snd_seq, GetOpt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, "TCP_QUEUE_SEQ"));
  int unsent = 0;
  if (ioctl(fd, SIOCOUTQNSD, &unsent) != 0) return ErrnoStatus("SIOCOUTQNSD");
  if (SentFin(state) && unsent > 0) --unsent;
  RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, "TCP_REPAIR_QUEUE"));
  ASSIGN_OR_RETURN(int mss, GetOpt(fd, IPPROTO_TCP, TCP_MAXSEG, "TCP_MAXSEG"));
  ASSIGN_OR_RETURN(int ts, GetOpt(fd, IPPROTO_TCP, TCP_TIMESTAMP, "TCP_TIMESTAMP"));
  tcp_info ti{};
  socklen_t len = sizeof(ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return ErrnoStatus("TCP_INFO");
  tcp_repair_window w{};
  len = sizeof(w);
  if (getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len) != 0) return ErrnoStatus("TCP_REPAIR_WINDOW");
  c->set_rcv_seq(static_cast<uint32_t>(rcv_seq));
  c->set_snd_seq(static_cast<uint32_t>(snd_seq));
  c->set_unsent(static_cast<uint32_t>(std::min<size_t>(static_cast<size_t>(unsent), sendq.size())));
  c->set_recv_queue(std::move(recvq));
  c->set_send_queue(std::move(sendq));
  c->set_mss_clamp(static_cast<uint32_t>(mss));
  c->set_timestamp(static_cast<uint32_t>(ts));
  c->set_options(ti.tcpi_options);
  c->set_snd_wscale(ti.tcpi_snd_wscale);
  c->set_rcv_wscale(ti.tcpi_rcv_wscale);
  c->set_snd_wl1(w.snd_wl1);
  c->set_snd_wnd(w.snd_wnd);
  c->set_max_window(w.max_window);
  c->set_rcv_wnd(w.rcv_wnd);
  c->set_rcv_wup(w.rcv_wup);
  return OkStatus();
}

// Sends |data| into the queue selected by TCP_REPAIR_QUEUE (or, out of
// repair mode, as ordinary data), in pieces the kernel accepts: in repair
// mode each send becomes one linear buffer, which may be too big to get.
Status SendAll(int fd, const std::string& data, size_t from, size_t to, const char* what) {
  size_t chunk = 256 << 10;
  while (from < to) {
    const ssize_t n = send(fd, data.data() + from, std::min(chunk, to - from), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      from += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (chunk > 1024) {
      chunk /= 2;
      continue;
    }
    return ErrnoStatus(std::string("restore the ") + what);
  }
  return OkStatus();
}

// The connection back, on |fd| in repair mode and bound.
Status RestoreConnection(int fd, const img::TcpSocket& t) {
  const img::TcpConnection& c = t.conn();
  const std::string& sendq = c.send_queue();
  const std::string& recvq = c.recv_queue();
  // A closing connection is set up as an established one, its FINs after.
  uint32_t snd_seq, rcv_seq;
  SeqsWithoutFins(t, &snd_seq, &rcv_seq);
  RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "TCP_REPAIR_QUEUE"));
  RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, static_cast<int>(rcv_seq - recvq.size()), "TCP_QUEUE_SEQ"));
  RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "TCP_REPAIR_QUEUE"));
  // A SYN not answered yet: sent again, for real, from its own sequence
  // number (the one before the queue).
  const bool syn_sent = t.state() == kSynSent;
  RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, static_cast<int>(snd_seq - sendq.size() - (syn_sent ? 1 : 0)),
                         "TCP_QUEUE_SEQ"));
  const InetAddr peer = InetAddr::Of(static_cast<int>(t.family()), t.dst_addr(), t.dst_port());
  socklen_t alen = 0;
  const sockaddr_storage ss = peer.ToSockaddr(&alen);
  if (syn_sent) RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP, "TCP_REPAIR off"));
  if (syn_sent) RETURN_IF_ERROR(SetStatusFlags(fd, O_NONBLOCK, O_NONBLOCK, "TCP socket"));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&ss), alen) != 0 && !(syn_sent && errno == EINPROGRESS)) {
    return ErrnoStatus("connect (repair mode) to " + peer.ToString());
  }
  if (syn_sent) RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR"));
  tcp_repair_opt opts[4];
  int n = 0;
  auto add = [&](uint32_t code, uint32_t val) { opts[n].opt_code = code, opts[n++].opt_val = val; };
  if (c.options() & TCPI_OPT_SACK) add(kOptSackPerm, 0);
  if (c.options() & TCPI_OPT_WSCALE) add(kOptWindow, c.snd_wscale() | (c.rcv_wscale() << 16));
  if (c.options() & TCPI_OPT_TIMESTAMPS) add(kOptTimestamp, 0);
  add(kOptMss, c.mss_clamp());
  if (!syn_sent &&
      setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts, static_cast<socklen_t>(n * sizeof(opts[0]))) != 0) {
    return ErrnoStatus("TCP_REPAIR_OPTIONS");
  }
  if (c.options() & TCPI_OPT_TIMESTAMPS) {
    RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_TIMESTAMP, static_cast<int>(c.timestamp()), "TCP_TIMESTAMP"));
  }
  // Queued bytes count against the buffers, with overheads that need not
  // be those of the original buffers: room for all of them while filling
  // (the saved sizes are set after).
  // After our FIN nothing can be sent normally: all of it goes as sent.
  const size_t sent = SentFin(t.state()) ? sendq.size() : sendq.size() - std::min<size_t>(c.unsent(), sendq.size());
  const int sndroom = static_cast<int>(std::min<size_t>(sendq.size() + (256 << 10), 1u << 30));
  const int rcvroom = static_cast<int>(std::min<size_t>(recvq.size() + (256 << 10), 1u << 30));
  RETURN_IF_ERROR(SetOpt(fd, SOL_SOCKET, SO_SNDBUFFORCE, std::max(sndroom, static_cast<int>(t.sndbuf() / 2)),
                         "SO_SNDBUFFORCE"));
  RETURN_IF_ERROR(SetOpt(fd, SOL_SOCKET, SO_RCVBUFFORCE, std::max(rcvroom, static_cast<int>(t.rcvbuf() / 2)),
                         "SO_RCVBUFFORCE"));
  if (!recvq.empty()) {
    RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "TCP_REPAIR_QUEUE"));
    RETURN_IF_ERROR(SendAll(fd, recvq, 0, recvq.size(), "receive queue"));
  }
  if (sent > 0) {
    RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "TCP_REPAIR_QUEUE"));
    RETURN_IF_ERROR(SendAll(fd, sendq, 0, sent, "send queue"));
  }
  tcp_repair_window w{c.snd_wl1(), c.snd_wnd(), c.max_window(), c.rcv_wnd(), c.rcv_wup()};
  if (GotFin(t.state())) {
    // The window as it was before the peer's FIN, which comes next.
    w.rcv_wup--;
    w.rcv_wnd++;
  }
  // The peer's segment that last updated the send window may lie beyond
  // the receive window the connection offers now (it came out of order
  // while the window was wider); the kernel refuses such a snd_wl1. The end
  // of the window is the furthest it takes, and no less strict for what
  // comes next (an established connection leaving repair mode gets a
  // snd_wl1 just before rcv_nxt anyway).
  const uint32_t window_end = rcv_seq + w.rcv_wnd;
  if (static_cast<int32_t>(w.snd_wl1 - window_end) > 0) {
    LOG_DEBUG("TCP: snd_wl1 %u beyond the receive window's end %u: restored as that end", w.snd_wl1, window_end);
    w.snd_wl1 = window_end;
  }
  if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) != 0) return ErrnoStatus("TCP_REPAIR_WINDOW");
  RETURN_IF_ERROR(RestoreFins(fd, t));
  RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, "TCP_REPAIR_QUEUE"));
  // Out of repair mode (the kernel sends a window probe to the peer, which
  // the network lock holds until restore ends); the bytes the connection
  // had not sent yet go as ordinary data.
  RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF, "TCP_REPAIR off"));
  RETURN_IF_ERROR(SendAll(fd, sendq, sent, sendq.size(), "unsent part of the send queue"));
  RETURN_IF_ERROR(ApplyBufferSize(fd, SO_SNDBUF, t.sndbuf()));
  return ApplyBufferSize(fd, SO_RCVBUF, t.rcvbuf());
}

Status ApplyOptions(int fd, const img::TcpSocket& t) {
  const int family = static_cast<int>(t.family());
  if (t.nodelay()) RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY"));
  if (t.cork()) RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_CORK, 1, "TCP_CORK"));
  if (t.keepalive()) RETURN_IF_ERROR(SetOpt(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE"));
  if (t.keepidle()) RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(t.keepidle()), "TCP_KEEPIDLE"));
  if (t.keepintvl()) {
    RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(t.keepintvl()), "TCP_KEEPINTVL"));
  }
  if (t.keepcnt()) RETURN_IF_ERROR(SetOpt(fd, IPPROTO_TCP, TCP_KEEPCNT, static_cast<int>(t.keepcnt()), "TCP_KEEPCNT"));
  if (t.linger()) {
    linger lg{1, static_cast<int>(t.linger_secs())};
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0) return ErrnoStatus("setsockopt SO_LINGER");
  }
  if (t.freebind()) {
    RETURN_IF_ERROR(SetOpt(fd, family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
                           family == AF_INET6 ? IPV6_FREEBIND : IP_FREEBIND, 1, "IP_FREEBIND"));
  }
  return OkStatus();
}

Result<UniqueFd> MakeSocket(const img::TcpSocket& t, bool tcp_close) {
  const int family = static_cast<int>(t.family());
  if (family != AF_INET && family != AF_INET6) return Errorf("a TCP socket of family %d", family);
  UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd.valid()) return ErrnoStatus("socket(TCP)");
  const int s = fd.get();
  if (family == AF_INET6) RETURN_IF_ERROR(SetOpt(s, IPPROTO_IPV6, IPV6_V6ONLY, t.v6only(), "IPV6_V6ONLY"));
  // SO_REUSEADDR and SO_REUSEPORT while binding, whatever the socket has
  // now: the connections accepted from a listening socket share its port
  // (and may be restored before it), and a socket may have left
  // SO_REUSEPORT after binding beside another one. Their values are set after.
  RETURN_IF_ERROR(SetOpt(s, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"));
  RETURN_IF_ERROR(SetOpt(s, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"));
  // A connection set up in repair mode gets its buffer sizes after its
  // connect (RestoreConnection), as with CRIU: connect derives the window
  // clamp and the receive window's growth threshold from the buffer it
  // finds. From a large final buffer the restored socket (its ratio of
  // data to memory not measured yet) would offer at once windows as large
  // as the buffer's free space; the peer's retransmissions then overran its
  // memory and, with a full receive queue whose reader waited for the peer,
  // the connection could stall for good (zdtm socket-tcpbuf under load:
  // since 6.17 a segment beyond a closed window is dropped whole, its
  // acknowledgement and window update too). From the default buffer the
  // window opens step by step as data comes, as on a new connection.
  const bool repaired = t.has_conn() && !tcp_close &&
                        (t.state() == kEstablished || IsClosingState(t.state()));
  if (!repaired) {
    RETURN_IF_ERROR(ApplyBufferSize(s, SO_SNDBUF, t.sndbuf()));
    RETURN_IF_ERROR(ApplyBufferSize(s, SO_RCVBUF, t.rcvbuf()));
  }
  const InetAddr local = InetAddr::Of(family, t.src_addr(), t.src_port());
  switch (t.state()) {
    case kClose:
      if (!t.conn().recv_queue().empty()) {
        RETURN_IF_ERROR(SetOpt(s, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR"));
        RETURN_IF_ERROR(BindTo(s, local));
        RETURN_IF_ERROR(RestoreReset(s, t));
        break;
      }
      if (t.bound()) RETURN_IF_ERROR(BindTo(s, local));
      if (t.shutdown() != 0 && shutdown(s, SHUT_RDWR) != 0 && errno != ENOTCONN) return ErrnoStatus("shutdown");
      break;
    case kListen:
      RETURN_IF_ERROR(BindTo(s, local));
      if (listen(s, static_cast<int>(t.backlog())) != 0) return ErrnoStatus("listen on " + local.ToString());
      break;
    case kEstablished:
      if (tcp_close || !t.has_conn()) {
        // Closed: a fresh socket shut down both ways reads the end of
        // the stream and polls POLLHUP, as a connection that was closed.
        if (shutdown(s, SHUT_RDWR) != 0 && errno != ENOTCONN) return ErrnoStatus("shutdown");
        break;
      }
      // Repair mode binds whatever holds the port (SK_FORCE_REUSE): a
      // listening socket of the same port, restored before or after.
      RETURN_IF_ERROR(SetOpt(s, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR"));
      RETURN_IF_ERROR(BindTo(s, local));
      RETURN_IF_ERROR(RestoreConnection(s, t));
      break;
    default:
      if (!IsConnected(t.state())) return Errorf("a TCP socket in state %s", StateName(t.state()));
      if ((IsClosingState(t.state()) || t.state() == kSynSent) && t.has_conn() && !tcp_close) {
        RETURN_IF_ERROR(SetOpt(s, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR"));
        RETURN_IF_ERROR(BindTo(s, local));
        RETURN_IF_ERROR(RestoreConnection(s, t));
        break;
      }
      if (shutdown(s, SHUT_RDWR) != 0 && errno != ENOTCONN) return ErrnoStatus("shutdown");  // as above
      break;
  }
  RETURN_IF_ERROR(SetOpt(s, SOL_SOCKET, SO_REUSEADDR, t.reuseaddr(), "SO_REUSEADDR"));
  RETURN_IF_ERROR(SetOpt(s, SOL_SOCKET, SO_REUSEPORT, t.reuseport(), "SO_REUSEPORT"));
  RETURN_IF_ERROR(ApplyOptions(s, t));
  return fd;
}

class TcpSocket final : public FdKind {
 public:
  const char* name() const override { return "TCP socket"; }
  img::Fd::KindCase field() const override { return img::Fd::kTcp; }
  Scope scope() const override { return Scope::kDescription; }

  bool Recognise(const FdSight& s) const override {
    if (!S_ISSOCK(s.sb.st_mode)) return false;
    const std::string p = SocketProtocolName(s);
    return p == "TCP" || p == "TCPv6";
  }

  Status Read(const FdSight& s, const FdInfo&, DumpContext& ctx, img::Fd* f) const override {
    ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(s.pid, s.fd));
    const int fd = copy.get();
    img::TcpSocket* t = f->mutable_tcp();
    ASSIGN_OR_RETURN(int family, GetOpt(fd, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN"));
    tcp_info ti{};
    socklen_t len = sizeof(ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return ErrnoStatus("TCP_INFO");
    RETURN_IF_ERROR(CheckSameNetns(fd));
    // The generic SOL_SOCKET options; the IP-level ones TCP needs (freebind,
    // v6only) are its own, and the multicast ones do not apply to it.
    RETURN_IF_ERROR(ReadSocketOpts(fd, f->mutable_socket_opts()));
    f->mutable_socket_opts()->clear_ip();
    f->mutable_socket_opts()->clear_ip6();
    t->set_family(static_cast<uint32_t>(family));
    t->set_state(ti.tcpi_state);
    RETURN_IF_ERROR(ReadOptions(fd, family, t));
    ASSIGN_OR_RETURN(InetAddr local, InetAddr::Local(fd));
    t->set_src_addr(local.addr);
    t->set_src_port(local.port);
    switch (ti.tcpi_state) {
      case kClose: {
        // A socket whose connection ended still names its old port, which
        // it no longer holds; sock_diag lists the bound ones only (in the
        // pseudo-state TCP_BOUND_INACTIVE, Linux 6.7).
        auto d = QueryDiag(family, 1u << kBoundInactive, s.sb.st_ino);
        t->set_bound(local.port != 0 && d.ok());
        // A connection that ended after both sides shut it down reads the
        // end of the stream (RCV_SHUTDOWN), a fresh socket ENOTCONN.
        pollfd p{fd, POLLRDHUP, 0};
        if (poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP)) t->set_shutdown(3);
        // A connection that was reset may hold data not read yet.
        int unread = 0;
        if (ioctl(fd, SIOCINQ, &unread) == 0 && unread > 0 && static_cast<size_t>(unread) <= kMaxQueue) {
          std::string data(static_cast<size_t>(unread), '\0');
          const ssize_t n = recv(fd, data.data(), data.size(), MSG_PEEK | MSG_DONTWAIT);
          if (n != unread) return Errorf("peeked %zd of the %d bytes a closed connection holds", n, unread);
          t->mutable_conn()->set_recv_queue(std::move(data));
        }
        return OkStatus();
      }
      case kListen: {
        ASSIGN_OR_RETURN(DiagInfo d, QueryDiag(family, 1u << kListen, s.sb.st_ino));
        t->set_backlog(d.wqueue);
        if (d.rqueue != 0) {
          if (!ctx.skip_in_flight()) {
            return Errorf("listening on %s with %u connections not accepted yet: not supported "
                          "(--skip-in-flight drops them)", local.ToString().c_str(), d.rqueue);
          }
          LOG_WARN("files: %s: %u connections not accepted yet on %s are dropped (--skip-in-flight)",
                   s.Name().c_str(), d.rqueue, local.ToString().c_str());
        }
        return OkStatus();
      }
      case kEstablished:
        break;
      default:
        if (!IsConnected(ti.tcpi_state)) {
          return Errorf("a TCP socket in state %s: not supported", StateName(ti.tcpi_state));
        }
        if (ctx.tcp_close()) return OkStatus();
        if (!IsClosingState(ti.tcpi_state) && ti.tcpi_state != kSynSent) {
          return Errorf("a TCP connection in state %s on %s: not supported yet (--tcp-close restores it closed)",
                        StateName(ti.tcpi_state), local.ToString().c_str());
        }
        break;  // a closing connection: as an established one
    }
    InetAddr peer;
    if (ti.tcpi_state == kSynSent) {
      ASSIGN_OR_RETURN(DiagInfo d, QueryDiag(family, 1u << kSynSent, s.sb.st_ino));
      peer = d.peer;
    } else {
      ASSIGN_OR_RETURN(peer, InetAddr::Peer(fd));
    }
    t->set_dst_addr(peer.addr);
    t->set_dst_port(peer.port);
    if (ctx.tcp_close()) {
      LOG_INFO("files: %s: connection %s - %s saved without its state (--tcp-close)", s.Name().c_str(),
               local.ToString().c_str(), peer.ToString().c_str());
      return OkStatus();
    }
    if (!ctx.tcp_established()) {
      return Error("an established TCP connection " + local.ToString() + " - " + peer.ToString() +
                   ": dump with --tcp-established to save it");
    }
    const std::string conn = local.ToString() + " - " + peer.ToString();
    ASSIGN_OR_RETURN(NetLock * lock, ctx.net_lock());
    RETURN_IF_ERROR(lock->Lock(local, peer));
    RETURN_IF_ERROR(lock->Hold(copy));
    // Repair mode only while reading: a tree that runs on (-R, a failed
    // dump, criu-fast killed) finds its socket as it was; a tree that is
    // killed leaves the socket to the lock's guard (NetLock::Keep).
    if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &kRepairOn, sizeof(kRepairOn)) != 0) {
      return ErrnoStatus("TCP_REPAIR on " + conn);
    }
    Status read = ReadConnection(fd, ti.tcpi_state, t->mutable_conn()).WithContext(conn);
    if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &kRepairOffQuiet, sizeof(kRepairOffQuiet)) != 0 && read.ok()) {
      read = ErrnoStatus("TCP_REPAIR off " + conn);
    }
    // Tests: a dump failing, or criu-fast killed, with a connection locked.
    if (FaultArmed("tcp-kill")) raise(SIGKILL);
    FAULT_POINT("tcp-locked");
    return read;
  }

  Status Create(const SharedObject& obj, RestoreContext& ctx, CreatedFiles* out) const override {
    const auto& [id, f] = *obj.files.begin();
    auto fd = MakeSocket(f->tcp(), ctx.tcp_close);
    if (!fd.ok()) return fd.status().WithContext("fd " + std::to_string(f->fd()) + " (" + Describe(*f) + ")");
    // The generic options last (kinds/socket_opts.h): only those that
    // differ from what the socket has now are set.
    if (f->has_socket_opts()) {
      RETURN_IF_ERROR(ApplySocketOpts(fd->get(), f->socket_opts()).WithContext("fd " + std::to_string(f->fd())));
    }
    RETURN_IF_ERROR(SetStatusFlags(fd->get(), f->flags(), O_NONBLOCK, "TCP socket"));
    (*out)[id] = std::move(*fd);
    return OkStatus();
  }

  std::vector<Probe> Probes() const override {
    return {{"TCP_REPAIR", "established TCP connections cannot be dumped (--tcp-established)", ProbeRepair},
            {"nftables network lock", "established TCP connections cannot be locked while dumped (nft is missing)",
             [] {
               Status s = CheckNetLock();
               return s.ok() ? ProbeResult{true, ""} : ProbeResult{false, s.ToString()};
             }}};
  }

  std::string Describe(const img::Fd& f) const override {
    const img::TcpSocket& t = f.tcp();
    const int family = static_cast<int>(t.family());
    std::string d = std::string("TCP ") + StateName(t.state()) + " " +
                    InetAddr::Of(family, t.src_addr(), t.src_port()).ToString();
    if (t.state() == kEstablished) {
      d += " - " + InetAddr::Of(family, t.dst_addr(), t.dst_port()).ToString() + " (" +
           std::to_string(t.conn().send_queue().size()) + " bytes to send, " +
           std::to_string(t.conn().recv_queue().size()) + " to read)";
    }
    return d;
  }

 private:
  static constexpr int kRepairOn = TCP_REPAIR_ON;
  static constexpr int kRepairOffQuiet = TCP_REPAIR_OFF_NO_WP;  // no window probe to the peer

  static ProbeResult ProbeRepair() {
    UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP));
    if (!s.valid()) return ProbeFailed("socket(TCP)", errno);
    if (setsockopt(s.get(), IPPROTO_TCP, TCP_REPAIR, &kRepairOn, sizeof(kRepairOn)) != 0) {
      return ProbeFailed("TCP_REPAIR", errno);
    }
    return {true, ""};
  }
};

}  // namespace

const FdKind& TcpSocketKind() {
  static const TcpSocket kind;
  return kind;
}

Status ProbeRestoredConnections(pid_t pid, const img::Process& process, bool tcp_close) {
  if (tcp_close) return OkStatus();
  for (const img::Fd& f : process.fds()) {
    if (!f.has_tcp() || f.tcp().state() != kEstablished || !f.tcp().has_conn()) continue;
    ASSIGN_OR_RETURN(UniqueFd sock, TakeFd(pid, f.fd()));
    // Leaving repair mode sends the probe; it also clears SO_REUSEADDR,
    // which gets its value back.
    RETURN_IF_ERROR(SetOpt(sock.get(), IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR"));
    RETURN_IF_ERROR(SetOpt(sock.get(), IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF, "TCP_REPAIR off"));
    RETURN_IF_ERROR(SetOpt(sock.get(), SOL_SOCKET, SO_REUSEADDR, f.tcp().reuseaddr(), "SO_REUSEADDR"));
  }
  return OkStatus();
}

}  // namespace cf::kinds
