// Round trips of socket options through the image message, on sockets of
// this process: read from one socket, applied to a fresh one, read again.
#include "kinds/socket_opts.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/fd.h"

namespace cf::kinds {
namespace {

void SetInt(int sock, int level, int opt, int v) {
  ASSERT_EQ(setsockopt(sock, level, opt, &v, sizeof(v)), 0) << "option " << opt << ": " << strerror(errno);
}

int GetInt(int sock, int level, int opt) {
  int v = -12345;
  socklen_t len = sizeof(v);
  EXPECT_EQ(getsockopt(sock, level, opt, &v, &len), 0) << "option " << opt << ": " << strerror(errno);
  return v;
}

img::SocketOpts Read(int sock) {
  img::SocketOpts o;
  Status s = ReadSocketOpts(sock, &o);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return o;
}

// Applies |o| to |sock| around an optional bind, as a kind does.
void Restore(int sock, const img::SocketOpts& o, const sockaddr* addr = nullptr, socklen_t len = 0) {
  Status s = ApplyBindOpts(sock, o);
  ASSERT_TRUE(s.ok()) << s.ToString();
  if (addr) {
    ASSERT_EQ(bind(sock, addr, len), 0) << strerror(errno);
  }
  s = ApplySocketOpts(sock, o);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST(SocketOpts, FreshSocketsNeedNothing) {
  UniqueFd a(socket(AF_INET, SOCK_DGRAM, 0)), b(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_TRUE(a.valid() && b.valid());
  img::SocketOpts o = Read(a.get());
  EXPECT_TRUE(o.has_reuseaddr());
  EXPECT_TRUE(o.ip().has_ttl());
  EXPECT_FALSE(o.has_ip6());
  EXPECT_EQ(o.filter_size(), 0);
  EXPECT_EQ(DescribeSocketOpts(o), "");
  Restore(b.get(), o);
  EXPECT_EQ(Read(b.get()).SerializeAsString(), o.SerializeAsString());
}

TEST(SocketOpts, SolSocketAndIpRoundTrip) {
  if (geteuid() != 0) GTEST_SKIP() << "SO_MARK and the FORCE buffer sizes need CAP_NET_ADMIN";
  UniqueFd a(socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP)), b(socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP));
  ASSERT_TRUE(a.valid() && b.valid());
  const int s = a.get();
  SetInt(s, SOL_SOCKET, SO_REUSEADDR, 1);
  SetInt(s, SOL_SOCKET, SO_BROADCAST, 1);
  SetInt(s, SOL_SOCKET, SO_MARK, 77);
  SetInt(s, SOL_SOCKET, SO_RCVLOWAT, 9);
  SetInt(s, SOL_SOCKET, SO_NO_CHECK, 1);
  SetInt(s, SOL_SOCKET, SO_TIMESTAMPNS_OLD, 1);
  SetInt(s, SOL_SOCKET, SO_SNDBUF, 16384);
  SetInt(s, SOL_SOCKET, SO_PEEK_OFF, 0);
  SetInt(s, SOL_IP, IP_TOS, 0x08);  // sets the priority too: restore must keep the order
  SetInt(s, SOL_SOCKET, SO_PRIORITY, 5);
  SetInt(s, SOL_IP, IP_TTL, 32);
  SetInt(s, SOL_IP, IP_PKTINFO, 1);
  SetInt(s, SOL_IP, IP_RECVERR, 1);
  SetInt(s, SOL_IP, IP_MULTICAST_LOOP, 0);
  timeval tv{1, 500000};
  ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
  linger lg{1, 7};
  ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
  ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3), 0);

  img::SocketOpts o = Read(s);
  EXPECT_EQ(o.broadcast(), 1);
  EXPECT_EQ(o.mark(), 77);
  EXPECT_EQ(o.sndbuf(), 32768u);
  EXPECT_EQ(o.rcvtimeo_us(), 1500000u);
  EXPECT_EQ(o.bound_dev(), "lo");
  EXPECT_EQ(o.ip().ttl(), 32);
  EXPECT_EQ(o.buf_lock() & 1, 1);

