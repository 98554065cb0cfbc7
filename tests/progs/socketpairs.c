/* socketpairs W: unix socket pairs between a parent and its child, with data
 * queued in both directions.
 *
 *   st, dg, sq  SOCK_STREAM, SOCK_DGRAM and SOCK_SEQPACKET pairs: end 0 in the
 *               parent, end 1 in the child; messages queued both ways (one
 *               of them empty, for the datagram kinds).
 *   half        SOCK_STREAM: the parent's end was shut down for writing after
 *               queuing 100 bytes; the child's end still writes to the parent.
 *   sh          SOCK_STREAM: end 0 is held by parent and child (one open file
 *               description), end 1 by the child, which queues 3000 bytes.
 *   in          SOCK_SEQPACKET inside the child, messages queued both ways;
 *               one end has SO_PEEK_OFF 0, the other a SO_SNDBUF of its own.
 *   lone        SOCK_STREAM in the parent whose peer was closed after
 *               queuing 77 bytes.
 *
 * The bytes of round r (0 at start) are Pattern(r, stream, message, offset).
 * On SIGUSR1 the parent reads what the child queued for it (message by
 * message, boundaries checked), checks the half-closed and the lone socket
 * (their bytes peeked, not consumed; writing fails with EPIPE), reads the
 * first 1000 bytes of sh and sets O_NONBLOCK on its end of sh in even rounds
 * (clears it in odd ones), then signals the child. The child reads what the
 * parent queued for it, checks that its end 0 of sh has the flag the parent
 * just set (one description) and reads the other 2000 bytes, checks "half"
 * and its inner pair, queues round r+1 for the parent, and writes
 * W/result.child. The parent then queues round r+1 for the child and writes
 * W/result. After each read, nothing else may be queued.
 */
#include "prog_common.h"

#include <poll.h>
#include <sys/socket.h>

enum { S_ST_DOWN = 1, S_ST_UP, S_DG_DOWN, S_DG_UP, S_SQ_DOWN, S_SQ_UP, S_HALF_DOWN, S_HALF_UP, S_SH,
       S_IN_A, S_IN_B, S_LONE };

static const size_t kDown[] = {5, 0, 700, 3000, 64};   /* parent -> child messages */
static const size_t kUp[] = {1000, 3, 0};              /* child -> parent messages */
static const size_t kStDown[] = {2000, 3000};          /* stream writes */
static const size_t kStUp[] = {4000};
static const size_t kInA[] = {10, 20, 0, 30};
static const size_t kInB[] = {7};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static int st[2], dg[2], sq[2], half[2], sh[2], in[2], lone[2];
static int round_no, in_sndbuf;
static pid_t child;

static unsigned char Pattern(int round, int stream, size_t msg, size_t off) {
  return (unsigned char)(off * 29 + (off >> 7) + (size_t)stream * 71 + msg * 17 + (size_t)round * 11);
}

/* Sends messages |lens| of |stream|; a SOCK_STREAM socket gets them as one
 * byte stream (message index 0, offsets running on). */
static void Send(int fd, int round, int stream, const size_t *lens, size_t n, int is_stream) {
  static unsigned char buf[8192];
  size_t base = 0;
  for (size_t m = 0; m < n; m++) {
    for (size_t i = 0; i < lens[m]; i++) {
      buf[i] = is_stream ? Pattern(round, stream, 0, base + i) : Pattern(round, stream, m, i);
    }
    ssize_t k = send(fd, buf, lens[m], MSG_NOSIGNAL);
    if (k != (ssize_t)lens[m]) cf_failf("send stream %d message %zu: %zd (%s)", stream, m, k, strerror(errno));
    base += lens[m];
  }
}

static void ExpectNothing(int fd, const char *what) {
  char c;
  ssize_t k = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
  CF_CHECK(k < 0 && errno == EAGAIN, "%s: more queued than expected (recv gives %zd)", what, k);
}

/* Receives messages |lens| one by one: each recv must return one whole message. */
static void RecvMsgs(int fd, int round, int stream, const size_t *lens, size_t n, const char *what) {
  static unsigned char buf[65536];
  for (size_t m = 0; m < n; m++) {
    ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (k != (ssize_t)lens[m]) {
      cf_failf("%s: message %zu has %zd bytes, want %zu (%s)", what, m, k, lens[m], k < 0 ? strerror(errno) : "");
      return;
    }
    for (size_t i = 0; i < lens[m]; i++) {
      if (buf[i] != Pattern(round, stream, m, i)) {
        cf_failf("%s: message %zu byte %zu differs (round %d)", what, m, i, round);
        return;
      }
    }
  }
  ExpectNothing(fd, what);
}

