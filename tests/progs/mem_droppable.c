/* mem_droppable W [MB]: droppable memory and memory wiped on fork.
 *
 *   D   2 pages MAP_DROPPABLE (Linux 6.11): the kernel may free its pages at
 *       any time; a dump does not save them (as CRIU), so after a restore D
 *       reads zeros
 *   F   2 pages private anonymous with MADV_WIPEONFORK
 * Both hold a text before the dump. With MB, a private anonymous mapping
 * of MB MiB, every page written (its number in each word), makes the
 * process one of much memory in few VMAs (a dump lists its VMAs from maps,
 * smaps read beside the scan: engine/dump.cc, DecideMapsFirst); checked too.
 *
 * On SIGUSR1: D still has VmFlag "dp" and F "wf"; F holds its text; D holds
 * its text or zeros (dropped), and only zeros once the driver has created
 * W/restored; then both get the text again and a child made by fork() must
 * see zeros in both.
 */
#include "prog_common.h"

#include <sys/mman.h>
#include <sys/wait.h>

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif

static char *D, *F;
static uint64_t *Big;
static size_t big_pages;
static const char kText[] = "droppable or wiped on fork";

static int Zero(const char *p) {
  for (size_t i = 0; i < 2 * CF_PAGE; i++) {
    if (p[i]) return 0;
  }
  return 1;
}

/* Whether smaps gives the VMA at |addr| VmFlag |flag|. */
static int HasFlag(const void *addr, const char *flag) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return 0;
  char line[512], want[8];
  snprintf(want, sizeof(want), " %s", flag);
  int in = 0, found = 0;
  while (fgets(line, sizeof(line), f)) {
    unsigned long start;
    if (sscanf(line, "%lx-", &start) == 1 && strchr(line, '-') && strchr(line, '-') < strchr(line, ' ')) {
      in = start == (unsigned long)addr;
    } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
      line[strcspn(line, "\n")] = ' ';
      found = strstr(line, want) != NULL;
      break;
    }
  }
  fclose(f);
  return found;
}

static void Check(void) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/restored", cf_prog.workdir);
  const int restored = access(path, F_OK) == 0;
  CF_CHECK(HasFlag(D, "dp"), "D lost VmFlag dp (droppable)");
  CF_CHECK(HasFlag(F, "wf"), "F lost VmFlag wf (wipe on fork)");
  CF_CHECK(strcmp(F, kText) == 0, "F holds '%.30s'", F);
  if (restored) {
    CF_CHECK(Zero(D), "D holds '%.30s' after a restore: droppable pages were saved", D);
  } else {
    CF_CHECK(Zero(D) || strcmp(D, kText) == 0, "D holds '%.30s'", D);
  }
  for (size_t i = 0; i < big_pages; i++) {
    const uint64_t *w = Big + i * (CF_PAGE / sizeof(uint64_t));
    CF_CHECK(w[0] == i && w[CF_PAGE / sizeof(uint64_t) - 1] == i, "big page %zu holds %lu", i, (unsigned long)w[0]);
  }
  memcpy(D, kText, sizeof(kText));
  pid_t pid = fork();
  if (pid == 0) _exit(Zero(D) && Zero(F) ? 0 : 1);
  int status = 0;
  CF_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/waitpid: %s", strerror(errno));
  CF_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a child saw D or F not wiped (status %#x)", status);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "mem_droppable W");
  D = mmap(NULL, 2 * CF_PAGE, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
  if (D == MAP_FAILED) cf_die("mmap MAP_DROPPABLE");
  F = mmap(NULL, 2 * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (F == MAP_FAILED) cf_die("mmap F");
  if (madvise(F, 2 * CF_PAGE, MADV_WIPEONFORK) != 0) cf_die("MADV_WIPEONFORK");
  memcpy(D, kText, sizeof(kText));
  memcpy(F, kText, sizeof(kText));
  if (argc > 2) {
    big_pages = (size_t)strtoul(argv[2], NULL, 10) * (1 << 20) / CF_PAGE;
    Big = mmap(NULL, big_pages * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (Big == MAP_FAILED) cf_die("mmap %s MiB", argv[2]);
    for (size_t i = 0; i < big_pages; i++) {
      uint64_t *w = Big + i * (CF_PAGE / sizeof(uint64_t));
      for (size_t k = 0; k < CF_PAGE / sizeof(uint64_t); k++) w[k] = i;
    }
  }
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
