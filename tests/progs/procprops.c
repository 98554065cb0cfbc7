/* procprops W: per-process and per-thread properties that a restore must
 * give back (kinds/process_props.h, kinds/thread_props.h).
 *
 * The process sets: lowered soft and hard resource limits, oom_score_adj,
 * PR_SET_THP_DISABLE, PR_SET_CHILD_SUBREAPER, membarrier registrations
 * (where the kernel reports them) and its audit login uid (where there is
 * /proc/self/loginuid). Three threads (main and two workers) each
 * set their own scheduling policy, RT priority or nice value, parent-death
 * signal, and keep the robust futex list glibc gave them (restored threads
 * start without one); worker 2 also has uids and gids of its own.
 *
 * Two children, forked once the process has set its values: "back" sets
 * oom_score_adj and the loginuid back to what the program started with
 * (criu-fast's own, for a restore run from the same shell), "same" keeps
 * its parent's. The restore compares each process's image with the values
 * it has from its parent, which the parent's own restore changed first
 * (kinds::ReadInheritedState): both must come back as they were.
 *
 * On SIGUSR1 main checks the process-wide values and each thread's
 * scheduling and robust list (by tid); each worker checks its own
 * parent-death signal, which only the thread itself can read, when main
 * asks it (a round counter) and main waits for the answers.
 */
#include "prog_common.h"

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define NTHREADS 3 /* main is thread 0 */
#define MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED (1 << 4)
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)

struct thread_want {
  int policy;
  int prio;
  int nice;
  int pdeathsig;
};

/* Worker 1 under SCHED_FIFO sleeps most of the time: it takes no CPU away. */
static const struct thread_want want[NTHREADS] = {
    {SCHED_OTHER, 0, 3, SIGWINCH},
    {SCHED_FIFO, 7, 0, SIGURG},
    {SCHED_BATCH, 0, 9, SIGCHLD},
};

/* Worker 2 takes uids and gids of its own (raw system calls: glibc's
 * wrappers would change every thread), and loses its capabilities. */
#define OWN_UID 4243
#define OWN_GID 4242

static pid_t tids[NTHREADS];
static uint64_t robust_head[NTHREADS];
static volatile int ready_threads;
static volatile int check_round, answered[NTHREADS];
static char thread_fail[NTHREADS][256];
static int membarrier_regs = -1; /* -1: the kernel cannot report them */

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

/* The calling thread's own settings. */
static void setup_thread(int i) {
  tids[i] = my_tid();
  struct sched_param sp = {.sched_priority = want[i].prio};
  if (sched_setscheduler(0, want[i].policy, &sp) != 0) cf_die("thread %d: sched_setscheduler", i);
  if (setpriority(PRIO_PROCESS, 0, want[i].nice) != 0) cf_die("thread %d: setpriority", i);
  if (i == 2 && (syscall(SYS_setresgid, OWN_GID, OWN_GID, OWN_GID) != 0 ||
                 syscall(SYS_setresuid, OWN_UID, OWN_UID, OWN_UID) != 0))
    cf_die("thread %d: setresuid", i);
  if (prctl(PR_SET_PDEATHSIG, want[i].pdeathsig, 0, 0, 0) != 0) cf_die("thread %d: PR_SET_PDEATHSIG", i);
  size_t len;
  if (syscall(SYS_get_robust_list, 0, &robust_head[i], &len) != 0 || !robust_head[i])
    cf_die("thread %d: get_robust_list", i);
}

static void check_own(int i) {
  int sig = -1;
  thread_fail[i][0] = 0;
  if (prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) != 0 || sig != want[i].pdeathsig)
    snprintf(thread_fail[i], sizeof(thread_fail[i]), "thread %d: parent-death signal %d, want %d", i, sig,
             want[i].pdeathsig);
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  syscall(SYS_getresuid, &ruid, &euid, &suid);
  syscall(SYS_getresgid, &rgid, &egid, &sgid);
  const uid_t uid = i == 2 ? OWN_UID : 0;
  const gid_t gid = i == 2 ? OWN_GID : 0;
  if (!thread_fail[i][0] && (ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid))
    snprintf(thread_fail[i], sizeof(thread_fail[i]), "thread %d: uids %d/%d/%d gids %d/%d/%d, want %d and %d", i,
             (int)ruid, (int)euid, (int)suid, (int)rgid, (int)egid, (int)sgid, (int)uid, (int)gid);
}

static void *worker_main(void *arg) {
  int i = (int)(intptr_t)arg;
  setup_thread(i);
  __sync_fetch_and_add(&ready_threads, 1);
  int seen = 0;
  for (;;) {
    if (check_round != seen) {
      seen = check_round;
      check_own(i);
      answered[i] = seen;
    }
    cf_nap(5);
  }
  return NULL;
}

static void check_thread(int i) {
  int policy = sched_getscheduler(tids[i]);
  struct sched_param sp = {0};
  sched_getparam(tids[i], &sp);
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, (id_t)tids[i]);
  CF_CHECK(policy == want[i].policy, "thread %d: policy %d, want %d", i, policy, want[i].policy);
  CF_CHECK(sp.sched_priority == want[i].prio, "thread %d: RT priority %d, want %d", i, sp.sched_priority,
           want[i].prio);
  CF_CHECK(nice == want[i].nice, "thread %d: nice %d, want %d", i, nice, want[i].nice);
  uint64_t head = 0;
  size_t len = 0;
  long r = syscall(SYS_get_robust_list, tids[i], &head, &len);
  CF_CHECK(r == 0 && head == robust_head[i], "thread %d: robust list %#lx, want %#lx", i, (unsigned long)head,
           (unsigned long)robust_head[i]);
}

