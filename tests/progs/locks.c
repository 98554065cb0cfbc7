/* locks W: a process tree holding file locks of every advisory kind, which
 * must hold them again after a restore (dump with --file-locks).
 *
 * Set up before W/ready, on files in W:
 *   flock-ex     flock(LOCK_EX) through fd A;
 *   posix        POSIX locks through fd B: read on bytes 0..9, write on
 *                100..199;
 *   ofd          OFD locks through fd C: write on 10..19, read from 50 to
 *                the end of the file;
 *   flock-sh     flock(LOCK_SH) through fd D, an open file description
 *                shared with a child process (forked after the lock), which
 *                idles.
 * On SIGUSR1 the check: a checker process forked for it opens each file
 * anew (descriptions of its own) and probes: flock-ex is locked against
 * LOCK_SH and LOCK_EX; F_GETLK on posix reports our pid's read and write
 * locks on exactly those ranges and nothing on 10..99; F_OFD_GETLK on ofd
 * reports the OFD locks (pid -1) on their ranges; flock-sh takes LOCK_SH
 * but not LOCK_EX. The checker writes what failed, if anything, to a pipe.
 */
#include "prog_common.h"

#include <sys/file.h>
#include <sys/wait.h>

static char path_ex[4200], path_posix[4200], path_ofd[4200], path_sh[4200];

static int open_file(const char *path) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) cf_die("open %s", path);
  if (ftruncate(fd, 4096) != 0) cf_die("ftruncate %s", path);
  return fd;
}

static int set_lock(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  return fcntl(fd, cmd, &fl);
}

/* The lock F_GETLK / F_OFD_GETLK reports against a |type| request. */
static struct flock probe(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  if (fcntl(fd, cmd, &fl) != 0) fl.l_type = -1;
  return fl;
}

static char msg[512];
#define EXPECT(cond, ...)                                 \
  do {                                                     \
    if (!(cond) && !msg[0]) snprintf(msg, sizeof(msg), __VA_ARGS__); \
  } while (0)

/* In the checker process: probes every lock, |owner| the pid of the POSIX owner. */
static void probe_all(pid_t owner) {
  int a = open(path_ex, O_RDWR | O_CLOEXEC);
  EXPECT(a >= 0 && flock(a, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK, "flock-ex: LOCK_SH was granted");
  EXPECT(a >= 0 && flock(a, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK, "flock-ex: LOCK_EX was granted");

  int b = open(path_posix, O_RDWR | O_CLOEXEC);
  struct flock l = probe(b, F_GETLK, F_WRLCK, 0, 10);
  EXPECT(l.l_type == F_RDLCK && l.l_pid == owner && l.l_start == 0 && l.l_len == 10,
         "posix 0..9: type %d pid %d start %ld len %ld, want a read lock of %d", l.l_type, l.l_pid, (long)l.l_start,
         (long)l.l_len, owner);
  l = probe(b, F_GETLK, F_RDLCK, 100, 100);
  EXPECT(l.l_type == F_WRLCK && l.l_pid == owner && l.l_start == 100 && l.l_len == 100,
         "posix 100..199: type %d pid %d start %ld len %ld, want a write lock of %d", l.l_type, l.l_pid,
         (long)l.l_start, (long)l.l_len, owner);
  l = probe(b, F_GETLK, F_WRLCK, 10, 90);
  EXPECT(l.l_type == F_UNLCK, "posix 10..99: locked (type %d pid %d)", l.l_type, l.l_pid);

  int c = open(path_ofd, O_RDWR | O_CLOEXEC);
  l = probe(c, F_OFD_GETLK, F_RDLCK, 10, 10);
  EXPECT(l.l_type == F_WRLCK && l.l_pid == -1 && l.l_start == 10 && l.l_len == 10,
         "ofd 10..19: type %d pid %d start %ld len %ld, want an OFD write lock", l.l_type, l.l_pid, (long)l.l_start,
         (long)l.l_len);
  l = probe(c, F_OFD_GETLK, F_WRLCK, 1000, 10);
  EXPECT(l.l_type == F_RDLCK && l.l_pid == -1 && l.l_start == 50 && l.l_len == 0,
         "ofd 50..EOF: type %d pid %d start %ld len %ld, want an OFD read lock to EOF", l.l_type, l.l_pid,
         (long)l.l_start, (long)l.l_len);
  l = probe(c, F_OFD_GETLK, F_WRLCK, 20, 30);
  EXPECT(l.l_type == F_UNLCK, "ofd 20..49: locked (type %d)", l.l_type);

  int d = open(path_sh, O_RDWR | O_CLOEXEC);
  EXPECT(d >= 0 && flock(d, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK, "flock-sh: LOCK_EX was granted");
  EXPECT(d >= 0 && flock(d, LOCK_SH | LOCK_NB) == 0, "flock-sh: LOCK_SH refused: %s", strerror(errno));
}

static void check(void) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    cf_failf("pipe: %s", strerror(errno));
    return;
  }
  const pid_t owner = getpid();
  pid_t c = fork();
  if (c == 0) {
    msg[0] = 0;
    probe_all(owner);
    if (msg[0]) (void)!write(p[1], msg, strlen(msg));
    _exit(0);
  }
  close(p[1]);
  char got[512];
  ssize_t n = c > 0 ? read(p[0], got, sizeof(got) - 1) : -1;
  close(p[0]);
  int st = 0;
  if (c > 0) waitpid(c, &st, 0);
  CF_CHECK(c > 0, "fork the checker: %s", strerror(errno));
  CF_CHECK(c <= 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 0), "the checker died (status %#x)", st);
  if (n > 0) {
    got[n] = 0;
    cf_failf("%s", got);
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "locks W");
  snprintf(path_ex, sizeof(path_ex), "%s/flock-ex", cf_prog.workdir);
  snprintf(path_posix, sizeof(path_posix), "%s/posix", cf_prog.workdir);
  snprintf(path_ofd, sizeof(path_ofd), "%s/ofd", cf_prog.workdir);
  snprintf(path_sh, sizeof(path_sh), "%s/flock-sh", cf_prog.workdir);
  int a = open_file(path_ex), b = open_file(path_posix), c = open_file(path_ofd), d = open_file(path_sh);
  if (flock(a, LOCK_EX | LOCK_NB) != 0) cf_die("flock LOCK_EX");
  if (set_lock(b, F_SETLK, F_RDLCK, 0, 10) != 0 || set_lock(b, F_SETLK, F_WRLCK, 100, 100) != 0) cf_die("F_SETLK");
  if (set_lock(c, F_OFD_SETLK, F_WRLCK, 10, 10) != 0 || set_lock(c, F_OFD_SETLK, F_RDLCK, 50, 0) != 0) {
    cf_die("F_OFD_SETLK");
  }
  if (flock(d, LOCK_SH | LOCK_NB) != 0) cf_die("flock LOCK_SH");
  pid_t child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    /* Holds D's description (and the others') with us; only idles. */
    for (;;) cf_nap(50);
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
