/* files_sig W: descriptors, cwd, umask, signal handlers, the signal mask and
 * an interval timer, to check that a dump records them all.
 *
 * Files live in W/files; the cwd becomes W/cwd_dir.
 *   ro.txt      O_RDONLY, offset 1234
 *   append.log  O_WRONLY|O_APPEND, 14 bytes written
 *   rw.dat      O_RDWR, FD_CLOEXEC, offset 50; plus a dup() of it (shares the
 *               offset, not the close-on-exec flag)
 *   ghost.bin   O_RDWR, 10000 known bytes, offset 4321, then unlinked
 *   /dev/null   O_WRONLY; /dev/zero O_RDONLY
 * Signals: SIGUSR2 SA_SIGINFO|SA_RESTART with mask {SIGQUIT, SIGPIPE, SIGRTMIN+2};
 * SIGHUP ignored; SIGTERM handler with no flags; SIGALRM handler for the timer.
 * SIGINT and SIGXCPU blocked. ITIMER_REAL every 1000 s (never fires in a test).
 * umask 027.
 *
 * W/expect tells the driver what `show` should report, one item a line:
 *   fd <n> <REG|CHR> <pos> <flags> <cloexec 0|1> <deleted 0|1> <size> <path>
 *   dup <fd> <fd>                  two descriptors sharing one open file
 *   cwd <path>
 *   umask <decimal>
 *   sig <signo> <dfl|ign|func> <sa_flags> <mask>   (kernel bit layout, decimal)
 *   blocked <mask>
 *   itimer <which> <interval_sec> <interval_usec>
 * flags are F_GETFL's value (O_LARGEFILE included, as the kernel keeps it).
 * On SIGUSR1 all of it is checked from inside, with fcntl/lseek/sigaction/
 * sigprocmask/getcwd/umask/getitimer, and file contents are read back.
 * If W/do-append exists at that moment, the program first removes it, seeks
 * the append.log descriptor to 0 and writes "appended\n" through it: O_APPEND
 * must put the line at the end of the file (checked: size, last and first
 * bytes, the offset now at the end); the check expects the new size thereafter.
 */
#include "prog_common.h"  /* first: it defines _GNU_SOURCE */

#include <sys/sysmacros.h>
#include <sys/time.h>

#define GHOST_SIZE 10000

enum { F_RO, F_APP, F_RW, F_DUP, F_GHOST, F_NULL, F_ZERO, NFILES };

struct file {
  const char *name; /* relative to W/files, or an absolute path */
  int fd;
  off_t pos;
  int flags;   /* F_GETFL at setup */
  int cloexec; /* F_GETFD & FD_CLOEXEC at setup */
  struct stat st;
  char path[4096];
};

static struct file files[NFILES] = {
    [F_RO] = {.name = "ro.txt"},       [F_APP] = {.name = "append.log"}, [F_RW] = {.name = "rw.dat"},
    [F_DUP] = {.name = "rw.dat"},      [F_GHOST] = {.name = "ghost.bin"}, [F_NULL] = {.name = "/dev/null"},
    [F_ZERO] = {.name = "/dev/zero"},
};

static const int kSigs[] = {SIGUSR2, SIGHUP, SIGTERM, SIGALRM};
#define NSIGS ((int)(sizeof(kSigs) / sizeof(kSigs[0])))
static struct sigaction saved_sa[NSIGS];
static char saved_cwd[4096];
static volatile sig_atomic_t alarms, usr2s, terms;
static off_t app_size = 14; /* append.log's size: 14, plus what do-append added */

static void on_usr2(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)si, (void)uc;
  usr2s++;
}
static void on_term(int sig) {
  (void)sig;
  terms++;
}
static void on_alarm(int sig) {
  (void)sig;
  alarms++;
}

static unsigned char ghost_byte(size_t i) { return (unsigned char)('A' + (i * 7 + i / 13) % 26); }
static char ro_byte(size_t i) { return (char)('a' + i % 23); }

static uint64_t kernel_mask(const sigset_t *set) {
  uint64_t m = 0;
  for (int s = 1; s <= 64; s++) {
    if (sigismember(set, s) == 1) m |= 1ULL << (s - 1);
  }
  return m;
}

static int open_at_setup(struct file *f, int flags, const char *dir) {
  if (f->name[0] == '/') {
    snprintf(f->path, sizeof(f->path), "%s", f->name);
  } else {
    snprintf(f->path, sizeof(f->path), "%s/%s", dir, f->name);
  }
  f->fd = open(f->path, flags, 0644);
  if (f->fd < 0) cf_die("open %s", f->path);
  return f->fd;
}

static void write_all(int fd, const void *buf, size_t len) {
  if (write(fd, buf, len) != (ssize_t)len) cf_die("write %zu bytes to fd %d", len, fd);
}

