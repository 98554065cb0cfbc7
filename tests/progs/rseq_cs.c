/* A thread inside an rseq critical section (kinds/thread_props.cc): usage:
 * rseq_cs W
 *
 * A thread spins forever inside a restartable sequence of its own (x86-64:
 * the section is "1: jmp 1b"); it leaves only through the section's abort
 * handler, which the kernel sends it to when a signal comes (or it is
 * preempted), and which counts the aborts. The dump finds the thread inside
 * the section. Restored at its ip inside the section, the thread would spin
 * with the section forgotten (registering rseq again clears rseq_cs, as the
 * restorer's ip is outside the section), and no signal would ever abort it:
 * the check signals the thread and wants the count to grow. Restored at the
 * abort handler (what the kernel would have done), it re-enters the section
 * and signals abort it again.
 */
#include "prog_common.h"

#include <pthread.h>
#include <stddef.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

#define RSEQ_SIG 0x53053053
static volatile uint64_t g_aborts;
static volatile int g_registered = -1;
static pthread_t g_thread;

/* The thread's struct rseq: glibc's registration, or ours. */
static uint64_t *rseq_area(void) {
  static __thread uint32_t own[8] __attribute__((aligned(32)));
  if (&__rseq_size && __rseq_size > 0) return (uint64_t *)((char *)__builtin_thread_pointer() + __rseq_offset);
  if (syscall(SYS_rseq, own, 32, 0, RSEQ_SIG) != 0) return NULL;
  return (uint64_t *)own;
}

static void on_usr2(int sig) { (void)sig; }

static void *spinner(void *arg) {
  (void)arg;
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, NULL);
  uint64_t *rs = rseq_area();
  g_registered = rs != NULL;
  if (!rs) return NULL;
  for (;;) {
    /* rs[1] is struct rseq's rseq_cs field (offset 8). */
    __asm__ volatile(
        ".pushsection __rseq_cs, \"aw\"\n\t"
        ".balign 32\n\t"
        "3:\n\t"
        ".long 0, 0\n\t"
        ".quad 1f, (2f - 1f), 4f\n\t"
        ".popsection\n\t"
        "leaq 3b(%%rip), %%rax\n\t"
        "movq %%rax, %[cs]\n\t"
        "1:\n\t"
        "jmp 1b\n\t"
        "2:\n\t"
        "jmp 5f\n\t"
        ".long 0x53053053\n\t"
        "4:\n\t"
        "addq $1, %[aborts]\n\t"
        "5:\n\t"
        : [cs] "=m"(rs[1]), [aborts] "+m"(g_aborts)
        :
        : "rax", "memory", "cc");
  }
  return NULL;
}

/* Signals the thread until the count passes |from|; 0 when it does. */
static int aborts_again(uint64_t from) {
  for (int i = 0; i < 200; i++) {
    pthread_kill(g_thread, SIGUSR2);
    cf_nap(10);
    if (g_aborts > from) return 0;
  }
  return -1;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "rseq_cs W");
  struct sigaction sa = {0};
  sa.sa_handler = on_usr2;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR2, &sa, NULL);
  if (pthread_create(&g_thread, NULL, spinner, NULL) != 0) cf_die("pthread_create");
  for (int i = 0; i < 1000 && g_registered < 0; i++) cf_nap(5);
  if (g_registered != 1) cf_die("rseq cannot be registered here");
  if (aborts_again(0) != 0) cf_die("a signal does not abort the critical section");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      const uint64_t before = g_aborts;
      CF_CHECK(aborts_again(before) == 0,
               "signals no longer abort the thread's critical section (%lu aborts): it was restored inside it",
               (unsigned long)before);
      cf_report();
    }
    cf_nap(20);
  }
}
#else
int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "rseq_cs W");
  cf_die("x86-64 only");
}
#endif
