/*
 * The drain parasite: freestanding code run inside a frozen target by
 * criu-fast (memdrain/parasite.h) to put the target's own pages into pipes
 * with vmsplice. vmsplice without SPLICE_F_GIFT copies nothing: each pipe
 * buffer holds a reference to the target's page, so a pipe of 1 MiB pins
 * 256 pages in a few microseconds, and the pages stay readable through the
 * pipe after the target is gone. criu-fast takes the read ends with
 * pidfd_getfd; the target keeps no descriptor once the next command (or the
 * cleanup's close command) has run.
 *
 * The parasite runs on the leader thread only, with every signal blocked
 * (criu-fast sets the mask with ptrace), makes only non-blocking system
 * calls until its command is done (then it blocks in poll() until criu-fast
 * takes the thread back, or returns the thread to its own code should
 * criu-fast die: see parasite_abi.h), and touches no register state beyond the general-purpose registers
 * (built with -mgeneral-regs-only: the target's SSE/AVX registers are left as
 * they were, which matters for dump -R). See parasite_abi.h for the protocol.
 */
#include "parasite_abi.h"
#include "syscall.h"

#define CF_NR_rt_sigreturn 15
#define CF_NR_nanosleep 35
#define CF_NR_fcntl 72
#define CF_NR_vmsplice 278
#define CF_NR_ppoll 271
#define CF_NR_pipe2 293
#define CF_NR_pidfd_open 434
#define CF_NR_futex 202
#define CF_FUTEX_WAIT_PRIVATE 128
#define CF_FUTEX_WAKE_PRIVATE 129
#define CF_EINTR 4
#define CF_POLLIN 1
#define CF_ESRCH 3
#define CF_F_SETPIPE_SZ 1031
#define CF_O_CLOEXEC 02000000
#define CF_SPLICE_F_NONBLOCK 2
#define CF_UIO_MAXIOV 1024
#define CF_EAGAIN 11
#define CF_WAIT_SLICE_NS 20000 /* how often the wait for `taken` looks */

void cf_parasite_main(struct cf_par_args *a) __attribute__((used, visibility("hidden")));

/* Entry at offset 0 of the blob: rdi = args, rsp = top of our stack.
 * cf_parasite_main returns only when criu-fast cannot be watched (no
 * tracer_pid, or no pidfd to be had): then it stops on int3. */
#define CF_STR2(x) #x
#define CF_STR(x) CF_STR2(x)
void cf_parasite_thread_main(struct cf_par_thread *t) __attribute__((used, visibility("hidden")));

/* The thread calls' entry at offset CF_PAR_THREAD_ENTRY: rdi = the thread's
 * cf_par_thread, rsp = the top of its stack. cf_parasite_thread_main returns
 * only when the watcher cannot watch (then it stops on int3 while criu-fast,
 * which just saw the pidfd_open fail, is alive). */
__asm__(
    ".section .text.entry,\"ax\",@progbits\n"
    ".globl cf_parasite_entry\n"
    "cf_parasite_entry:\n"
    "  andq $-16, %rsp\n"
    "  call cf_parasite_main\n"
    "1: int3\n"
    "  jmp 1b\n"
    "  .org " CF_STR(CF_PAR_THREAD_ENTRY) "\n"
    ".globl cf_parasite_thread_entry\n"
    "cf_parasite_thread_entry:\n"
    "  andq $-16, %rsp\n"
    "  call cf_parasite_thread_main\n"
    "2: int3\n"
    "  jmp 2b\n"
    ".previous\n");

struct cf_pollfd {
  int32_t fd;
  int16_t events;
  int16_t revents;
};

struct cf_timespec {
  long sec;
  long nsec;
};

/* rt_sigreturn on criu-fast's frame: the thread goes back to its own code. */
static __attribute__((noreturn)) void return_to_thread(uint64_t frame) {
  __asm__ volatile(
      "  movq %0, %%rsp\n"
      "  movq %1, %%rax\n"
      "  syscall\n"
      "1: int3\n"
      "  jmp 1b\n"
      :
      : "r"(frame + 8), "i"(CF_NR_rt_sigreturn)
      : "memory");
  __builtin_unreachable();
}

