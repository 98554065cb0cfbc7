/*
 * The restorer: freestanding code that runs inside a process being restored,
 * after criu-fast has prepared it (descriptors, premapped and filled memory)
 * and before it returns to its own code. It must run from a region that is
 * neither criu-fast's nor the target's, because it removes the first and
 * moves the second into place:
 *
 *   1. unmap every mapping criu-fast had in this process;
 *   2. move each premapped VMA to its address with mremap (no copying) and
 *      the vDSO block to where the target had it;
 *   3. set final protections, then the mm fields with one PR_SET_MM_MAP
 *      (exe included: that needs criu-fast's executable unmapped first);
 *   4. sigactions, itimers;
 *   5. the seccomp filters every thread shares, then the other threads,
 *      each setting its own state (apply_thread: sigaltstack,
 *      clear_child_tid, robust list, rseq, name, no_new_privs, its own
 *      seccomp filters, credentials, parent-death signal), then the
 *      leader's by the same function, then the POSIX timers (a timer may
 *      signal one of those threads), then the queued signals;
 *   6. strict seccomp, in each thread that had it, the very last call;
 *   7. stop on int3. criu-fast, which traces this process, then unmaps this
 *      region, loads the saved registers, xstate and signal mask, and lets
 *      the process run on.
 *
 * seccomp: the filters go in while the thread still has criu-fast's
 * credentials (installing one needs CAP_SYS_ADMIN or no_new_privs), so
 * every later call of the restorer, and criu-fast's own remote calls, run
 * under them. criu-fast traces the process with PTRACE_O_SUSPEND_SECCOMP
 * when it has seccomp (restore/restore.cc): the kernel checks no filter and
 * no strict mode of a task traced so, until criu-fast detaches.
 *
 * Errors are written into the args block (stage, -errno, address) and the
 * restorer stops the same way; criu-fast reads them and kills the process.
 */
#include "restorer_abi.h"
#include "syscall.h"

#define CF_PR_SET_MM 35
#define CF_PR_SET_MM_MAP 14
#define CF_MREMAP_MAYMOVE 1
#define CF_MREMAP_FIXED 2
#define CF_RSEQ_SIG_ANY 0
#define CF_NR_set_robust_list 273 /* not in the shared blobs/syscall.h: the restorer's alone */
#define CF_PR_SET_PDEATHSIG 1
#define CF_NR_capset 126
#define CF_PR_SET_KEEPCAPS 8
#define CF_PR_CAPBSET_DROP 24
#define CF_PR_GET_SECUREBITS 27
#define CF_PR_SET_SECUREBITS 28
#define CF_PR_CAP_AMBIENT 47
#define CF_PR_CAP_AMBIENT_RAISE 2
#define CF_SECBIT_KEEP_CAPS 0x10
#define CF_SECBIT_KEEP_CAPS_LOCKED 0x20
#define CF_LINUX_CAPABILITY_VERSION_3 0x20080522
#define CF_NR_seccomp 317
#define CF_SECCOMP_SET_MODE_STRICT 0
#define CF_SECCOMP_SET_MODE_FILTER 1
#define CF_SECCOMP_MODE_STRICT 1
#define CF_PR_SET_NO_NEW_PRIVS 38

void cf_restorer_main(struct cf_rst_args *a) __attribute__((used, visibility("hidden")));

/* Entry at offset 0 of the blob: rdi = args, rsp = top of our stack. */
__asm__(
    ".section .text.entry,\"ax\",@progbits\n"
    ".globl cf_restorer_entry\n"
    "cf_restorer_entry:\n"
    "  andq $-16, %rsp\n"
    "  call cf_restorer_main\n"
    "1: int3\n"
    "  jmp 1b\n"
    ".previous\n");

#define CF_CLONE_THREAD_FLAGS \
  (0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000) /* VM FS FILES SIGHAND THREAD SYSVSEM */