/* How RecvStream reads. */
enum { ALL, PEEK, PART };

/* Reads |len| bytes of a byte stream from offset |from|: ALL of what is
 * queued, a PART of it (more follows), or PEEK from the start, not consuming. */
static void RecvStream(int fd, int round, int stream, size_t from, size_t len, int how, const char *what) {
  const int peek = how == PEEK;
  static unsigned char buf[65536];
  size_t got = 0;
  while (got < len) {
    ssize_t k = recv(fd, buf + got, len - got, MSG_DONTWAIT | (peek ? MSG_PEEK : 0));
    if (k <= 0) {
      cf_failf("%s: got %zu of %zu bytes (%s)", what, got, len, k < 0 ? strerror(errno) : "end of stream");
      return;
    }
    if (peek) {
      got = (size_t)k;
      if (got < len) {
        cf_failf("%s: only %zu of %zu bytes to peek", what, got, len);
        return;
      }
    } else {
      got += (size_t)k;
    }
  }
  for (size_t i = 0; i < len; i++) {
    if (buf[i] != Pattern(round, stream, 0, from + i)) {
      cf_failf("%s: byte %zu differs (round %d)", what, from + i, round);
      return;
    }
  }
  if (how == ALL) ExpectNothing(fd, what);
}

static void CheckType(int fd, int type, const char *what) {
  int t = -1;
  socklen_t l = sizeof(t);
  CF_CHECK(getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l) == 0 && t == type, "%s: type %d, want %d", what, t, type);
}

static short Events(int fd) {
  struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
  return poll(&p, 1, 0) >= 0 ? p.revents : -1;
}

static void ExpectEpipe(int fd, const char *what) {
  ssize_t k = send(fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  CF_CHECK(k < 0 && errno == EPIPE, "%s: a send gives %zd (%s), want EPIPE", what, k, k < 0 ? strerror(errno) : "");
}

static void ChildQueue(int r) {
  Send(st[1], r, S_ST_UP, kStUp, N(kStUp), 1);
  Send(dg[1], r, S_DG_UP, kUp, N(kUp), 0);
  Send(sq[1], r, S_SQ_UP, kUp, N(kUp), 0);
  const size_t half_up[] = {50};
  Send(half[1], r, S_HALF_UP, half_up, 1, 1);
  const size_t sh_len[] = {3000};
  Send(sh[1], r, S_SH, sh_len, 1, 1);
  Send(in[0], r, S_IN_A, kInA, N(kInA), 0);
  Send(in[1], r, S_IN_B, kInB, N(kInB), 0);
}

static void ChildCheck(void) {
  const int r = round_no;
  CheckType(st[1], SOCK_STREAM, "st");
  CheckType(dg[1], SOCK_DGRAM, "dg");
  CheckType(sq[1], SOCK_SEQPACKET, "sq");
  RecvStream(st[1], r, S_ST_DOWN, 0, 5000, ALL, "st (to the child)");
  RecvMsgs(dg[1], r, S_DG_DOWN, kDown, N(kDown), "dg (to the child)");
  RecvMsgs(sq[1], r, S_SQ_DOWN, kDown, N(kDown), "sq (to the child)");
  /* half: 100 bytes, then the end of the stream. */
  RecvStream(half[1], 0, S_HALF_DOWN, 0, 100, PEEK, "half (to the child)");
  CF_CHECK(Events(half[1]) & POLLRDHUP, "half: the child's end does not see the parent's shutdown");
  /* sh: one description with the parent. */
  const int want_nb = r % 2 == 0;
  CF_CHECK(!!(fcntl(sh[0], F_GETFL) & O_NONBLOCK) == want_nb,
           "sh: the child's end 0 %s O_NONBLOCK, which the parent %s on its fd: not one description",
           want_nb ? "lacks" : "has", want_nb ? "set" : "cleared");
  RecvStream(sh[0], r, S_SH, 1000, 2000, ALL, "sh (child's part)");
  /* in */
  CheckType(in[0], SOCK_SEQPACKET, "in");
  RecvMsgs(in[1], r, S_IN_A, kInA, N(kInA), "in (a to b)");
  RecvMsgs(in[0], r, S_IN_B, kInB, N(kInB), "in (b to a)");
  int v = -2;
  socklen_t l = sizeof(v);
  CF_CHECK(getsockopt(in[1], SOL_SOCKET, SO_PEEK_OFF, &v, &l) == 0 && v == 0, "in: SO_PEEK_OFF %d, want 0", v);
  CF_CHECK(getsockopt(in[0], SOL_SOCKET, SO_SNDBUF, &v, &l) == 0 && v == in_sndbuf, "in: SO_SNDBUF %d, want %d", v,
           in_sndbuf);
  ChildQueue(r + 1);
  round_no++;
}

static void ChildLoop(void) {
  close(st[0]);
  close(dg[0]);
  close(sq[0]);
  close(half[0]);
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, in) != 0) cf_die("socketpair in");
  int zero = 0, sndbuf = 100000;
  socklen_t l = sizeof(in_sndbuf);
  if (setsockopt(in[1], SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) != 0) cf_die("SO_PEEK_OFF");
  if (setsockopt(in[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) != 0) cf_die("SO_SNDBUF");
  if (getsockopt(in[0], SOL_SOCKET, SO_SNDBUF, &in_sndbuf, &l) != 0) cf_die("SO_SNDBUF");
  ChildQueue(0);
  char buf[32];
  snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
  cf_write_file("ready.child", buf);
  for (;;) {
    if (cf_take_usr1()) {
      ChildCheck();
      char line[1100];
      snprintf(line, sizeof(line), "%s%s\n", cf_prog.fail[0] ? "FAIL: child: " : "PASS", cf_prog.fail);
      cf_prog.fail[0] = 0;
      cf_write_file("result.child", line);
    }
    cf_nap(20);
  }
}

