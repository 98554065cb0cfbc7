/* Cgroup membership (kinds/cgroup.h): usage: cgroups W ROOT NAME [PIDS_DIR]
 *
 * ROOT is a mount of the named cgroup v1 hierarchy NAME ("cftest-123"),
 * holding A/B, A/B/T and A/C. The process joins A/B; one of its threads
 * moves alone to A/B/T (v1 moves single threads through "tasks"); a child
 * joins A/C. With PIDS_DIR (a cgroup of the pids controller) the process
 * also joins it. Restore must put every task back where it was; the check
 * reads /proc of each (the ROOT mount may be gone by then).
 */
#include "prog_common.h" /* first: it defines _GNU_SOURCE (close_range) */

#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const char *g_name;
static const char *g_pids_dir;
static volatile pid_t g_thread_tid;
static pid_t g_child;

static void join(const char *file, long id) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%ld", id);
  int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf)) cf_die("join %s: %s", file, strerror(errno));
  close(fd);
}

/* The path of |hierarchy| ("name=X" or "pids") in /proc/.../cgroup file |file|. */
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

static void *thread_main(void *arg) {
  const char *root = arg;
  char file[4200];
  snprintf(file, sizeof(file), "%s/A/B/T/tasks", root);
  join(file, syscall(SYS_gettid));
  g_thread_tid = (pid_t)syscall(SYS_gettid);
  for (;;) pause();
  return NULL;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 3, "cgroups W ROOT NAME [PIDS_DIR]");
  const char *root = argv[2];
  g_name = argv[3];
  g_pids_dir = argc > 4 ? argv[4] : NULL;
  char file[4200], hier[300];
  snprintf(hier, sizeof(hier), "name=%s", g_name);

  snprintf(file, sizeof(file), "%s/A/B/cgroup.procs", root);
  join(file, getpid());
  if (g_pids_dir) {
    snprintf(file, sizeof(file), "%s/cgroup.procs", g_pids_dir);
    join(file, getpid());
  }
  g_child = fork();
  if (g_child < 0) cf_die("fork: %s", strerror(errno));
  if (g_child == 0) {
    snprintf(file, sizeof(file), "%s/A/C/cgroup.procs", root);
    join(file, getpid());
    cf_child_ready("ready.child");
    for (;;) pause();
  }
  char buf[64];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child did not join its cgroup");
  pthread_t t;
  if (pthread_create(&t, NULL, thread_main, (void *)root) != 0) cf_die("pthread_create");
  for (int i = 0; i < 2000 && !g_thread_tid; i++) cf_nap(5);
  if (!g_thread_tid) cf_die("the thread did not move");
  cf_ready();

  for (;;) {
    if (cf_take_usr1()) {
      char pids_path[4200] = "";
      expect("/proc/self/cgroup", hier, "/A/B");
      snprintf(file, sizeof(file), "/proc/self/task/%d/cgroup", (int)getpid());
      expect(file, hier, "/A/B");
      snprintf(file, sizeof(file), "/proc/self/task/%d/cgroup", (int)g_thread_tid);
      expect(file, hier, "/A/B/T");
      snprintf(file, sizeof(file), "/proc/%d/cgroup", (int)g_child);
      expect(file, hier, "/A/C");
      if (g_pids_dir) {
        /* The pids cgroup's path is the last part(s) of PIDS_DIR below the
         * hierarchy's mount: compare the tail. */
        char got[4096] = "";
        if (cgroup_of("/proc/self/cgroup", "pids", got, sizeof(got)) != 0) {
          cf_failf("no pids line");
        } else {
          snprintf(pids_path, sizeof(pids_path), "%s", g_pids_dir);
          size_t lg = strlen(got), lp = strlen(pids_path);
          CF_CHECK(lg > 1 && lp >= lg && strcmp(pids_path + lp - lg, got) == 0, "pids cgroup is %s, want the end of %s",
                   got, pids_path);
        }
        snprintf(file, sizeof(file), "/proc/%d/cgroup", (int)g_child);
        char child_got[4096] = "";
        CF_CHECK(cgroup_of(file, "pids", child_got, sizeof(child_got)) == 0 && strcmp(child_got, got) == 0,
                 "the child's pids cgroup is %s, want %s (inherited)", child_got, got);
      }
      cf_report();
    }
    cf_nap(20);
  }
}
