/* A cgroup namespace (kinds/cgroup.h): usage: cgroupns W ROOT NAME
 *
 * ROOT is a mount of the named cgroup v1 hierarchy NAME, holding P/ns/sub
 * and P/ns/kid. The process joins P/ns, unshares CLONE_NEWCGROUP there (the
 * namespace's root is P/ns) and moves on to P/ns/sub; a child, made in the
 * namespace, moves to P/ns/kid. Seen from inside, the process is in /sub
 * and the child in /kid. The check reads that view again, and that both
 * still share one cgroup namespace that is not the one the process was
 * started in (the test script checks the host's view).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "prog_common.h"

static void join(const char *file, long id) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%ld", id);
  int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf)) cf_die("join %s: %s", file, strerror(errno));
  close(fd);
}

/* The path of |hierarchy| in /proc/.../cgroup file |file|, as this process sees it. */
static int cgroup_of(const char *file, const char *hierarchy, char *out, size_t len) {
  FILE *f = fopen(file, "r");
  if (!f) return -1;
  char line[4096];
  int found = -1;
  while (fgets(line, sizeof(line), f)) {
    char *a = strchr(line, ':');
    char *b = a ? strchr(a + 1, ':') : NULL;
    if (!b) continue;
    *b = 0;
    if (strcmp(a + 1, hierarchy) != 0) continue;
    b[1 + strcspn(b + 1, "\n")] = 0;
    snprintf(out, len, "%s", b + 1);
    found = 0;
  }
  fclose(f);
  return found;
}

static void expect(const char *file, const char *hierarchy, const char *want) {
  char got[4096] = "";
  if (cgroup_of(file, hierarchy, got, sizeof(got)) != 0) {
    cf_failf("%s: no %s line", file, hierarchy);
  } else {
    CF_CHECK(strcmp(got, want) == 0, "%s: %s is %s, want %s", file, hierarchy, got, want);
  }
}

static ino_t ns_of(const char *proc) {
  char path[64];
  struct stat sb;
  snprintf(path, sizeof(path), "/proc/%s/ns/cgroup", proc);
  return stat(path, &sb) == 0 ? sb.st_ino : 0;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 3, "cgroupns W ROOT NAME");
  const char *root = argv[2];
  char file[4200], hier[300];
  snprintf(hier, sizeof(hier), "name=%s", argv[3]);
  const ino_t first = ns_of("self");

  snprintf(file, sizeof(file), "%s/P/ns/cgroup.procs", root);
  join(file, getpid());
  if (unshare(CLONE_NEWCGROUP) != 0) cf_die("unshare(CLONE_NEWCGROUP): %s", strerror(errno));
  snprintf(file, sizeof(file), "%s/P/ns/sub/cgroup.procs", root);
  join(file, getpid());
  const pid_t child = fork();
  if (child < 0) cf_die("fork: %s", strerror(errno));
  if (child == 0) {
    snprintf(file, sizeof(file), "%s/P/ns/kid/cgroup.procs", root);
    join(file, getpid());
    cf_child_ready("ready.child");
    for (;;) pause();
  }
  char buf[64];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child did not join its cgroup");
  cf_ready();

  for (;;) {
    if (cf_take_usr1()) {
      char kid[32];
      snprintf(kid, sizeof(kid), "%d", (int)child);
      expect("/proc/self/cgroup", hier, "/sub");
      snprintf(file, sizeof(file), "/proc/%d/cgroup", (int)child);
      expect(file, hier, "/kid");
      const ino_t mine = ns_of("self");
      CF_CHECK(mine != 0 && mine != first, "the process is not in a cgroup namespace of its own");
      CF_CHECK(ns_of(kid) == mine, "the child is not in its parent's cgroup namespace");
      cf_report();
    }
    cf_nap(20);
  }
}
