/* epoll_moved W: an epoll instance watching files through fd numbers that
 * were closed or reused since.
 *
 *   a, b, c   three pipes
 *   ep        watches a's read end as fd 700 (closed since), b's as fd 702
 *             (closed since) and c's as fd 702 (still open), data 'a', 'b',
 *             'c'
 *
 * On SIGUSR1: fd 700 is closed and fd 702 is c's read end; fdinfo of ep
 * lists tfd 700 once and 702 twice; a byte written into each pipe in turn
 * makes epoll_wait report exactly that pipe's data.
 */
#include "prog_common.h"

#include <sys/epoll.h>

static int a[2], b[2], c[2], ep;

static void Add(int src, int at, uint64_t data, int keep) {
  if (dup2(src, at) != at) cf_die("dup2");
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = data};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, at, &ev) != 0) cf_die("epoll_ctl");
  if (!keep) close(at);
}

static void ExpectReady(int *p, uint64_t data, const char *what) {
  char ch = 'x';
  CF_CHECK(write(p[1], &ch, 1) == 1, "%s: write: %s", what, strerror(errno));
  struct epoll_event ev[4];
  int n = epoll_wait(ep, ev, 4, 0);
  CF_CHECK(n == 1 && ev[0].data.u64 == data, "%s: epoll_wait gives %d events (first data %llu), want 1 (%llu)", what,
           n, n > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL, (unsigned long long)data);
  CF_CHECK(read(p[0], &ch, 1) == 1, "%s: read: %s", what, strerror(errno));
}

static void Check(void) {
  CF_CHECK(fcntl(700, F_GETFD) < 0 && errno == EBADF, "fd 700 is open");
  struct stat s1, s2;
  CF_CHECK(fstat(702, &s1) == 0 && fstat(c[0], &s2) == 0 && s1.st_ino == s2.st_ino, "fd 702 is not c's read end");
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
  FILE *f = fopen(path, "r");
  int n700 = 0, n702 = 0, tfd;
  while (f && fgets(line, sizeof(line), f)) {
    if (sscanf(line, "tfd: %d", &tfd) == 1) {
      n700 += tfd == 700;
      n702 += tfd == 702;
    }
  }
  if (f) fclose(f);
  CF_CHECK(n700 == 1 && n702 == 2, "fdinfo of the epoll lists tfd 700 %d times, 702 %d times (want 1, 2)", n700, n702);
  ExpectReady(a, 'a', "a");
  ExpectReady(b, 'b', "b");
  ExpectReady(c, 'c', "c");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "epoll_moved W");
  if (pipe(a) || pipe(b) || pipe(c)) cf_die("pipe");
  ep = epoll_create1(0);
  if (ep < 0) cf_die("epoll_create1");
  Add(a[0], 700, 'a', 0);
  Add(b[0], 702, 'b', 0);
  Add(c[0], 702, 'c', 1);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
