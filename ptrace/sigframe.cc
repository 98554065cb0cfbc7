#include "ptrace/sigframe.h"

#include <sys/syscall.h>

#include <cstddef>
#include <cstring>

namespace cf::tracing {
namespace {

// The kernel's x86-64 signal frame (arch/x86/include/uapi/asm/sigcontext.h,
// asm-generic/ucontext.h, arch/x86/include/asm/sigframe.h): facts of the
// ABI, restated with fixed-width fields.
struct KSigcontext {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2;
  uint64_t fpstate;  // address of the xsave area, 0: none
  uint64_t reserved1[8];
};
static_assert(sizeof(KSigcontext) == 256);
static_assert(offsetof(KSigcontext, cs) == 144 && offsetof(KSigcontext, fpstate) == 184);

struct KStack {
  uint64_t ss_sp;
  int32_t ss_flags;
  int32_t pad;
  uint64_t ss_size;
};

struct KUcontext {
  uint64_t uc_flags;
  uint64_t uc_link;
  KStack uc_stack;
  KSigcontext uc_mcontext;
  uint64_t uc_sigmask;
};
static_assert(sizeof(KUcontext) == 304);

struct KRtSigframe {
  uint64_t pretcode;
  KUcontext uc;
  uint8_t info[128];
};
static_assert(sizeof(KRtSigframe) == 440);

// Software bytes of the xsave area (fxsave's sw_reserved, offset 464).
struct FpxSwBytes {
  uint32_t magic1;
  uint32_t extended_size;
  uint64_t xfeatures;
  uint32_t xstate_size;
  uint32_t padding[7];
};
static_assert(sizeof(FpxSwBytes) == 48);

constexpr uint64_t kUcFpXstate = 0x1;
constexpr uint64_t kUcSigcontextSs = 0x2;
constexpr uint64_t kUcStrictRestoreSs = 0x4;
constexpr uint32_t kFpXstateMagic1 = 0x46505853;
constexpr uint32_t kFpXstateMagic2 = 0x46505845;
constexpr size_t kSwBytesOffset = 464;
constexpr size_t kFxsaveAndHeader = 512 + 64;
// An ss_flags mode sigaltstack() rejects with EINVAL before it looks at
// anything else (see the header): rt_sigreturn then keeps the current stack.
constexpr int32_t kAltstackUnchanged = 0x7fff0000;

constexpr long kErestartsys = 512;
constexpr long kErestartnointr = 513;
constexpr long kErestartnohand = 514;
constexpr long kErestartRestartblock = 516;

constexpr size_t Align64(size_t n) { return (n + 63) & ~size_t{63}; }

uint64_t Xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

}  // namespace

user_regs_struct RestartedRegs(const user_regs_struct& regs) {
  user_regs_struct r = regs;
  if (static_cast<int64_t>(r.orig_rax) < 0) return r;
  switch (-static_cast<long>(r.rax)) {
    case kErestartsys:
    case kErestartnointr:
    case kErestartnohand:
      r.rax = r.orig_rax;
      r.rip -= 2;
      break;
    case kErestartRestartblock:
      r.rax = __NR_restart_syscall;
      r.rip -= 2;
      break;
    default:
      break;
  }
  r.orig_rax = static_cast<uint64_t>(-1);
  return r;
}

size_t SigFrameSize(size_t xstate_len) {
  return Align64(sizeof(KRtSigframe)) + Align64(xstate_len + sizeof(uint32_t));
}

std::vector<uint8_t> BuildSigFrame(uint64_t addr, uint64_t pretcode, const user_regs_struct& regs, uint64_t sigmask,
                                   std::span<const uint8_t> xstate) {
  std::vector<uint8_t> out(SigFrameSize(xstate.size()), 0);
  const user_regs_struct r = RestartedRegs(regs);
  KRtSigframe f;
  memset(&f, 0, sizeof(f));
  f.pretcode = pretcode;
  f.uc.uc_flags = kUcSigcontextSs | kUcStrictRestoreSs | (xstate.empty() ? 0 : kUcFpXstate);
  f.uc.uc_stack.ss_flags = kAltstackUnchanged;
  KSigcontext& sc = f.uc.uc_mcontext;
  sc.r8 = r.r8, sc.r9 = r.r9, sc.r10 = r.r10, sc.r11 = r.r11;
  sc.r12 = r.r12, sc.r13 = r.r13, sc.r14 = r.r14, sc.r15 = r.r15;
  sc.rdi = r.rdi, sc.rsi = r.rsi, sc.rbp = r.rbp, sc.rbx = r.rbx;
  sc.rdx = r.rdx, sc.rax = r.rax, sc.rcx = r.rcx, sc.rsp = r.rsp;
  sc.rip = r.rip, sc.eflags = r.eflags;
  sc.cs = static_cast<uint16_t>(r.cs);
  sc.ss = static_cast<uint16_t>(r.ss);
  f.uc.uc_sigmask = sigmask;
  const size_t fp_off = Align64(sizeof(KRtSigframe));
  if (!xstate.empty()) {
    sc.fpstate = addr + fp_off;
    uint8_t* fp = out.data() + fp_off;
    memcpy(fp, xstate.data(), xstate.size());
    // ptrace leaves XCR0 in the first word of the software bytes.
    uint64_t xcr0 = 0;
    if (xstate.size() >= kSwBytesOffset + sizeof(xcr0)) memcpy(&xcr0, fp + kSwBytesOffset, sizeof(xcr0));
    if (xcr0 == 0) xcr0 = Xgetbv0();
    FpxSwBytes sw;
    memset(&sw, 0, sizeof(sw));
    sw.magic1 = kFpXstateMagic1;
    sw.xstate_size = static_cast<uint32_t>(xstate.size());
    sw.extended_size = static_cast<uint32_t>(xstate.size() + sizeof(uint32_t));
    sw.xfeatures = xcr0;
    if (xstate.size() >= kFxsaveAndHeader) memcpy(fp + kSwBytesOffset, &sw, sizeof(sw));
    memcpy(fp + xstate.size(), &kFpXstateMagic2, sizeof(kFpXstateMagic2));
  }
  memcpy(out.data(), &f, sizeof(f));
  return out;
}

}  // namespace cf::tracing
