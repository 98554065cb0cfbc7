/*
 * The interface between criu-fast and the restorer blob: plain C structs,
 * shared by the freestanding blob (C11) and the C++ side. Layout changes
 * must bump CF_RST_VERSION; sizes are checked with static asserts on both
 * sides.
 *
 * The restorer region, mapped at a hole that neither criu-fast nor the
 * target uses, holds in order: the blob's code (entry at offset 0), the
 * cf_rst_args block with its arrays, and the restorer's stack.
 *
 * The args block is cf_rst_args followed by variable-size arrays, each
 * found by its offset from the start of the block: the ranges to unmap
 * (at most CF_RST_MAX_UNMAP_EXTRA more than the VMAs), the VMAs, the
 * threads (the leader first), the POSIX timers, the queued signals and the supplementary groups.
 */
#ifndef CF_RESTORER_ABI_H
#define CF_RESTORER_ABI_H

#include <stdint.h>

#define CF_RST_MAGIC 0x43465253u /* "SRFC" */
#define CF_RST_VERSION 10u
#define CF_RST_NSIG 64

/* Stages the restorer reports in cf_rst_args.stage (for error messages). */
enum cf_rst_stage {
  CF_RST_STAGE_START = 1,
  CF_RST_STAGE_UNMAP,
  CF_RST_STAGE_VDSO,
  CF_RST_STAGE_MOVE_VMAS,
  CF_RST_STAGE_PROTECT,
  CF_RST_STAGE_MM,
  CF_RST_STAGE_SIGACTIONS,
  CF_RST_STAGE_TIMERS,
  CF_RST_STAGE_THREAD,
  CF_RST_STAGE_CREDS,
  CF_RST_STAGE_SIGNALS,
  CF_RST_STAGE_THREADS,
  CF_RST_STAGE_POSIX_TIMERS,
  CF_RST_STAGE_DONE,
  CF_RST_STAGE_SECCOMP, /* after DONE: the values above keep theirs */
  CF_RST_STAGE_RLIMITS,
};

struct cf_rst_range {
  uint64_t start;
  uint64_t len;
};

/* Ranges to unmap: the gaps around the restore region, the vDSO block and
 * the VMAs premapped at their own address; at most one per VMA plus this. */
#define CF_RST_MAX_UNMAP_EXTRA 4
/* cf_rst_vma.premap_prot when criu-fast does not know it. */
#define CF_RST_PROT_UNKNOWN 0xffffffffu

struct cf_rst_vma {
  uint64_t premap; /* where the contents sit now */
  uint64_t start;  /* where they must go */
  uint64_t len;
  uint32_t prot;   /* final protection */
  uint32_t premap_prot; /* its protection now (no mprotect when equal), or CF_RST_PROT_UNKNOWN */
};

struct cf_rst_sigaction { /* the kernel's struct sigaction on x86-64 */
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

/* A resource limit (prlimit64's struct rlimit64 and its resource). */
#define CF_RST_MAX_RLIMITS 16
struct cf_rst_rlimit {
  uint32_t resource;
  uint32_t pad;
  uint64_t cur;
  uint64_t max;
};

struct cf_rst_itimer {
  int64_t interval_sec;
  int64_t interval_usec;
  int64_t value_sec;
  int64_t value_usec;
};

/* struct prctl_mm_map of <linux/prctl.h> (PR_SET_MM_MAP). */
struct cf_rst_mm_map {
  uint64_t start_code, end_code;
  uint64_t start_data, end_data;
  uint64_t start_brk, brk;
  uint64_t start_stack;
  uint64_t arg_start, arg_end;
  uint64_t env_start, env_end;
  uint64_t auxv;       /* address of the auxv array (inside the args block) */
  uint32_t auxv_size;  /* bytes */
  uint32_t exe_fd;
};

/* A queued signal to send again (to ourselves, so any si_code is allowed). */
struct cf_rst_siginfo {
  int32_t signo;
  int32_t shared; /* process-wide queue, else the queue of thread tid */
  int32_t tid;
  int32_t pad;
  uint8_t info[128];
};

/* A thread's own state, set by the thread itself (one function for all).
 * Record 0 is the leader, which runs the restorer; the others are created
 * by it with their TIDs. The fields after stack_size are the to_args part
 * of the per-thread property table (kinds/thread_props.h). */
struct cf_rst_thread {
  int32_t tid;
  int32_t stage;    /* written by the thread: CF_RST_STAGE_DONE when ready */
  int64_t error;    /* -errno of a failed call */
  uint64_t error_addr; /* what the failed call was given (address) */
  uint64_t stack;   /* lowest address of its stack in the restore region (0: the leader) */
  uint64_t stack_size;
  uint64_t altstack_sp;
  int64_t altstack_flags;
  uint64_t altstack_size;
  uint64_t clear_child_tid;
  uint64_t rseq_ptr;
  uint32_t rseq_len;
  uint32_t rseq_sig;
  char comm[16];
  uint64_t robust_list; /* set_robust_list head (0: none) */
  uint64_t robust_list_len;
  uint32_t pdeathsig;
  /* Credentials are a thread's own (threads of a process may differ):
   * each thread sets its own, last, when they differ from criu-fast's
   * (which every thread starts with). Capabilities: bit N is capability N. */
  uint32_t change_creds;
  uint32_t uid[4]; /* real, effective, saved, fs */
  uint32_t gid[4];
  uint32_t change_caps;
  uint32_t pad;
  uint64_t cap_eff, cap_prm, cap_inh, cap_bnd, cap_amb;
  uint64_t args; /* the args block (groups, securebits): set by the restorer */
  /* seccomp (kinds/seccomp.h): the mode to end in (0 none, 1 strict, 2
   * filters), the newest filter of the thread's chain (index + 1 in the
   * args block's seccomp array; 0: none) and no_new_privs. */
  uint32_t seccomp_mode;
  uint32_t seccomp_filter;
  uint32_t no_new_privs;
  uint32_t pad5;
};

/* One seccomp filter of the args block's array: its program (struct
 * sock_filter[len], at prog_off from the start of the block), its flags and
 * the filter before it in its chain (index + 1; 0: the oldest). */
struct cf_rst_seccomp_filter {
  uint64_t prog_off;
  uint32_t len;
  uint32_t flags;
  uint32_t parent;
  uint32_t pad;
};

/* A POSIX timer to create with its id (after the threads: SIGEV_THREAD_ID
 * names one) and to arm with the time it had left. */
struct cf_rst_posix_timer {
  int32_t id;
  int32_t clock_id;
  int32_t signo;
  int32_t notify;  /* sigev_notify, SIGEV_THREAD_ID included */
  int32_t tid;     /* SIGEV_THREAD_ID: the thread signalled */
  int32_t pad;
  uint64_t sigev_value;
  int64_t interval_sec, interval_nsec; /* struct itimerspec, in this order */
  int64_t value_sec, value_nsec;       /* relative; 0: left disarmed */
};

struct cf_rst_args {
  uint32_t magic;
  uint32_t version;

