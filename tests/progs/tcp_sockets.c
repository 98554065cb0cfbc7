/* TCP sockets of every shape this process holds at once
 * (tests/e2e/test_tcp_sockets.sh):
 *   l4    listening on 127.0.0.1:P (backlog 7, SO_REUSEADDR)
 *   l6    listening on [::1]:P+1, IPV6_V6ONLY
 *   lmap  listening on [::]:P+2 without IPV6_V6ONLY (takes IPv4 too)
 *   rp1, rp2  two listening sockets sharing 127.0.0.1:P+3 (SO_REUSEPORT)
 *   unb   a socket never bound
 *   bnd   bound to 127.0.0.1:P+4, not listening
 *   srv, cli  a connection between two sockets of this process, 127.0.0.1,
 *         accepted from l4, with bytes queued both ways (cli: 100000 sent
 *         the server has not read; srv: 3000 to the client), TCP_NODELAY on
 *         cli, keepalive with idle 77 / interval 11 / count 5 and SO_LINGER
 *         (1, 9) on srv.
 *   hsrv, hcli  a half-closed connection: hcli sent 2000 bytes and shut down
 *         for writing (FIN_WAIT2), hsrv has not read them (CLOSE_WAIT).
 *   rcli  a connection its peer reset (SO_LINGER 0, close) after sending
 *         "xyz", which rcli has not read: closed, the bytes still there
 *         (peeked), and a write fails.
 * The self-check verifies every address and option, accepts new
 * connections on each listening socket (IPv4 on lmap too), binds a socket
 * to bnd's port (it must fail: bnd still holds it), then reads the queued
 * bytes in order and sends more both ways on the restored connection; on
 * the half-closed one, hsrv reads the 2000 bytes then the end of the stream
 * and can still send to hcli. */
#include "prog_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

static int port;
static int l4, l6, lmap, rp1, rp2, unb, bnd, srv, cli, hsrv, hcli, rcli;
static uint64_t h_sent, h_back_sent, h_back_got;
static uint64_t cli_sent, srv_got, srv_sent, cli_got;  /* the stream both ways */

static uint8_t pat(uint64_t i, int dir) { return (uint8_t)((i * 131 + (uint64_t)dir * 7) ^ (i >> 9)); }

static int sock_at(int family, const char *addr, int p, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof(*ss));
  if (family == AF_INET) {
    struct sockaddr_in *s = (struct sockaddr_in *)ss;
    s->sin_family = AF_INET;
    s->sin_port = htons((uint16_t)p);
    inet_pton(AF_INET, addr, &s->sin_addr);
    *len = sizeof(*s);
  } else {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons((uint16_t)p);
    inet_pton(AF_INET6, addr, &s->sin6_addr);
    *len = sizeof(*s);
  }
  return socket(family, SOCK_STREAM, 0);
}

static int opt(int fd, int level, int name) {
  int v = -1;
  socklen_t l = sizeof(v);
  getsockopt(fd, level, name, &v, &l);
  return v;
}

static void seton(int fd, int level, int name, int v) {
  if (setsockopt(fd, level, name, &v, sizeof(v)) != 0) cf_die("setsockopt %d/%d", level, name);
}

