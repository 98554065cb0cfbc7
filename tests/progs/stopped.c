/* stopped W: children in a job-control stop.
 *
 *   s1  one thread, stopped by SIGSTOP
 *   s2  three threads, in a process group of its own (so the group is not
 *       orphaned and SIGTSTP stops it), stopped by SIGTSTP
 * Every thread of the children counts in shared memory while it runs. The
 * parent saw each stop with waitid(WNOWAIT) and did not consume it.
 * On SIGUSR1 the parent checks, for each child: waitid(WSTOPPED|WNOHANG)
 * reports it stopped by its signal, and every thread is in state T; then it
 * sends SIGCONT, waits until every thread counts again, stops it again with
 * the same signal and waits for the stop, so the check can run again.
 */
#include "prog_common.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <dirent.h>

enum { S1, S2, NS };
static const char *kNames[NS] = {"s1", "s2"};
static const int kSig[NS] = {SIGSTOP, SIGTSTP};
static const int kThreads[NS] = {1, 3};
static pid_t spid[NS];
static volatile uint64_t *counters; /* [NS][3] */

static void *count(void *arg) {
  volatile uint64_t *c = arg;
  for (;;) {
    (*c)++;
    cf_nap(5);
  }
  return NULL;
}

static void child(int self) {
  for (int t = 1; t < kThreads[self]; t++) {
    pthread_t th;
    if (pthread_create(&th, NULL, count, (void *)&counters[self * 3 + t]) != 0) _exit(100);
  }
  count((void *)&counters[self * 3]);
}

/* Every thread of |pid| is in state T; how many threads. */
static int all_stopped(pid_t pid, int *n) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return 0;
  int ok = 1;
  *n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char p[320], buf[512];
    snprintf(p, sizeof(p), "/proc/%d/task/%s/stat", pid, e->d_name);
    FILE *f = fopen(p, "r");
    if (!f) continue;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = 0;
    char *r = strrchr(buf, ')');
    if (!r || r[2] != 'T') ok = 0;
    (*n)++;
  }
  closedir(d);
  return ok;
}

static int wait_stopped(int i, int options) {
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  while (waitid(P_PID, (id_t)spid[i], &si, WSTOPPED | WNOWAIT | options) != 0) {
    if (errno != EINTR) return 0;
  }
  return si.si_pid == spid[i] && si.si_code == CLD_STOPPED && si.si_status == kSig[i];
}

static void check(void) {
  for (int i = 0; i < NS; i++) {
    CF_CHECK(wait_stopped(i, WNOHANG), "%s (%d): waitid does not report it stopped by signal %d", kNames[i], spid[i],
             kSig[i]);
    int n = 0;
    CF_CHECK(all_stopped(spid[i], &n), "%s: a thread is not in state T", kNames[i]);
    CF_CHECK(n == kThreads[i], "%s: %d threads, want %d", kNames[i], n, kThreads[i]);
    if (cf_prog.fail[0]) return;
    uint64_t before[3];
    for (int t = 0; t < kThreads[i]; t++) before[t] = counters[i * 3 + t];
    kill(spid[i], SIGCONT);
    for (int t = 0; t < kThreads[i]; t++) {
      for (int k = 0; k < 2000 && counters[i * 3 + t] == before[t]; k++) cf_nap(5);
      CF_CHECK(counters[i * 3 + t] != before[t], "%s: thread %d does not run after SIGCONT", kNames[i], t);
    }
    kill(spid[i], kSig[i]);
    CF_CHECK(wait_stopped(i, 0), "%s: does not stop again", kNames[i]);
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "stopped W");
  counters = mmap(NULL, CF_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (counters == MAP_FAILED) cf_die("mmap");
  for (int i = 0; i < NS; i++) {
    spid[i] = fork();
    if (spid[i] < 0) cf_die("fork");
    if (spid[i] == 0) {
      if (i == S2) setpgid(0, 0);
      child(i);
    }
    if (i == S2) setpgid(spid[i], spid[i]);
  }
  for (int i = 0; i < NS; i++) {
    for (int t = 0; t < kThreads[i]; t++) {
      for (int k = 0; k < 2000 && counters[i * 3 + t] == 0; k++) cf_nap(5);
    }
    kill(spid[i], kSig[i]);
    if (!wait_stopped(i, 0)) cf_die("%s did not stop", kNames[i]);
  }
  check();
  if (cf_prog.fail[0]) cf_die("before the dump: %s", cf_prog.fail);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
