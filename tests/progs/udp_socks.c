/* UDP and UDP-Lite sockets with datagrams queued, for test_udp_sockets.sh.
 *
 *   a   UDP 127.0.0.1:pa, unconnected; queued: "b-one", "b-two" from b,
 *       "c-three" from c (autobound, unconnected)
 *   b   UDP 127.0.0.1:pb, connected to a; queued: "a-four" from a
 *   c   UDP, never bound: autobound by its sendto
 *   d   UDPv6 [::1]:pd, IPV6_V6ONLY, IPV6_RECVPKTINFO; queued "e-five" from e
 *   e   UDPv6 [::1]:pe, connected to d
 *   m   UDPv6 [::]:pm, v6only off; queued "c-six" from c (v4-mapped source)
 *   l   UDP-Lite 127.0.0.1:pl, UDPLITE_SEND_CSCOV 20; queued "l-seven" from l2
 *   l2  UDP-Lite, unbound
 *   o   UDP with options: SO_BROADCAST, SO_REUSEADDR, SO_PRIORITY 3, IP_TOS,
 *       IP_TTL 33, SO_RCVBUF, a 4-instruction filter, SO_RCVTIMEO
 *   s   UDP 127.0.0.1:ps, connected to a, shut down for writing
 *   f   UDPv6 bound to 2001:db8::1:p under IP_FREEBIND, which it cleared
 *   n   UDP, fresh (unbound, unconnected)
 *   r   raw ICMP, bound to 127.0.0.1, ICMP_FILTER; r6 raw ICMPv6, ICMPV6_FILTER
 *
 * The check reads every queue (contents, order, sources), sends new
 * datagrams both ways between a and b, d and e, checks the addresses, the
 * options and the shutdown, then queues the same datagrams again from the
 * same senders, so it can run again after the next dump.
 */
#include "prog_common.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <sys/socket.h>

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#endif

static int a, b, c, d, e, m, l, l2, o, s, f, n, r, r6;

typedef struct sockaddr_storage addr_t;

static socklen_t name_of(int sk, addr_t *out) {
  socklen_t len = sizeof(*out);
  memset(out, 0, sizeof(*out));
  if (getsockname(sk, (struct sockaddr *)out, &len) != 0) return 0;
  return len;
}

static int udp(int family, int proto) {
  int sk = socket(family, SOCK_DGRAM, proto);
  if (sk < 0) cf_die("socket(%d, %d)", family, proto);
  return sk;
}

static void bind4(int sk, const char *ip) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  inet_pton(AF_INET, ip, &sa.sin_addr);
  if (bind(sk, (struct sockaddr *)&sa, sizeof(sa)) != 0) cf_die("bind %s", ip);
}

static void bind6(int sk, const char *ip) {
  struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
  inet_pton(AF_INET6, ip, &sa.sin6_addr);
  if (bind(sk, (struct sockaddr *)&sa, sizeof(sa)) != 0) cf_die("bind %s", ip);
}

static void connect_to(int sk, int peer) {
  addr_t addr;
  socklen_t len = name_of(peer, &addr);
  if (connect(sk, (struct sockaddr *)&addr, len) != 0) cf_die("connect");
}

/* |from| sends |msg| to |to|'s address (v4 to a v6 wildcard: 127.0.0.1). */
static void send_to(int from, int to, const char *msg) {
  addr_t addr;
  socklen_t len = name_of(to, &addr);
  int fam = 0;
  socklen_t fl = sizeof(fam);
  getsockopt(from, SOL_SOCKET, SO_DOMAIN, &fam, &fl);
  struct sockaddr_in v4 = {.sin_family = AF_INET};
  if (fam == AF_INET && addr.ss_family == AF_INET6) {
    v4.sin_port = ((struct sockaddr_in6 *)&addr)->sin6_port;
    v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memcpy(&addr, &v4, sizeof(v4));
    len = sizeof(v4);
  }
  if (sendto(from, msg, strlen(msg), 0, (struct sockaddr *)&addr, len) != (ssize_t)strlen(msg)) {
    cf_failf("sendto '%s': %s", msg, strerror(errno));
  }
}

static int same_port(const addr_t *x, const addr_t *y) {
  in_port_t px = x->ss_family == AF_INET ? ((struct sockaddr_in *)x)->sin_port : ((struct sockaddr_in6 *)x)->sin6_port;
  in_port_t py = y->ss_family == AF_INET ? ((struct sockaddr_in *)y)->sin_port : ((struct sockaddr_in6 *)y)->sin6_port;
  return px == py;
}

/* Receives the next datagram of |sk| (waiting up to 2 s) and checks its
 * text and that it came from |src|'s port. */
