/* mem_shmem_priv W: a private mapping of shared anonymous memory, made by
 * opening the memory's shmem file through /proc/self/map_files (as zdtm's
 * shmemfd-priv does).
 *
 *   A   8 pages MAP_SHARED|MAP_ANONYMOUS; pages 0..3 hold 1, 11, 111, 1111
 *   V   6 pages MAP_PRIVATE of A's file from page 1: V page k is A page k+1
 *       until V writes it. V page 1 is written (22: a private copy); pages 0
 *       and 2 are never touched before a dump.
 *
 * On SIGUSR1: V page 0 reads 11 (from A: not zero), V page 1 still 22; a
 * new number g written into A pages 2 and 3 shows in V page 2 (still A's)
 * but not in V page 1 (V's own).
 */
#include "prog_common.h"

#include <sys/mman.h>

static unsigned char *A, *V;
static int gen = 1000;

static int At(const unsigned char *p, unsigned long page) { return *(const int *)(p + page * CF_PAGE); }
static void Put(unsigned char *p, unsigned long page, int v) { *(int *)(p + page * CF_PAGE) = v; }

static void Check(void) {
  CF_CHECK(At(V, 0) == 11, "V page 0 reads %d, want 11 (A's page 1)", At(V, 0));
  CF_CHECK(At(V, 1) == 22, "V page 1 reads %d, want 22 (its own copy)", At(V, 1));
  CF_CHECK(At(A, 0) == 1 && At(A, 1) == 11, "A pages 0, 1: %d %d", At(A, 0), At(A, 1));
  gen++;
  Put(A, 2, gen);
  Put(A, 3, gen);
  CF_CHECK(At(V, 2) == gen, "V page 2 reads %d after A page 3 became %d: not A's any more", At(V, 2), gen);
  CF_CHECK(At(V, 1) == 22, "V page 1 (a private copy) follows A: %d", At(V, 1));
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "mem_shmem_priv W");
  A = mmap(NULL, 8 * CF_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (A == MAP_FAILED) cf_die("mmap A");
  Put(A, 0, 1);
  Put(A, 1, 11);
  Put(A, 2, 111);
  Put(A, 3, 1111);
  char path[128];
  snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)A, (unsigned long)A + 8 * CF_PAGE);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) cf_die("open %s", path);
  V = mmap(NULL, 6 * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, CF_PAGE);
  if (V == MAP_FAILED) cf_die("mmap V");
  close(fd);
  Put(V, 1, 22);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