static void record(struct file *f) {
  f->pos = lseek(f->fd, 0, SEEK_CUR);
  f->flags = fcntl(f->fd, F_GETFL);
  f->cloexec = (fcntl(f->fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0;
  if (fstat(f->fd, &f->st) != 0) cf_die("fstat %s", f->path);
}

static void setup_files(void) {
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s/files", cf_prog.workdir);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) cf_die("mkdir %s", dir);

  char buf[GHOST_SIZE];
  int fd = open_at_setup(&files[F_RO], O_RDWR | O_CREAT | O_TRUNC, dir);
  for (size_t i = 0; i < 8192 && i < sizeof(buf); i++) buf[i] = ro_byte(i);
  write_all(fd, buf, 8192);
  close(fd);
  open_at_setup(&files[F_RO], O_RDONLY, dir);
  if (lseek(files[F_RO].fd, 1234, SEEK_SET) != 1234) cf_die("lseek ro");

  fd = open_at_setup(&files[F_APP], O_WRONLY | O_APPEND | O_CREAT | O_TRUNC, dir);
  write_all(fd, "line 1\nline 2\n", 14);

  fd = open_at_setup(&files[F_RW], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, dir);
  for (size_t i = 0; i < 100; i++) buf[i] = (char)i;
  write_all(fd, buf, 100);
  if (lseek(fd, 50, SEEK_SET) != 50) cf_die("lseek rw");
  files[F_DUP].fd = dup(fd);
  if (files[F_DUP].fd < 0) cf_die("dup");
  snprintf(files[F_DUP].path, sizeof(files[F_DUP].path), "%s", files[F_RW].path);

  fd = open_at_setup(&files[F_GHOST], O_RDWR | O_CREAT | O_TRUNC, dir);
  for (size_t i = 0; i < GHOST_SIZE; i++) buf[i] = (char)ghost_byte(i);
  write_all(fd, buf, GHOST_SIZE);
  if (lseek(fd, 4321, SEEK_SET) != 4321) cf_die("lseek ghost");
  if (unlink(files[F_GHOST].path) != 0) cf_die("unlink ghost");

  open_at_setup(&files[F_NULL], O_WRONLY, dir);
  open_at_setup(&files[F_ZERO], O_RDONLY, dir);
  for (int i = 0; i < NFILES; i++) record(&files[i]);
}

static void setup_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_usr2;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGQUIT);
  sigaddset(&sa.sa_mask, SIGPIPE);
  sigaddset(&sa.sa_mask, SIGRTMIN + 2);
  if (sigaction(SIGUSR2, &sa, NULL) != 0) cf_die("sigaction SIGUSR2");

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_IGN;
  if (sigaction(SIGHUP, &sa, NULL) != 0) cf_die("sigaction SIGHUP");

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_term; /* no flags at all */
  if (sigaction(SIGTERM, &sa, NULL) != 0) cf_die("sigaction SIGTERM");

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGALRM, &sa, NULL) != 0) cf_die("sigaction SIGALRM");

  for (int i = 0; i < NSIGS; i++) sigaction(kSigs[i], NULL, &saved_sa[i]);

  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGXCPU);
  if (sigprocmask(SIG_BLOCK, &block, NULL) != 0) cf_die("sigprocmask");

  struct itimerval it = {{1000, 0}, {1000, 0}};
  if (setitimer(ITIMER_REAL, &it, NULL) != 0) cf_die("setitimer");
}

static const char *handler_kind(const struct sigaction *sa) {
  if (!(sa->sa_flags & SA_SIGINFO) && sa->sa_handler == SIG_DFL) return "dfl";
  if (!(sa->sa_flags & SA_SIGINFO) && sa->sa_handler == SIG_IGN) return "ign";
  return "func";
}

static void write_expect(void) {
  static char text[16384];
  size_t off = 0;
#define ADD(...) off += (size_t)snprintf(text + off, sizeof(text) - off, __VA_ARGS__)
  ADD("pid %d\n", (int)getpid());
  for (int i = 0; i < NFILES; i++) {
    const struct file *f = &files[i];
    const int chr = S_ISCHR(f->st.st_mode);
    ADD("fd %d %s %lld %d %d %d %lld %s\n", f->fd, chr ? "CHR" : "REG", (long long)f->pos, f->flags, f->cloexec,
        i == F_GHOST ? 1 : 0, (long long)f->st.st_size, f->path);
  }
  ADD("dup %d %d\n", files[F_RW].fd, files[F_DUP].fd);
  ADD("cwd %s\n", saved_cwd);
  ADD("umask %d\n", 027);
  for (int i = 0; i < NSIGS; i++) {
    const struct sigaction *sa = &saved_sa[i];
    ADD("sig %d %s %llu %llu\n", kSigs[i], handler_kind(sa), (unsigned long long)(unsigned)sa->sa_flags,
        (unsigned long long)kernel_mask(&sa->sa_mask));
  }
  sigset_t cur;
  sigprocmask(SIG_SETMASK, NULL, &cur);
  ADD("blocked %llu\n", (unsigned long long)kernel_mask(&cur));
  ADD("itimer %d %d %d\n", ITIMER_REAL, 1000, 0);
#undef ADD
  if (cf_write_file("expect", text) != 0) cf_die("write expect");
}

