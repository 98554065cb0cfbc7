/*
 * The interface between criu-fast and the drain parasite: plain C structs,
 * shared by the freestanding blob (C11) and the C++ side
 * (memdrain/parasite.h). Layout changes must bump CF_PAR_VERSION.
 *
 * The parasite area, one anonymous mapping made in the target by remote
 * mmap, holds in order: the blob's code (entry at offset 0, made read+exec),
 * the cf_par_args block (read/written by criu-fast with
 * process_vm_readv/writev), and the parasite's stack.
 *
 * One command per run: criu-fast fills the args, points the target's leader
 * thread at the entry (rdi = args, rsp = top of the stack) and lets it run.
 *
 * CF_PAR_CMD_FILL: for each job, make a pipe, grow it to pipe_size, vmsplice
 * the job's iovecs into it (non-blocking: a job never holds more than
 * pipe_size bytes), close the write end, and leave the read end's number in
 * job.fd. On an error the parasite stops making pipes: status = -errno,
 * failed_job = the job, stage says which call failed; the jobs before it
 * keep their pipes.
 *
 * The end of a command, in steps criu-fast watches by reading `done`:
 *  1. done = CF_PAR_DONE_PIPES: criu-fast takes every read end with
 *     pidfd_getfd while the parasite waits, then sets taken = 1;
 *  2. the parasite closes its copies of the read ends and sets done =
 *     CF_PAR_DONE_OVER; it then blocks in ppoll() on a pidfd of criu-fast
 *     (tracer_pid, as the target's pid namespace numbers it), where criu-fast
 *     interrupts it (PTRACE_INTERRUPT), closes tracer_fd by a remote close()
 *     made from that stop (its registers lead through the return frame of
 *     RemoteSyscall, should criu-fast die during it) and puts the thread's
 *     registers back.
 * Should criu-fast die at any point, its pidfd becomes readable: the
 * parasite closes every descriptor it made and returns the thread to its
 * own registers, signal mask and FPU state through rt_sigreturn on the frame
 * at `frame` (built by criu-fast, ptrace/sigframe.h). So the target holds
 * no descriptor of the parasite between commands, and one killed criu-fast
 * leaves at most the parasite's mapping behind. With tracer_pid 0 (criu-fast
 * is not visible from the target's pid namespace) the parasite stops on int3
 * after step 2 instead.
 */
#ifndef CF_PARASITE_ABI_H
#define CF_PARASITE_ABI_H

#include <stdint.h>

#define CF_PAR_MAGIC 0x50524146u /* "FARP" */
#define CF_PAR_VERSION 4u

#define CF_PAR_MAX_JOBS 64  /* pipes per command: descriptors the target holds at once */
#define CF_PAR_MAX_IOVS 4096 /* iovecs per command, all jobs together */

enum cf_par_cmd {
  CF_PAR_CMD_FILL = 1,
};

enum cf_par_done {
  CF_PAR_DONE_NOT_YET = 0,
  CF_PAR_DONE_PIPES = 1, /* the read ends are in jobs[].fd: take them */
  CF_PAR_DONE_OVER = 2,  /* waiting to be interrupted */
};

enum cf_par_stage {
  CF_PAR_STAGE_NONE = 0,
  CF_PAR_STAGE_PIPE,
  CF_PAR_STAGE_SETPIPE_SZ,
  CF_PAR_STAGE_VMSPLICE,
  CF_PAR_STAGE_SHORT, /* vmsplice took fewer bytes than the job holds */
};

struct cf_par_iovec {
  uint64_t base;
  uint64_t len;
};

struct cf_par_job {
  uint32_t iov_first; /* index into iovs */
  uint32_t iov_count;
  uint64_t bytes;     /* sum of the iovecs' lengths */
  int32_t fd;         /* out: read end of the filled pipe, -1 if none */
  int32_t pad;
};

struct cf_par_args {
  uint32_t magic;
  uint32_t version;
  uint32_t cmd;
  uint32_t njobs;
  uint32_t stage;      /* out: cf_par_stage of the failure */
  int64_t status;      /* out: 0, or -errno */
  uint64_t failed_job; /* out */
  uint64_t pipe_size;  /* bytes to F_SETPIPE_SZ each pipe to */
  uint64_t done;       /* out: cf_par_done */
  uint64_t taken;      /* in: criu-fast sets it to 1 once it took the read ends */
  uint64_t frame;      /* return frame: rt_sigreturn with rsp = frame + 8 */
  int32_t tracer_pid;  /* criu-fast's pid in the target's namespace, 0: unknown */
  int32_t tracer_fd;   /* out: the parasite's pidfd of criu-fast, -1: none */
  struct cf_par_job jobs[CF_PAR_MAX_JOBS];
  struct cf_par_iovec iovs[CF_PAR_MAX_IOVS];
};

#define CF_PAR_STACK_SIZE (32 * 1024)

/*
 * Thread calls: a few system calls run by every thread of a group at once,
 * each on its own (memdrain/thread_calls.h), entered at the blob's offset
 * CF_PAR_THREAD_ENTRY with rdi = the thread's cf_par_thread and rsp = the
 * top of its stack, every signal blocked. Each thread makes its calls, stores
 * their results and sets done = CF_PAR_DONE_OVER, then waits to be taken
 * back (criu-fast interrupts the wait and puts the thread's registers back).
 *
 * One thread of the group, the watcher (the leader), runs first: it opens a
 * pidfd of criu-fast (group.tracer_fd, then its calls) and waits in ppoll()
 * on it; the others wait on the futex group.gone. Should criu-fast die, the
 * watcher sets gone = 1, wakes the others, closes its pidfd, and each thread
 * returns to its own registers, signal mask and FPU state through
 * rt_sigreturn on its own frame (`frame`, ptrace/sigframe.h). criu-fast
 * starts the others only once the watcher watches (its done is set with
 * status 0), and closes the watcher's pidfd with a remote close() when the
 * group is over.
 */
#define CF_PAR_THREAD_ENTRY 64 /* offset of the thread calls' entry in the blob */
#define CF_PAR_THREAD_CALLS 4  /* calls per thread */
#define CF_PAR_THREAD_OUT 256  /* bytes of output per thread */

struct cf_par_group {
  uint32_t magic;
  uint32_t version;
  int32_t tracer_pid; /* criu-fast's pid in the target's namespace */
  int32_t tracer_fd;  /* out: the watcher's pidfd of criu-fast, -1: none */
  uint32_t gone;      /* futex: 1 once the watcher saw criu-fast die */
  uint32_t pad;
};

struct cf_par_call {
  int64_t nr;
  uint64_t args[6];
  int64_t ret; /* out: the raw result (-errno) */
};

struct cf_par_thread {
  uint64_t group;   /* address of the cf_par_group */
  uint64_t frame;   /* this thread's return frame: rt_sigreturn with rsp = frame + 8 */
  uint32_t ncalls;
  uint32_t watcher; /* 1: this thread watches criu-fast (see above) */
  int64_t status;   /* out: 0, or -errno of the watch */
  uint64_t done;    /* out: CF_PAR_DONE_OVER once the calls are made */
  struct cf_par_call calls[CF_PAR_THREAD_CALLS];
  uint8_t out[CF_PAR_THREAD_OUT];
};

#endif /* CF_PARASITE_ABI_H */