#define CF_PR_SET_NAME 15
#define CF_NR_futex 202
#define CF_FUTEX_WAIT_PRIVATE 128
#define CF_FUTEX_WAKE_PRIVATE 129

struct cf_clone_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

void cf_thread_main(struct cf_rst_thread *t) __attribute__((used, visibility("hidden"), noreturn));

/* clone3 for a thread: the child starts on its own stack right after the
 * syscall with rax = 0, and calls cf_thread_main(t) (t kept in r12). */
static long clone_thread(struct cf_clone_args *ca, struct cf_rst_thread *t) {
  long ret;
  register struct cf_rst_thread *r12 __asm__("r12") = t;
  __asm__ volatile(
      "syscall\n"
      "test %%rax, %%rax\n"
      "jnz 1f\n"
      "mov %%r12, %%rdi\n"
      "and $-16, %%rsp\n"
      "call cf_thread_main\n"
      "ud2\n"
      "1:\n"
      : "=a"(ret)
      : "a"(CF_NR_clone3), "D"(ca), "S"(sizeof(*ca)), "r"(r12)
      : "rcx", "r11", "memory");
  return ret;
}

static void __attribute__((noreturn)) stop(void) {
  for (;;) __asm__ volatile("int3" ::: "memory");
}

static void __attribute__((noreturn)) fail(struct cf_rst_args *a, int stage, long err, uint64_t addr) {
  a->stage = stage;
  a->error = err;
  a->error_addr = addr;
  stop();
}

struct cf_cap_header {
  uint32_t version;
  int32_t pid;
};
struct cf_cap_data {
  uint32_t eff, prm, inh;
};

