/* fpu_regs W: known values that live only in FPU/vector registers while the
 * program spins, so a dump must take them from the registers and a restore
 * must put them back.
 *
 * Loaded once, before spinning:
 *   x87   ST(7)..ST(0) = pi, 1, log2(e) (fldpi, fld1, fldl2e, in the default
 *         control word) and five long doubles from memory; then the control
 *         word 0x067f (double precision, round down: not the default 0x037f)
 *   MXCSR 0xffa0 (flush to zero, round toward zero, precision flag set; the
 *         default is 0x1f80)
 *   SSE   xmm0-15, AVX ymm0-15 (upper halves too), AVX-512 zmm0-31 and
 *         k0-k7: a distinct pattern per register and byte. Only the parts the
 *         CPU and kernel support (cpuid, xgetbv): AVX-512 code is plain
 *         inline asm, the C code is built for the baseline ISA.
 * The spin loop (a function compiled with target("general-regs-only"), so the
 * compiler puts nothing in those registers) never reloads them: each round
 * it XSAVEs the registers and compares the x87 control/status/tag words,
 * MXCSR, ST0-7, XMM, YMM-high, opmask, ZMM-high and zmm16-31 areas with the
 * XSAVE taken right after loading. A difference is recorded (and reported at
 * the next check). On SIGUSR1 (the handler only sets a flag; the kernel keeps
 * the registers across it) the loop stores every register with fstp,
 * fnstcw, stmxcsr, vmovdqu64/kmov, returns, and the stored values are
 * compared with the expected ones; then it loads them again and spins on.
 * W/features lists what is tested ("x87 sse avx avx512f avx512bw").
 */
#include "prog_common.h"  /* first: it defines _GNU_SOURCE */

#include <cpuid.h>

#define FCW_SET 0x067f
#define MXCSR_SET 0xffa0u
#define MXCSR_DEFAULT 0x1f80u
#define XSAVE_MAX 16384
#define SPIN_ROUNDS (1UL << 20)

struct st_slot {
  unsigned char b[16]; /* 10 bytes used */
};

static int have_xsave, have_avx, have_avx512, have_bw;
static uint64_t xsave_mask;
static uint32_t xsave_size;

/* The values to load (and so to find). */
static unsigned char vec_expect[32][64] __attribute__((aligned(64)));
static uint64_t k_expect[8];
static struct st_slot ld_mem[5];      /* the five fldt operands */
static struct st_slot st_expect[8];   /* ST(0)..ST(7) after loading */
static uint16_t fcw_set = FCW_SET;
static uint32_t mxcsr_set = MXCSR_SET, mxcsr_default = MXCSR_DEFAULT;

/* What the spin loop stored on SIGUSR1. */
static unsigned char vec_out[32][64] __attribute__((aligned(64)));
static uint64_t k_out[8];
static struct st_slot st_out[8];
static uint16_t fcw_out;
static uint32_t mxcsr_out;

/* XSAVE areas: right after loading, and each round. */
static unsigned char xs_ref[XSAVE_MAX] __attribute__((aligned(64)));
static unsigned char xs_cur[XSAVE_MAX] __attribute__((aligned(64)));

/* The byte ranges of an XSAVE area that hold the loaded state. */
struct range {
  uint32_t off, len;
  const char *what;
};
static struct range ranges[32];
static int nranges;
static uint32_t mismatch_at; /* byte offset of the first difference */

static void add_range(uint32_t off, uint32_t len, const char *what) {
  ranges[nranges++] = (struct range){off, len, what};
}

static void detect(void) {
  unsigned a, b, c, d;
  __cpuid(1, a, b, c, d);
  const int osxsave = (c >> 27) & 1;
  have_xsave = ((c >> 26) & 1) && osxsave;
  uint64_t xcr0 = 0;
  if (osxsave) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = ((uint64_t)hi << 32) | lo;
  }
  have_avx = ((c >> 28) & 1) && (xcr0 & 6) == 6;
  if (__get_cpuid_max(0, NULL) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    have_avx512 = have_avx && ((b >> 16) & 1) && (xcr0 & 0xe0) == 0xe0;
    have_bw = have_avx512 && ((b >> 30) & 1);
  }
  add_range(0, 2, "x87 control word");
  add_range(2, 2, "x87 status word");
  add_range(4, 1, "x87 tag word");
  add_range(24, 4, "MXCSR");
  for (int i = 0; i < 8; i++) add_range(32 + 16 * (uint32_t)i, 10, "x87 ST register");
  add_range(160, 256, "XMM registers");
  if (!have_xsave) return;
  xsave_mask = 3;
  if (have_avx) xsave_mask |= 4;
  if (have_avx512) xsave_mask |= 0xe0;
  __cpuid_count(0xd, 0, a, b, c, d);
  xsave_size = b;
  if (xsave_size > XSAVE_MAX || xsave_size < 576) cf_die("XSAVE area of %u bytes", xsave_size);
  static const struct {
    int comp;
    const char *what;
  } comps[] = {{2, "YMM upper halves"}, {5, "opmask k0-7"}, {6, "ZMM0-15 upper halves"}, {7, "ZMM16-31"}};
  for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
    if (!(xsave_mask & (1ULL << comps[i].comp))) continue;
    __cpuid_count(0xd, (unsigned)comps[i].comp, a, b, c, d);
    if (b + a > xsave_size) cf_die("XSAVE component %d at %u+%u beyond %u", comps[i].comp, b, a, xsave_size);
    add_range(b, a, comps[i].what);
  }
}