static void ParentQueue(int r) {
  Send(st[0], r, S_ST_DOWN, kStDown, N(kStDown), 1);
  Send(dg[0], r, S_DG_DOWN, kDown, N(kDown), 0);
  Send(sq[0], r, S_SQ_DOWN, kDown, N(kDown), 0);
}

static void ParentCheck(void) {
  const int r = round_no;
  RecvStream(st[0], r, S_ST_UP, 0, 4000, ALL, "st (to the parent)");
  RecvMsgs(dg[0], r, S_DG_UP, kUp, N(kUp), "dg (to the parent)");
  RecvMsgs(sq[0], r, S_SQ_UP, kUp, N(kUp), "sq (to the parent)");
  RecvStream(half[0], r, S_HALF_UP, 0, 50, ALL, "half (to the parent)");
  ExpectEpipe(half[0], "half (the parent's end, shut down for writing)");
  RecvStream(lone[0], 0, S_LONE, 0, 77, PEEK, "lone");
  CF_CHECK((Events(lone[0]) & (POLLHUP | POLLRDHUP)) == (POLLHUP | POLLRDHUP), "lone: its peer does not look closed");
  ExpectEpipe(lone[0], "lone");
  RecvStream(sh[0], r, S_SH, 0, 1000, PART, "sh (parent's part)");
  const int fl = fcntl(sh[0], F_GETFL);
  if (fcntl(sh[0], F_SETFL, r % 2 == 0 ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) != 0) cf_failf("sh: F_SETFL");

  char path[4200], buf[1200];
  snprintf(path, sizeof(path), "%s/result.child", cf_prog.workdir);
  unlink(path);
  kill(child, SIGUSR1);
  if (cf_wait_file("result.child", buf, sizeof(buf)) != 0) {
    cf_failf("the child did not answer");
  } else if (strncmp(buf, "PASS", 4) != 0) {
    cf_failf("%s", buf);
  }
  ParentQueue(r + 1);
  round_no++;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "socketpairs W");
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) != 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) != 0 ||
      socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, half) != 0 ||
      socketpair(AF_UNIX, SOCK_STREAM, 0, sh) != 0) {
    cf_die("socketpair");
  }
  child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) ChildLoop();
  close(st[1]);
  close(dg[1]);
  close(sq[1]);
  close(half[1]);
  close(sh[1]);
  ParentQueue(0);
  const size_t half_down[] = {100};
  Send(half[0], 0, S_HALF_DOWN, half_down, 1, 1);
  if (shutdown(half[0], SHUT_WR) != 0) cf_die("shutdown");
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, lone) != 0) cf_die("socketpair lone");
  const size_t lone_len[] = {77};
  Send(lone[1], 0, S_LONE, lone_len, 1, 1);
  close(lone[1]);
  if (cf_prog.fail[0]) cf_die("setup: %s", cf_prog.fail);

  char buf[64];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child never got ready");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      ParentCheck();
      cf_report();
    }
    cf_nap(20);
  }
}
