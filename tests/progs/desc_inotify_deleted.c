/* An inotify watch on a file that was deleted while the program holds it
 * open (zdtm's inotify00):
 *   W/d           watched as wd 1 (IN_CREATE | IN_DELETE)
 *   W/d/gone      opened read-write at fd 30, watched as wd 2
 *                 (IN_CLOSE_WRITE | IN_MODIFY), then unlinked
 *   W/d/after     watched as wd 3 (IN_OPEN), after the deleted one
 * Check: each watch has its number (fdinfo); a write to fd 30 gives
 * IN_MODIFY on wd 2; the file keeps its contents; a file created in W/d
 * gives IN_CREATE on wd 1 and an open of W/d/after IN_OPEN on wd 3. */
#include "prog_common.h"

#include <sys/inotify.h>

enum { kIn = 20, kGone = 30 };

static char dir[4200], gone[4300], after[4300], fresh[4300];

static int watch(const char *path, uint32_t mask) {
  int wd = inotify_add_watch(kIn, path, mask);
  if (wd < 0) cf_die("inotify_add_watch %s", path);
  return wd;
}

/* The events queued now, as a mask per wd 1..3. */
static void events(uint32_t got[4]) {
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  memset(got, 0, 4 * sizeof(got[0]));
  for (;;) {
    ssize_t n = read(kIn, buf, sizeof(buf));
    if (n <= 0) break;
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *e = (struct inotify_event *)p;
      if (e->wd >= 1 && e->wd <= 3) got[e->wd] |= e->mask;
      p += sizeof(*e) + e->len;
    }
  }
}

/* Whether fdinfo lists watch |wd|. */
static int has_wd(int wd) {
  char path[64], line[512], want[32];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", kIn);
  snprintf(want, sizeof(want), "inotify wd:%x ", wd);
  FILE *f = fopen(path, "r");
  int found = 0;
  if (!f) return 0;
  while (fgets(line, sizeof(line), f)) found |= strncmp(line, want, strlen(want)) == 0;
  fclose(f);
  return found;
}

static void check(void) {
  uint32_t got[4];
  events(got);  /* whatever the restore queued */
  for (int wd = 1; wd <= 3; wd++) CF_CHECK(has_wd(wd), "watch %d is gone", wd);
  char buf[16] = {0};
  CF_CHECK(pread(kGone, buf, 5, 0) == 5 && memcmp(buf, "hello", 5) == 0, "the deleted file lost its contents");
  CF_CHECK(pwrite(kGone, "!", 1, 5) == 1, "write to the deleted file");
  int fd = open(fresh, O_CREAT | O_WRONLY, 0644);
  if (fd >= 0) close(fd);
  unlink(fresh);
  fd = open(after, O_RDONLY);
  if (fd >= 0) close(fd);
  events(got);
  CF_CHECK(got[2] & IN_MODIFY, "no IN_MODIFY on the deleted file's watch (events %#x)", got[2]);
  CF_CHECK(got[1] & IN_CREATE, "no IN_CREATE on the directory's watch (events %#x)", got[1]);
  CF_CHECK(got[3] & IN_OPEN, "no IN_OPEN on the last watch (events %#x)", got[3]);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "desc_inotify_deleted W");
  snprintf(dir, sizeof(dir), "%s/d", cf_prog.workdir);
  snprintf(gone, sizeof(gone), "%s/gone", dir);
  snprintf(after, sizeof(after), "%s/after", dir);
  snprintf(fresh, sizeof(fresh), "%s/fresh", dir);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) cf_die("mkdir");
  int in = inotify_init1(IN_NONBLOCK);
  if (in < 0 || dup2(in, kIn) < 0) cf_die("inotify_init1");
  close(in);
  int fd = open(gone, O_CREAT | O_RDWR | O_TRUNC, 0644);
  if (fd < 0 || dup2(fd, kGone) < 0 || write(kGone, "hello", 5) != 5) cf_die("open %s", gone);
  close(fd);
  fd = open(after, O_CREAT | O_WRONLY, 0644);
  if (fd < 0) cf_die("open %s", after);
  close(fd);
  if (watch(dir, IN_CREATE | IN_DELETE) != 1 || watch(gone, IN_CLOSE_WRITE | IN_MODIFY) != 2 ||
      watch(after, IN_OPEN) != 3) {
    cf_die("unexpected watch numbers");
  }
  if (unlink(gone) != 0) cf_die("unlink");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