static void check_files(void) {
  for (int i = 0; i < NFILES; i++) {
    const struct file *f = &files[i];
    struct stat st;
    if (fstat(f->fd, &st) != 0) {
      cf_failf("fd %d (%s): fstat: %s", f->fd, f->name, strerror(errno));
      continue;
    }
    /* A deleted file can only come back as a new inode (a restore recreates
     * it): for it the contents and link count are checked below. */
    CF_CHECK((st.st_ino == f->st.st_ino || f == &files[F_GHOST]) && st.st_dev == f->st.st_dev,
             "fd %d (%s): another file", f->fd, f->name);
    CF_CHECK(st.st_mode == f->st.st_mode, "fd %d (%s): mode %o, want %o", f->fd, f->name, (unsigned)st.st_mode,
             (unsigned)f->st.st_mode);
    CF_CHECK(fcntl(f->fd, F_GETFL) == f->flags, "fd %d (%s): flags %#x, want %#x", f->fd, f->name,
             fcntl(f->fd, F_GETFL), f->flags);
    const int ce = (fcntl(f->fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0;
    CF_CHECK(ce == f->cloexec, "fd %d (%s): cloexec %d, want %d", f->fd, f->name, ce, f->cloexec);
    if (S_ISREG(st.st_mode)) {
      const off_t pos = lseek(f->fd, 0, SEEK_CUR);
      CF_CHECK(pos == f->pos, "fd %d (%s): offset %lld, want %lld", f->fd, f->name, (long long)pos,
               (long long)f->pos);
    }
  }
  char buf[GHOST_SIZE];
  /* Contents of the read-only file around its offset. */
  ssize_t n = pread(files[F_RO].fd, buf, 100, 1234);
  CF_CHECK(n == 100, "ro.txt: pread %zd", n);
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] != ro_byte((size_t)(1234 + i))) {
      cf_failf("ro.txt: byte %zd differs", 1234 + i);
      break;
    }
  }
  /* The appended file: 14 bytes (or more, see do-append), name still there. */
  struct stat st;
  CF_CHECK(stat(files[F_APP].path, &st) == 0 && st.st_size == app_size, "append.log: not %lld bytes",
           (long long)app_size);
  /* The dup shares the offset with rw.dat: move one, see the other move. */
  lseek(files[F_RW].fd, 3, SEEK_CUR);
  const off_t moved = lseek(files[F_DUP].fd, 0, SEEK_CUR);
  CF_CHECK(moved == files[F_RW].pos + 3, "dup of rw.dat does not share the offset (%lld)", (long long)moved);
  lseek(files[F_RW].fd, files[F_RW].pos, SEEK_SET);
  /* The unlinked file: still unlinked, same size, same contents. */
  if (fstat(files[F_GHOST].fd, &st) == 0) {
    CF_CHECK(st.st_nlink == 0, "ghost.bin: nlink %lu", (unsigned long)st.st_nlink);
    CF_CHECK(st.st_size == GHOST_SIZE, "ghost.bin: size %lld", (long long)st.st_size);
  }
  n = pread(files[F_GHOST].fd, buf, GHOST_SIZE, 0);
  CF_CHECK(n == GHOST_SIZE, "ghost.bin: pread %zd", n);
  for (ssize_t i = 0; i < n; i++) {
    if ((unsigned char)buf[i] != ghost_byte((size_t)i)) {
      cf_failf("ghost.bin: byte %zd differs", i);
      break;
    }
  }
  /* Devices. */
  CF_CHECK(files[F_NULL].st.st_rdev == makedev(1, 3), "/dev/null: rdev");
  CF_CHECK(files[F_ZERO].st.st_rdev == makedev(1, 5), "/dev/zero: rdev");
  memset(buf, 1, 64);
  n = read(files[F_ZERO].fd, buf, 64);
  CF_CHECK(n == 64, "/dev/zero: read %zd", n);
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] != 0) {
      cf_failf("/dev/zero: byte %zd is %d", i, buf[i]);
      break;
    }
  }
  CF_CHECK(write(files[F_NULL].fd, "x", 1) == 1, "/dev/null: write failed");
}

