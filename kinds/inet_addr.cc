#include "kinds/inet_addr.h"

#include <arpa/inet.h>

#include <cstring>

namespace cf::kinds {

Result<InetAddr> InetAddr::From(const sockaddr_storage& ss) {
  InetAddr a;
  a.family = ss.ss_family;
  if (ss.ss_family == AF_INET) {
    const auto& sin = reinterpret_cast<const sockaddr_in&>(ss);
    a.addr.assign(reinterpret_cast<const char*>(&sin.sin_addr), sizeof(sin.sin_addr));
    a.port = ntohs(sin.sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(ss);
    a.addr.assign(reinterpret_cast<const char*>(&sin6.sin6_addr), sizeof(sin6.sin6_addr));
    a.port = ntohs(sin6.sin6_port);
  } else {
    return Errorf("address of family %d, not an inet one", ss.ss_family);
  }
  return a;
}

Result<InetAddr> InetAddr::Local(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return ErrnoStatus("getsockname");
  return From(ss);
}

Result<InetAddr> InetAddr::Peer(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return ErrnoStatus("getpeername");
  return From(ss);
}

InetAddr InetAddr::Of(int family, const std::string& addr, uint32_t port) {
  InetAddr a;
  a.family = family;
  a.addr = addr;
  if (a.addr.empty()) a.addr.assign(family == AF_INET6 ? 16 : 4, '\0');
  a.port = static_cast<uint16_t>(port);
  return a;
}

sockaddr_storage InetAddr::ToSockaddr(socklen_t* len) const {
  sockaddr_storage ss{};
  if (family == AF_INET) {
    auto& sin = reinterpret_cast<sockaddr_in&>(ss);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    memcpy(&sin.sin_addr, addr.data(), std::min(addr.size(), sizeof(sin.sin_addr)));
    *len = sizeof(sin);
  } else {
    auto& sin6 = reinterpret_cast<sockaddr_in6&>(ss);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    memcpy(&sin6.sin6_addr, addr.data(), std::min(addr.size(), sizeof(sin6.sin6_addr)));
    *len = sizeof(sin6);
  }
  return ss;
}

bool InetAddr::IsAny() const { return addr.find_first_not_of('\0') == std::string::npos; }

bool InetAddr::IsV4Mapped() const {
  static const char kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '\xff', '\xff'};
  return family == AF_INET6 && addr.size() == 16 && memcmp(addr.data(), kPrefix, sizeof(kPrefix)) == 0;
}

int InetAddr::WireFamily() const { return family == AF_INET6 && !IsV4Mapped() ? AF_INET6 : AF_INET; }

std::string InetAddr::AddrString() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (IsV4Mapped()) {
    inet_ntop(AF_INET, addr.data() + 12, buf, sizeof(buf));
  } else if (addr.size() == 4 || addr.size() == 16) {
    inet_ntop(addr.size() == 4 ? AF_INET : AF_INET6, addr.data(), buf, sizeof(buf));
  }
  return buf;
}

std::string InetAddr::ToString() const {
  std::string s;
  if (family == AF_INET6) s += '[';
  s += AddrString();
  if (family == AF_INET6) s += ']';
  s += ':';
  s += std::to_string(port);
  return s;
}

Status BindTo(int fd, const InetAddr& a) {
  socklen_t len = 0;
  const sockaddr_storage ss = a.ToSockaddr(&len);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) return ErrnoStatus("bind to " + a.ToString());
  return OkStatus();
}

}  // namespace cf::kinds
