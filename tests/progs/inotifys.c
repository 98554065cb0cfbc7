/* inotifys W: inotify instances with watches whose numbers have gaps.
 *
 *   i1  non-blocking; watches W/dir (IN_CREATE) as wd 2 and W/dir/file
 *       (IN_MODIFY) as wd 4 (wd 1 and 3 were added and removed at setup);
 *       i1d = dup(i1)
 *   i2  blocking, close-on-exec; watches W/dir (IN_DELETE) as wd 1
 *
 * On SIGUSR1 it appends to W/dir/file, creates and removes W/dir/new, then
 * wants from i1d exactly: IN_MODIFY on wd 4, IN_CREATE "new" on wd 2; from
 * i2 exactly IN_DELETE "new" on wd 1. No event is left queued afterwards.
 */
#include "prog_common.h"

#include <sys/inotify.h>
#include <sys/syscall.h>

static int i1, i1d, i2, wd_dir, wd_file, wd2;
static char dir[4200], file[4300], fresh[4300];

static int Watch(int fd, const char *path, uint32_t mask) {
  int wd = inotify_add_watch(fd, path, mask);
  if (wd < 0) cf_die("inotify_add_watch %s", path);
  return wd;
}

static void Drain(int fd) {
  char buf[4096];
  while (read(fd, buf, sizeof(buf)) > 0) {
  }
}

/* Reads what is queued on |fd| (non-blocking) into "wd:mask:name;" text. */
static void Events(int fd, char *out, size_t len) {
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  size_t off = 0;
  out[0] = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *e = (struct inotify_event *)p;
      off += (size_t)snprintf(out + off, len - off, "%d:%x:%s;", e->wd, e->mask, e->len ? e->name : "");
      if (off >= len) return;
      p += sizeof(*e) + e->len;
    }
  }
}

static int WatchLines(int fd) {
  char path[64], buf[4096];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
  int f = open(path, O_RDONLY);
  if (f < 0) return -1;
  ssize_t n = read(f, buf, sizeof(buf) - 1);
  close(f);
  buf[n > 0 ? n : 0] = 0;
  int count = 0;
  for (char *p = buf; (p = strstr(p, "inotify wd:")); p++) count++;
  return count;
}

static void Check(void) {
  CF_CHECK(fcntl(i1, F_GETFL) & O_NONBLOCK, "i1 lost O_NONBLOCK");
  CF_CHECK(!(fcntl(i2, F_GETFL) & O_NONBLOCK) && fcntl(i2, F_GETFD) == FD_CLOEXEC, "i2's flags changed");
  CF_CHECK(syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, i1, i1d) == 0, "i1 and i1d are two files");
  CF_CHECK(WatchLines(i1) == 2 && WatchLines(i2) == 1, "watch counts %d and %d, want 2 and 1", WatchLines(i1),
           WatchLines(i2));
  int fd = open(file, O_WRONLY | O_APPEND);
  CF_CHECK(fd >= 0 && write(fd, "x", 1) == 1, "append to %s", file);
  if (fd >= 0) close(fd);
  fd = open(fresh, O_WRONLY | O_CREAT | O_EXCL, 0644);
  CF_CHECK(fd >= 0, "create %s: %s", fresh, strerror(errno));
  if (fd >= 0) close(fd);
  unlink(fresh);

  char got[1024], want[256];
  Events(i1d, got, sizeof(got));
  snprintf(want, sizeof(want), "%d:%x:;%d:%x:new;", wd_file, IN_MODIFY, wd_dir, IN_CREATE);
  CF_CHECK(strcmp(got, want) == 0, "i1 events '%s', want '%s'", got, want);
  int fl = fcntl(i2, F_GETFL);
  fcntl(i2, F_SETFL, fl | O_NONBLOCK);
  Events(i2, got, sizeof(got));
  fcntl(i2, F_SETFL, fl);
  snprintf(want, sizeof(want), "%d:%x:new;", wd2, IN_DELETE);
  CF_CHECK(strcmp(got, want) == 0, "i2 events '%s', want '%s'", got, want);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "inotifys W");
  char dummy[4300];
  snprintf(dir, sizeof(dir), "%s/dir", cf_prog.workdir);
  snprintf(file, sizeof(file), "%s/file", dir);
  snprintf(fresh, sizeof(fresh), "%s/new", dir);
  snprintf(dummy, sizeof(dummy), "%s/dummy", cf_prog.workdir);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) cf_die("mkdir %s", dir);
  int fd = open(file, O_WRONLY | O_CREAT, 0644);
  if (fd < 0) cf_die("create %s", file);
  close(fd);
  fd = open(dummy, O_WRONLY | O_CREAT, 0644);
  if (fd < 0) cf_die("create %s", dummy);
  close(fd);

  i1 = inotify_init1(IN_NONBLOCK);
  i2 = inotify_init1(IN_CLOEXEC);
  if (i1 < 0 || i2 < 0) cf_die("inotify_init1");
  inotify_rm_watch(i1, Watch(i1, dummy, IN_OPEN));
  wd_dir = Watch(i1, dir, IN_CREATE);
  inotify_rm_watch(i1, Watch(i1, dummy, IN_OPEN));
  wd_file = Watch(i1, file, IN_MODIFY);
  wd2 = Watch(i2, dir, IN_DELETE);
  if (wd_dir != 2 || wd_file != 4 || wd2 != 1) cf_die("watch descriptors %d %d %d", wd_dir, wd_file, wd2);
  Drain(i1);
  i1d = dup(i1);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
