// sock_diag for unix sockets: one exact request per inode (UDIAG_SHOW_*),
// the reply's attributes decoded into UnixSocketInfo.
#include "kinds/unix_diag.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/fd.h"

namespace cf::kinds {
namespace {

void DecodeAttr(const rtattr* a, UnixSocketInfo* info) {
  const void* data = RTA_DATA(a);
  const size_t plen = RTA_PAYLOAD(a);
  switch (a->rta_type) {
    case UNIX_DIAG_NAME: {
      // A path ends at its 0 byte; an abstract name starts with one; an
      // empty abstract name (autobind gives none) is a name all the same.
      info->raw_name.assign(static_cast<const char*>(data), plen);
      if (!info->raw_name.empty() && info->raw_name[0] != '\0') {
        info->raw_name.resize(strnlen(info->raw_name.c_str(), info->raw_name.size()));
        info->name = info->raw_name;
      } else {
        if (info->raw_name.empty()) info->raw_name.assign(1, '\0');
        info->name = info->raw_name;
        std::replace(info->name.begin(), info->name.end(), '\0', '@');
      }
      break;
    }
    case UNIX_DIAG_PEER:
      if (plen >= sizeof(uint32_t)) {
        uint32_t peer;
        memcpy(&peer, data, sizeof(peer));
        info->peer = peer;
        info->has_peer = true;
      }
      break;
    case UNIX_DIAG_RQLEN:
      if (plen >= sizeof(unix_diag_rqlen)) {
        unix_diag_rqlen rq;
        memcpy(&rq, data, sizeof(rq));
        info->rqueue = rq.udiag_rqueue;
        info->wqueue = rq.udiag_wqueue;
      }
      break;
    case UNIX_DIAG_SHUTDOWN:
      if (plen >= 1) info->shutdown = *static_cast<const uint8_t*>(data);
      break;
    case UNIX_DIAG_VFS:
      if (plen >= sizeof(unix_diag_vfs)) {
        unix_diag_vfs v;
        memcpy(&v, data, sizeof(v));
        info->has_vfs = true;
        info->vfs_ino = v.udiag_vfs_ino;
        // The kernel's own dev_t encoding: major << 20 | minor.
        info->vfs_dev = makedev(v.udiag_vfs_dev >> 20, v.udiag_vfs_dev & 0xfffff);
      }
      break;
    case UNIX_DIAG_ICONS:
      info->icons.resize(plen / sizeof(uint32_t));
      memcpy(info->icons.data(), data, info->icons.size() * sizeof(uint32_t));
      break;
    default:
      break;
  }
}

}  // namespace

Result<UnixSocketInfo> QueryUnixSocket(uint64_t inode) {
  UniqueFd nl(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl.valid()) return ErrnoStatus("socket(NETLINK_SOCK_DIAG)");
  struct {
    nlmsghdr nlh;
    unix_diag_req req;
  } request{};
  request.nlh.nlmsg_len = sizeof(request);
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.nlh.nlmsg_flags = NLM_F_REQUEST;
  request.nlh.nlmsg_seq = 1;
  request.req.sdiag_family = AF_UNIX;
  request.req.udiag_states = ~0u;
  request.req.udiag_ino = static_cast<uint32_t>(inode);
  request.req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_VFS | UDIAG_SHOW_ICONS;
  request.req.udiag_cookie[0] = request.req.udiag_cookie[1] = ~0u;  // no cookie: look up by inode
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(nl.get(), &request, sizeof(request), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    return ErrnoStatus("sock_diag request");
  }
  // A listener with many pending connections has a long ICONS attribute.
  std::vector<char> buf(64 << 10);
  ssize_t n;
  do {
    n = recv(nl.get(), buf.data(), buf.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus("sock_diag reply");
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data());
  if (!NLMSG_OK(nlh, static_cast<size_t>(n))) return Error("sock_diag: short reply", EPROTO);
  if (nlh->nlmsg_type == NLMSG_ERROR) {
    const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(nlh));
    return ErrnoStatus(-e->error, "sock_diag: unix socket " + std::to_string(inode));
  }
  if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(unix_diag_msg))) {
    return Error("sock_diag: unexpected reply", EPROTO);
  }
  const auto* m = static_cast<const unix_diag_msg*>(NLMSG_DATA(nlh));
  if (m->udiag_ino != static_cast<uint32_t>(inode)) return Error("sock_diag: reply for another socket", EPROTO);
  UnixSocketInfo info;
  info.inode = inode;
  info.type = m->udiag_type;
  info.state = m->udiag_state;
  int len = static_cast<int>(nlh->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
  for (auto* a = reinterpret_cast<const rtattr*>(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) DecodeAttr(a, &info);
  info.connected = info.type == SOCK_DGRAM ? info.has_peer : info.state == kUnixEstablished;
  return info;
}

}  // namespace cf::kinds
