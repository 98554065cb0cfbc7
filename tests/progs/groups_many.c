/* groups_many W [N]: a process with N supplementary groups (default 200),
 * more than the restorer args once had room for (64). Needs root
 * (setgroups).
 *
 * Set up before W/ready: setgroups() with the gids GID_BASE + 7 * i,
 * i = 0..N-1, given in a shuffled order; uid and gids stay 0.
 * On SIGUSR1 the check: getgroups() returns exactly those N gids (in any
 * order: the kernel keeps them sorted), /proc/self/status lists N groups,
 * and the real, effective and saved uids and gids are still 0.
 */
#include "prog_common.h"

#include <grp.h>
#include <sys/types.h>

#define GID_BASE 20000
#define MAX_GROUPS 4096

static int ngroups = 200;

static int cmp_gid(const void *a, const void *b) {
  const gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;
  return x < y ? -1 : x > y;
}

static gid_t want_gid(int i) { return (gid_t)(GID_BASE + 7 * i); }

/* The number of gids on the Groups: line of /proc/self/status. */
static int status_groups(void) {
  FILE *f = fopen("/proc/self/status", "re");
  if (!f) return -1;
  static char line[65536];
  int n = -1;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "Groups:", 7) != 0) continue;
    n = 0;
    for (char *p = line + 7; *p;) {
      while (*p == ' ' || *p == '\t' || *p == '\n') p++;
      if (!*p) break;
      n++;
      while (*p && *p != ' ' && *p != '\t' && *p != '\n') p++;
    }
    break;
  }
  fclose(f);
  return n;
}

static void check(void) {
  static gid_t got[MAX_GROUPS + 1];
  const int n = getgroups(MAX_GROUPS + 1, got);
  if (n < 0) {
    cf_failf("getgroups: %s", strerror(errno));
    return;
  }
  CF_CHECK(n == ngroups, "getgroups: %d groups, want %d", n, ngroups);
  qsort(got, (size_t)n, sizeof(got[0]), cmp_gid);
  for (int i = 0; i < n && i < ngroups; i++) {
    if (got[i] != want_gid(i)) {
      cf_failf("group #%d is %u, want %u", i, (unsigned)got[i], (unsigned)want_gid(i));
      break;
    }
  }
  const int st = status_groups();
  CF_CHECK(st == ngroups, "/proc/self/status: %d groups, want %d", st, ngroups);
  uid_t r, e, s;
  gid_t gr, ge, gs;
  getresuid(&r, &e, &s);
  getresgid(&gr, &ge, &gs);
  CF_CHECK(r == 0 && e == 0 && s == 0, "uids %u %u %u, want 0", (unsigned)r, (unsigned)e, (unsigned)s);
  CF_CHECK(gr == 0 && ge == 0 && gs == 0, "gids %u %u %u, want 0", (unsigned)gr, (unsigned)ge, (unsigned)gs);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "groups_many W [N]");
  if (argc > 2) ngroups = atoi(argv[2]);
  if (ngroups < 1 || ngroups > MAX_GROUPS) cf_die("bad group count %d", ngroups);
  static gid_t list[MAX_GROUPS];
  for (int i = 0; i < ngroups; i++) list[i] = want_gid(i);
  /* Shuffled (deterministically): the order given is not the order kept. */
  uint64_t seed = 0x9E3779B97F4A7C15ULL;
  for (int i = ngroups - 1; i > 0; i--) {
    const int j = (int)(cf_rand_next(&seed) % (uint64_t)(i + 1));
    const gid_t t = list[i];
    list[i] = list[j];
    list[j] = t;
  }
  if (setgroups((size_t)ngroups, list) != 0) cf_die("setgroups(%d)", ngroups);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
