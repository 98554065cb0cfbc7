/* A process that unshared CLONE_NEWPID and its child, pid 1 of the new PID
 * namespace: criu-fast refuses to dump either (kinds/pidns.h), since a
 * restored tree gets back the pids criu-fast sees. Usage: pidns W; writes
 * the child's pid (as this process sees it) to W/child. Check: the child
 * still runs and is still pid 1 of its namespace (nothing was changed by
 * the refused dumps). */
#include "prog_common.h"

#include <sched.h>
#include <sys/wait.h>

/* The last NSpid entry of /proc/PID/status: the pid in its own namespace. */
static long inner_pid(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long last = -1;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "NSpid:", 6) != 0) continue;
    char *p = line + 6, *end;
    for (long v = strtol(p, &end, 10); end != p; v = strtol(p, &end, 10)) {
      last = v;
      p = end;
    }
  }
  fclose(f);
  return last;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "pidns W");
  if (unshare(CLONE_NEWPID) != 0) cf_die("unshare(CLONE_NEWPID): %s", strerror(errno));
  const pid_t child = fork();
  if (child < 0) cf_die("fork: %s", strerror(errno));
  if (child == 0) {
    for (;;) pause();
  }
  char buf[32];
  snprintf(buf, sizeof(buf), "%d", (int)child);
  if (cf_write_file("child", buf) != 0) cf_die("write W/child");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      CF_CHECK(kill(child, 0) == 0, "the child is gone");
      const long in = inner_pid(child);
      CF_CHECK(in == 1, "the child is pid %ld of its namespace, want 1", in);
      cf_report();
    }
    cf_nap(20);
  }
}