/* Waits for criu-fast's pidfd to become readable (criu-fast died), at most
 * |timeout| (NULL: for ever). 1: criu-fast is gone; 0: timed out; <0: ppoll
 * failed. Without a pidfd, just sleeps |timeout|. */
static long tracer_gone(const struct cf_par_args *a, const struct cf_timespec *timeout) {
  if (a->tracer_fd < 0) {
    if (timeout) {
      struct cf_timespec t = *timeout;
      cf_sys2(CF_NR_nanosleep, &t, 0);
    }
    return 0;
  }
  struct cf_pollfd p = {a->tracer_fd, CF_POLLIN, 0};
  struct cf_timespec t;
  if (timeout) t = *timeout;
  long r = cf_sys5(CF_NR_ppoll, &p, 1, timeout ? &t : 0, 0, 8);
  return r > 0 ? 1 : r;
}

static void close_pipes(struct cf_par_args *a) {
  for (uint32_t i = 0; i < a->njobs && i < CF_PAR_MAX_JOBS; ++i) {
    if (a->jobs[i].fd >= 0) cf_sys1(CF_NR_close, a->jobs[i].fd);
  }
}

static void fail(struct cf_par_args *a, uint32_t stage, long err, uint64_t job) {
  a->stage = stage;
  a->status = err;
  a->failed_job = job;
}

/* vmsplices the job's iovecs into |wfd|; the iovecs are advanced in place on
 * a partial transfer. */
static long splice_job(struct cf_par_args *a, const struct cf_par_job *j, int wfd) {
  struct cf_par_iovec *iov = &a->iovs[j->iov_first];
  uint32_t left = j->iov_count;
  while (left > 0) {
    uint32_t n = left < CF_UIO_MAXIOV ? left : CF_UIO_MAXIOV;
    long r = cf_sys4(CF_NR_vmsplice, wfd, iov, n, CF_SPLICE_F_NONBLOCK);
    if (r < 0) return r;
    if (r == 0) return -CF_EAGAIN;
    uint64_t got = (uint64_t)r;
    while (left > 0 && got >= iov->len) {
      got -= iov->len;
      ++iov;
      --left;
    }
    if (got > 0) {
      iov->base += got;
      iov->len -= got;
    }
  }
  return 0;
}

static void run_command(struct cf_par_args *a) {
  a->status = 0;
  a->stage = CF_PAR_STAGE_NONE;
  a->failed_job = 0;
  for (uint32_t i = 0; i < a->njobs && i < CF_PAR_MAX_JOBS; ++i) a->jobs[i].fd = -1;
  if (a->cmd != CF_PAR_CMD_FILL) return;
  for (uint32_t i = 0; i < a->njobs && i < CF_PAR_MAX_JOBS; ++i) {
    struct cf_par_job *j = &a->jobs[i];
    int fds[2];
    long r = cf_sys2(CF_NR_pipe2, fds, CF_O_CLOEXEC);
    if (r < 0) {
      fail(a, CF_PAR_STAGE_PIPE, r, i);
      break;
    }
    r = cf_sys3(CF_NR_fcntl, fds[1], CF_F_SETPIPE_SZ, a->pipe_size);
    uint32_t stage = CF_PAR_STAGE_SETPIPE_SZ;
    if (r >= 0 && (uint64_t)r < j->bytes) r = -CF_EAGAIN;
    if (r >= 0) {
      stage = CF_PAR_STAGE_VMSPLICE;
      r = splice_job(a, j, fds[1]);
    }
    cf_sys1(CF_NR_close, fds[1]);
    if (r < 0) {
      cf_sys1(CF_NR_close, fds[0]);
      fail(a, stage, r, i);
      break;
    }
    j->fd = fds[0];
  }
}

