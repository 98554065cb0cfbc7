/* Netlink sockets, for test_netlink_sockets.sh.
 *
 *   s   NETLINK_USERSOCK bound to an explicit port id and group 3
 *   c   NETLINK_USERSOCK connected to s's port id (autobound)
 *   g   NETLINK_ROUTE bound to group 5 only (autobound port id), with
 *       group 36 joined by NETLINK_ADD_MEMBERSHIP (past sockaddr_nl's 32)
 *   r   NETLINK_ROUTE, NETLINK_EXT_ACK and NETLINK_NO_ENOBUFS on
 *
 * The check compares port ids and groups with what they were, sends from c
 * to s (which must receive it), and asks r for the loopback link (a kernel
 * reply must come).
 */
#include "prog_common.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static int s, c, g, r;
static uint32_t port_s, port_c, port_g, port_r;

static int nl(int proto) {
  int sk = socket(AF_NETLINK, SOCK_RAW, proto);
  if (sk < 0) cf_die("socket(AF_NETLINK, %d)", proto);
  return sk;
}

static void nl_bind(int sk, uint32_t port, uint32_t groups) {
  struct sockaddr_nl a = {.nl_family = AF_NETLINK, .nl_pid = port, .nl_groups = groups};
  if (bind(sk, (struct sockaddr *)&a, sizeof(a)) != 0) cf_die("bind netlink port %u", port);
}

static uint32_t port_of(int sk) {
  struct sockaddr_nl a = {0};
  socklen_t len = sizeof(a);
  getsockname(sk, (struct sockaddr *)&a, &len);
  return a.nl_pid;
}

static int geti(int sk, int opt) {
  int v = -1;
  socklen_t len = sizeof(v);
  if (getsockopt(sk, SOL_NETLINK, opt, &v, &len) != 0) return -999;
  return v;
}

/* Receives one message on |sk| (up to 2 s); its nlmsg_type, or -1. */
static int recv_type(int sk) {
  char buf[8192];
  for (int i = 0; i < 200; i++) {
    ssize_t n = recv(sk, buf, sizeof(buf), MSG_DONTWAIT);
    if (n >= (ssize_t)sizeof(struct nlmsghdr)) return ((struct nlmsghdr *)buf)->nlmsg_type;
    if (n < 0 && errno != EAGAIN) return -1;
    cf_nap(10);
  }
  return -1;
}

static void check(void) {
  CF_CHECK(port_of(s) == port_s, "s: port %u, want %u", port_of(s), port_s);
  CF_CHECK(port_of(c) == port_c, "c: port %u, want %u", port_of(c), port_c);
  CF_CHECK(port_of(g) == port_g, "g: port %u, want %u", port_of(g), port_g);
  CF_CHECK(port_of(r) == port_r, "r: port %u, want %u", port_of(r), port_r);
  uint32_t groups[4] = {0};
  socklen_t len = sizeof(groups);
  CF_CHECK(getsockopt(g, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &len) == 0 && groups[0] == (1u << 4) &&
               groups[1] == (1u << 3),
           "g: groups %#x %#x", groups[0], groups[1]);
  struct sockaddr_nl peer = {0};
  len = sizeof(peer);
  CF_CHECK(getpeername(c, (struct sockaddr *)&peer, &len) == 0 && peer.nl_pid == port_s, "c: not connected to s");
  CF_CHECK(geti(r, NETLINK_EXT_ACK) == 1, "r: NETLINK_EXT_ACK lost");
  CF_CHECK(geti(r, NETLINK_NO_ENOBUFS) == 1, "r: NETLINK_NO_ENOBUFS lost");

  struct nlmsghdr h = {.nlmsg_len = sizeof(h), .nlmsg_type = 0x1234, .nlmsg_flags = NLM_F_REQUEST};
  CF_CHECK(send(c, &h, sizeof(h), 0) == sizeof(h), "c: send: %s", strerror(errno));
  CF_CHECK(recv_type(s) == 0x1234, "s: no message from c");

  struct {
    struct nlmsghdr h;
    struct ifinfomsg i;
  } req = {.h = {.nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 7},
           .i = {.ifi_family = AF_UNSPEC, .ifi_index = (int)if_nametoindex("lo")}};
  CF_CHECK(send(r, &req, sizeof(req), 0) == sizeof(req), "r: send: %s", strerror(errno));
  CF_CHECK(recv_type(r) == RTM_NEWLINK, "r: no RTM_NEWLINK reply");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "netlink_socks W");
  s = nl(NETLINK_USERSOCK);
  nl_bind(s, 0x40000000u | (uint32_t)getpid(), 1u << 2);
  c = nl(NETLINK_USERSOCK);
  struct sockaddr_nl a = {.nl_family = AF_NETLINK, .nl_pid = port_of(s)};
  if (connect(c, (struct sockaddr *)&a, sizeof(a)) != 0) cf_die("connect");
  g = nl(NETLINK_ROUTE);
  nl_bind(g, 0, 1u << 4);
  int group = 36;
  if (setsockopt(g, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) != 0) cf_die("ADD_MEMBERSHIP");
  r = nl(NETLINK_ROUTE);
  int one = 1;
  setsockopt(r, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  setsockopt(r, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
  nl_bind(r, 0, 0);
  port_s = port_of(s);
  port_c = port_of(c);
  port_g = port_of(g);
  port_r = port_of(r);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
