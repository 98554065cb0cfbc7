// Inet socket addresses as the image keeps them (family, 4 or 16 address
// bytes in network order, port in host order), and the conversions to and
// from the kernel's sockaddr, for the inet socket kinds.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace cf::kinds {

struct InetAddr {
  int family = 0;         // AF_INET, AF_INET6
  std::string addr;       // 4 or 16 bytes
  uint16_t port = 0;

  // The address of |fd| (getsockname) or its peer's (getpeername).
  static Result<InetAddr> Local(int fd);
  static Result<InetAddr> Peer(int fd);
  static Result<InetAddr> From(const sockaddr_storage& ss);
  // From an image's fields; an empty |addr| is the wildcard address.
  static InetAddr Of(int family, const std::string& addr, uint32_t port);

  sockaddr_storage ToSockaddr(socklen_t* len) const;
  bool IsAny() const;
  // An IPv6 address of the form ::ffff:a.b.c.d.
  bool IsV4Mapped() const;
  // The packets' own family: AF_INET for a v4-mapped IPv6 address.
  int WireFamily() const;
  // The address alone, as inet_ntop writes it ("10.0.0.1", "::1").
  std::string AddrString() const;
  // "10.0.0.1:80", "[::1]:80".
  std::string ToString() const;
};

// bind(2) of |fd| to |a|.
Status BindTo(int fd, const InetAddr& a);

}  // namespace cf::kinds
