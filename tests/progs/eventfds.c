/* eventfds W: eventfds in counter and semaphore mode, one of them shared by a
 * parent and its child.
 *
 *   e1  counter mode, 42, held by parent and child (one open file description)
 *   e2  semaphore mode, 3, non-blocking, in the child
 *   e3  counter mode, 0x100000005 (more than 32 bits), non-blocking, parent
 *   e4  counter mode, 0, non-blocking, parent
 *
 * On SIGUSR1 the parent reads e3 (the whole counter) and writes it back,
 * finds e4 empty (EAGAIN), reads e1 (42) and writes 43 into it, then signals
 * the child. The child reads e1 and wants 43 (the parent's write: one
 * eventfd), writes 42 back; reads e2 three times (1 each: a semaphore), then
 * gets EAGAIN, and writes 3 back. Results go to W/result.child and W/result.
 */
#include "prog_common.h"

#include <sys/eventfd.h>

static int e1, e2 = -1, e3, e4;
static pid_t child;

static uint64_t ReadCount(int fd, const char *what) {
  uint64_t v = 0;
  ssize_t n = read(fd, &v, sizeof(v));
  if (n != (ssize_t)sizeof(v)) cf_failf("%s: read gives %zd (%s)", what, n, n < 0 ? strerror(errno) : "");
  return v;
}

static void WriteCount(int fd, uint64_t v, const char *what) {
  if (write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
    cf_failf("%s: write %llu: %s", what, (unsigned long long)v, strerror(errno));
  }
}

static void ExpectEmpty(int fd, const char *what) {
  uint64_t v = 0;
  ssize_t n = read(fd, &v, sizeof(v));
  CF_CHECK(n < 0 && errno == EAGAIN, "%s: read gives %zd (value %llu), want EAGAIN", what, n, (unsigned long long)v);
}

static void ChildCheck(void) {
  uint64_t v = ReadCount(e1, "e1 (child)");
  CF_CHECK(v == 43, "e1: the child reads %llu, want 43 (what the parent wrote: one eventfd?)", (unsigned long long)v);
  WriteCount(e1, 42, "e1 (child)");
  CF_CHECK(fcntl(e2, F_GETFL) & O_NONBLOCK, "e2 lost O_NONBLOCK");
  for (int i = 0; i < 3; i++) {
    v = ReadCount(e2, "e2");
    CF_CHECK(v == 1, "e2: read %d gives %llu, want 1 (semaphore mode)", i, (unsigned long long)v);
  }
  ExpectEmpty(e2, "e2 after three reads");
  WriteCount(e2, 3, "e2");
}

static void ParentCheck(void) {
  uint64_t v = ReadCount(e3, "e3");
  CF_CHECK(v == 0x100000005ULL, "e3: %#llx, want 0x100000005", (unsigned long long)v);
  WriteCount(e3, 0x100000005ULL, "e3");
  ExpectEmpty(e4, "e4");
  CF_CHECK(!(fcntl(e1, F_GETFL) & O_NONBLOCK), "e1 has O_NONBLOCK");
  v = ReadCount(e1, "e1 (parent)");
  CF_CHECK(v == 42, "e1: the parent reads %llu, want 42", (unsigned long long)v);
  WriteCount(e1, 43, "e1 (parent)");

  cf_ask_child(child, "result.child");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "eventfds W");
  e1 = eventfd(42, 0);
  if (e1 < 0) cf_die("eventfd");
  child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    e2 = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
    if (e2 < 0) cf_die("eventfd");
    cf_child_ready("ready.child");
    cf_child_loop(ChildCheck, "result.child");
  }
  e3 = eventfd(0, EFD_NONBLOCK);
  e4 = eventfd(0, EFD_NONBLOCK);
  if (e3 < 0 || e4 < 0) cf_die("eventfd");
  WriteCount(e3, 0x100000005ULL, "e3");
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