static long set_caps(uint64_t eff, uint64_t prm, uint64_t inh) {
  struct cf_cap_header h = {CF_LINUX_CAPABILITY_VERSION_3, 0};
  struct cf_cap_data d[2] = {{(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
                             {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)}};
  return cf_sys2(CF_NR_capset, &h, d);
}

/* Before the uid change: keep the permitted set through it (keep-caps,
 * which needs no privilege), and shrink the bounding set while
 * CAP_SETPCAP is still effective. */
static long caps_before_uids(const struct cf_rst_args *a, struct cf_rst_thread *t) {
  long r = cf_sys5(CF_NR_prctl, CF_PR_SET_KEEPCAPS, 1, 0, 0, 0);
  if (r < 0) return r;
  for (uint32_t cap = 0; cap <= a->cap_last_cap && cap < 64; cap++) {
    if (t->cap_bnd & (1ull << cap)) continue;
    r = cf_sys5(CF_NR_prctl, CF_PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (r < 0) return r;
  }
  return 0;
}

/* After it: every permitted capability effective for a moment (ambient
 * raises and securebits need them), then the sets as they were. The
 * securebits set last clears keep-caps again unless the process had it. */
static long caps_after_uids(const struct cf_rst_args *a, struct cf_rst_thread *t) {
  long r = set_caps(t->cap_prm, t->cap_prm, t->cap_inh);
  if (r < 0) return r;
  for (uint32_t cap = 0; cap <= a->cap_last_cap && cap < 64; cap++) {
    if (!(t->cap_amb & (1ull << cap))) continue;
    r = cf_sys5(CF_NR_prctl, CF_PR_CAP_AMBIENT, CF_PR_CAP_AMBIENT_RAISE, cap, 0, 0);
    if (r < 0) return r;
  }
  r = cf_sys5(CF_NR_prctl, CF_PR_GET_SECUREBITS, 0, 0, 0, 0);
  if (r >= 0 && (uint32_t)r != a->securebits) {
    if (r & CF_SECBIT_KEEP_CAPS_LOCKED) /* only keep-caps differs, and it cannot change */
      r = 0;
    else if (((uint32_t)r ^ a->securebits) == CF_SECBIT_KEEP_CAPS) /* no CAP_SETPCAP needed */
      r = cf_sys5(CF_NR_prctl, CF_PR_SET_KEEPCAPS, 0, 0, 0, 0);
    else
      r = cf_sys5(CF_NR_prctl, CF_PR_SET_SECUREBITS, a->securebits, 0, 0, 0);
  }
  if (r < 0) return r;
  return set_caps(t->cap_eff, t->cap_prm, t->cap_inh);
}

/* The thread's credentials (every call acts on the calling thread alone:
 * raw syscalls, no libc broadcasting them). */
static long apply_creds(struct cf_rst_thread *t) {
  const struct cf_rst_args *a = (const struct cf_rst_args *)t->args;
  const int caps = t->change_caps || a->change_securebits;
  long r;
  if (caps && (r = caps_before_uids(a, t)) < 0) return r;
  if (t->change_creds || a->change_groups) {
    r = cf_sys2(CF_NR_setgroups, a->nr_groups, (const char *)a + a->groups_off);
    if (r < 0) return r;
    r = cf_sys3(CF_NR_setresgid, t->gid[0], t->gid[1], t->gid[2]);
    if (r < 0) return r;
    cf_sys1(CF_NR_setfsgid, t->gid[3]);
    r = cf_sys3(CF_NR_setresuid, t->uid[0], t->uid[1], t->uid[2]);
    if (r < 0) return r;
    cf_sys1(CF_NR_setfsuid, t->uid[3]);
  }
  if (caps && (r = caps_after_uids(a, t)) < 0) return r;
  return 0;
}

/* struct sock_fprog: the number of instructions and where they are. */
struct cf_sock_fprog {
  uint16_t len;
  uint16_t pad[3];
  uint64_t filter;
};

/* Installs, oldest first, the filters of the chain whose newest is |top|
 * (index + 1) down to, not including, |base| (one of its older filters, or
 * 0 for all). The records link each filter to the one before it, as the
 * kernel does; the chain is walked again for each depth (chains are short).
 * On error, *bad is the filter refused. */
static long install_filters(const struct cf_rst_args *a, uint32_t top, uint32_t base, uint32_t *bad) {
  const struct cf_rst_seccomp_filter *f = (const struct cf_rst_seccomp_filter *)((const char *)a + a->seccomp_off);
  uint32_t n = 0;
  for (uint32_t i = top; i != base; i = f[i - 1].parent) {
    *bad = i;
    if (i == 0 || i > a->nr_seccomp || n == a->nr_seccomp) return -22; /* EINVAL: a broken chain */
    n++;
  }
  for (; n > 0; n--) {
    uint32_t i = top;
    for (uint32_t k = 1; k < n; k++) i = f[i - 1].parent;
    struct cf_sock_fprog prog = {(uint16_t)f[i - 1].len, {0, 0, 0}, (uint64_t)a + f[i - 1].prog_off};
    long r = cf_sys3(CF_NR_seccomp, CF_SECCOMP_SET_MODE_FILTER, f[i - 1].flags, &prog);
    *bad = i;
    if (r < 0) return r;
  }
  return 0;
}

/* What only a thread can set about itself, run by every thread (the leader
 * included) on its own record: 0 or -errno (error_addr tells which step
 * failed), which finish_thread records. */
static long apply_thread(struct cf_rst_thread *t) {
  long r = 0;
  t->error_addr = 0;
  if (t->altstack_size) {
    struct {
      uint64_t sp;
      int32_t flags;
      int32_t pad;
      uint64_t size;
    } ss = {t->altstack_sp, (int32_t)(t->altstack_flags & ~1 /* SS_ONSTACK is not settable */), 0,
            t->altstack_size};
    r = cf_sys2(CF_NR_sigaltstack, &ss, 0);
    if (r < 0) t->error_addr = t->altstack_sp;
  }
  cf_sys1(CF_NR_set_tid_address, t->clear_child_tid);
  if (r >= 0 && t->robust_list) {
    r = cf_sys2(CF_NR_set_robust_list, t->robust_list, t->robust_list_len);
    if (r < 0) t->error_addr = t->robust_list;
  }
  if (r >= 0 && t->rseq_ptr) {
    r = cf_sys4(CF_NR_rseq, t->rseq_ptr, t->rseq_len, 0, t->rseq_sig);
    if (r < 0) t->error_addr = t->rseq_ptr;
  }
  if (r >= 0 && t->comm[0]) cf_sys5(CF_NR_prctl, CF_PR_SET_NAME, t->comm, 0, 0, 0);
  if (r >= 0 && t->no_new_privs) r = cf_sys5(CF_NR_prctl, CF_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  /* Its filters beyond those the leader installed for all, before the
   * credentials may drop CAP_SYS_ADMIN. */
  if (r >= 0 && t->seccomp_filter) {
    uint32_t bad = 0;
    r = install_filters((const struct cf_rst_args *)t->args, t->seccomp_filter,
                        ((const struct cf_rst_args *)t->args)->seccomp_common, &bad);
    if (r < 0) t->error_addr = bad;
  }
  if (r >= 0) {
    r = apply_creds(t);
    if (r < 0) t->error_addr = 1;
  }
  /* After the credentials: a change of them clears the parent-death signal. */
  if (r >= 0 && t->pdeathsig) {
    r = cf_sys5(CF_NR_prctl, CF_PR_SET_PDEATHSIG, t->pdeathsig, 0, 0, 0);
    if (r < 0) t->error_addr = t->pdeathsig;
  }
  return r < 0 ? r : 0;
}

/* The thread's result, for criu-fast: 0 or -errno, then the stage. */
static void finish_thread(struct cf_rst_thread *t, long r) {
  t->error = r;
  t->stage = CF_RST_STAGE_DONE;
}

/* Strict seccomp allows read, write, exit and sigreturn only: the last
 * call of a thread. */
static long enter_strict(struct cf_rst_thread *t) {
  if (t->seccomp_mode != CF_SECCOMP_MODE_STRICT) return 0;
  return cf_sys3(CF_NR_seccomp, CF_SECCOMP_SET_MODE_STRICT, 0, 0);
}

/* A new thread: its state, then the int3 stop, or (threads_untraced) it
 * counts itself done and waits for ever, where criu-fast seizes it. */
void cf_thread_main(struct cf_rst_thread *t) {
  long r = apply_thread(t);
  if (r == 0 && (r = enter_strict(t)) < 0) t->error_addr = 0;
  finish_thread(t, r);
  struct cf_rst_args *a = (struct cf_rst_args *)t->args;
  if (a->threads_untraced) {
    uint32_t park = 0;
    __atomic_add_fetch(&a->threads_done, 1, __ATOMIC_RELEASE);
    cf_sys6(CF_NR_futex, (long)&a->threads_done, CF_FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
    for (;;) cf_sys6(CF_NR_futex, (long)&park, CF_FUTEX_WAIT_PRIVATE, 0, 0, 0, 0);
  }
  stop();
}

#define CF_NR_prlimit64 302
#define CF_EPERM 1

/* The resource limits, last: a limit of descriptors, threads or memory
 * set earlier could fail the restore itself. */
static void restore_rlimits(struct cf_rst_args *a) {
  for (uint32_t i = 0; i < a->nr_rlimits && i < CF_RST_MAX_RLIMITS; i++) {
    const struct cf_rst_rlimit *l = &a->rlimits[i];
    uint64_t want[2] = {l->cur, l->max};
    long r = cf_sys4(CF_NR_prlimit64, 0, l->resource, want, 0);
    if (r == -CF_EPERM) {
      /* The hard limit cannot grow here: keep ours, the soft one under it. */
      uint64_t have[2];
      r = cf_sys4(CF_NR_prlimit64, 0, l->resource, 0, have);
      if (r == 0) {
        want[1] = have[1];
        if (want[0] > want[1]) want[0] = want[1];
        r = cf_sys4(CF_NR_prlimit64, 0, l->resource, want, 0);
        if (r == 0) a->rlimits_kept++;
      }
    }
    if (r < 0) fail(a, CF_RST_STAGE_RLIMITS, r, l->resource);
  }
}

/* The leader, with threads_untraced: waits until every other thread has
 * set its state. */
static void wait_threads(struct cf_rst_args *a) {
  if (!a->threads_untraced) return;
  for (;;) {
    uint32_t done = __atomic_load_n(&a->threads_done, __ATOMIC_ACQUIRE);
    if (done + 1 >= a->nr_threads) return;
    cf_sys6(CF_NR_futex, (long)&a->threads_done, CF_FUTEX_WAIT_PRIVATE, done, 0, 0, 0);
  }
}

#define CF_PR_TIMER_CREATE_RESTORE_IDS 77
#define CF_PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define CF_PR_TIMER_CREATE_RESTORE_IDS_ON 1

/* The kernel's sigevent_t on x86-64: 64 bytes, of which it reads these. */
struct cf_sigevent {
  uint64_t value;
  int32_t signo;
  int32_t notify;
  int32_t tid; /* sigev_notify_thread_id */
  int32_t pad[11];
};
_Static_assert(sizeof(struct cf_sigevent) == 64, "sigevent_t is 64 bytes");
_Static_assert(sizeof(struct cf_rst_posix_timer) == 64, "ABI: cf_rst_posix_timer");

/* POSIX timers under their saved ids: with PR_TIMER_CREATE_RESTORE_IDS on,
 * timer_create takes the id from *timer_id (-EBUSY if it is taken) instead
 * of choosing the next one. All are created first, then armed with the time
 * they had left, so that their relative phases stay close. */
static void restore_posix_timers(struct cf_rst_args *a) {
  const struct cf_rst_posix_timer *t = (const struct cf_rst_posix_timer *)((const char *)a + a->posix_timers_off);
  long r;
  if (a->nr_posix_timers == 0) return;
  r = cf_sys5(CF_NR_prctl, CF_PR_TIMER_CREATE_RESTORE_IDS, CF_PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0);
  if (r < 0) fail(a, CF_RST_STAGE_POSIX_TIMERS, r, 0);
  for (uint32_t i = 0; i < a->nr_posix_timers; i++) {
    struct cf_sigevent ev;
    for (int k = 0; k < 11; k++) ((volatile int32_t *)ev.pad)[k] = 0;
    ev.value = t[i].sigev_value;
    ev.signo = t[i].signo;
    ev.notify = t[i].notify;
    ev.tid = t[i].tid;
    int32_t id = t[i].id;
    r = cf_sys3(CF_NR_timer_create, t[i].clock_id, &ev, &id);
    if (r < 0) fail(a, CF_RST_STAGE_POSIX_TIMERS, r, (uint64_t)t[i].id);
    if (id != t[i].id) fail(a, CF_RST_STAGE_POSIX_TIMERS, -17 /* EEXIST: the kernel chose another id */,
                            (uint64_t)t[i].id);
  }
  r = cf_sys5(CF_NR_prctl, CF_PR_TIMER_CREATE_RESTORE_IDS, CF_PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0);
  if (r < 0) fail(a, CF_RST_STAGE_POSIX_TIMERS, r, 0);
  for (uint32_t i = 0; i < a->nr_posix_timers; i++) {
    if (!t[i].value_sec && !t[i].value_nsec) continue; /* disarmed */
    r = cf_sys4(CF_NR_timer_settime, t[i].id, 0, &t[i].interval_sec, 0);
    if (r < 0) fail(a, CF_RST_STAGE_POSIX_TIMERS, r, (uint64_t)t[i].id);
  }
}

void cf_restorer_main(struct cf_rst_args *a) {
  const char *base = (const char *)a;
  const struct cf_rst_range *unmap = (const struct cf_rst_range *)(base + a->unmap_off);
  const struct cf_rst_vma *vmas = (const struct cf_rst_vma *)(base + a->vmas_off);
  struct cf_rst_thread *threads = (struct cf_rst_thread *)(base + a->threads_off);
  long r;

  a->stage = CF_RST_STAGE_START;
  if (a->magic != CF_RST_MAGIC || a->version != CF_RST_VERSION ||
      a->nr_unmap > a->nr_vmas + CF_RST_MAX_UNMAP_EXTRA || a->nr_threads < 1)
    fail(a, CF_RST_STAGE_START, -22, 0);

  a->stage = CF_RST_STAGE_UNMAP;
  for (uint32_t i = 0; i < a->nr_unmap; i++) {
    r = cf_sys2(CF_NR_munmap, unmap[i].start, unmap[i].len);
    if (r < 0) fail(a, CF_RST_STAGE_UNMAP, r, unmap[i].start);
  }

  /* The vDSO block first: where it is now may lie under a VMA's dumped
   * place (the two layouts are unrelated), and that VMA's move would unmap
   * it. Its own dumped place is free: the restore region keeps clear of the
   * image's VMAs, and the step above unmapped everything else. mremap
   * refuses a move onto an overlapping range: such a move stops in the
   * region's spare room first. */
  a->stage = CF_RST_STAGE_VDSO;
  if (a->vdso_len && a->vdso_cur != a->vdso_target) {
    uint64_t from = a->vdso_cur;
    if (from < a->vdso_target + a->vdso_len && a->vdso_target < from + a->vdso_len) {
      r = cf_sys5(CF_NR_mremap, from, a->vdso_len, a->vdso_len, CF_MREMAP_MAYMOVE | CF_MREMAP_FIXED,
                  a->vdso_scratch);
      if ((uint64_t)r != a->vdso_scratch) fail(a, CF_RST_STAGE_VDSO, r, a->vdso_scratch);
      from = a->vdso_scratch;
    }
    r = cf_sys5(CF_NR_mremap, from, a->vdso_len, a->vdso_len, CF_MREMAP_MAYMOVE | CF_MREMAP_FIXED,
                a->vdso_target);
    if ((uint64_t)r != a->vdso_target) fail(a, CF_RST_STAGE_VDSO, r, a->vdso_target);
  }

  a->stage = CF_RST_STAGE_MOVE_VMAS;
  for (uint32_t i = 0; i < a->nr_vmas; i++) {
    if (vmas[i].premap == vmas[i].start) continue;
    r = cf_sys5(CF_NR_mremap, vmas[i].premap, vmas[i].len, vmas[i].len, CF_MREMAP_MAYMOVE | CF_MREMAP_FIXED,
                vmas[i].start);
    if ((uint64_t)r != vmas[i].start) fail(a, CF_RST_STAGE_MOVE_VMAS, r, vmas[i].start);
  }

  a->stage = CF_RST_STAGE_PROTECT;
  for (uint32_t i = 0; i < a->nr_vmas; i++) {
    if (vmas[i].premap_prot == vmas[i].prot) continue;
    r = cf_sys3(CF_NR_mprotect, vmas[i].start, vmas[i].len, vmas[i].prot);
    if (r < 0) fail(a, CF_RST_STAGE_PROTECT, r, vmas[i].start);
  }

  a->stage = CF_RST_STAGE_MM;
  r = cf_sys5(CF_NR_prctl, CF_PR_SET_MM, CF_PR_SET_MM_MAP, &a->mm, sizeof(a->mm), 0);
  if (r < 0) fail(a, CF_RST_STAGE_MM, r, 0);
  cf_sys1(CF_NR_close, a->mm.exe_fd);

  a->stage = CF_RST_STAGE_SIGACTIONS;
  for (int sig = 1; sig <= CF_RST_NSIG; sig++) {
    if (!(a->sigaction_valid & (1ull << (sig - 1)))) continue;
    r = cf_sys4(CF_NR_rt_sigaction, sig, &a->sigactions[sig], 0, 8);
    if (r < 0) fail(a, CF_RST_STAGE_SIGACTIONS, r, (uint64_t)sig);
  }

  a->stage = CF_RST_STAGE_TIMERS;
  for (int which = 0; which < 3; which++) {
    const struct cf_rst_itimer *t = &a->itimers[which];
    if (!t->value_sec && !t->value_usec) continue;
    r = cf_sys3(CF_NR_setitimer, which, t, 0);
    if (r < 0) fail(a, CF_RST_STAGE_TIMERS, r, (uint64_t)which);
  }

  /* The filters every thread has, before the threads: they inherit the
   * chain itself, shared as it was. */
  a->stage = CF_RST_STAGE_SECCOMP;
  if (a->seccomp_common) {
    uint32_t bad = 0;
    r = install_filters(a, a->seccomp_common, 0, &bad);
    if (r < 0) fail(a, CF_RST_STAGE_SECCOMP, r, bad);
  }

  /* Threads, created while the leader still has criu-fast's credentials
   * (clone3 with set_tid needs privilege); each sets its own state,
   * credentials last. */
  a->stage = CF_RST_STAGE_THREADS;
  a->threads_done = 0;
  for (uint32_t i = 0; i < a->nr_threads; i++) threads[i].args = (uint64_t)a;
  for (uint32_t i = 1; i < a->nr_threads; i++) {
    uint64_t tid = (uint64_t)threads[i].tid; /* set_tid wants a pid_t array; little-endian */
    struct cf_clone_args ca;
    ca.flags = CF_CLONE_THREAD_FLAGS;
    ca.pidfd = 0;
    ca.child_tid = 0;
    ca.parent_tid = 0;
    ca.exit_signal = 0;
    ca.stack = threads[i].stack;
    ca.stack_size = threads[i].stack_size;
    ca.tls = 0;
    ca.set_tid = (uint64_t)&tid;
    ca.set_tid_size = 1;
    ca.cgroup = 0;
    r = clone_thread(&ca, &threads[i]);
    if (r < 0) fail(a, CF_RST_STAGE_THREADS, r, (uint64_t)threads[i].tid);
  }

  /* The leader's own state: record 0, by the function every thread runs. */
  a->stage = CF_RST_STAGE_THREAD;
  r = apply_thread(&threads[0]);
  finish_thread(&threads[0], r);
  if (r < 0) fail(a, CF_RST_STAGE_THREAD, r, threads[0].error_addr);

  a->stage = CF_RST_STAGE_POSIX_TIMERS;
  restore_posix_timers(a);

  /* Signals queued at dump time; all signals are blocked until criu-fast
   * loads the saved mask, so they wait in the queues. */
  a->stage = CF_RST_STAGE_SIGNALS;
  const struct cf_rst_siginfo *siginfo = (const struct cf_rst_siginfo *)(base + a->siginfo_off);
  long pid = cf_sys0(CF_NR_getpid);
  long tid = cf_sys0(CF_NR_gettid);
  for (uint32_t i = 0; i < a->nr_siginfo; i++) {
    const struct cf_rst_siginfo *si = &siginfo[i];
    if (si->shared)
      r = cf_sys3(CF_NR_rt_sigqueueinfo, pid, si->signo, si->info);
    else
      r = cf_sys4(CF_NR_rt_tgsigqueueinfo, pid, si->tid ? si->tid : tid, si->signo, si->info);
    if (r < 0) fail(a, CF_RST_STAGE_SIGNALS, r, (uint64_t)si->signo);
  }

  wait_threads(a);
  a->stage = CF_RST_STAGE_RLIMITS;
  a->rlimits_kept = 0;
  restore_rlimits(a);
  r = enter_strict(&threads[0]);
  if (r < 0) fail(a, CF_RST_STAGE_SECCOMP, r, 0);
  a->stage = CF_RST_STAGE_DONE;
  a->error = 0;
  stop();
}