static int listener(int family, const char *addr, int p, int v6only, int reuseport, int backlog) {
  struct sockaddr_storage ss;
  socklen_t len;
  int fd = sock_at(family, addr, p, &ss, &len);
  if (fd < 0) cf_die("socket");
  seton(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (family == AF_INET6) seton(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only);
  if (reuseport) seton(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0) cf_die("bind %s:%d", addr, p);
  if (backlog >= 0 && listen(fd, backlog) != 0) cf_die("listen");
  return fd;
}

/* Sends up to n bytes of direction dir's stream; returns bytes sent. */
static uint64_t push(int fd, uint64_t *sent, uint64_t n, int dir) {
  unsigned char buf[4096];
  uint64_t done = 0;
  while (done < n) {
    size_t k = n - done < sizeof(buf) ? (size_t)(n - done) : sizeof(buf);
    for (size_t i = 0; i < k; i++) buf[i] = pat(*sent + i, dir);
    ssize_t w = send(fd, buf, k, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w <= 0) break;
    *sent += (uint64_t)w;
    done += (uint64_t)w;
  }
  return done;
}

/* Reads until |want| bytes of direction dir came in all (bounded wait). */
static void pull(int fd, uint64_t *got, uint64_t want, int dir, const char *who) {
  unsigned char buf[4096];
  for (int tries = 0; *got < want && tries < 2000;) {
    ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r < 0 && errno == EAGAIN) {
      struct pollfd p = {fd, POLLIN, 0};
      poll(&p, 1, 10);
      tries++;
      continue;
    }
    if (r <= 0) {
      cf_failf("%s: recv at byte %llu: %s", who, (unsigned long long)*got, r == 0 ? "end of stream" : strerror(errno));
      return;
    }
    for (ssize_t i = 0; i < r; i++) {
      if (buf[i] != pat(*got + (uint64_t)i, dir)) {
        cf_failf("%s: byte %llu differs (lost or repeated data)", who, (unsigned long long)(*got + (uint64_t)i));
        return;
      }
    }
    *got += (uint64_t)r;
  }
  CF_CHECK(*got >= want, "%s: %llu bytes of %llu came", who, (unsigned long long)*got, (unsigned long long)want);
}

static void check_name(int fd, int family, const char *addr, int p, const char *what) {
  struct sockaddr_storage want, got;
  socklen_t wl, gl = sizeof(got);
  int tmp = sock_at(family, addr, p, &want, &wl);
  close(tmp);
  if (getsockname(fd, (struct sockaddr *)&got, &gl) != 0 || gl != wl || memcmp(&got, &want, wl) != 0) {
    cf_failf("%s: not bound to %s:%d", what, addr, p);
  }
}

static void check_accepts(int lfd, int family, const char *addr, int p, const char *what) {
  struct sockaddr_storage ss;
  socklen_t len;
  int c = sock_at(family, addr, p, &ss, &len);
  if (connect(c, (struct sockaddr *)&ss, len) != 0) {
    cf_failf("%s: connect to %s:%d: %s", what, addr, p, strerror(errno));
    close(c);
    return;
  }
  int a = accept(lfd, NULL, NULL);
  if (a < 0) cf_failf("%s: accept: %s", what, strerror(errno));
  if (a >= 0 && (send(c, "x", 1, 0) != 1 || recv(a, &(char){0}, 1, 0) != 1)) cf_failf("%s: no data through", what);
  if (a >= 0) close(a);
  close(c);
}