void cf_parasite_main(struct cf_par_args *a) {
  if (a->magic != CF_PAR_MAGIC || a->version != CF_PAR_VERSION) {
    a->status = -22; /* EINVAL */
    a->done = CF_PAR_DONE_OVER;
    return;
  }
  const int watch = a->tracer_pid > 0 && a->frame != 0;
  a->tracer_fd = -1;
  if (watch) {
    long fd = cf_sys2(CF_NR_pidfd_open, a->tracer_pid, 0);
    if (fd == -CF_ESRCH) return_to_thread(a->frame); /* criu-fast is already gone */
    if (fd >= 0) a->tracer_fd = (int32_t)fd;
  }
  run_command(a);

  /* The pipes are ready: criu-fast takes them and says so in `taken`. */
  a->done = CF_PAR_DONE_PIPES;
  const struct cf_timespec slice = {0, CF_WAIT_SLICE_NS};
  int gone = 0;
  while (!*(volatile uint64_t *)&a->taken) {
    if (tracer_gone(a, &slice) == 1) {
      gone = 1;
      break;
    }
  }
  close_pipes(a);
  if (!gone) {
    /* Over: criu-fast interrupts the wait below and restores the thread. */
    a->done = CF_PAR_DONE_OVER;
    if (a->tracer_fd < 0) return;
    long r;
    while ((r = tracer_gone(a, 0)) == 0) {
    }
    if (r < 0) return; /* cannot wait: stop on int3 (criu-fast is alive) */
  }
  /* criu-fast is gone: undo and return to the thread's own code. */
  cf_sys1(CF_NR_close, a->tracer_fd);
  return_to_thread(a->frame);
}

/* ---- thread calls (see parasite_abi.h) ---------------------------------- */

void cf_parasite_thread_main(struct cf_par_thread *t) {
  struct cf_par_group *g = (struct cf_par_group *)t->group;
  volatile uint32_t *gone = &g->gone;
  if (t->watcher) {
    g->tracer_fd = -1;
    long fd = cf_sys2(CF_NR_pidfd_open, g->tracer_pid, 0);
    if (fd == -CF_ESRCH) return_to_thread(t->frame); /* criu-fast is already gone */
    if (fd < 0) {
      /* No watch: criu-fast runs no other thread of the group and takes
       * this one back from the int3. */
      t->status = fd;
      t->done = CF_PAR_DONE_OVER;
      return;
    }
    g->tracer_fd = (int32_t)fd;
  }
  for (uint32_t i = 0; i < t->ncalls && i < CF_PAR_THREAD_CALLS; ++i) {
    struct cf_par_call *c = &t->calls[i];
    c->ret = cf_sys6(c->nr, (long)c->args[0], (long)c->args[1], (long)c->args[2], (long)c->args[3],
                     (long)c->args[4], (long)c->args[5]);
  }
  t->status = 0;
  *(volatile uint64_t *)&t->done = CF_PAR_DONE_OVER;
  if (t->watcher) {
    struct cf_pollfd p = {g->tracer_fd, CF_POLLIN, 0};
    long r;
    do {
      p.revents = 0;
      r = cf_sys5(CF_NR_ppoll, &p, 1, 0, 0, 8);
    } while (r == 0 || r == -CF_EINTR);
    if (r < 0) return; /* cannot wait: stop on int3 (criu-fast is alive) */
    /* criu-fast is gone: the others go back too, then this thread. */
    *gone = 1;
    cf_sys6(CF_NR_futex, (long)gone, CF_FUTEX_WAKE_PRIVATE, 0x7fffffff, 0, 0, 0);
    cf_sys1(CF_NR_close, g->tracer_fd);
    return_to_thread(t->frame);
  }
  while (*gone == 0) cf_sys6(CF_NR_futex, (long)gone, CF_FUTEX_WAIT_PRIVATE, 0, 0, 0, 0);
  return_to_thread(t->frame);
}
