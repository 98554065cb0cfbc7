/* tcp_netns W [NSPATH]: a TCP connection over lo inside a network namespace
 * of the process's own.
 *
 * Without NSPATH the process unshares a new namespace, brings lo up, adds
 * 10.7.0.1/32 to lo and makes the nftables table "inet cf_netns_test";
 * with NSPATH it enters that namespace (set up by the caller, lo up).
 * Then: a listener on 127.0.0.1 (any port), a client connected to it and the
 * accepted end, with "ping" queued towards the server and "pong" towards the
 * client.
 *
 * On SIGUSR1: the namespace is not the one it started in; lo is up; without NSPATH,
 * 10.7.0.1 can be bound and the nftables table exists; each end reads what
 * was queued for it and both ways carry a new message; the listener accepts
 * a new connection. The queued messages are sent again for the next check.
 */
#include "prog_common.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static int lst, cli, srv, own_ns;
static ino_t start_ns;  // the namespace the program was started in
static struct sockaddr_in addr;

static void Send(int fd, const char *s) {
  if (write(fd, s, strlen(s)) != (ssize_t)strlen(s)) cf_die("write: %s", strerror(errno));
}

static int Expect(int fd, const char *want, const char *what) {
  char buf[64] = {0};
  size_t n = 0, len = strlen(want);
  while (n < len) {
    ssize_t r = read(fd, buf + n, len - n);
    if (r <= 0) {
      CF_CHECK(0, "%s: read gave %zd (%s) after '%s', want '%s'", what, r, r < 0 ? strerror(errno) : "end", buf, want);
      return -1;
    }
    n += (size_t)r;
  }
  CF_CHECK(strcmp(buf, want) == 0, "%s: read '%s', want '%s'", what, buf, want);
  return 0;
}

static void Timeouts(int fd) {
  struct timeval tv = {3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int LoUp(void) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "lo");
  int r = ioctl(s, SIOCGIFFLAGS, &ifr);
  close(s);
  return r == 0 && (ifr.ifr_flags & IFF_UP);
}

static void Check(void) {
  struct stat mine;
  CF_CHECK(stat("/proc/self/ns/net", &mine) == 0 && mine.st_ino != start_ns,
           "the process is in the network namespace it was started in");
  CF_CHECK(LoUp(), "lo is down");
  if (own_ns) {
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.7.0.1", &a.sin_addr);
    CF_CHECK(bind(u, (struct sockaddr *)&a, sizeof(a)) == 0, "bind 10.7.0.1: %s", strerror(errno));
    close(u);
    CF_CHECK(system("nft list table inet cf_netns_test >/dev/null 2>&1") == 0, "no nftables table cf_netns_test");
  }
  if (Expect(srv, "ping", "server") || Expect(cli, "pong", "client")) return;
  Send(cli, "again");
  Send(srv, "AGAIN");
  if (Expect(srv, "again", "server") || Expect(cli, "AGAIN", "client")) return;
  int c = socket(AF_INET, SOCK_STREAM, 0);
  Timeouts(c);
  CF_CHECK(connect(c, (struct sockaddr *)&addr, sizeof(addr)) == 0, "new connection: %s", strerror(errno));
  int a = accept(lst, NULL, NULL);
  CF_CHECK(a >= 0, "accept: %s", strerror(errno));
  close(c);
  if (a >= 0) close(a);
  Send(cli, "ping");
  Send(srv, "pong");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "tcp_netns W [NSPATH]");
  struct stat sb;
  if (stat("/proc/self/ns/net", &sb) != 0) cf_die("stat /proc/self/ns/net");
  start_ns = sb.st_ino;
  if (argc > 2) {
    int ns = open(argv[2], O_RDONLY);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) cf_die("enter %s: %s", argv[2], strerror(errno));
    close(ns);
  } else {
    own_ns = 1;
    if (unshare(CLONE_NEWNET) != 0) cf_die("unshare(CLONE_NEWNET): %s", strerror(errno));
    if (system("ip link set up dev lo") != 0) cf_die("ip link set up dev lo");
    if (system("ip addr add 10.7.0.1/32 dev lo") != 0) cf_die("ip addr add");
    if (system("nft add table inet cf_netns_test") != 0) cf_die("nft add table");
  }
  lst = socket(AF_INET, SOCK_STREAM, 0);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(lst, (struct sockaddr *)&addr, sizeof(addr)) || listen(lst, 4) ||
      getsockname(lst, (struct sockaddr *)&addr, &len)) {
    cf_die("listener: %s", strerror(errno));
  }
  cli = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(cli, (struct sockaddr *)&addr, sizeof(addr))) cf_die("connect: %s", strerror(errno));
  srv = accept(lst, NULL, NULL);
  if (srv < 0) cf_die("accept: %s", strerror(errno));
  Timeouts(cli);
  Timeouts(srv);
  Send(cli, "ping");
  Send(srv, "pong");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
