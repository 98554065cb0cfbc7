// sock_diag (NETLINK_SOCK_DIAG) queries, shared by the socket kinds: each
// kind builds its family's request (unix_diag_req, inet_diag_req_v2,
// packet_diag_req) and reads the replies' messages and attributes; the
// netlink round trip is here.
#pragma once

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstddef>
#include <functional>

#include "common/status.h"

namespace cf::kinds {

// One reply message: the family's *_diag_msg and its attributes.
struct DiagReply {
  const nlmsghdr* h = nullptr;

  // The message as |M|, or null when it is shorter.
  template <typename M>
  const M* As() const {
    return h->nlmsg_len < NLMSG_LENGTH(sizeof(M)) ? nullptr : static_cast<const M*>(NLMSG_DATA(h));
  }
  // Calls |f|(attribute) for each attribute after the message |M|.
  template <typename M, typename F>
  void ForEachAttr(F f) const {
    const M* m = As<M>();
    if (m == nullptr) return;
    int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(M)));
    for (auto* a = reinterpret_cast<const rtattr*>(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) f(a);
  }
};

// Sends |req| (|len| bytes: the family's request, which a netlink header
// precedes) as SOCK_DIAG_BY_FAMILY, a dump of every matching socket when
// |dump|, and calls |visit| with each reply until it returns true. Returns
// whether it did (false: the replies ended first). A netlink error is
// returned with its errno (ENOENT: no such socket), |what| naming it.
Result<bool> SockDiag(const void* req, size_t len, bool dump, const char* what,
                      const std::function<bool(const DiagReply&)>& visit);

}  // namespace cf::kinds
