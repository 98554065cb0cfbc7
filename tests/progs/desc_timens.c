/* A process that made a time namespace for its children
 * (unshare(CLONE_NEWTIME)), as zdtm's timens_for_kids: criu-fast refuses
 * to dump it (kinds/timens.h). Check: its children's time namespace is
 * still not its own (nothing was changed by the refused dump). */
#include "prog_common.h"

#include <sched.h>

static int same_ns(const char *a, const char *b) {
  struct stat x, y;
  return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "desc_timens W");
  if (unshare(CLONE_NEWTIME) != 0) cf_die("unshare(CLONE_NEWTIME)");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      CF_CHECK(!same_ns("/proc/self/ns/time", "/proc/self/ns/time_for_children"),
               "the children's time namespace is the process's own");
      cf_report();
    }
    cf_nap(20);
  }
}
