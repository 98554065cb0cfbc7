/* Packet sockets, for test_packet_sockets.sh.
 *
 *   r   SOCK_RAW, ETH_P_ALL, bound to lo, TPACKET_V2, PACKET_AUXDATA, an rx
 *       ring, promiscuous membership on lo, fanout group (hash) with f
 *   f   SOCK_RAW, ETH_P_ALL, bound to lo, same fanout group
 *   d   SOCK_DGRAM, ETH_P_IP, unbound, PACKET_RESERVE 16, PACKET_ORIGDEV,
 *       a tx ring, a unicast membership on lo
 *   p   SOCK_PACKET, bound to lo by name
 *
 * The check reads every option, the bound device, the memberships (lo is
 * promiscuous and in allmulti mode while they are held; a test running
 * beside this one with such sockets of its own could hide a lost one), and
 * the rings (setting one again fails with EBUSY).
 */
#include "prog_common.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef PACKET_FANOUT
#define PACKET_FANOUT 18
#endif

static int r, f, d, p, lo;
static int fanout_arg;

static int geti(int sk, int opt) {
  int v = -1;
  socklen_t len = sizeof(v);
  if (getsockopt(sk, SOL_PACKET, opt, &v, &len) != 0) return -999;
  return v;
}

static void bind_lo(int sk, int proto) {
  struct sockaddr_ll a = {.sll_family = AF_PACKET, .sll_protocol = htons(proto), .sll_ifindex = lo};
  if (bind(sk, (struct sockaddr *)&a, sizeof(a)) != 0) cf_die("bind packet socket to lo");
}

static int bound_index(int sk) {
  struct sockaddr_ll a = {0};
  socklen_t len = sizeof(a);
  if (getsockname(sk, (struct sockaddr *)&a, &len) != 0) return -1;
  return a.sll_ifindex;
}

static int membership(int sk, int op, int type) {
  struct packet_mreq m = {.mr_ifindex = lo, .mr_type = (unsigned short)type};
  return setsockopt(sk, SOL_PACKET, op, &m, sizeof(m));
}

static void check(void) {
  CF_CHECK(bound_index(r) == lo, "r: bound to %d, want lo (%d)", bound_index(r), lo);
  CF_CHECK(bound_index(f) == lo, "f: not bound to lo");
  CF_CHECK(bound_index(d) == 0, "d: bound to %d", bound_index(d));
  CF_CHECK(geti(r, PACKET_VERSION) == TPACKET_V2, "r: PACKET_VERSION %d", geti(r, PACKET_VERSION));
  CF_CHECK(geti(r, PACKET_AUXDATA) == 1, "r: PACKET_AUXDATA lost");
  CF_CHECK(geti(r, PACKET_FANOUT) == fanout_arg, "r: PACKET_FANOUT %#x, want %#x", geti(r, PACKET_FANOUT), fanout_arg);
  CF_CHECK(geti(f, PACKET_FANOUT) == fanout_arg, "f: PACKET_FANOUT %#x", geti(f, PACKET_FANOUT));
  CF_CHECK(geti(d, PACKET_RESERVE) == 16, "d: PACKET_RESERVE %d", geti(d, PACKET_RESERVE));
  CF_CHECK(geti(d, PACKET_ORIGDEV) == 1, "d: PACKET_ORIGDEV lost");
  struct sockaddr_ll ll = {0};
  socklen_t len = sizeof(ll);
  getsockname(d, (struct sockaddr *)&ll, &len);
  CF_CHECK(ll.sll_protocol == htons(ETH_P_IP), "d: protocol %#x", ntohs(ll.sll_protocol));
  struct sockaddr sa = {0};
  len = sizeof(sa);
  CF_CHECK(getsockname(p, &sa, &len) == 0 && strcmp(sa.sa_data, "lo") == 0, "p: not bound to lo");
  /* A ring is there: setting one again fails with EBUSY. */
  struct tpacket_req req = {.tp_block_size = 4096, .tp_block_nr = 1, .tp_frame_size = 2048, .tp_frame_nr = 2};
  CF_CHECK(setsockopt(r, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) != 0 && errno == EBUSY, "r: no rx ring");
  CF_CHECK(setsockopt(d, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) != 0 && errno == EBUSY, "d: no tx ring");
  /* The memberships hold lo promiscuous and in allmulti mode. */
  /* (SIOCGIFFLAGS shows only what was set by ioctl; sysfs shows all.) */
  unsigned flags = 0;
  FILE *fl = fopen("/sys/class/net/lo/flags", "r");
  CF_CHECK(fl && fscanf(fl, "%x", &flags) == 1, "cannot read /sys/class/net/lo/flags");
  if (fl) fclose(fl);
  CF_CHECK(flags & IFF_PROMISC, "r: lo is not promiscuous (flags %#x): the membership is lost", flags);
  CF_CHECK(flags & IFF_ALLMULTI, "d: lo is not in allmulti mode (flags %#x): the membership is lost", flags);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "packet_socks W");
  lo = (int)if_nametoindex("lo");
  if (lo <= 0) cf_die("no lo");
  r = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  f = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  d = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
  p = socket(AF_PACKET, SOCK_PACKET, htons(ETH_P_ALL));
  if (r < 0 || f < 0 || d < 0 || p < 0) cf_die("packet sockets");
  int v = TPACKET_V2;
  if (setsockopt(r, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) != 0) cf_die("PACKET_VERSION");
  v = 1;
  if (setsockopt(r, SOL_PACKET, PACKET_AUXDATA, &v, sizeof(v)) != 0) cf_die("PACKET_AUXDATA");
  struct tpacket_req req = {.tp_block_size = 4096, .tp_block_nr = 2, .tp_frame_size = 2048, .tp_frame_nr = 4};
  if (setsockopt(r, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) != 0) cf_die("PACKET_RX_RING");
  bind_lo(r, ETH_P_ALL);
  bind_lo(f, ETH_P_ALL);
  fanout_arg = (getpid() & 0xffff) | (PACKET_FANOUT_HASH << 16);
  if (setsockopt(r, SOL_PACKET, PACKET_FANOUT, &fanout_arg, sizeof(fanout_arg)) != 0) cf_die("PACKET_FANOUT r");
  if (setsockopt(f, SOL_PACKET, PACKET_FANOUT, &fanout_arg, sizeof(fanout_arg)) != 0) cf_die("PACKET_FANOUT f");
  if (membership(r, PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC) != 0) cf_die("promisc");
  v = 16;
  if (setsockopt(d, SOL_PACKET, PACKET_RESERVE, &v, sizeof(v)) != 0) cf_die("PACKET_RESERVE");
  v = 1;
  if (setsockopt(d, SOL_PACKET, PACKET_ORIGDEV, &v, sizeof(v)) != 0) cf_die("PACKET_ORIGDEV");
  if (setsockopt(d, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) != 0) cf_die("PACKET_TX_RING");
  if (membership(d, PACKET_ADD_MEMBERSHIP, PACKET_MR_ALLMULTI) != 0) cf_die("allmulti");
  struct sockaddr sa = {.sa_family = AF_PACKET};
  strcpy(sa.sa_data, "lo");
  if (bind(p, &sa, sizeof(sa)) != 0) cf_die("bind SOCK_PACKET");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