  Restore(b.get(), o);
  const int t = b.get();
  EXPECT_EQ(GetInt(t, SOL_SOCKET, SO_PRIORITY), 5);
  EXPECT_EQ(GetInt(t, SOL_SOCKET, SO_SNDBUF), 32768);
  EXPECT_EQ(GetInt(t, SOL_SOCKET, SO_TIMESTAMPNS_OLD), 1);
  EXPECT_EQ(GetInt(t, SOL_SOCKET, SO_PEEK_OFF), 0);
  EXPECT_EQ(GetInt(t, SOL_IP, IP_TOS), 0x08);
  EXPECT_EQ(GetInt(t, SOL_IP, IP_MULTICAST_LOOP), 0);
  EXPECT_EQ(Read(t).SerializeAsString(), o.SerializeAsString());
  const std::string d = DescribeSocketOpts(o);
  EXPECT_NE(d.find("broadcast=1"), std::string::npos) << d;
  EXPECT_NE(d.find("ip.ttl=32"), std::string::npos) << d;
  EXPECT_NE(d.find("dev=lo"), std::string::npos) << d;
}

TEST(SocketOpts, BufferLockWithoutSize) {
  UniqueFd a(socket(AF_INET, SOCK_STREAM, 0)), b(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_TRUE(a.valid() && b.valid());
  int lock = 2;
  if (setsockopt(a.get(), SOL_SOCKET, 72 /* SO_BUF_LOCK */, &lock, sizeof(lock)) != 0) {
    GTEST_SKIP() << "no SO_BUF_LOCK here";
  }
  img::SocketOpts o = Read(a.get());
  EXPECT_EQ(o.buf_lock(), 2);
  Restore(b.get(), o);
  EXPECT_EQ(GetInt(b.get(), SOL_SOCKET, 72), 2);
}

TEST(SocketOpts, ClassicFilterAndLock) {
  UniqueFd a(socket(AF_INET, SOCK_DGRAM, 0)), b(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_TRUE(a.valid() && b.valid());
  sock_filter insns[4] = {{0x28, 0, 0, 0x0c}, {0x15, 0, 1, 0x800}, {0x06, 0, 0, 0xffff}, {0x06, 0, 0, 0}};
  sock_fprog prog{4, insns};
  ASSERT_EQ(setsockopt(a.get(), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)), 0);
  SetInt(a.get(), SOL_SOCKET, SO_LOCK_FILTER, 1);
  img::SocketOpts o = Read(a.get());
  ASSERT_EQ(o.filter_size(), 4);
  EXPECT_EQ(o.filter(1).code(), 0x15u);
  EXPECT_EQ(o.filter(1).jf(), 1u);
  EXPECT_EQ(o.filter(1).k(), 0x800u);
  EXPECT_TRUE(o.lock_filter());
  Restore(b.get(), o);
  sock_filter got[4] = {};
  socklen_t n = 4;
  ASSERT_EQ(getsockopt(b.get(), SOL_SOCKET, SO_GET_FILTER, got, &n), 0);
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(memcmp(got, insns, sizeof(insns)), 0);
  EXPECT_EQ(GetInt(b.get(), SOL_SOCKET, SO_LOCK_FILTER), 1);
  EXPECT_NE(DescribeSocketOpts(o).find("filter=4 insns locked"), std::string::npos);
}

// A socket bound to a foreign address under IP_FREEBIND, which it cleared
// since: the bind at restore needs it, the restored socket has it off.
TEST(SocketOpts, FreebindClearedAfterBind) {
  UniqueFd a(socket(AF_INET6, SOCK_DGRAM, 0)), b(socket(AF_INET6, SOCK_DGRAM, 0));
  ASSERT_TRUE(a.valid() && b.valid());
  SetInt(a.get(), SOL_IPV6, IPV6_V6ONLY, 1);
  SetInt(a.get(), SOL_IPV6, IPV6_RECVPKTINFO, 1);
  SetInt(a.get(), SOL_IP, IP_FREEBIND, 1);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "2001:db8::ff00:42:8329", &addr.sin6_addr);
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  ASSERT_EQ(bind(a.get(), sa, sizeof(addr)), 0) << strerror(errno);
  SetInt(a.get(), SOL_IP, IP_FREEBIND, 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(a.get(), sa, &len), 0);
  img::SocketOpts o = Read(a.get());
  EXPECT_EQ(o.ip6().v6only(), 1);
  EXPECT_EQ(o.ip().freebind(), 0);
  a.reset();  // frees the port
  Restore(b.get(), o, sa, sizeof(addr));
  EXPECT_EQ(GetInt(b.get(), SOL_IP, IP_FREEBIND), 0);
  EXPECT_EQ(GetInt(b.get(), SOL_IPV6, IPV6_V6ONLY), 1);
  EXPECT_EQ(GetInt(b.get(), SOL_IPV6, IPV6_RECVPKTINFO), 1);
}

}  // namespace
}  // namespace cf::kinds
