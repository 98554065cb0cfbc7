#include "kinds/inet_addr.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace cf::kinds {
namespace {

TEST(InetAddr, V4RoundTripAndText) {
  InetAddr a = InetAddr::Of(AF_INET, std::string("\x7f\x00\x00\x01", 4), 8080);
  EXPECT_EQ(a.ToString(), "127.0.0.1:8080");
  EXPECT_EQ(a.WireFamily(), AF_INET);
  socklen_t len = 0;
  sockaddr_storage ss = a.ToSockaddr(&len);
  EXPECT_EQ(len, sizeof(sockaddr_in));
  auto back = InetAddr::From(ss);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->addr, a.addr);
  EXPECT_EQ(back->port, 8080);
}

TEST(InetAddr, EmptyIsWildcard) {
  InetAddr a = InetAddr::Of(AF_INET6, "", 0);
  EXPECT_EQ(a.addr.size(), 16u);
  EXPECT_TRUE(a.IsAny());
  EXPECT_EQ(a.ToString(), "[::]:0");
}

TEST(InetAddr, V4MappedIsIpv4OnTheWire) {
  in6_addr m{};
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:10.1.2.3", &m), 1);
  InetAddr a = InetAddr::Of(AF_INET6, std::string(reinterpret_cast<const char*>(&m), 16), 443);
  EXPECT_TRUE(a.IsV4Mapped());
  EXPECT_EQ(a.WireFamily(), AF_INET);
  EXPECT_EQ(a.AddrString(), "10.1.2.3");
  InetAddr v6 = InetAddr::Of(AF_INET6, std::string(15, '\0') + '\1', 1);
  EXPECT_FALSE(v6.IsV4Mapped());
  EXPECT_EQ(v6.ToString(), "[::1]:1");
}

TEST(InetAddr, RejectsOtherFamilies) {
  sockaddr_storage ss{};
  ss.ss_family = AF_UNIX;
  EXPECT_FALSE(InetAddr::From(ss).ok());
}

}  // namespace
}  // namespace cf::kinds
