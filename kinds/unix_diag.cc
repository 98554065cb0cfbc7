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
#include <string>

#include "kinds/sock_diag.h"

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
      // (A listener with no connection waiting sends none: data() may then
      // be null, and memcpy's arguments must not be, even for no bytes.)
      if (!info->icons.empty()) memcpy(info->icons.data(), data, info->icons.size() * sizeof(uint32_t));
      break;
    default:
      break;
  }
}

}  // namespace

Result<UnixSocketInfo> QueryUnixSocket(uint64_t inode) {
  unix_diag_req req{};
  req.sdiag_family = AF_UNIX;
  req.udiag_states = ~0u;
  req.udiag_ino = static_cast<uint32_t>(inode);
  req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_VFS | UDIAG_SHOW_ICONS;
  req.udiag_cookie[0] = req.udiag_cookie[1] = ~0u;  // no cookie: look up by inode
  UnixSocketInfo info;
  const std::string what = "sock_diag: unix socket " + std::to_string(inode);
  ASSIGN_OR_RETURN(bool found, SockDiag(&req, sizeof(req), false, what.c_str(), [&](const DiagReply& r) {
    const auto* m = r.As<unix_diag_msg>();
    if (r.h->nlmsg_type != SOCK_DIAG_BY_FAMILY || m == nullptr || m->udiag_ino != static_cast<uint32_t>(inode)) {
      return false;
    }
    info.inode = inode;
    info.type = m->udiag_type;
    info.state = m->udiag_state;
    r.ForEachAttr<unix_diag_msg>([&](const rtattr* a) { DecodeAttr(a, &info); });
    return true;
  }));
  if (!found) return Error(what + ": unexpected reply", EPROTO);
  info.connected = info.type == SOCK_DGRAM ? info.has_peer : info.state == kUnixEstablished;
  return info;
}

}  // namespace cf::kinds