static void check_process(void) {
  char cwd[4096];
  CF_CHECK(getcwd(cwd, sizeof(cwd)) && strcmp(cwd, saved_cwd) == 0, "cwd is '%s', want '%s'", cwd, saved_cwd);
  const mode_t um = umask(0);
  umask(um);
  CF_CHECK(um == 027, "umask %03o, want 027", (unsigned)um);

  for (int i = 0; i < NSIGS; i++) {
    struct sigaction sa;
    sigaction(kSigs[i], NULL, &sa);
    const struct sigaction *want = &saved_sa[i];
    CF_CHECK(sa.sa_handler == want->sa_handler, "signal %d: handler %p, want %p", kSigs[i], (void *)sa.sa_handler,
             (void *)want->sa_handler);
    CF_CHECK(sa.sa_flags == want->sa_flags, "signal %d: flags %#x, want %#x", kSigs[i], sa.sa_flags,
             want->sa_flags);
    CF_CHECK(kernel_mask(&sa.sa_mask) == kernel_mask(&want->sa_mask), "signal %d: mask %#llx, want %#llx", kSigs[i],
             (unsigned long long)kernel_mask(&sa.sa_mask), (unsigned long long)kernel_mask(&want->sa_mask));
  }
  sigset_t cur;
  sigprocmask(SIG_SETMASK, NULL, &cur);
  CF_CHECK(sigismember(&cur, SIGINT) == 1, "SIGINT not blocked");
  CF_CHECK(sigismember(&cur, SIGXCPU) == 1, "SIGXCPU not blocked");
  CF_CHECK(sigismember(&cur, SIGUSR1) == 0, "SIGUSR1 blocked");

  struct itimerval it;
  getitimer(ITIMER_REAL, &it);
  CF_CHECK(it.it_interval.tv_sec == 1000 && it.it_interval.tv_usec == 0, "itimer interval %lld.%06lld",
           (long long)it.it_interval.tv_sec, (long long)it.it_interval.tv_usec);
  CF_CHECK(it.it_value.tv_sec > 0 || it.it_value.tv_usec > 0, "itimer disarmed");
  CF_CHECK(it.it_value.tv_sec <= 1000, "itimer value %lld s", (long long)it.it_value.tv_sec);
  CF_CHECK(alarms == 0, "SIGALRM fired %d times", (int)alarms);
}

/* W/do-append: one line written through the O_APPEND descriptor. */
static void maybe_append(void) {
  char req[4200];
  snprintf(req, sizeof(req), "%s/do-append", cf_prog.workdir);
  if (unlink(req) != 0) return;
  static const char kLine[] = "appended\n";
  const int fd = files[F_APP].fd;
  if (lseek(fd, 0, SEEK_SET) != 0) cf_failf("append.log: lseek to 0: %s", strerror(errno));
  if (write(fd, kLine, sizeof(kLine) - 1) != (ssize_t)(sizeof(kLine) - 1)) {
    cf_failf("append.log: write: %s", strerror(errno));
    return;
  }
  const off_t want = app_size + (off_t)sizeof(kLine) - 1;
  const off_t pos = lseek(fd, 0, SEEK_CUR);
  CF_CHECK(pos == want, "append.log: offset %lld after an O_APPEND write, want %lld", (long long)pos,
           (long long)want);
  char buf[64] = {0};
  int rfd = open(files[F_APP].path, O_RDONLY | O_CLOEXEC);
  if (rfd < 0) {
    cf_failf("append.log: open: %s", strerror(errno));
  } else {
    CF_CHECK(pread(rfd, buf, 14, 0) == 14 && memcmp(buf, "line 1\nline 2\n", 14) == 0,
             "append.log: the first 14 bytes were overwritten: '%.14s'", buf);
    memset(buf, 0, sizeof(buf));
    CF_CHECK(pread(rfd, buf, sizeof(kLine) - 1, app_size) == (ssize_t)(sizeof(kLine) - 1) &&
                 memcmp(buf, kLine, sizeof(kLine) - 1) == 0,
             "append.log: '%s' not at offset %lld", kLine, (long long)app_size);
    close(rfd);
  }
  app_size = want;
  files[F_APP].pos = want;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "files_sig W");
  setup_files();
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s/cwd_dir", cf_prog.workdir);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) cf_die("mkdir %s", dir);
  if (chdir(dir) != 0) cf_die("chdir %s", dir);
  if (!getcwd(saved_cwd, sizeof(saved_cwd))) cf_die("getcwd");
  setup_signals();
  umask(027);
  write_expect();
  cf_ready();

  for (;;) {
    if (cf_take_usr1()) {
      maybe_append();
      check_files();
      check_process();
      cf_report();
    }
    cf_nap(20);
  }
}