static void setup_values(void) {
  for (int r = 0; r < 32; r++) {
    for (int j = 0; j < 64; j++) vec_expect[r][j] = (unsigned char)(((r * 64 + j) * 37 + 11) ^ 0xa5);
  }
  for (int i = 0; i < 8; i++) {
    k_expect[i] = 0x0123456789abcdefULL * (uint64_t)(i + 3) ^ 0xf0f0f0f00f0f0f0fULL;
    if (!have_bw) k_expect[i] &= 0xffff;
  }
  const long double vals[5] = {1.5L, -2.25e-3L, 12345.6789L, -1.0e300L, 0.1L};
  for (int i = 0; i < 5; i++) {
    memset(&ld_mem[i], 0, sizeof(ld_mem[i]));
    memcpy(ld_mem[i].b, &vals[i], 10);
    st_expect[4 - i] = ld_mem[i];
  }
  /* The constants as this CPU makes them in the default control word. */
  memset(st_expect + 5, 0, 3 * sizeof(st_expect[0]));
  __asm__ volatile("fldl2e\n\tfstpt %0" : "=m"(st_expect[5]));
  __asm__ volatile("fld1\n\tfstpt %0" : "=m"(st_expect[6]));
  __asm__ volatile("fldpi\n\tfstpt %0" : "=m"(st_expect[7]));
}

/* ---- the register code: nothing but general registers in C ---------------- */

#define GRO __attribute__((target("general-regs-only"), noinline))

#define Z(n) "vmovdqu64 " #n "*64(%0), %%zmm" #n "\n\t"
#define ZS(n) "vmovdqu64 %%zmm" #n ", " #n "*64(%0)\n\t"
#define Y(n) "vmovdqu " #n "*64(%0), %%ymm" #n "\n\t"
#define YS(n) "vmovdqu %%ymm" #n ", " #n "*64(%0)\n\t"
#define X(n) "movdqu " #n "*64(%0), %%xmm" #n "\n\t"
#define XS(n) "movdqu %%xmm" #n ", " #n "*64(%0)\n\t"
#define KQ(n) "kmovq " #n "*8(%0), %%k" #n "\n\t"
#define KQS(n) "kmovq %%k" #n ", " #n "*8(%0)\n\t"
#define KW(n) "kmovw " #n "*8(%0), %%k" #n "\n\t"
#define KWS(n) "kmovw %%k" #n ", %%eax\n\tmovq %%rax, " #n "*8(%0)\n\t"
#define R16(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define R32(M) R16(M) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)
#define R8(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

GRO static void load_regs(void) {
  if (have_avx512) {
    __asm__ volatile(R32(Z) ::"r"(vec_expect) : "memory");
    if (have_bw) {
      __asm__ volatile(R8(KQ) ::"r"(k_expect) : "memory");
    } else {
      __asm__ volatile(R8(KW) ::"r"(k_expect) : "memory");
    }
  } else if (have_avx) {
    __asm__ volatile(R16(Y) ::"r"(vec_expect) : "memory");
  } else {
    __asm__ volatile(R16(X) ::"r"(vec_expect) : "memory");
  }
  __asm__ volatile(
      "fldpi\n\tfld1\n\tfldl2e\n\t"
      "fldt 0(%0)\n\tfldt 16(%0)\n\tfldt 32(%0)\n\tfldt 48(%0)\n\tfldt 64(%0)\n\t"
      "fldcw (%1)\n\tldmxcsr (%2)" ::"r"(ld_mem),
      "r"(&fcw_set), "r"(&mxcsr_set)
      : "memory");
}

/* Stores every register and leaves the FPU as the ABI wants it (empty x87
 * stack, default control word and MXCSR, clean upper halves). */
GRO static void store_regs(void) {
  if (have_avx512) {
    __asm__ volatile(R32(ZS) ::"r"(vec_out) : "memory");
    if (have_bw) {
      __asm__ volatile(R8(KQS) ::"r"(k_out) : "memory");
    } else {
      __asm__ volatile(R8(KWS) ::"r"(k_out) : "rax", "memory");
    }
  } else if (have_avx) {
    __asm__ volatile(R16(YS) ::"r"(vec_out) : "memory");
  } else {
    __asm__ volatile(R16(XS) ::"r"(vec_out) : "memory");
  }
  __asm__ volatile(
      "fnstcw (%1)\n\tstmxcsr (%2)\n\t"
      "fstpt 0(%0)\n\tfstpt 16(%0)\n\tfstpt 32(%0)\n\tfstpt 48(%0)\n\t"
      "fstpt 64(%0)\n\tfstpt 80(%0)\n\tfstpt 96(%0)\n\tfstpt 112(%0)\n\t"
      "fninit\n\tldmxcsr (%3)" ::"r"(st_out),
      "r"(&fcw_out), "r"(&mxcsr_out), "r"(&mxcsr_default)
      : "memory");
  if (have_avx) __asm__ volatile("vzeroupper" ::: "memory");
}

