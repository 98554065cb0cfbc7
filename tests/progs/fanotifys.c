/* fanotifys W: a fanotify group with an inode mark and a mount mark.
 *
 *   fa   fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY)
 *        inode mark on W/watched: FAN_OPEN | FAN_CLOSE_WRITE
 *        mount mark on the mount holding W: FAN_OPEN, ignored mask
 *        FAN_MODIFY with FAN_MARK_IGNORED_SURV_MODIFY
 *
 * On SIGUSR1: fdinfo shows the same group flags and the same marks (kind,
 * flags, masks; not mount ids and devices), and opening W/watched queues
 * a FAN_OPEN event from this process.
 */
#include "prog_common.h"

#include <sys/fanotify.h>

static int fa;
static char watched[4200];
static char before[4096];

/* fa's fdinfo lines of the group and its marks, without device and mount
 * numbers (they may change), sorted by the kernel's order. */
static void Marks(char *out, size_t len) {
  char path[64], line[512];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fa);
  out[0] = 0;
  FILE *f = fopen(path, "r");
  if (!f) return;
  while (fgets(line, sizeof(line), f)) {
    unsigned a, b, c, d;
    char one[128];
    one[0] = 0;
    if (sscanf(line, "fanotify flags:%x event-flags:%x", &a, &b) == 2) {
      snprintf(one, sizeof(one), "group %x %x;", a, b);
    } else if (sscanf(line, "fanotify mnt_id:%*x mflags:%x mask:%x ignored_mask:%x", &a, &b, &c) == 3) {
      snprintf(one, sizeof(one), "mount %x %x %x;", a, b, c);
    } else if (sscanf(line, "fanotify ino:%x sdev:%*x mflags:%x mask:%x ignored_mask:%x", &d, &a, &b, &c) == 4) {
      snprintf(one, sizeof(one), "inode %x %x %x %x;", d, a, b, c);
    }
    strncat(out, one, len - strlen(out) - 1);
  }
  fclose(f);
}

/* Reads the queued events (closing the descriptor each one carries);
 * returns whether one was a FAN_OPEN by this process. */
static int Drain(void) {
  char buf[8192];
  int opened = 0;
  ssize_t n;
  while ((n = read(fa, buf, sizeof(buf))) > 0) {
    for (ssize_t off = 0; off < n;) {
      struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)(buf + off);
      if (m->event_len < sizeof(*m)) break;
      if ((m->mask & FAN_OPEN) && m->pid == getpid()) opened = 1;
      if (m->fd >= 0) close(m->fd);
      off += m->event_len;
    }
  }
  return opened;
}

static void Check(void) {
  char now[4096];
  Marks(now, sizeof(now));
  CF_CHECK(strcmp(now, before) == 0, "fanotify fdinfo is '%s', was '%s'", now, before);
  Drain();
  int fd = open(watched, O_RDONLY);
  CF_CHECK(fd >= 0, "open %s: %s", watched, strerror(errno));
  if (fd >= 0) close(fd);
  CF_CHECK(Drain(), "no FAN_OPEN event after opening %s", watched);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "fanotifys W");
  snprintf(watched, sizeof(watched), "%s/watched", cf_prog.workdir);
  int fd = open(watched, O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) cf_die("create %s", watched);
  close(fd);
  fa = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
  if (fa < 0) cf_die("fanotify_init");
  if (fanotify_mark(fa, FAN_MARK_ADD, FAN_OPEN | FAN_CLOSE_WRITE, AT_FDCWD, watched) != 0) cf_die("mark");
  if (fanotify_mark(fa, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN, AT_FDCWD, cf_prog.workdir) != 0) cf_die("mark");
  if (fanotify_mark(fa, FAN_MARK_ADD | FAN_MARK_MOUNT | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY,
                    FAN_MODIFY, AT_FDCWD, cf_prog.workdir) != 0) {
    cf_die("mark");
  }
  Marks(before, sizeof(before));
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
