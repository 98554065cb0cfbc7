/* One deleted file two processes hold through descriptions of their own
 * (zdtm's write_read10): the parent opens W/f twice (fd 30 and 31), forks
 * a child that keeps only 31, closes its 31 and keeps 30; W/f is unlinked.
 * Check: both still see one file: the parent writes a fresh token at
 * offset 0 through its fd, the child must read it through its own and
 * write its answer at offset 64, which the parent must read back; the file
 * has no name (st_nlink 0) in both, and keeps the bytes written at setup. */
#include "prog_common.h"

#include <sys/wait.h>

enum { kParentFd = 30, kChildFd = 31 };

static char token[32];
static unsigned rounds;

static void check_child(void) {
  char want[64], got[32] = {0}, answer[32];
  if (cf_wait_file("token", want, sizeof(want)) != 0) {
    cf_failf("no token");
    return;
  }
  struct stat sb;
  CF_CHECK(fstat(kChildFd, &sb) == 0 && sb.st_nlink == 0, "the child's file has a name again");
  CF_CHECK(pread(kChildFd, got, 16, 0) == 16 && memcmp(got, want, 16) == 0,
           "the child reads '%.16s' where the parent wrote '%.16s': not one file", got, want);
  snprintf(answer, sizeof(answer), "child:%.10s", want);
  CF_CHECK(pwrite(kChildFd, answer, 16, 64) == 16, "child write");
}

static void check(pid_t child) {
  char got[32] = {0}, answer[32];
  struct stat sb;
  CF_CHECK(fstat(kParentFd, &sb) == 0 && sb.st_nlink == 0, "the parent's file has a name again");
  CF_CHECK(pread(kParentFd, got, 5, 128) == 5 && memcmp(got, "setup", 5) == 0, "the file lost its contents");
  snprintf(token, sizeof(token), "tok%013u", ++rounds);
  char path[4200];
  snprintf(path, sizeof(path), "%s/token", cf_prog.workdir);
  unlink(path);
  CF_CHECK(pwrite(kParentFd, token, 16, 0) == 16, "parent write");
  cf_write_file("token", token);
  cf_ask_child(child, "result.child");
  snprintf(answer, sizeof(answer), "child:%.10s", token);
  CF_CHECK(pread(kParentFd, got, 16, 64) == 16 && memcmp(got, answer, 16) == 0,
           "the parent reads '%.16s' where the child wrote '%.16s'", got, answer);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "desc_ghost_shared W");
  char path[4200];
  snprintf(path, sizeof(path), "%s/f", cf_prog.workdir);
  int a = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  int b = open(path, O_RDWR);
  if (a < 0 || b < 0 || dup2(a, kParentFd) < 0 || dup2(b, kChildFd) < 0) cf_die("open %s", path);
  close(a);
  close(b);
  if (pwrite(kParentFd, "setup", 5, 128) != 5 || unlink(path) != 0) cf_die("setup");
  pid_t child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    close(kParentFd);
    cf_child_ready("ready.child");
    cf_child_loop(check_child, "result.child");
  }
  close(kChildFd);
  char buf[32];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("no child");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check(child);
      cf_report();
    }
    cf_nap(20);
  }
}
