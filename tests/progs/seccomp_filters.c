/* seccomp_filters W: seccomp filters per thread, shared, inherited.
 *
 * Each filter makes one syscall fail with an errno of its own and allows
 * the rest:
 *   A  getppid -> 71, SECCOMP_FILTER_FLAG_LOG  (this process, before all);
 *      sigaltstack kills the process: criu-fast reads every thread's
 *      alternate stack by a call run in it, which the kernel must not
 *      filter (PTRACE_O_SUSPEND_SECCOMP)
 *   D  getpgid -> 74, installed with TSYNC     (every thread of this process)
 *   B  sysinfo -> 72                           (the child's main thread only)
 *   E  times   -> 75, TSYNC, at each check     (every thread, after restore)
 *
 * This process: no_new_privs, A, two threads, then D by TSYNC: the three
 * threads share the chain A <- D. The child, forked after A (it inherits A
 * and no_new_privs), starts a thread, then installs B in its main thread
 * only: its threads have A and A <- B.
 *
 * On SIGUSR1: in every thread of both processes the filtered calls fail
 * with their errno and sysinfo works where B is not; no_new_privs is set;
 * the status files say mode 2; then E is installed with TSYNC, which the
 * kernel accepts only when every thread's chain is one with ours (shared,
 * not copies), and each thread sees it.
 */
#include "prog_common.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int Filter(int nr, int err, unsigned flags) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {4, f};
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* A: getppid fails with 71, sigaltstack kills the process. */
static int FilterA(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 71),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sigaltstack, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {6, f};
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG, &prog);
}

/* The raw call's errno (0 when it worked). */
static int Err(long nr) {
  char buf[512];
  errno = 0;
  long r = nr == SYS_sysinfo || nr == SYS_times ? syscall(nr, buf) : syscall(nr, 0);
  return r < 0 ? errno : 0;
}

/* What a thread expects, and its answer: the checks run in the thread. */
struct Worker {
  pthread_t th;
  volatile pid_t tid;
  int want_sysinfo; /* errno sysinfo must give */
  volatile int ask; /* bumped by the asker */
  volatile int done;
  char fail[256];
};

static volatile int e_installed; /* E is in: times fails with 75 */
static int main_sysinfo;         /* what sysinfo gives in the main thread */
static int want_getpgid;         /* 74 where D is (this process), else 0 */

/* E by TSYNC gave every thread the main thread's chain. */
static void CheckHere(int want_sysinfo, char *fail, size_t len) {
  int e;
  fail[0] = 0;
  if (e_installed) want_sysinfo = main_sysinfo;
  if ((e = Err(SYS_getppid)) != 71) snprintf(fail, len, "getppid errno %d, want 71 (filter A)", e);
  else if ((e = Err(SYS_getpgid)) != want_getpgid) snprintf(fail, len, "getpgid errno %d, want %d", e, want_getpgid);
  else if ((e = Err(SYS_sysinfo)) != want_sysinfo) snprintf(fail, len, "sysinfo errno %d, want %d", e, want_sysinfo);
  else if (e_installed && (e = Err(SYS_times)) != 75) snprintf(fail, len, "times errno %d, want 75 (filter E)", e);
  else if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) snprintf(fail, len, "no_new_privs lost");
}

static void *WorkerMain(void *arg) {
  struct Worker *w = arg;
  int seen = 0;
  w->tid = (pid_t)syscall(SYS_gettid);
  for (;;) {
    if (w->ask != seen) {
      seen = w->ask;
      CheckHere(w->want_sysinfo, w->fail, sizeof(w->fail));
      __atomic_store_n(&w->done, seen, __ATOMIC_RELEASE);
    }
    cf_nap(5);
  }
  return NULL;
}

static void StartWorker(struct Worker *w, int want_sysinfo) {
  w->want_sysinfo = want_sysinfo;
  if (pthread_create(&w->th, NULL, WorkerMain, w) != 0) cf_die("pthread_create");
  while (!w->tid) cf_nap(1);
}

static void AskWorker(struct Worker *w, const char *who) {
  const int n = w->ask + 1;
  w->ask = n;
  for (int i = 0; i < 4000 && __atomic_load_n(&w->done, __ATOMIC_ACQUIRE) != n; i++) cf_nap(5);
  if (w->done != n) cf_failf("%s did not answer", who);
  else if (w->fail[0]) cf_failf("%s: %s", who, w->fail);
}

/* "Seccomp:" of a thread's status. */
static int Mode(pid_t tid) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
  FILE *f = fopen(path, "r");
  int mode = -1;
  while (f && fgets(line, sizeof(line), f)) {
    if (sscanf(line, "Seccomp: %d", &mode) == 1) break;
  }
  if (f) fclose(f);
  return mode;
}

static struct Worker w1, w2, cw;

/* E by TSYNC (once), then every thread checks itself. */
static void CheckAll(struct Worker **ws, int n, int want_sysinfo, const char *proc) {
  char fail[256];
  if (!e_installed) {
    long r = Filter(SYS_times, 75, SECCOMP_FILTER_FLAG_TSYNC);
    if (r != 0) {
      cf_failf("%s: TSYNC of filter E: %ld (errno %d; a positive value is a thread whose chain differs)", proc, r,
               errno);
      return;
    }
    e_installed = 1;
  }
  CheckHere(want_sysinfo, fail, sizeof(fail));
  if (fail[0]) cf_failf("%s main thread: %s", proc, fail);
  const int mode = Mode((pid_t)syscall(SYS_gettid));
  if (mode != 2) cf_failf("%s main thread: Seccomp mode %d", proc, mode);
  for (int i = 0; i < n; i++) {
    AskWorker(ws[i], proc);
    if ((int)Mode(ws[i]->tid) != 2) cf_failf("%s thread %d: Seccomp mode %d", proc, (int)ws[i]->tid, Mode(ws[i]->tid));
  }
}

static void ChildCheck(void) {
  struct Worker *ws[] = {&cw};
  CheckAll(ws, 1, 72, "child");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "seccomp_filters W");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) cf_die("PR_SET_NO_NEW_PRIVS");
  if (FilterA() != 0) cf_die("filter A");

  const pid_t child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    main_sysinfo = 72;
    StartWorker(&cw, 0);
    if (Filter(SYS_sysinfo, 72, 0) != 0) cf_die("filter B");
    cf_child_ready("ready.child");
    cf_child_loop(ChildCheck, "result.child");
  }
  char buf[64];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child is not ready");

  want_getpgid = 74;
  StartWorker(&w1, 0);
  StartWorker(&w2, 0);
  if (Filter(SYS_getpgid, 74, SECCOMP_FILTER_FLAG_TSYNC) != 0) cf_die("filter D by TSYNC");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      struct Worker *ws[] = {&w1, &w2};
      CheckAll(ws, 2, 0, "parent");
      cf_ask_child(child, "result.child");
      cf_report();
    }
    cf_nap(20);
  }
}
