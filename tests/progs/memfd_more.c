/* memfd_more W: memfds that need more than their pages back.
 *
 *   x   a memfd holding "#!/bin/true": execveat() of it must work (its
 *       description must not count as a writer: ETXTBSY otherwise)
 *   s   a memfd with data and F_SEAL_WRITE (restore writes the data first)
 *   m   a memfd with mode 0642 (fchmod)
 *
 * On SIGUSR1: a child execs x and exits 0; s has F_SEAL_WRITE and its data,
 * and a writable shared mapping of it is refused; m has mode 0642.
 */
#include "prog_common.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int x, s, m;
static const char kScript[] = "#!/bin/true\n";
static const char kData[] = "sealed data";

static void Check(void) {
  pid_t pid = fork();
  if (pid == 0) {
    char *argv[] = {"true", NULL};
    char *envp[] = {NULL};
    syscall(SYS_execveat, x, "", argv, envp, AT_EMPTY_PATH);
    _exit(100 + errno);
  }
  int status = 0;
  CF_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/waitpid: %s", strerror(errno));
  CF_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exec of the memfd: status %#x (100 + errno: %s)", status,
           WIFEXITED(status) && WEXITSTATUS(status) > 100 ? strerror(WEXITSTATUS(status) - 100) : "-");
  CF_CHECK(fcntl(s, F_GET_SEALS) == F_SEAL_WRITE, "seals %#x, want F_SEAL_WRITE", fcntl(s, F_GET_SEALS));
  char buf[sizeof(kData)] = {0};
  CF_CHECK(pread(s, buf, sizeof(kData) - 1, 0) == (ssize_t)sizeof(kData) - 1 && strcmp(buf, kData) == 0,
           "sealed memfd holds '%s'", buf);
  void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
  CF_CHECK(p == MAP_FAILED, "a writable shared mapping of the sealed memfd works");
  if (p != MAP_FAILED) munmap(p, 4096);
  struct stat sb;
  CF_CHECK(fstat(m, &sb) == 0 && (sb.st_mode & 07777) == 0642, "mode %o, want 0642", sb.st_mode & 07777);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "memfd_more W");
  x = memfd_create("script", 0);
  s = memfd_create("sealed", MFD_ALLOW_SEALING);
  m = memfd_create("mode", 0);
  if (x < 0 || s < 0 || m < 0) cf_die("memfd_create");
  if (write(x, kScript, sizeof(kScript) - 1) != (ssize_t)sizeof(kScript) - 1) cf_die("write");
  if (write(s, kData, sizeof(kData) - 1) != (ssize_t)sizeof(kData) - 1) cf_die("write");
  if (fcntl(s, F_ADD_SEALS, F_SEAL_WRITE) != 0) cf_die("F_ADD_SEALS");
  if (fchmod(m, 0642) != 0) cf_die("fchmod");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
