/* tree W SIZE_MB: a tree of five processes with private memory each.
 *
 *   root ─┬─ a   (its own session: setsid)
 *         ├─ b   (its own process group: setpgid)
 *         └─ c ── d   (c stays in root's group; d is a grandchild)
 *
 * Every process fills SIZE_MB of private anonymous memory with pages from a
 * seed of its own and keeps the hash. Children say they are set up by
 * writing W/ready.<name>; the root then writes W/ready.
 * On SIGUSR1 the root forwards the signal to every process of the tree and
 * checks itself; each child checks its memory, its parent (getppid), its
 * session and group, and writes W/result.<name>; the root collects them all
 * and writes W/result: PASS only if every process passed.
 */
#include "prog_common.h"

#include <sys/mman.h>
#include <sys/wait.h>

enum { ROOT, A, B, C, D, NPROC };
static const char *kNames[NPROC] = {"root", "a", "b", "c", "d"};

static pid_t pids[NPROC];   /* filled as the tree is built */
static unsigned char *mem;
static size_t mem_pages;
static uint64_t mem_hash;

static void fill_memory(int self, size_t mb) {
  mem_pages = mb * 256;
  mem = mmap(NULL, mem_pages * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) cf_die("mmap");
  cf_fill_random(mem, mem_pages, 1000 + (uint64_t)self);
  mem_hash = cf_hash(mem, mem_pages * CF_PAGE);
}

static void check_self(int self, pid_t parent, pid_t sid, pid_t pgid) {
  CF_CHECK(cf_hash(mem, mem_pages * CF_PAGE) == mem_hash, "%s: memory hash changed", kNames[self]);
  CF_CHECK(getpid() == pids[self], "%s: pid %d, expected %d", kNames[self], getpid(), pids[self]);
  if (parent) CF_CHECK(getppid() == parent, "%s: parent %d, expected %d", kNames[self], getppid(), parent);
  CF_CHECK(getsid(0) == sid, "%s: session %d, expected %d", kNames[self], getsid(0), sid);
  CF_CHECK(getpgid(0) == pgid, "%s: group %d, expected %d", kNames[self], getpgid(0), pgid);
}

static void write_named(const char *prefix, int self, const char *text) {
  char name[64];
  snprintf(name, sizeof(name), "%s.%s", prefix, kNames[self]);
  cf_write_file(name, text);
}

/* A child's life: set up, report ready, answer checks. */
static void child_loop(int self, size_t mb, pid_t parent, pid_t sid, pid_t pgid) {
  pids[self] = getpid();
  fill_memory(self, mb);
  write_named("ready", self, "ok\n");
  for (;;) {
    if (cf_take_usr1()) {
      check_self(self, parent, sid, pgid);
      char line[1100];
      snprintf(line, sizeof(line), "%s%s\n", cf_prog.fail[0] ? "FAIL: " : "PASS", cf_prog.fail);
      cf_prog.fail[0] = 0;
      write_named("result", self, line);
    }
    cf_nap(20);
  }
}

static int wait_file(const char *prefix, int self, char *out, size_t len) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/%s.%s", cf_prog.workdir, prefix, kNames[self]);
  for (int i = 0; i < 1000; i++) {
    FILE *f = fopen(path, "r");
    if (f) {
      size_t n = fread(out, 1, len - 1, f);
      fclose(f);
      out[n] = 0;
      return 0;
    }
    cf_nap(10);
  }
  return -1;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 2, "tree W SIZE_MB");
  size_t mb = (size_t)strtol(argv[2], NULL, 10);
  pids[ROOT] = getpid();
  const pid_t root_sid = getsid(0), root_pgid = getpgid(0);

  pid_t p = fork();
  if (p == 0) {
    setsid();
    child_loop(A, mb, pids[ROOT], getpid(), getpid());
  }
  pids[A] = p;
  p = fork();
  if (p == 0) {
    setpgid(0, 0);
    child_loop(B, mb, pids[ROOT], root_sid, getpid());
  }
  pids[B] = p;
  int cpipe[2];
  if (pipe(cpipe) != 0) cf_die("pipe");
  p = fork();
  if (p == 0) {
    pids[C] = getpid();
    pid_t d = fork();
    if (d == 0) {
      close(cpipe[0]);
      close(cpipe[1]);
      child_loop(D, mb, pids[C], root_sid, root_pgid);
    }
    pids[D] = d;
    /* Tell the root d's pid, then drop the pipe (not part of the tested state). */
    if (write(cpipe[1], &d, sizeof(d)) != sizeof(d)) cf_die("write");
    close(cpipe[0]);
    close(cpipe[1]);
    child_loop(C, mb, pids[ROOT], root_sid, root_pgid);
  }
  pids[C] = p;
  if (read(cpipe[0], &pids[D], sizeof(pid_t)) != sizeof(pid_t)) cf_die("read d's pid");
  close(cpipe[0]);
  close(cpipe[1]);
  fill_memory(ROOT, mb);
  char buf[256];
  for (int i = A; i < NPROC; i++) {
    if (wait_file("ready", i, buf, sizeof(buf)) != 0) cf_die("%s never got ready", kNames[i]);
  }
  cf_ready();

  for (;;) {
    if (cf_take_usr1()) {
      for (int i = A; i < NPROC; i++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/result.%s", cf_prog.workdir, kNames[i]);
        unlink(path);
        kill(pids[i], SIGUSR1);
      }
      check_self(ROOT, 0, root_sid, root_pgid);
      for (int i = A; i < NPROC; i++) {
        if (wait_file("result", i, buf, sizeof(buf)) != 0) {
          cf_failf("%s did not answer", kNames[i]);
        } else if (strncmp(buf, "PASS", 4) != 0) {
          cf_failf("%s", buf);
        }
      }
      cf_report();
    }
    /* Reap nothing: children live as long as the test. */
    cf_nap(20);
  }
}