static void check(void) {
  CF_CHECK(opt(l4, SOL_SOCKET, SO_ACCEPTCONN) == 1, "l4 does not listen");
  CF_CHECK(opt(l4, SOL_SOCKET, SO_REUSEADDR) == 1, "l4 lost SO_REUSEADDR");
  CF_CHECK(opt(l6, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "l6 lost IPV6_V6ONLY");
  CF_CHECK(opt(lmap, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "lmap is IPV6_V6ONLY");
  CF_CHECK(opt(rp1, SOL_SOCKET, SO_REUSEPORT) == 1 && opt(rp2, SOL_SOCKET, SO_REUSEPORT) == 1, "SO_REUSEPORT lost");
  CF_CHECK(opt(unb, SOL_SOCKET, SO_ACCEPTCONN) == 0 && opt(bnd, SOL_SOCKET, SO_ACCEPTCONN) == 0, "unb or bnd listens");
  check_name(l4, AF_INET, "127.0.0.1", port, "l4");
  check_name(l6, AF_INET6, "::1", port + 1, "l6");
  check_name(lmap, AF_INET6, "::", port + 2, "lmap");
  check_name(rp1, AF_INET, "127.0.0.1", port + 3, "rp1");
  check_name(rp2, AF_INET, "127.0.0.1", port + 3, "rp2");
  check_name(unb, AF_INET, "0.0.0.0", 0, "unb");
  check_name(bnd, AF_INET, "127.0.0.1", port + 4, "bnd");
  /* bnd holds its port: binding another socket there fails. */
  struct sockaddr_storage ss;
  socklen_t len;
  int t = sock_at(AF_INET, "127.0.0.1", port + 4, &ss, &len);
  CF_CHECK(bind(t, (struct sockaddr *)&ss, len) != 0 && errno == EADDRINUSE, "bnd does not hold its port");
  close(t);
  check_accepts(l4, AF_INET, "127.0.0.1", port, "l4");
  check_accepts(l6, AF_INET6, "::1", port + 1, "l6");
  check_accepts(lmap, AF_INET, "127.0.0.1", port + 2, "lmap (IPv4)");
  check_accepts(lmap, AF_INET6, "::1", port + 2, "lmap (IPv6)");
  CF_CHECK(opt(cli, IPPROTO_TCP, TCP_NODELAY) == 1, "cli lost TCP_NODELAY");
  CF_CHECK(opt(srv, SOL_SOCKET, SO_KEEPALIVE) == 1, "srv lost SO_KEEPALIVE");
  CF_CHECK(opt(srv, IPPROTO_TCP, TCP_KEEPIDLE) == 77 && opt(srv, IPPROTO_TCP, TCP_KEEPINTVL) == 11 &&
               opt(srv, IPPROTO_TCP, TCP_KEEPCNT) == 5,
           "srv keepalive idle/intvl/cnt %d/%d/%d", opt(srv, IPPROTO_TCP, TCP_KEEPIDLE),
           opt(srv, IPPROTO_TCP, TCP_KEEPINTVL), opt(srv, IPPROTO_TCP, TCP_KEEPCNT));
  struct linger lg;
  socklen_t ll = sizeof(lg);
  getsockopt(srv, SOL_SOCKET, SO_LINGER, &lg, &ll);
  CF_CHECK(lg.l_onoff == 1 && lg.l_linger == 9, "srv linger %d/%d", lg.l_onoff, lg.l_linger);
  /* What was queued, then more both ways. */
  pull(srv, &srv_got, cli_sent, 0, "srv");
  pull(cli, &cli_got, srv_sent, 1, "cli");
  push(cli, &cli_sent, 5000, 0);
  push(srv, &srv_sent, 5000, 1);
  pull(srv, &srv_got, cli_sent, 0, "srv");
  pull(cli, &cli_got, srv_sent, 1, "cli");
  /* The half-closed connection, left as it is (peeked): its states, its
   * data, the end of its stream after them, and the other direction open. */
  struct tcp_info ti;
  socklen_t tl = sizeof(ti);
  getsockopt(hsrv, IPPROTO_TCP, TCP_INFO, &ti, &tl);
  CF_CHECK(ti.tcpi_state == TCP_CLOSE_WAIT, "hsrv in state %d, not CLOSE_WAIT", ti.tcpi_state);
  getsockopt(hcli, IPPROTO_TCP, TCP_INFO, &ti, &tl);
  CF_CHECK(ti.tcpi_state == TCP_FIN_WAIT2, "hcli in state %d, not FIN_WAIT2", ti.tcpi_state);
  unsigned char hb[4096];
  ssize_t hn = recv(hsrv, hb, sizeof(hb), MSG_PEEK | MSG_DONTWAIT);
  CF_CHECK(hn == (ssize_t)h_sent, "hsrv: %zd bytes queued, want %llu", hn, (unsigned long long)h_sent);
  for (ssize_t i = 0; i < hn; i++) {
    if (hb[i] != pat((uint64_t)i, 2)) {
      cf_failf("hsrv: byte %zd of the queue differs", i);
      break;
    }
  }
  struct pollfd hp = {hsrv, POLLRDHUP, 0};
  CF_CHECK(poll(&hp, 1, 0) == 1 && (hp.revents & POLLRDHUP), "hsrv: the peer's FIN is not there");
  push(hsrv, &h_back_sent, 700, 3);
  pull(hcli, &h_back_got, h_back_sent, 3, "hcli");

  struct tcp_info ri;
  socklen_t rl = sizeof(ri);
  CF_CHECK(getsockopt(rcli, IPPROTO_TCP, TCP_INFO, &ri, &rl) == 0 && ri.tcpi_state == TCP_CLOSE,
           "rcli: state %d, not closed", (int)ri.tcpi_state);
  char rb[8] = {0};
  CF_CHECK(recv(rcli, rb, sizeof(rb), MSG_PEEK | MSG_DONTWAIT) == 3 && memcmp(rb, "xyz", 3) == 0,
           "rcli: the bytes before the reset are gone");
  CF_CHECK(send(rcli, "q", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == -1, "rcli: a write to a reset connection succeeded");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 2, "W PORT");
  port = atoi(argv[2]);
  l4 = listener(AF_INET, "127.0.0.1", port, 0, 0, 7);
  l6 = listener(AF_INET6, "::1", port + 1, 1, 0, 5);
  lmap = listener(AF_INET6, "::", port + 2, 0, 0, 5);
  rp1 = listener(AF_INET, "127.0.0.1", port + 3, 0, 1, 5);
  rp2 = listener(AF_INET, "127.0.0.1", port + 3, 0, 1, 5);
  unb = socket(AF_INET, SOCK_STREAM, 0);
  bnd = listener(AF_INET, "127.0.0.1", port + 4, 0, 0, -1);
  struct sockaddr_storage ss;
  socklen_t len;
  cli = sock_at(AF_INET, "127.0.0.1", port, &ss, &len);
  if (connect(cli, (struct sockaddr *)&ss, len) != 0) cf_die("connect");
  srv = accept(l4, NULL, NULL);
  if (srv < 0) cf_die("accept");
  seton(cli, IPPROTO_TCP, TCP_NODELAY, 1);
  seton(srv, SOL_SOCKET, SO_KEEPALIVE, 1);
  seton(srv, IPPROTO_TCP, TCP_KEEPIDLE, 77);
  seton(srv, IPPROTO_TCP, TCP_KEEPINTVL, 11);
  seton(srv, IPPROTO_TCP, TCP_KEEPCNT, 5);
  struct linger lg = {1, 9};
  if (setsockopt(srv, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0) cf_die("SO_LINGER");
  if (push(cli, &cli_sent, 100000, 0) != 100000) cf_die("queue 100000 bytes");
  if (push(srv, &srv_sent, 3000, 1) != 3000) cf_die("queue 3000 bytes");
  hcli = sock_at(AF_INET, "127.0.0.1", port, &ss, &len);
  if (connect(hcli, (struct sockaddr *)&ss, len) != 0) cf_die("connect");
  hsrv = accept(l4, NULL, NULL);
  if (hsrv < 0) cf_die("accept");
  if (push(hcli, &h_sent, 2000, 2) != 2000 || shutdown(hcli, SHUT_WR) != 0) cf_die("half-close");
  for (int i = 0; i < 500; i++) { /* until the FIN is acknowledged: FIN_WAIT2 */
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    if (getsockopt(hcli, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_state == TCP_FIN_WAIT2) break;
    cf_nap(10);
  }
  rcli = sock_at(AF_INET, "127.0.0.1", port, &ss, &len);
  if (connect(rcli, (struct sockaddr *)&ss, len) != 0) cf_die("connect");
  int ra = accept(l4, NULL, NULL);
  if (ra < 0 || send(ra, "xyz", 3, 0) != 3) cf_die("accept and send to rcli");
  struct pollfd rp = {rcli, POLLIN, 0};
  if (poll(&rp, 1, 5000) != 1) cf_die("rcli: no bytes");
  struct linger now = {1, 0};
  if (setsockopt(ra, SOL_SOCKET, SO_LINGER, &now, sizeof(now)) != 0) cf_die("SO_LINGER 0");
  close(ra); /* a reset */
  for (int i = 0; i < 500; i++) {
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    if (getsockopt(rcli, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_state == TCP_CLOSE) break;
    cf_nap(10);
  }
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
