/* cow_tree W SIZE_MB [fdt]: memory shared copy-on-write down a tree of three
 * processes, as fork leaves it: root -> child -> grandchild.
 *
 * The root fills SIZE_MB of private anonymous memory with random pages, then
 * forks the child, which forks the grandchild. The region is cut in quarters:
 *   0  written by nobody since: all three share every page;
 *   1  rewritten by the root after the fork: the child and the grandchild
 *      share the old pages, the root has its own;
 *   2  rewritten by the child before it forks the grandchild: those two share
 *      the new pages, the root keeps the old ones;
 *   3  rewritten by the grandchild: its own pages; the root and the child
 *      share the old ones.
 * The child also maps memory of its own after the fork (shared with the
 * grandchild only). A private mapping of a file W/cow.file, every page
 * written by the root before the fork (anonymous copies), is shared as well;
 * the child rewrites its second half. With "fdt" the grandchild shares the child's descriptor
 * table (clone CLONE_FILES), which restore cannot hand memory down through
 * (the pages come back, not the sharing: its sharing is not checked).
 *
 * On SIGUSR1 the root asks the child, which asks the grandchild; each checks
 * every byte it should see, and, by the frames in /proc/PID/pagemap (root
 * only), that the pages above are shared with its parent exactly where they
 * should be. W/shared.<name> gets the pages found shared with the parent.
 */
#include "prog_common.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

enum { ROOT, CHILD, GRAND, NPROC };
static const char *kNames[NPROC] = {"root", "child", "grandchild"};

static unsigned char *mem;
static size_t pages, quarter;
static unsigned char *own;  /* the child's mapping after the fork */
static unsigned char *fmap; /* a private file mapping, written before the fork */
enum { kFilePages = 16 };
static size_t own_pages;
static int self = ROOT;
static int fdt;

/* The seed a page of quarter q holds in process |who|'s view. */
static uint64_t seed_of(int who, size_t q) {
  switch (q) {
    case 1: return who == ROOT ? 11 : 1;
    case 2: return who == ROOT ? 1 : 12;
    case 3: return who == GRAND ? 13 : 1;
    default: return 1;
  }
}

/* Whether quarter q is shared between |who| and its parent. */
static int shared_with_parent(int who, size_t q) {
  if (who == CHILD) return q == 0 || q == 3;
  if (who == GRAND) return q != 3;
  return 0;
}

/* A page of quarter 0 the root fills with zeros before the fork: its dump
 * stores no bytes for it (ZERO), the children inherit it all the same. */
enum { kZeroPage = 5 };

static void expected(unsigned char *page, size_t pg) {
  if (pg == kZeroPage) {
    memset(page, 0, CF_PAGE);
  } else {
    cf_random_page(page, pg, seed_of(self, pg / quarter));
  }
}

static void rewrite(size_t q, uint64_t seed) {
  for (size_t pg = q * quarter; pg < (q + 1) * quarter; pg++) cf_random_page(mem + pg * CF_PAGE, pg, seed);
}

static uint64_t frame_of(int fd, const void *addr) {
  uint64_t e = 0;
  off_t off = (off_t)((uintptr_t)addr / CF_PAGE * sizeof(e));
  if (pread(fd, &e, sizeof(e), off) != (ssize_t)sizeof(e)) return 0;
  return (e >> 63) ? (e & ((1ULL << 55) - 1)) : 0;
}