static int read_oom_score_adj(void) {
  char buf[32] = {0};
  int fd = open("/proc/self/oom_score_adj", O_RDONLY);
  if (fd < 0) return -10000;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n > 0 ? atoi(buf) : -10000;
}

/* The audit login uid, or -1 without audit. */
static long read_loginuid(void) {
  char buf[32] = {0};
  int fd = open("/proc/self/loginuid", O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n > 0 ? atol(buf) : -1;
}
static int have_loginuid;
static int start_oom_score_adj;
static long start_loginuid = -1;
static pid_t kid_back, kid_same;
static int back_loginuid; /* "back" could set its loginuid back */

static void check_back(void) {
  CF_CHECK(read_oom_score_adj() == start_oom_score_adj, "back: oom_score_adj %d, want %d", read_oom_score_adj(),
           start_oom_score_adj);
  if (back_loginuid)
    CF_CHECK(read_loginuid() == start_loginuid, "back: loginuid %ld, want %ld", read_loginuid(), start_loginuid);
}

static void check_same(void) {
  CF_CHECK(read_oom_score_adj() == 321, "same: oom_score_adj %d, want 321", read_oom_score_adj());
  if (have_loginuid) CF_CHECK(read_loginuid() == 4321, "same: loginuid %ld, want 4321", read_loginuid());
}

static void fork_children(void) {
  kid_back = fork();
  if (kid_back < 0) cf_die("fork");
  if (kid_back == 0) {
    char v[32];
    int n = snprintf(v, sizeof(v), "%d", start_oom_score_adj);
    int fd = open("/proc/self/oom_score_adj", O_WRONLY);
    if (fd < 0 || write(fd, v, (size_t)n) != n) cf_die("back: oom_score_adj");
    close(fd);
    if (have_loginuid && start_loginuid >= 0) {
      n = snprintf(v, sizeof(v), "%ld", start_loginuid);
      fd = open("/proc/self/loginuid", O_WRONLY);
      back_loginuid = fd >= 0 && write(fd, v, (size_t)n) == n && read_loginuid() == start_loginuid;
      if (fd >= 0) close(fd);
    }
    cf_child_ready("ready.back");
    cf_child_loop(check_back, "result.back");
  }
  kid_same = fork();
  if (kid_same < 0) cf_die("fork");
  if (kid_same == 0) {
    cf_child_ready("ready.same");
    cf_child_loop(check_same, "result.same");
  }
  char buf[32];
  if (cf_wait_file("ready.back", buf, sizeof(buf)) != 0 || cf_wait_file("ready.same", buf, sizeof(buf)) != 0)
    cf_die("children not ready");
}

static void check_process(void) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  CF_CHECK(rl.rlim_cur == 777 && rl.rlim_max == 999, "RLIMIT_NOFILE %lu/%lu, want 777/999",
           (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
  getrlimit(RLIMIT_CORE, &rl);
  CF_CHECK(rl.rlim_cur == 4096, "RLIMIT_CORE soft %lu, want 4096", (unsigned long)rl.rlim_cur);
  CF_CHECK(read_oom_score_adj() == 321, "oom_score_adj %d, want 321", read_oom_score_adj());
  CF_CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "THP not disabled");
  if (have_loginuid) CF_CHECK(read_loginuid() == 4321, "loginuid %ld, want 4321", read_loginuid());
  int subreaper = 0;
  prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0);
  CF_CHECK(subreaper == 1, "not a child subreaper");
  if (membarrier_regs >= 0) {
    int regs = (int)syscall(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0);
    CF_CHECK(regs == membarrier_regs, "membarrier registrations %#x, want %#x", regs, membarrier_regs);
  }
}

static void setup_process(void) {
  struct rlimit rl = {777, 999};
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) cf_die("setrlimit NOFILE");
  getrlimit(RLIMIT_CORE, &rl);
  rl.rlim_cur = 4096;
  if (setrlimit(RLIMIT_CORE, &rl) != 0) cf_die("setrlimit CORE");
  int fd = open("/proc/self/oom_score_adj", O_WRONLY);
  if (fd < 0 || write(fd, "321", 3) != 3) cf_die("oom_score_adj");
  close(fd);
  if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) cf_die("PR_SET_THP_DISABLE");
  fd = open("/proc/self/loginuid", O_WRONLY);
  if (fd >= 0) {
    if (write(fd, "4321", 4) != 4) cf_die("set loginuid");
    close(fd);
    have_loginuid = 1;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) cf_die("PR_SET_CHILD_SUBREAPER");
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0) >= 0) {
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0)
      cf_die("membarrier register");
    membarrier_regs = (int)syscall(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0);
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "procprops W");
  start_oom_score_adj = read_oom_score_adj();
  start_loginuid = read_loginuid();
  setup_process();
  fork_children();
  setup_thread(0);
  for (int i = 1; i < NTHREADS; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, worker_main, (void *)(intptr_t)i) != 0) cf_die("pthread_create");
  }
  while (ready_threads < NTHREADS - 1) cf_nap(1);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      int round = ++check_round;
      check_process();
      cf_ask_child(kid_back, "result.back");
      cf_ask_child(kid_same, "result.same");
      check_own(0);
      CF_CHECK(!thread_fail[0][0], "%s", thread_fail[0]);
      for (int i = 0; i < NTHREADS; i++) check_thread(i);
      for (int i = 1; i < NTHREADS; i++) {
        for (int k = 0; k < 2000 && answered[i] != round; k++) cf_nap(5);
        CF_CHECK(answered[i] == round, "thread %d did not answer", i);
        CF_CHECK(!thread_fail[i][0], "%s", thread_fail[i]);
      }
      cf_report();
    }
    cf_nap(5);
  }
}
