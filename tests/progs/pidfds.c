/* pidfds W: pidfds of live and of dead processes.
 *
 * The parent P forks D1 (which only waits), then a child C, which forks a
 * grandchild G and opens its own pidfd c1 of D1. P then holds:
 *   pc   pidfd of C
 *   pg   pidfd of G, PIDFD_NONBLOCK
 *   ps   pidfd of itself
 *   d1a, d1b  two pidfds (two open file descriptions) of D1
 *   d2   pidfd of D2, another child
 * and kills and reaps D1 and D2, so those refer to processes gone.
 *
 * On SIGUSR1: pc, pg, ps name their processes in fdinfo ("Pid:"), keep their
 * flags and can signal them (signal 0); d1a, d1b and d2 say "Pid: -1",
 * signals to them fail with ESRCH, d1a and d1b share an inode, d2 has
 * another one; C finds its c1 dead too, with the inode of d1a (it writes it
 * to W/ino.child).
 */
#include "prog_common.h"

#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

static int pc, pg, ps, d1a, d1b, d2, c1 = -1;
static pid_t child, gchild;

static int PidfdOpen(pid_t pid, unsigned flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }
static int PidfdSignal(int fd, int sig) { return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0); }

/* The "Pid:" and "flags:" lines of fd |fd|'s fdinfo. */
static void FdInfo(int fd, int *pid, unsigned *flags) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
  *pid = 0;
  *flags = 0;
  FILE *f = fopen(path, "r");
  if (!f) {
    cf_failf("open %s: %s", path, strerror(errno));
    return;
  }
  while (fgets(line, sizeof(line), f)) {
    sscanf(line, "Pid: %d", pid);
    sscanf(line, "flags: %o", flags);
  }
  fclose(f);
}

static unsigned long Inode(int fd) {
  struct stat sb;
  if (fstat(fd, &sb) != 0) return 0;
  return (unsigned long)sb.st_ino;
}

static void ExpectLive(int fd, pid_t want, unsigned want_flags, const char *what) {
  int pid;
  unsigned flags;
  FdInfo(fd, &pid, &flags);
  CF_CHECK(pid == want, "%s: fdinfo Pid %d, want %d", what, pid, (int)want);
  CF_CHECK(flags == want_flags, "%s: flags 0%o, want 0%o", what, flags, want_flags);
  CF_CHECK(PidfdSignal(fd, 0) == 0, "%s: pidfd_send_signal: %s", what, strerror(errno));
}

static void ExpectDead(int fd, const char *what) {
  int pid;
  unsigned flags;
  FdInfo(fd, &pid, &flags);
  CF_CHECK(pid == -1, "%s: fdinfo Pid %d, want -1 (a process gone)", what, pid);
  CF_CHECK(PidfdSignal(fd, 0) != 0 && errno == ESRCH, "%s: a signal to it does not fail with ESRCH", what);
}

static void ChildCheck(void) {
  ExpectDead(c1, "c1 (child's pidfd of D1)");
  char buf[32];
  snprintf(buf, sizeof(buf), "%lu\n", Inode(c1));
  cf_write_file("ino.child", buf);
}

static void ParentCheck(void) {
  ExpectLive(pc, child, O_RDWR | O_CLOEXEC, "pc");
  ExpectLive(pg, gchild, O_RDWR | O_CLOEXEC | O_NONBLOCK, "pg");
  ExpectLive(ps, getpid(), O_RDWR | O_CLOEXEC, "ps");
  ExpectDead(d1a, "d1a");
  ExpectDead(d1b, "d1b");
  ExpectDead(d2, "d2");
  CF_CHECK(Inode(d1a) == Inode(d1b), "d1a and d1b: inodes %lu and %lu, want one", Inode(d1a), Inode(d1b));
  CF_CHECK(Inode(d1a) != Inode(d2), "d1a and d2 share inode %lu", Inode(d2));
  CF_CHECK(Inode(d1a) != Inode(pc) && Inode(pc) != Inode(pg), "pidfds of different processes share an inode");
  cf_ask_child(child, "result.child");
  char buf[64];
  if (cf_wait_file("ino.child", buf, sizeof(buf)) == 0) {
    CF_CHECK(strtoul(buf, NULL, 10) == Inode(d1a), "the child's pidfd of D1 has inode %s, d1a %lu", buf, Inode(d1a));
  }
}

static pid_t Waiter(void) {
  pid_t p = fork();
  if (p < 0) cf_die("fork");
  if (p == 0) {
    for (;;) pause();
  }
  return p;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "pidfds W");
  pid_t dead1 = Waiter();
  int ready[2];
  if (pipe(ready) != 0) cf_die("pipe");
  child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    close(ready[0]);
    gchild = Waiter();
    c1 = PidfdOpen(dead1, 0);
    if (c1 < 0) cf_die("pidfd_open in the child");
    if (write(ready[1], &gchild, sizeof(gchild)) != sizeof(gchild)) cf_die("write");
    close(ready[1]);
    cf_child_ready("ready.child");
    cf_child_loop(ChildCheck, "result.child");
  }
  close(ready[1]);
  if (read(ready[0], &gchild, sizeof(gchild)) != sizeof(gchild)) cf_die("the child did not start");
  close(ready[0]);
  pid_t dead2 = Waiter();
  pc = PidfdOpen(child, 0);
  pg = PidfdOpen(gchild, PIDFD_NONBLOCK);
  ps = PidfdOpen(getpid(), 0);
  d1a = PidfdOpen(dead1, 0);
  d1b = PidfdOpen(dead1, 0);
  d2 = PidfdOpen(dead2, 0);
  if (pc < 0 || pg < 0 || ps < 0 || d1a < 0 || d1b < 0 || d2 < 0) cf_die("pidfd_open");
  kill(dead1, SIGKILL);
  kill(dead2, SIGKILL);
  if (waitpid(dead1, NULL, 0) != dead1 || waitpid(dead2, NULL, 0) != dead2) cf_die("waitpid");
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