static void expect(int sk, const char *what, const char *msg, int src) {
  char buf[256];
  addr_t from, want;
  socklen_t len = sizeof(from);
  ssize_t got = -1;
  for (int i = 0; i < 200; i++) {
    got = recvfrom(sk, buf, sizeof(buf) - 1, MSG_DONTWAIT, (struct sockaddr *)&from, &len);
    if (got >= 0 || errno != EAGAIN) break;
    cf_nap(10);
  }
  if (got < 0) {
    cf_failf("%s: no datagram '%s': %s", what, msg, strerror(errno));
    return;
  }
  buf[got] = 0;
  CF_CHECK(strcmp(buf, msg) == 0, "%s: got '%s', want '%s'", what, buf, msg);
  name_of(src, &want);
  CF_CHECK(same_port(&from, &want), "%s: '%s' from another port", what, msg);
}

static void expect_empty(int sk, const char *what) {
  char buf[16];
  ssize_t got = recv(sk, buf, sizeof(buf), MSG_DONTWAIT);
  CF_CHECK(got < 0 && errno == EAGAIN, "%s: more queued than expected (%zd)", what, got);
}

static void fill_queues(void) {
  send_to(b, a, "b-one");
  send_to(b, a, "b-two");
  send_to(c, a, "c-three");
  send_to(a, b, "a-four");
  send_to(e, d, "e-five");
  send_to(c, m, "c-six");
  send_to(l2, l, "l-seven");
  cf_nap(50);
}

static int geti(int sk, int level, int opt) {
  int v = -1;
  socklen_t len = sizeof(v);
  if (getsockopt(sk, level, opt, &v, &len) != 0) return -999;
  return v;
}

#define NSOCKS 14
static addr_t names[NSOCKS];
static const int *socks[NSOCKS] = {&a, &b, &c, &d, &e, &m, &l, &l2, &o, &s, &f, &n, &r, &r6};

