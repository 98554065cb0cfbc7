/*
 * Raw x86-64 system calls for freestanding code: no libc, no errno; each
 * call returns the kernel's value (-errno on failure).
 */
#ifndef CF_RESTORER_SYSCALL_H
#define CF_RESTORER_SYSCALL_H

#include <stdint.h>

static inline long cf_sys6(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  long ret;
  register long r10 __asm__("r10") = a3;
  register long r8 __asm__("r8") = a4;
  register long r9 __asm__("r9") = a5;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

#define cf_sys0(nr) cf_sys6((nr), 0, 0, 0, 0, 0, 0)
#define cf_sys1(nr, a) cf_sys6((nr), (long)(a), 0, 0, 0, 0, 0)
#define cf_sys2(nr, a, b) cf_sys6((nr), (long)(a), (long)(b), 0, 0, 0, 0)
#define cf_sys3(nr, a, b, c) cf_sys6((nr), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define cf_sys4(nr, a, b, c, d) cf_sys6((nr), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define cf_sys5(nr, a, b, c, d, e) cf_sys6((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* Syscall numbers (x86-64). */
#define CF_NR_read 0
#define CF_NR_close 3
#define CF_NR_mprotect 10
#define CF_NR_munmap 11
#define CF_NR_rt_sigaction 13
#define CF_NR_mremap 25
#define CF_NR_setitimer 38
#define CF_NR_getpid 39
#define CF_NR_exit 60
#define CF_NR_kill 62
#define CF_NR_setresuid 117
#define CF_NR_setresgid 119
#define CF_NR_setfsuid 122
#define CF_NR_setfsgid 123
#define CF_NR_setgroups 116
#define CF_NR_sigaltstack 131
#define CF_NR_prctl 157
#define CF_NR_set_tid_address 218
#define CF_NR_rseq 334
#define CF_NR_gettid 186
#define CF_NR_clone3 435
#define CF_NR_timer_create 222
#define CF_NR_timer_settime 223
#define CF_NR_rt_sigqueueinfo 129
#define CF_NR_rt_tgsigqueueinfo 297
#define CF_NR_pidfd_send_signal 424

#endif /* CF_RESTORER_SYSCALL_H */
