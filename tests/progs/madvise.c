/* madvise W: mappings whose madvise()/mlock() state must come back after a
 * restore (the VmFlags of /proc/self/smaps), and behave as before.
 *
 * Set up before W/ready: one 64 KiB private anonymous mapping per advice,
 * each filled with a pattern: MADV_DONTFORK (dc), MADV_WIPEONFORK (wf),
 * MADV_DONTDUMP (dd), MADV_HUGEPAGE (hg), MADV_NOHUGEPAGE (nh),
 * MADV_SEQUENTIAL (sr), MADV_RANDOM (rr), MADV_MERGEABLE (mg), mlock (lo).
 * Each mapping's VmFlags are recorded. The MADV_SEQUENTIAL one also gets a
 * guard region (MADV_GUARD_INSTALL, Linux 6.13) on its third page, where
 * the kernel has them. Two more touching mappings of 64 KiB with patterns:
 * read-write with no advice, then read-only with MADV_DONTDUMP (VMAs that
 * restore premaps side by side and madvise() parts at once: one fill of
 * both must not run over the border).
 * On SIGUSR2 (the advice changes, as between a pre-dump and a dump): each
 * mapping's advice is undone or replaced on the whole mapping (DONTFORK ->
 * DOFORK, WIPEONFORK -> KEEPONFORK, DONTDUMP -> DODUMP, HUGEPAGE ->
 * NOHUGEPAGE and back, SEQUENTIAL -> RANDOM and back, mlock -> munlock,
 * MERGEABLE kept), so /proc/self/maps does not change but the VmFlags do;
 * the flags are recorded again and W/step says 1.
 * On SIGUSR1 the check: every mapping has the same VmFlags and its pattern;
 * and a forked child sees the WIPEONFORK mapping zeroed, the DONTFORK one
 * absent (a read faults: the child reports it), the others intact; a read
 * of the guard page faults.
 */
#include "prog_common.h"

#include <setjmp.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define LEN (64UL << 10)

struct advised {
  const char *name;
  int advice; /* -1: mlock */
  unsigned char *p;
  char flags[256];
};

static struct advised maps[] = {
    {"dontfork", MADV_DONTFORK, NULL, ""}, {"wipeonfork", MADV_WIPEONFORK, NULL, ""},
    {"dontdump", MADV_DONTDUMP, NULL, ""}, {"hugepage", MADV_HUGEPAGE, NULL, ""},
    {"nohugepage", MADV_NOHUGEPAGE, NULL, ""}, {"sequential", MADV_SEQUENTIAL, NULL, ""},
    {"random", MADV_RANDOM, NULL, ""},     {"mergeable", MADV_MERGEABLE, NULL, ""},
    {"mlock", -1, NULL, ""},
};
#define N (sizeof(maps) / sizeof(maps[0]))

/* The VmFlags line of the smaps entry starting at |addr|, without "ac"
 * (accounting, not ours to set), the userfaultfd flags and the trailing
 * space. */
static int vmflags(const void *addr, char *out, size_t len) {
  FILE *f = fopen("/proc/self/smaps", "re");
  if (!f) return -1;
  char line[1024], want[32];
  snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
  int in = 0, found = -1;
  while (fgets(line, sizeof(line), f)) {
    if (strchr(line, '-') && strncmp(line, want, strlen(want)) == 0) in = 1;
    if (in && strncmp(line, "VmFlags:", 8) == 0) {
      out[0] = 0;
      for (char *tok = strtok(line + 8, " \n"); tok; tok = strtok(NULL, " \n")) {
        if (strcmp(tok, "ac") == 0) continue;
        /* userfaultfd registration: a pre-dump's write tracking, not ours. */
        if (strcmp(tok, "uw") == 0 || strcmp(tok, "um") == 0 || strcmp(tok, "ui") == 0) continue;
        strncat(out, tok, len - strlen(out) - 2);
        strcat(out, " ");
      }
      found = 0;
      break;
    }
  }
  fclose(f);
  return found;
}

static unsigned char pattern(size_t m, size_t i) { return (unsigned char)(m * 37 + i * 7 + 1); }

#define GUARD_MAP 5  /* "sequential" */
#define GUARD_PAGE 2 /* of that mapping */
static int guarded;
static unsigned char *touching; /* 2 * LEN: read-write, then read-only DONTDUMP */
static char touching_flags[2][256];

static volatile sig_atomic_t want_step;
static void on_usr2(int sig) {
  (void)sig;
  want_step = 1;
}

/* The advice given on SIGUSR2 in place of each mapping's first one. */
static int second_advice(int advice) {
  switch (advice) {
    case MADV_DONTFORK: return MADV_DOFORK;
    case MADV_WIPEONFORK: return MADV_KEEPONFORK;
    case MADV_DONTDUMP: return MADV_DODUMP;
    case MADV_HUGEPAGE: return MADV_NOHUGEPAGE;
    case MADV_NOHUGEPAGE: return MADV_HUGEPAGE;
    case MADV_SEQUENTIAL: return MADV_RANDOM;
    case MADV_RANDOM: return MADV_SEQUENTIAL;
    case -1: return -2; /* munlock */
    default: return advice;
  }
}