static void check(void) {
  for (int i = 0; i < NSOCKS; i++) {
    addr_t now;
    name_of(*socks[i], &now);
    CF_CHECK(memcmp(&now, &names[i], sizeof(now)) == 0, "socket %d: another local address", i);
  }
  addr_t peer, want;
  socklen_t len = sizeof(peer);
  CF_CHECK(getpeername(b, (struct sockaddr *)&peer, &len) == 0, "b: not connected");
  name_of(a, &want);
  CF_CHECK(same_port(&peer, &want), "b: connected elsewhere");
  len = sizeof(peer);
  CF_CHECK(getpeername(a, (struct sockaddr *)&peer, &len) != 0 && errno == ENOTCONN, "a: connected");

  expect(a, "a", "b-one", b);
  expect(a, "a", "b-two", b);
  expect(a, "a", "c-three", c);
  expect_empty(a, "a");
  expect(b, "b", "a-four", a);
  expect_empty(b, "b");
  expect(d, "d", "e-five", e);
  expect(m, "m", "c-six", c);
  expect(l, "l", "l-seven", l2);
  expect_empty(l, "l");
  /* New traffic. */
  CF_CHECK(send(b, "b-new", 5, 0) == 5, "b: send: %s", strerror(errno));
  expect(a, "a (new)", "b-new", b);
  send_to(a, b, "a-new");
  expect(b, "b (new)", "a-new", a);
  CF_CHECK(send(e, "e-new", 5, 0) == 5, "e: send: %s", strerror(errno));
  expect(d, "d (new)", "e-new", e);
  /* A connected socket takes nothing from others. */
  send_to(c, b, "c-stray");
  cf_nap(20);
  expect_empty(b, "b (connected)");

  CF_CHECK(geti(d, SOL_IPV6, IPV6_V6ONLY) == 1, "d: IPV6_V6ONLY lost");
  CF_CHECK(geti(d, SOL_IPV6, IPV6_RECVPKTINFO) == 1, "d: IPV6_RECVPKTINFO lost");
  CF_CHECK(geti(m, SOL_IPV6, IPV6_V6ONLY) == 0, "m: IPV6_V6ONLY set");
  CF_CHECK(geti(l, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV) == 20, "l: UDPLITE_SEND_CSCOV %d",
           geti(l, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV));
  CF_CHECK(geti(l, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_UDPLITE, "l: not UDP-Lite");
  CF_CHECK(geti(o, SOL_SOCKET, SO_BROADCAST) == 1, "o: SO_BROADCAST lost");
  CF_CHECK(geti(o, SOL_SOCKET, SO_REUSEADDR) == 1, "o: SO_REUSEADDR lost");
  CF_CHECK(geti(o, SOL_SOCKET, SO_PRIORITY) == 3, "o: SO_PRIORITY %d", geti(o, SOL_SOCKET, SO_PRIORITY));
  CF_CHECK(geti(o, SOL_IP, IP_TOS) == 0x10, "o: IP_TOS %d", geti(o, SOL_IP, IP_TOS));
  CF_CHECK(geti(o, SOL_IP, IP_TTL) == 33, "o: IP_TTL %d", geti(o, SOL_IP, IP_TTL));
  CF_CHECK(geti(o, SOL_SOCKET, SO_RCVBUF) == 2 * 70000, "o: SO_RCVBUF %d", geti(o, SOL_SOCKET, SO_RCVBUF));
  struct sock_filter flt[8];
  socklen_t fl = 8;
  CF_CHECK(getsockopt(o, SOL_SOCKET, SO_GET_FILTER, flt, &fl) == 0 && fl == 4 && flt[3].k == 0xffff,
           "o: filter lost (%u insns)", fl);
  struct timeval tv;
  len = sizeof(tv);
  CF_CHECK(getsockopt(o, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0 && tv.tv_sec == 2 && tv.tv_usec == 500000,
           "o: SO_RCVTIMEO lost");
  CF_CHECK(send(s, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "s: send after SHUT_WR did not fail with EPIPE");
  CF_CHECK(geti(f, SOL_IP, IP_FREEBIND) == 0, "f: IP_FREEBIND set");
  CF_CHECK(geti(n, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, "n: not a datagram socket");
  struct icmp_filter icf = {0};
  len = sizeof(icf);
  CF_CHECK(getsockopt(r, SOL_RAW, ICMP_FILTER, &icf, &len) == 0 && icf.data == (1u << ICMP_TIMESTAMP),
           "r: ICMP_FILTER lost");
  CF_CHECK(geti(r, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_ICMP && geti(r, SOL_SOCKET, SO_TYPE) == SOCK_RAW,
           "r: not a raw ICMP socket");
  struct icmp6_filter icf6;
  memset(&icf6, 0, sizeof(icf6));
  len = sizeof(icf6);
  CF_CHECK(getsockopt(r6, SOL_ICMPV6, ICMPV6_FILTER, &icf6, &len) == 0 && icf6.data[1] == 0x12345678,
           "r6: ICMPV6_FILTER lost");

  fill_queues();
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "udp_socks W");
  a = udp(AF_INET, 0);
  bind4(a, "127.0.0.1");
  b = udp(AF_INET, 0);
  bind4(b, "127.0.0.1");
  connect_to(b, a);
  c = udp(AF_INET, 0);
  d = udp(AF_INET6, 0);
  int one = 1;
  setsockopt(d, SOL_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  setsockopt(d, SOL_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
  bind6(d, "::1");
  e = udp(AF_INET6, 0);
  bind6(e, "::1");
  connect_to(e, d);
  m = udp(AF_INET6, 0);
  int zero = 0;
  setsockopt(m, SOL_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  bind6(m, "::");
  l = udp(AF_INET, IPPROTO_UDPLITE);
  bind4(l, "127.0.0.1");
  int cov = 20;
  if (setsockopt(l, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, &cov, sizeof(cov)) != 0) cf_die("UDPLITE_SEND_CSCOV");
  l2 = udp(AF_INET, IPPROTO_UDPLITE);
  o = udp(AF_INET, 0);
  setsockopt(o, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
  setsockopt(o, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int v = 0x10;
  setsockopt(o, SOL_IP, IP_TOS, &v, sizeof(v)); /* sets SO_PRIORITY too: restore must keep the order */
  v = 3;
  setsockopt(o, SOL_SOCKET, SO_PRIORITY, &v, sizeof(v));
  v = 33;
  setsockopt(o, SOL_IP, IP_TTL, &v, sizeof(v));
  v = 70000;
  setsockopt(o, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
  struct sock_filter flt[4] = {{0x6, 0, 0, 0xffff}, {0x6, 0, 0, 0xffff}, {0x6, 0, 0, 0xffff}, {0x6, 0, 0, 0xffff}};
  struct sock_fprog prog = {4, flt};
  if (setsockopt(o, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0) cf_die("SO_ATTACH_FILTER");
  struct timeval tv = {2, 500000}; /* whole jiffies at any HZ */
  setsockopt(o, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  bind4(o, "0.0.0.0");
  s = udp(AF_INET, 0);
  bind4(s, "127.0.0.1");
  connect_to(s, a);
  if (shutdown(s, SHUT_WR) != 0) cf_die("shutdown");
  f = udp(AF_INET6, 0);
  setsockopt(f, SOL_IP, IP_FREEBIND, &one, sizeof(one));
  bind6(f, "2001:db8::1");
  setsockopt(f, SOL_IP, IP_FREEBIND, &zero, sizeof(zero));
  n = udp(AF_INET, 0);
  r = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (r < 0) cf_die("raw ICMP socket");
  bind4(r, "127.0.0.1");
  struct icmp_filter icf = {1u << ICMP_TIMESTAMP};
  if (setsockopt(r, SOL_RAW, ICMP_FILTER, &icf, sizeof(icf)) != 0) cf_die("ICMP_FILTER");
  r6 = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
  if (r6 < 0) cf_die("raw ICMPv6 socket");
  struct icmp6_filter icf6;
  memset(&icf6, 0, sizeof(icf6));
  icf6.data[1] = 0x12345678;
  if (setsockopt(r6, SOL_ICMPV6, ICMPV6_FILTER, &icf6, sizeof(icf6)) != 0) cf_die("ICMPV6_FILTER");
  fill_queues(); /* c gets its port here */
  for (int i = 0; i < NSOCKS; i++) name_of(*socks[i], &names[i]);
  if (cf_prog.fail[0]) cf_die("setup: %s", cf_prog.fail);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