static void check(void) {
  unsigned char page[CF_PAGE];
  for (size_t pg = 0; pg < pages; pg++) {
    expected(page, pg);
    if (memcmp(page, mem + pg * CF_PAGE, CF_PAGE) != 0) {
      cf_failf("%s: page %zu of quarter %zu differs", kNames[self], pg, pg / quarter);
      return;
    }
  }
  if (own) {
    for (size_t pg = 0; pg < own_pages; pg++) {
      cf_random_page(page, pg, 99);
      if (memcmp(page, own + pg * CF_PAGE, CF_PAGE) != 0) cf_failf("%s: own page %zu differs", kNames[self], pg);
    }
  }
  for (size_t pg = 0; pg < kFilePages; pg++) {
    cf_random_page(page, pg, self != ROOT && pg >= kFilePages / 2 ? 22 : 21);
    if (memcmp(page, fmap + pg * CF_PAGE, CF_PAGE) != 0) cf_failf("%s: file page %zu differs", kNames[self], pg);
  }
  if (self == ROOT) return;
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)getppid());
  int pfd = open(path, O_RDONLY);
  int sfd = open("/proc/self/pagemap", O_RDONLY);
  if (pfd < 0 || sfd < 0) {
    cf_failf("%s: open pagemap: %s", kNames[self], strerror(errno));
    return;
  }
  size_t shared = 0;
  for (size_t pg = 0; pg < pages; pg++) {
    const void *a = mem + pg * CF_PAGE;
    const uint64_t mine = frame_of(sfd, a), theirs = frame_of(pfd, a);
    const int is = mine != 0 && mine == theirs;
    shared += (size_t)is;
    if (self == GRAND && fdt) continue;  /* restore cannot hand memory down there */
    if (pg == kZeroPage) continue;        /* restored as no page at all, in every process */
    if (is != shared_with_parent(self, pg / quarter)) {
      cf_failf("%s: page %zu of quarter %zu is %sshared with the parent", kNames[self], pg, pg / quarter,
               is ? "" : "not ");
    }
  }
  for (size_t pg = 0; pg < kFilePages; pg++) {
    const void *a = fmap + pg * CF_PAGE;
    const uint64_t mine = frame_of(sfd, a);
    const int is = mine != 0 && mine == frame_of(pfd, a);
    if (self == GRAND && fdt) continue;
    if (is != (self == GRAND || pg < kFilePages / 2)) {
      cf_failf("%s: file page %zu is %sshared with the parent", kNames[self], pg, is ? "" : "not ");
    }
  }
  if (self == GRAND && own) {
    for (size_t pg = 0; pg < own_pages; pg++) {
      const void *a = own + pg * CF_PAGE;
      const uint64_t mine = frame_of(sfd, a);
      if (!fdt && (mine == 0 || mine != frame_of(pfd, a))) {
        cf_failf("%s: page %zu of the child's own mapping is not shared", kNames[self], pg);
        break;
      }
    }
  }
  close(pfd);
  close(sfd);
  char text[64], name[64];
  snprintf(text, sizeof(text), "%zu\n", shared);
  snprintf(name, sizeof(name), "shared.%s", kNames[self]);
  cf_write_file(name, text);
}

static pid_t grandchild;

static void check_child(void) {
  check();
  if (self == CHILD) cf_ask_child(grandchild, "result.grandchild");
}

static int grand_main(void *arg) {
  (void)arg;
  self = GRAND;
  rewrite(3, 13);
  cf_child_ready("ready.grandchild");
  cf_child_loop(check, "result.grandchild");
  return 0;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 2, "cow_tree W SIZE_MB [fdt]");
  const size_t mb = (size_t)strtol(argv[2], NULL, 10);
  fdt = argc > 3 && strcmp(argv[3], "fdt") == 0;
  pages = mb * 256;
  quarter = pages / 4;
  if (quarter == 0) cf_die("SIZE_MB too small");
  mem = mmap(NULL, pages * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) cf_die("mmap");
  /* No transparent huge pages: khugepaged may collapse a range of one
   * process into a new huge page at any time, which ends the sharing. */
  if (madvise(mem, pages * CF_PAGE, MADV_NOHUGEPAGE) != 0) cf_die("madvise(MADV_NOHUGEPAGE)");
  cf_fill_random(mem, pages, 1);
  memset(mem + kZeroPage * CF_PAGE, 0, CF_PAGE);
  char fpath[4200];
  snprintf(fpath, sizeof(fpath), "%s/cow.file", cf_prog.workdir);
  int ffd = open(fpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (ffd < 0 || ftruncate(ffd, kFilePages * CF_PAGE) != 0) cf_die("create %s", fpath);
  fmap = mmap(NULL, kFilePages * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, ffd, 0);
  if (fmap == MAP_FAILED) cf_die("mmap %s", fpath);
  close(ffd);
  cf_fill_random(fmap, kFilePages, 21);

  pid_t child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    self = CHILD;
    rewrite(2, 12);
    for (size_t pg = kFilePages / 2; pg < kFilePages; pg++) cf_random_page(fmap + pg * CF_PAGE, pg, 22);
    own_pages = 64;
    /* A page more, unmapped again: a hole keeps it from merging with the
     * region mapped just above it (then neither would be the VMA fork
     * handed down). */
    own = mmap(NULL, (own_pages + 1) * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (own == MAP_FAILED) cf_die("mmap");
    munmap(own + own_pages * CF_PAGE, CF_PAGE);
    cf_fill_random(own, own_pages, 99);
    if (fdt) {
      static char stack[256 * 1024];
      grandchild = clone(grand_main, stack + sizeof(stack), CLONE_FILES | SIGCHLD, NULL);
    } else {
      grandchild = fork();
      if (grandchild == 0) grand_main(NULL);
    }
    if (grandchild < 0) cf_die("fork the grandchild");
    char buf[32];
    if (cf_wait_file("ready.grandchild", buf, sizeof(buf)) != 0) cf_die("the grandchild did not start");
    cf_child_ready("ready.child");
    cf_child_loop(check_child, "result.child");
  }
  char buf[32];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child did not start");
  rewrite(1, 11);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_ask_child(child, "result.child");
      cf_report();
    }
    cf_nap(20);
  }
}