  /* Mappings of criu-fast to remove, and VMAs to move into place. The
   * arrays live inside the args block; the offsets are from its start. */
  uint64_t unmap_off;
  uint32_t nr_unmap;
  uint32_t nr_vmas;
  uint64_t vmas_off;

  /* The [vvar][vvar_vclock][vdso] block: where it is and where it goes;
   * vdso_scratch: vdso_len free bytes of the restore region, a stop on the
   * way where the two places overlap. */
  uint64_t vdso_cur;
  uint64_t vdso_len;
  uint64_t vdso_target;
  uint64_t vdso_scratch;

  struct cf_rst_mm_map mm;
  uint64_t auxv[64];

  struct cf_rst_sigaction sigactions[CF_RST_NSIG + 1]; /* index = signo */
  uint64_t sigaction_valid;  /* bit (signo - 1) set: restore that signal */
  struct cf_rst_itimer itimers[3];

  /* Resource limits, set last (after every descriptor, mapping and thread
   * of the restore is made). A hard limit the kernel will not raise
   * (EPERM: no CAP_SYS_RESOURCE) is kept as it is, the soft one capped by
   * it; rlimits_kept counts those (written by the restorer). */
  uint32_t nr_rlimits;
  uint32_t rlimits_kept;
  struct cf_rst_rlimit rlimits[CF_RST_MAX_RLIMITS];

  /* What every thread's credentials share (cf_rst_thread has the rest):
   * a thread changes the groups when its uids or these differ from
   * criu-fast's, its capabilities when the securebits differ. */
  uint32_t change_groups;
  uint32_t nr_groups;
  uint64_t groups_off; /* array of uint32_t gids */
  uint32_t securebits; /* PR_GET_SECUREBITS */
  uint32_t change_securebits;
  uint32_t cap_last_cap; /* /proc/sys/kernel/cap_last_cap */
  uint32_t pad4;

  uint32_t nr_threads; /* the leader included (record 0) */
  /* 1: the threads are made untraced (no PTRACE_O_TRACECLONE): each one,
   * its state set, counts itself in threads_done (a futex the leader waits
   * on before its own stop) and then waits for ever on its record's park
   * word, where criu-fast seizes it. 0: each stops on int3, traced from its
   * creation (a thread under strict seccomp cannot wait on a futex). */
  uint32_t threads_untraced;
  uint64_t threads_off;
  uint32_t threads_done;
  uint32_t pad5;

  uint32_t nr_posix_timers;
  uint32_t pad3;
  uint64_t posix_timers_off; /* array of cf_rst_posix_timer, after the threads */

  uint32_t nr_siginfo; /* every queue: the process's and each thread's */
  uint32_t pad1;
  uint64_t siginfo_off; /* array of cf_rst_siginfo */

  /* seccomp filters (cf_rst_seccomp_filter, then their programs). The
   * chain every thread shares (index + 1 of its newest filter; 0: none) is
   * installed by the leader before it creates the threads, so that they
   * share it as they did (a later TSYNC needs that). */
  uint32_t nr_seccomp;
  uint32_t seccomp_common;
  uint64_t seccomp_off;

  /* Written by the restorer. */
  int32_t stage;
  int32_t pad;
  int64_t error; /* -errno of the failed call, 0 on success */
  uint64_t error_addr;
};

#endif /* CF_RESTORER_ABI_H */
