/* sharedfile W: open file descriptions of regular files shared by a parent
 * and its child (one offset), next to descriptions that are not shared.
 *
 *   s    W/shared.dat, O_RDWR, opened by the parent
 *        before the fork: one description, one offset for both; the child
 *        also holds it dup'ed as fd s2
 *   p    W/own.dat opened by the parent after the fork (its own offset)
 *   c    W/own.dat opened by the child after the fork (another description)
 *   d    W (the directory) opened O_RDONLY|O_DIRECTORY before the fork
 *
 * Before the dump: the parent writes 100 bytes through s (offset 100), p
 * seeks to 7, c to 11. On SIGUSR1 the parent checks its offsets, writes 10
 * more bytes through s, and signals the child; the child wants s (and s2)
 * at the parent's offset (one description shared again), c still at 11,
 * then writes 5 bytes through s2; the parent then wants s at that offset.
 */
#include "prog_common.h"

#include <sys/wait.h>

static int s, p, d;
static int c = -1, s2 = -1;
static pid_t child;

static off_t Pos(int fd) { return lseek(fd, 0, SEEK_CUR); }

static void ChildCheck(void) {
  char buf[64];
  if (cf_wait_file("parent_pos", buf, sizeof(buf)) != 0) {
    cf_failf("no parent_pos");
    return;
  }
  const off_t ppos = (off_t)strtoll(buf, NULL, 10);
  CF_CHECK(Pos(s) == ppos, "child: s at %lld, the parent left it at %lld (not one description?)", (long long)Pos(s),
           (long long)ppos);
  CF_CHECK(Pos(s2) == ppos, "child: s2 at %lld, want %lld", (long long)Pos(s2), (long long)ppos);
  CF_CHECK(Pos(c) == 11, "child: c at %lld, want 11", (long long)Pos(c));
  CF_CHECK(write(s2, "child", 5) == 5, "child: write: %s", strerror(errno));
}

static void ParentCheck(void) {
  static off_t expect = 100;
  CF_CHECK(Pos(s) == expect, "parent: s at %lld, want %lld", (long long)Pos(s), (long long)expect);
  CF_CHECK(Pos(p) == 7, "parent: p at %lld, want 7", (long long)Pos(p));
  CF_CHECK(fcntl(d, F_GETFL) & O_DIRECTORY, "parent: d is not a directory");
  CF_CHECK(write(s, "0123456789", 10) == 10, "parent: write: %s", strerror(errno));
  char buf[64];
  snprintf(buf, sizeof(buf), "%lld\n", (long long)Pos(s));
  cf_write_file("parent_pos", buf);
  cf_ask_child(child, "result.child");
  expect += 15;
  CF_CHECK(Pos(s) == expect, "parent: s at %lld after the child's write, want %lld", (long long)Pos(s),
           (long long)expect);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "sharedfile W");
  char path[4200];
  snprintf(path, sizeof(path), "%s/shared.dat", cf_prog.workdir);
  s = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  d = open(cf_prog.workdir, O_RDONLY | O_DIRECTORY);
  if (s < 0 || d < 0) cf_die("open");
  char block[100];
  memset(block, 'x', sizeof(block));
  if (write(s, block, sizeof(block)) != (ssize_t)sizeof(block)) cf_die("write");
  snprintf(path, sizeof(path), "%s/own.dat", cf_prog.workdir);
  int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (f < 0 || write(f, block, sizeof(block)) != (ssize_t)sizeof(block)) cf_die("own.dat");
  close(f);
  child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    c = open(path, O_RDONLY);
    s2 = dup(s);
    if (c < 0 || s2 < 0 || lseek(c, 11, SEEK_SET) != 11) cf_die("child setup");
    cf_child_ready("ready.child");
    cf_child_loop(ChildCheck, "result.child");
  }
  p = open(path, O_RDONLY);
  if (p < 0 || lseek(p, 7, SEEK_SET) != 7) cf_die("parent setup");
  char buf[64];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child never got ready");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      ParentCheck();
      cf_report();
    }
    cf_nap(20);
  }
}