static void step(const char *dir) {
  for (size_t m = 0; m < N; m++) {
    const int a = second_advice(maps[m].advice);
    const int r = a == -2 ? munlock(maps[m].p, LEN) : madvise(maps[m].p, LEN, a);
    if (r != 0) cf_die("advise %s again", maps[m].name);
    maps[m].advice = a == -2 ? -3 : a; /* -3: unlocked */
    if (vmflags(maps[m].p, maps[m].flags, sizeof(maps[m].flags)) != 0) cf_die("no smaps entry for %s", maps[m].name);
  }
  char path[4096];
  snprintf(path, sizeof(path), "%s/step", dir);
  FILE *f = fopen(path, "we");
  if (!f) cf_die("open %s", path);
  fprintf(f, "1\n");
  fclose(f);
}

static sigjmp_buf fault_jump;
static void on_segv(int sig) {
  (void)sig;
  siglongjmp(fault_jump, 1);
}

/* Whether reading *p faults. */
static int faults(volatile unsigned char *p) {
  if (sigsetjmp(fault_jump, 1) != 0) return 1;
  (void)p[0];
  return 0;
}

/* In a forked child: 0 when fork semantics hold, else a code. */
static int child_check(void) {
  signal(SIGSEGV, on_segv);
  for (size_t m = 0; m < N; m++) {
    volatile unsigned char *p = maps[m].p;
    if (maps[m].advice == MADV_DONTFORK) {
      if (!faults(p)) return 10; /* mapped in the child */
      continue;
    }
    if (maps[m].advice == MADV_WIPEONFORK) {
      for (size_t i = 0; i < LEN; i += CF_PAGE) {
        if (p[i] != 0) return 11;
      }
      continue;
    }
    if (p[5] != pattern(m, 5)) return 20 + (int)m;
    if (guarded && m == GUARD_MAP && !faults(p + GUARD_PAGE * CF_PAGE)) return 12;
  }
  return 0;
}

static void check(void) {
  for (int h = 0; h < 2; h++) {
    char now[256];
    CF_CHECK(vmflags(touching + h * LEN, now, sizeof(now)) == 0 && strcmp(now, touching_flags[h]) == 0,
             "touching mapping %d: VmFlags '%s', were '%s'", h, now, touching_flags[h]);
  }
  for (size_t i = 0; i < 2 * LEN; i++) {
    if (touching[i] != pattern(N + i / LEN, i)) {
      cf_failf("touching mappings: byte %zu is %u, want %u", i, touching[i], pattern(N + i / LEN, i));
      break;
    }
  }
  signal(SIGSEGV, on_segv);
  CF_CHECK(!guarded || faults(maps[GUARD_MAP].p + GUARD_PAGE * CF_PAGE), "the guard page can be read");
  signal(SIGSEGV, SIG_DFL);
  for (size_t m = 0; m < N; m++) {
    char now[256];
    if (vmflags(maps[m].p, now, sizeof(now)) != 0) {
      cf_failf("%s: no smaps entry at %p", maps[m].name, (void *)maps[m].p);
      return;
    }
    CF_CHECK(strcmp(now, maps[m].flags) == 0, "%s: VmFlags '%s', were '%s'", maps[m].name, now, maps[m].flags);
    for (size_t i = 0; i < LEN; i++) {
      if (guarded && m == GUARD_MAP && i / CF_PAGE == GUARD_PAGE) continue;
      if (maps[m].p[i] != pattern(m, i)) {
        cf_failf("%s: byte %zu is %u, want %u", maps[m].name, i, maps[m].p[i], pattern(m, i));
        return;
      }
    }
  }
  pid_t c = fork();
  if (c == 0) _exit(child_check());
  int st = 0;
  CF_CHECK(c > 0 && waitpid(c, &st, 0) == c, "fork/wait: %s", strerror(errno));
  CF_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "fork semantics: child status %#x (10: DONTFORK memory in the child, 11: WIPEONFORK not wiped)", st);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "madvise W");
  for (size_t m = 0; m < N; m++) {
    /* Apart from each other: two adjacent mappings with equal flags merge. */
    unsigned char *area = mmap(NULL, LEN + 2 * CF_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) cf_die("mmap");
    unsigned char *p = mmap(area + CF_PAGE, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                            -1, 0);
    if (p == MAP_FAILED) cf_die("mmap");
    int r = maps[m].advice < 0 ? mlock(p, LEN) : madvise(p, LEN, maps[m].advice);
    if (r != 0) cf_die("advise %s", maps[m].name);
    for (size_t i = 0; i < LEN; i++) p[i] = pattern(m, i);
    maps[m].p = p;
    if (m == GUARD_MAP) guarded = madvise(p + GUARD_PAGE * CF_PAGE, CF_PAGE, 102 /* MADV_GUARD_INSTALL */) == 0;
    if (vmflags(p, maps[m].flags, sizeof(maps[m].flags)) != 0) cf_die("no smaps entry for %s", maps[m].name);
  }
  unsigned char *area = mmap(NULL, 2 * LEN + 2 * CF_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) cf_die("mmap");
  touching = mmap(area + CF_PAGE, 2 * LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (touching == MAP_FAILED) cf_die("mmap");
  for (size_t i = 0; i < 2 * LEN; i++) touching[i] = pattern(N + i / LEN, i);
  if (madvise(touching + LEN, LEN, MADV_DONTDUMP) != 0 || mprotect(touching + LEN, LEN, PROT_READ) != 0) {
    cf_die("advise/protect the touching mapping");
  }
  for (int h = 0; h < 2; h++) {
    if (vmflags(touching + h * LEN, touching_flags[h], sizeof(touching_flags[h])) != 0) cf_die("no smaps entry");
  }
  signal(SIGUSR2, on_usr2);
  cf_ready();
  for (;;) {
    if (want_step) {
      want_step = 0;
      step(cf_prog.workdir);
    }
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
