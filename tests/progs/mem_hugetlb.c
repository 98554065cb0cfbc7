/* mem_hugetlb W: hugetlb memory, 2 MiB pages (6 of them; the driver skips
 * the test unless 8 are free).
 *
 *   P   4 MiB MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB; a pattern in the first
 *       and the last 8 KiB (one in each huge page)
 *   S   2 MiB MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB, shared with a child,
 *       which writes its pattern at 1 MiB before the dump
 *   F   a memfd made with MFD_HUGETLB, 2 MiB, its fd kept: a pattern written
 *       through FS (a shared mapping); FP maps it private and only reads it;
 *       FQ maps it private and writes its own pattern (a private copy)
 * The child unmaps P, FP and FQ (they are the parent's test).
 *
 * On SIGUSR1 the parent checks every pattern, that each mapping is still
 * hugetlb (KernelPageSize 2048 kB in smaps) on the same device, then writes
 * a new number g into S and FS: the memfd's fd (pread) and FP (which never
 * wrote) must see it, FQ must not. The child checks that it sees g in S and
 * answers with g + 1 in S, which the parent then wants: S is still shared.
 */
#include "prog_common.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#define HUGE (2UL << 20)
#define PAT 8192UL

static unsigned char *P, *S, *FS, *FP, *FQ;
static int fd;
static pid_t child;
static uint64_t gen;
static char dev_of[5][32];

static void Fill(unsigned char *p, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++) p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 12));
}
static int Same(const unsigned char *p, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++) {
    if (p[i] != (unsigned char)(seed * 131 + i * 7 + (i >> 12))) return 0;
  }
  return 1;
}

/* The device column of |addr|'s line in maps and its KernelPageSize in kB. */
static int Describe(const void *addr, char *dev, size_t dev_len, long *page_kb) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  int found = 0;
  *page_kb = -1;
  while (fgets(line, sizeof(line), f)) {
    unsigned long start;
    char d[32];
    if (!found) {
      if (sscanf(line, "%lx-%*x %*s %*s %31s", &start, d) == 2 && start == (unsigned long)addr) {
        snprintf(dev, dev_len, "%s", d);
        found = 1;
      }
    } else if (sscanf(line, "KernelPageSize: %ld kB", page_kb) == 1) {
      break;
    }
  }
  fclose(f);
  return found && *page_kb > 0 ? 0 : -1;
}

static void CheckMapping(int i, const void *addr, const char *what) {
  char dev[32];
  long kb;
  if (Describe(addr, dev, sizeof(dev), &kb) != 0) {
    cf_failf("%s at %p: not in smaps", what, addr);
    return;
  }
  CF_CHECK(kb == 2048, "%s: KernelPageSize %ld kB, want 2048 (no longer hugetlb)", what, kb);
  CF_CHECK(strcmp(dev, dev_of[i]) == 0, "%s: device %s, was %s", what, dev, dev_of[i]);
}

static void ChildCheck(void) {
  uint64_t g, ng;
  memcpy(&g, S, sizeof(g));
  memcpy(&ng, S + 8, sizeof(ng));
  CF_CHECK(g != 0 && ng == ~g, "S: the parent's number %llu / %llx is not there", (unsigned long long)g,
           (unsigned long long)ng);
  CF_CHECK(Same(S + HUGE / 2, PAT, 2), "S: the child's pattern differs");
  g++;
  memcpy(S + 16, &g, sizeof(g));
}

static void Check(void) {
  CF_CHECK(Same(P, PAT, 1) && Same(P + 2 * HUGE - PAT, PAT, 11), "P: pattern differs");
  CF_CHECK(Same(S + HUGE / 2, PAT, 2), "S: the child's pattern differs");
  CF_CHECK(Same(FP + PAT, PAT, 3), "FP: the memfd's pattern differs");
  CF_CHECK(Same(FQ + PAT, PAT, 4), "FQ: its own pattern differs");
  CheckMapping(0, P, "P");
  CheckMapping(1, S, "S");
  CheckMapping(2, FS, "FS");
  CheckMapping(3, FP, "FP");
  CheckMapping(4, FQ, "FQ");
  gen++;
  uint64_t ng = ~gen;
  memcpy(S, &gen, sizeof(gen));
  memcpy(S + 8, &ng, sizeof(ng));
  memcpy(FS, &gen, sizeof(gen));  /* hugetlbfs has no write() */
  uint64_t fd_sees = 0, fp, fq;
  CF_CHECK(pread(fd, &fd_sees, sizeof(fd_sees), 0) == (ssize_t)sizeof(fd_sees), "pread of the memfd: %s",
           strerror(errno));
  memcpy(&fp, FP, sizeof(fp));
  memcpy(&fq, FQ, sizeof(fq));
  CF_CHECK(fd_sees == gen && fp == gen, "memfd: its fd sees %llu, FP %llu, want %llu", (unsigned long long)fd_sees,
           (unsigned long long)fp, (unsigned long long)gen);
  CF_CHECK(fq != gen, "FQ (a private copy) sees the memfd's write");
  cf_ask_child(child, "result.child");
  uint64_t answer;
  memcpy(&answer, S + 16, sizeof(answer));
  CF_CHECK(answer == gen + 1, "S: the child answered %llu, want %llu", (unsigned long long)answer,
           (unsigned long long)(gen + 1));
}

static void *Map(size_t len, int flags, int from) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, from, 0);
  if (p == MAP_FAILED) cf_die("mmap %zu bytes, flags %#x", len, flags);
  return p;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "mem_hugetlb W");
  P = Map(2 * HUGE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1);
  S = Map(HUGE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1);
  fd = (int)syscall(SYS_memfd_create, "cf-huge", MFD_HUGETLB);
  if (fd < 0) cf_die("memfd_create(MFD_HUGETLB)");
  if (ftruncate(fd, HUGE) != 0) cf_die("ftruncate");
  FS = Map(HUGE, MAP_SHARED, fd);
  FP = Map(HUGE, MAP_PRIVATE, fd);
  FQ = Map(HUGE, MAP_PRIVATE, fd);
  Fill(P, PAT, 1);
  Fill(P + 2 * HUGE - PAT, PAT, 11);
  Fill(FS + PAT, PAT, 3);
  Fill(FQ + PAT, PAT, 4);
  const void *all[5] = {P, S, FS, FP, FQ};
  for (int i = 0; i < 5; i++) {
    long kb;
    if (Describe(all[i], dev_of[i], sizeof(dev_of[i]), &kb) != 0 || kb != 2048) cf_die("mapping %d is not hugetlb", i);
  }
  child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    munmap(P, 2 * HUGE);
    munmap(FP, HUGE);
    munmap(FQ, HUGE);
    Fill(S + HUGE / 2, PAT, 2);
    cf_child_ready("ready.child");
    cf_child_loop(ChildCheck, "result.child");
  }
  char buf[64];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child did not start");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