GRO static void xsave_now(unsigned char *area) {
  /* Cleared first: a component the CPU does not write (in its init state)
   * then reads as zeros, not as last round's values. */
  void *dst = area;
  unsigned long n = xsave_size / 8;
  __asm__ volatile("rep stosq" : "+D"(dst), "+c"(n) : "a"(0UL) : "memory");
  __asm__ volatile("xsave (%0)" ::"r"(area), "a"((uint32_t)xsave_mask), "d"((uint32_t)(xsave_mask >> 32))
                   : "memory");
}

/* 0 if equal, else 1 + the offset of the first differing byte. */
GRO static uint32_t xsave_diff(void) {
  for (int i = 0; i < nranges; i++) {
    const unsigned char *a = xs_ref + ranges[i].off, *b = xs_cur + ranges[i].off;
    unsigned long n = ranges[i].len;
    __asm__ volatile("repe cmpsb" : "+S"(a), "+D"(b), "+c"(n) : : "cc", "memory");
    if (n != 0 || a[-1] != b[-1]) return (uint32_t)(a - 1 - xs_ref) + 1;
  }
  return 0;
}

/* Loads the registers and spins. Returns 1 on SIGUSR1, 2 after SPIN_ROUNDS
 * rounds (to check the lifetime), 3 when the XSAVE differs (mismatch_at). */
GRO static int spin(void) {
  load_regs();
  if (have_xsave) {
    xsave_now(xs_cur);
    unsigned long n = xsave_size / 8;
    void *src = xs_cur, *dst = xs_ref;
    __asm__ volatile("rep movsq" : "+S"(src), "+D"(dst), "+c"(n) : : "memory");
  }
  for (unsigned long round = 0;; round++) {
    if (cf_usr1_pending) {
      store_regs();
      return 1;
    }
    if (have_xsave) {
      xsave_now(xs_cur);
      const uint32_t d = xsave_diff();
      if (d) {
        mismatch_at = d - 1;
        store_regs();
        return 3;
      }
    } else {
      __asm__ volatile("pause");
    }
    if (round >= SPIN_ROUNDS) {
      store_regs();
      return 2;
    }
  }
}

/* ---- checks (ordinary C again) ---------------------------------------------- */

static const char *range_name(uint32_t off) {
  for (int i = 0; i < nranges; i++) {
    if (off >= ranges[i].off && off < ranges[i].off + ranges[i].len) return ranges[i].what;
  }
  return "?";
}

static void check_stored(void) {
  CF_CHECK(fcw_out == FCW_SET, "x87 control word %#x, want %#x", fcw_out, FCW_SET);
  CF_CHECK(mxcsr_out == MXCSR_SET, "MXCSR %#x, want %#x", mxcsr_out, MXCSR_SET);
  for (int i = 0; i < 8; i++) {
    CF_CHECK(memcmp(st_out[i].b, st_expect[i].b, 10) == 0, "x87 ST(%d) differs", i);
  }
  const int nregs = have_avx512 ? 32 : 16;
  const int width = have_avx512 ? 64 : have_avx ? 32 : 16;
  for (int r = 0; r < nregs; r++) {
    for (int j = 0; j < width; j++) {
      if (vec_out[r][j] != vec_expect[r][j]) {
        cf_failf("%s%d byte %d is %#x, want %#x", width == 64 ? "zmm" : width == 32 ? "ymm" : "xmm", r, j,
                 vec_out[r][j], vec_expect[r][j]);
        r = nregs;
        break;
      }
    }
  }
  if (have_avx512) {
    for (int i = 0; i < 8; i++) {
      CF_CHECK(k_out[i] == k_expect[i], "k%d is %#llx, want %#llx", i, (unsigned long long)k_out[i],
               (unsigned long long)k_expect[i]);
    }
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "fpu_regs W");
  detect();
  setup_values();
  char features[128];
  snprintf(features, sizeof(features), "x87 sse%s%s%s%s\n", have_avx ? " avx" : "", have_avx512 ? " avx512f" : "",
           have_bw ? " avx512bw" : "", have_xsave ? " xsave" : "");
  if (cf_write_file("features", features) != 0) cf_die("write features");
  cf_ready();

  for (;;) {
    const int r = spin();
    /* A failure stays recorded until the next report. */
    if (r == 3) {
      cf_failf("registers changed while spinning: XSAVE byte %u (%s)", mismatch_at, range_name(mismatch_at));
    }
    if (r == 1 || r == 3) check_stored();
    if (r == 1) {
      cf_take_usr1();
      cf_report();
    }
    cf_check_lifetime();
  }
}
