// seccomp: reading the filter chains at dump, placing them in the restorer
// args at restore, and the `check` probes (kinds/seccomp.h).
#include "kinds/seccomp.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace cf::kinds {
namespace {

constexpr uint32_t kModeFilter = SECCOMP_MODE_FILTER;

struct Filter {
  std::string prog;  // struct sock_filter[]
  uint32_t flags = 0;
};

// The chain of |tid|, oldest first: index 0 of PTRACE_SECCOMP_GET_FILTER
// is the first filter installed; past the newest the kernel answers ENOENT.
Result<std::vector<Filter>> ReadChain(pid_t tid) {
  std::vector<Filter> chain;
  for (unsigned long i = 0;; ++i) {
    void* const index = reinterpret_cast<void*>(i);
    const long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, nullptr);
    if (n < 0 && errno == ENOENT && i > 0) break;
    const std::string what = "filter " + std::to_string(i) + " of thread " + std::to_string(tid);
    if (n <= 0) return ErrnoStatus("PTRACE_SECCOMP_GET_FILTER: " + what);
    Filter f;
    f.prog.resize(static_cast<size_t>(n) * sizeof(sock_filter));
    if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, f.prog.data()) != n) {
      return ErrnoStatus("PTRACE_SECCOMP_GET_FILTER (read): " + what);
    }
    struct {
      uint64_t filter_off;  // in: the index
      uint64_t flags;       // out
    } md{i, 0};
    if (ptrace(PTRACE_SECCOMP_GET_METADATA, tid, reinterpret_cast<void*>(sizeof(md)), &md) < 0) {
      return ErrnoStatus("PTRACE_SECCOMP_GET_METADATA: " + what);
    }
    f.flags = static_cast<uint32_t>(md.flags);
    chain.push_back(std::move(f));
  }
  return chain;
}

// Whether filter |f| (index + 1) is |top| or one of the filters before it.
bool InChain(const img::Process& p, uint32_t top, uint32_t f) {
  for (int n = 0; top != 0 && n <= p.seccomp_filters_size(); ++n) {
    if (top == f) return true;
    if (top > static_cast<uint32_t>(p.seccomp_filters_size())) return false;
    top = p.seccomp_filters(static_cast<int>(top - 1)).parent();
  }
  return false;
}

// The newest filter every thread has (0: none): the leader installs the
// chain up to it before it creates the threads.
uint32_t CommonFilter(const img::Process& p) {
  if (p.threads_size() == 0) return 0;
  uint32_t c = p.threads(0).seccomp_filter();
  while (c != 0 && c <= static_cast<uint32_t>(p.seccomp_filters_size())) {
    bool all = true;
    for (const img::Thread& t : p.threads()) all = all && InChain(p, t.seccomp_filter(), c);
    if (all) return c;
    c = p.seccomp_filters(static_cast<int>(c - 1)).parent();
  }
  return 0;
}

}  // namespace

Status CollectSeccompFilters(pid_t pid, img::Process* p) {
  // (parent, flags, program) -> index + 1 in p->seccomp_filters.
  std::map<std::tuple<uint32_t, uint32_t, std::string>, uint32_t> known;
  for (img::Thread& t : *p->mutable_threads()) {
    if (t.seccomp_mode() != kModeFilter) continue;
    auto chain = ReadChain(t.tid());
    if (!chain.ok()) return chain.status().WithContext("process " + std::to_string(pid));
    uint32_t parent = 0;
    for (Filter& f : *chain) {
      auto [it, added] = known.try_emplace({parent, f.flags, f.prog}, p->seccomp_filters_size() + 1);
      if (added) {
        img::SeccompFilter* out = p->add_seccomp_filters();
        out->set_prog(std::move(f.prog));
        out->set_flags(f.flags);
        out->set_parent(parent);
      }
      parent = it->second;
    }
    t.set_seccomp_filter(parent);
  }
  return OkStatus();
}

uint64_t SeccompArgsBytes(const img::Process& p) {
  uint64_t n = sizeof(cf_rst_seccomp_filter) * static_cast<uint64_t>(p.seccomp_filters_size());
  for (const img::SeccompFilter& f : p.seccomp_filters()) n += (f.prog().size() + 7) & ~uint64_t{7};
  return n;
}

