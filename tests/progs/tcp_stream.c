/* One end of a TCP connection that streams a known byte sequence both ways
 * and checks every byte it receives (tests/e2e/test_tcp_peer.sh):
 *   tcp_stream W server ADDR PORT   listens on ADDR:PORT, accepts one
 *                                   connection (the listening socket stays open)
 *   tcp_stream W client ADDR PORT   connects to ADDR:PORT
 * Each side sends byte i of the stream as seq_byte(i), a little at a time,
 * and checks that byte j it receives is seq_byte(j): a byte lost or received
 * twice (a connection restored at the wrong sequence number) breaks the
 * sequence from there on; a reset or an end of stream is a failure too.
 * The self-check (SIGUSR1) passes when nothing went wrong and the stream
 * moved on in both directions since the previous check (waiting for that,
 * so a connection that silently stopped fails).
 * The check's result also names the byte counts: "PASS" is alone on its line,
 * the counts follow on the next.
 *   tcp_stream W server-idle|client-idle ADDR PORT
 * sends nothing: the client closes abortively when it dies (SO_LINGER 0: a
 * reset, no FIN retransmitted), and the server's self-check passes when,
 * within 3 s, it sees its connection reset or ended (the test kills the
 * client while the server's connection is locked). */
#include "prog_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

static uint8_t seq_byte(uint64_t i) { return (uint8_t)(((i * 0x9E3779B1u) >> 24) ^ (i >> 10)); }

static int g_sock = -1, g_listen = -1;
static uint64_t g_sent, g_received;
static char g_error[512];

static void set_error(const char *fmt, ...) {
  if (g_error[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_error, sizeof(g_error), fmt, ap);
  va_end(ap);
}

static int make_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    *len = sizeof(*sin);
    return AF_INET;
  }
  if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    *len = sizeof(*sin6);
    return AF_INET6;
  }
  return -1;
}

/* Moves the stream on: sends up to |budget| bytes, reads what came. */
static void pump(size_t budget) {
  unsigned char buf[8192];
  if (g_error[0]) return;
  while (budget > 0) {
    size_t n = budget < sizeof(buf) ? budget : sizeof(buf);
    for (size_t k = 0; k < n; k++) buf[k] = seq_byte(g_sent + k);
    ssize_t w = send(g_sock, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) break;
    if (w < 0) {
      set_error("send after %llu bytes: %s", (unsigned long long)g_sent, strerror(errno));
      return;
    }
    g_sent += (uint64_t)w;
    budget -= (size_t)w;
  }
  for (;;) {
    ssize_t r = recv(g_sock, buf, sizeof(buf), MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
    if (r < 0) {
      set_error("recv after %llu bytes: %s", (unsigned long long)g_received, strerror(errno));
      return;
    }
    if (r == 0) {
      set_error("end of stream after %llu bytes", (unsigned long long)g_received);
      return;
    }
    for (ssize_t k = 0; k < r; k++) {
      if (buf[k] != seq_byte(g_received + (uint64_t)k)) {
        set_error("byte %llu is %u, want %u (lost or repeated data)", (unsigned long long)(g_received + (uint64_t)k),
                  buf[k], seq_byte(g_received + (uint64_t)k));
        return;
      }
    }
    g_received += (uint64_t)r;
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 4, "W server|client ADDR PORT");
  const int idle = strstr(argv[2], "-idle") != NULL;
  const int server = strncmp(argv[2], "server", 6) == 0;
  struct sockaddr_storage ss;
  socklen_t len;
  const int family = make_addr(argv[3], atoi(argv[4]), &ss, &len);
  if (family < 0) cf_die("bad address %s", argv[3]);
  if (server) {
    g_listen = socket(family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(g_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (g_listen < 0 || bind(g_listen, (struct sockaddr *)&ss, len) != 0 || listen(g_listen, 4) != 0) {
      cf_die("listen on %s:%s", argv[3], argv[4]);
    }
    /* Listening: the client may connect now. */
    cf_write_file("listening", "1\n");
    g_sock = accept(g_listen, NULL, NULL);
    if (g_sock < 0) cf_die("accept");
  } else {
    g_sock = socket(family, SOCK_STREAM, 0);
    if (g_sock < 0 || connect(g_sock, (struct sockaddr *)&ss, len) != 0) cf_die("connect to %s:%s", argv[3], argv[4]);
  }
  int one = 1;
  setsockopt(g_sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (idle) {
    struct linger abort_on_close = {1, 0};
    setsockopt(g_sock, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
    cf_ready();
    for (;;) {
      if (cf_take_usr1()) {
        struct pollfd p = {g_sock, POLLIN | POLLRDHUP, 0};
        const int n = poll(&p, 1, 3000);
        char c;
        const ssize_t r = n > 0 ? recv(g_sock, &c, 1, MSG_DONTWAIT) : 1;
        CF_CHECK(n > 0 && r <= 0, "the connection's end not seen in 3 s (poll %d, revents %#x)", n, n > 0 ? p.revents : 0);
        cf_report();
      }
      cf_nap(20);
      cf_check_lifetime();
    }
  }
  pump(4096);
  cf_ready();
  uint64_t last_sent = 0, last_received = 0;
  for (;;) {
    if (cf_take_usr1()) {
      /* Wait (bounded) for the stream to move on both ways. */
      for (int i = 0; i < 1500 && !g_error[0] && (g_received <= last_received || g_sent <= last_sent); i++) {
        pump(2048);
        struct pollfd p = {g_sock, POLLIN, 0};
        poll(&p, 1, 20);
      }
      CF_CHECK(!g_error[0], "%s", g_error);
      CF_CHECK(g_received > last_received, "nothing received since the last check (%llu bytes in all)",
               (unsigned long long)g_received);
      CF_CHECK(g_sent > last_sent, "nothing could be sent since the last check (%llu bytes in all)",
               (unsigned long long)g_sent);
      last_sent = g_sent;
      last_received = g_received;
      cf_report();
    }
    pump(2048);
    struct pollfd p = {g_sock, POLLIN, 0};
    poll(&p, 1, 20);
    cf_check_lifetime();
  }
}
