// The netlink round trip of sock_diag queries (see sock_diag.h).
#include "kinds/sock_diag.h"

#include <linux/sock_diag.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common/fd.h"
#include "kinds/netns.h"

namespace cf::kinds {

Result<bool> SockDiag(const void* req, size_t len, bool dump, const char* what,
                      const std::function<bool(const DiagReply&)>& visit) {
  // sock_diag answers for its own socket's namespace: the tree's.
  auto made = SocketIn(TreeNetnsFd(), AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (!made.ok()) return made.status().WithContext("socket(NETLINK_SOCK_DIAG)");
  UniqueFd nl = std::move(*made);
  std::vector<char> request(NLMSG_LENGTH(len));
  auto* nlh = reinterpret_cast<nlmsghdr*>(request.data());
  nlh->nlmsg_len = static_cast<uint32_t>(request.size());
  nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
  nlh->nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0);
  nlh->nlmsg_seq = 1;
  memcpy(NLMSG_DATA(nlh), req, len);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(nl.get(), request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    return ErrnoStatus(std::string(what) + " request");
  }
  // A unix listener with many pending connections has a long ICONS attribute.
  alignas(nlmsghdr) static thread_local char buf[64 << 10];
  for (;;) {
    const ssize_t n = recv(nl.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(std::string(what) + " reply");
    if (n == 0) return false;
    size_t left = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) return false;
      if (h->nlmsg_type == NLMSG_ERROR) {
        return ErrnoStatus(-static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error, what);
      }
      if (visit(DiagReply{h})) return true;
    }
    // A single answer is one message, with no NLMSG_DONE after it.
    if (!dump) return false;
  }
}

}  // namespace cf::kinds