void SeccompToArgs(const img::Process& p, ProcessArgs* out) {
  cf_rst_args* a = out->args;
  char* const block = reinterpret_cast<char*>(a);
  auto* records = reinterpret_cast<cf_rst_seccomp_filter*>(block + a->seccomp_off);
  uint64_t prog_off = a->seccomp_off + sizeof(cf_rst_seccomp_filter) * static_cast<uint64_t>(p.seccomp_filters_size());
  for (int i = 0; i < p.seccomp_filters_size(); ++i) {
    const img::SeccompFilter& f = p.seccomp_filters(i);
    records[i] = {prog_off, static_cast<uint32_t>(f.prog().size() / sizeof(sock_filter)), f.flags(), f.parent(), 0};
    memcpy(block + prog_off, f.prog().data(), f.prog().size());
    prog_off += (f.prog().size() + 7) & ~uint64_t{7};
  }
  a->nr_seccomp = static_cast<uint32_t>(p.seccomp_filters_size());
  a->seccomp_common = CommonFilter(p);
}

bool UsesSeccomp(const img::Process& p) {
  for (const img::Thread& t : p.threads()) {
    if (t.seccomp_mode() != 0) return true;
  }
  return false;
}

namespace {

// A child under a filter that allows everything, seized: the tracer's
// options are |options|. Killed and reaped by the caller.
struct FilteredChild {
  pid_t pid = -1;
  std::string why;
};

FilteredChild StartFilteredChild(long options) {
  FilteredChild c;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return {-1, std::string("pipe: ") + strerror(errno)};
  c.pid = fork();
  if (c.pid == 0) {
    // Async-signal-safe calls only.
    static sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    sock_fprog prog = {1, allow};
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(1);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG, &prog) != 0) _exit(1);
    const char ok = 1;
    if (write(p[1], &ok, 1) != 1) _exit(1);
    for (;;) pause();
  }
  close(p[1]);
  if (c.pid < 0) {
    close(p[0]);
    return {-1, std::string("fork: ") + strerror(errno)};
  }
  char ok = 0;
  ssize_t n;
  do n = read(p[0], &ok, 1);
  while (n < 0 && errno == EINTR);
  close(p[0]);
  if (n != 1) {
    c.why = "the probe child could not install a seccomp filter";
    return c;
  }
  if (ptrace(PTRACE_SEIZE, c.pid, nullptr, reinterpret_cast<void*>(options)) != 0) {
    c.why = std::string("PTRACE_SEIZE with PTRACE_O_SUSPEND_SECCOMP: ") + strerror(errno);
    return c;
  }
  int status = 0;
  if (ptrace(PTRACE_INTERRUPT, c.pid, nullptr, nullptr) != 0 || waitpid(c.pid, &status, __WALL) != c.pid) {
    c.why = std::string("interrupt the probe child: ") + strerror(errno);
  }
  return c;
}

void EndChild(const FilteredChild& c) {
  if (c.pid <= 0) return;
  kill(c.pid, SIGKILL);
  int status;
  while (waitpid(c.pid, &status, __WALL) < 0 && errno == EINTR) {
  }
}

}  // namespace

ProbeResult ProbeSeccompSuspend() {
  const FilteredChild c = StartFilteredChild(PTRACE_O_TRACESYSGOOD | PTRACE_O_SUSPEND_SECCOMP);
  EndChild(c);
  if (!c.why.empty()) return {false, c.why};
  return {true, ""};
}

ProbeResult ProbeSeccompFilters() {
  const FilteredChild c = StartFilteredChild(PTRACE_O_TRACESYSGOOD | PTRACE_O_SUSPEND_SECCOMP);
  ProbeResult r{true, ""};
  if (!c.why.empty()) {
    r = {false, c.why};
  } else if (auto chain = ReadChain(c.pid); !chain.ok()) {
    r = {false, chain.status().ToString()};
  } else if (chain->size() != 1 || chain->front().prog.size() != sizeof(sock_filter) ||
             !(chain->front().flags & SECCOMP_FILTER_FLAG_LOG)) {
    r = {false, "the filter read back differs from the one installed"};
  }
  EndChild(c);
  return r;
}

}  // namespace cf::kinds
