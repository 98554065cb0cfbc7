#include "memdrain/thread_calls.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "blobs/parasite/parasite_abi.h"
#include "common/fault.h"
#include "common/log.h"
#include "common/timer.h"
#include "memdrain/parasite.h"
#include "pagemap/page_ranges.h"

extern "C" const uint8_t cf_parasite_blob_start[];
extern "C" const uint8_t cf_parasite_blob_end[];

namespace cf::memdrain {
namespace {

static_assert(ThreadCalls::kMaxCalls == CF_PAR_THREAD_CALLS);
static_assert(ThreadCalls::kOutBytes == CF_PAR_THREAD_OUT);

constexpr uint64_t kStack = 4096;  // per thread: the parasite's C code and its calls
constexpr int kTimeoutMs = 10000;  // the calls do not block
constexpr size_t kIovMax = 1024;   // iovecs per process_vm_readv/writev (UIO_MAXIOV)

uint64_t Align64(uint64_t n) { return (n + 63) & ~uint64_t{63}; }

Status CheckRemote(long r, const char* what, pid_t pid) {
  if (r < 0 && r > -4096) return ErrnoStatus(static_cast<int>(-r), std::string(what) + " in " + std::to_string(pid));
  return OkStatus();
}

// Moves the pieces |remote[i]| <-> |local[i]| (same lengths) in batches.
Status Transfer(pid_t pid, std::span<iovec> local, std::span<iovec> remote, bool write, const char* what) {
  for (size_t i = 0; i < local.size(); i += kIovMax) {
    const size_t n = std::min(kIovMax, local.size() - i);
    size_t want = 0;
    for (size_t k = i; k < i + n; ++k) want += local[k].iov_len;
    const ssize_t r = write ? process_vm_writev(pid, &local[i], n, &remote[i], n, 0)
                            : process_vm_readv(pid, &local[i], n, &remote[i], n, 0);
    if (r != static_cast<ssize_t>(want)) {
      return ErrnoStatus(std::string(write ? "write " : "read ") + what + " of " + std::to_string(pid));
    }
  }
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<ThreadCalls>> ThreadCalls::Inject(RemoteSyscall* leader, size_t max_threads) {
  FAULT_POINT("thread-calls-inject");
  std::unique_ptr<ThreadCalls> tc(new ThreadCalls(leader));
  tc->pid_ = leader->pid();
  tc->tracer_pid_ = TracerPidFor(tc->pid_);
  if (tc->tracer_pid_ == 0) return Errorf("criu-fast is not visible in the pid namespace of %d", tc->pid_);
  const uint64_t blob_len = static_cast<uint64_t>(cf_parasite_blob_end - cf_parasite_blob_start);
  const uint64_t code = pagemap::PageUp(blob_len);
  const uint64_t frame_len = leader->ReturnFrame(0).size();
  tc->frame_off_ = Align64(sizeof(cf_par_thread));
  tc->slot_size_ = Align64(tc->frame_off_ + frame_len) + kStack;
  tc->max_threads_ = max_threads;
  tc->area_size_ = pagemap::PageUp(code + Align64(sizeof(cf_par_group)) + max_threads * tc->slot_size_);
  ASSIGN_OR_RETURN(long r, leader->Call(__NR_mmap, 0, tc->area_size_, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS, static_cast<uint64_t>(-1), 0));
  RETURN_IF_ERROR(CheckRemote(r, "mmap of the thread calls' area", tc->pid_));
  tc->area_ = static_cast<uint64_t>(r);
  tc->group_ = tc->area_ + code;
  tc->slots_ = tc->group_ + Align64(sizeof(cf_par_group));
  iovec local{const_cast<uint8_t*>(cf_parasite_blob_start), blob_len};
  iovec remote{reinterpret_cast<void*>(tc->area_), blob_len};
  RETURN_IF_ERROR(Transfer(tc->pid_, {&local, 1}, {&remote, 1}, true, "parasite code"));
  ASSIGN_OR_RETURN(r, leader->Call(__NR_mprotect, tc->area_, code, PROT_READ | PROT_EXEC));
  RETURN_IF_ERROR(CheckRemote(r, "mprotect of the parasite code", tc->pid_));
  LOG_DEBUG("thread calls: area in %d at %#lx (%lu bytes, %zu slots)", tc->pid_, tc->area_, tc->area_size_,
            max_threads);
  return tc;
}

ThreadCalls::~ThreadCalls() {
  Status s = Remove();
  if (!s.ok()) LOG_ERROR("thread calls: %s", s.ToString().c_str());
}

uint64_t ThreadCalls::OutAddr(size_t slot) const { return SlotAddr(slot) + offsetof(cf_par_thread, out); }

Status ThreadCalls::Remove() {
  if (area_ == 0) return OkStatus();
  auto r = leader_->CleanupCall(__NR_munmap, area_, area_size_);
  area_ = 0;
  if (!r.ok()) return r.status().WithContext("munmap of the thread calls' area");
  return CheckRemote(*r, "munmap of the thread calls' area", pid_);
}

// Waits until every thread from |first| on has set its done, checking now
// and then that none has stopped instead (a fault in the parasite).
Status ThreadCalls::WaitDone(std::span<RemoteSyscall* const> threads, size_t first) {
  std::vector<size_t> waiting;
  for (size_t i = first; i < threads.size(); ++i) waiting.push_back(i);
  std::vector<uint64_t> done(waiting.size());
  std::vector<iovec> local, remote;
  const uint64_t deadline = MonotonicNs() + uint64_t{kTimeoutMs} * 1000000;
  Backoff backoff(2000, 1000000);
  for (unsigned round = 0; !waiting.empty(); ++round) {
    local.clear();
    remote.clear();
    for (size_t k = 0; k < waiting.size(); ++k) {
      local.push_back({&done[k], sizeof(uint64_t)});
      remote.push_back({reinterpret_cast<void*>(SlotAddr(waiting[k]) + offsetof(cf_par_thread, done)), sizeof(uint64_t)});
    }
    RETURN_IF_ERROR(Transfer(pid_, local, remote, false, "thread calls' state"));
    size_t kept = 0;
    for (size_t k = 0; k < waiting.size(); ++k) {
      if (done[k] != CF_PAR_DONE_OVER) done[kept] = done[k], waiting[kept++] = waiting[k];
    }
    waiting.resize(kept);
    if (waiting.empty()) break;
    if (round % 8 == 7) {
      for (size_t i : waiting) {
        ASSIGN_OR_RETURN(bool running, threads[i]->CodeRunning());
        if (!running) return Errorf("thread calls: the parasite stopped in a thread of %d before its calls ended", pid_);
      }
    }
    if (MonotonicNs() > deadline) {
      return Errorf("thread calls: %zu threads of %d did not make their calls within %d ms", waiting.size(), pid_,
                    kTimeoutMs);
    }
    backoff.Wait();
  }
  return OkStatus();
}

// Writes the slots and starts the group: the watcher, and once it watches,
// the others; returns once every thread has made its calls. |*started|:
// how many threads (from the first) run the parasite, also on an error.
Status ThreadCalls::Launch(std::span<RemoteSyscall* const> threads, std::span<const std::vector<ThreadCall>> calls,
                           size_t* started) {
  *started = 0;
  watch_failed_ = false;
  const size_t n = threads.size();
  if (n == 0 || n > max_threads_ || calls.size() != n || threads[0] != leader_) {
    return Errorf("thread calls: bad group of %zu threads (at most %zu, the leader first)", n, max_threads_);
  }
  if (area_ == 0) return Errorf("thread calls: area of %d removed", pid_);
  FAULT_POINT("thread-calls");
  // The group header and, for each thread, its calls and its return frame.
  cf_par_group g{};
  g.magic = CF_PAR_MAGIC;
  g.version = CF_PAR_VERSION;
  g.tracer_pid = tracer_pid_;
  g.tracer_fd = -1;
  const size_t head = frame_off_;
  std::vector<uint8_t> image(n * head);
  std::vector<std::vector<uint8_t>> frames(n);
  std::vector<iovec> local, remote;
  local.push_back({&g, sizeof(g)});
  remote.push_back({reinterpret_cast<void*>(group_), sizeof(g)});
  for (size_t i = 0; i < n; ++i) {
    if (calls[i].size() > kMaxCalls) return Errorf("thread calls: %zu calls for one thread", calls[i].size());
    cf_par_thread t{};
    t.group = group_;
    t.frame = SlotAddr(i) + frame_off_;
    t.ncalls = static_cast<uint32_t>(calls[i].size());
    t.watcher = i == 0;
    t.done = CF_PAR_DONE_NOT_YET;
    for (size_t k = 0; k < calls[i].size(); ++k) {
      t.calls[k].nr = calls[i][k].nr;
      memcpy(t.calls[k].args, calls[i][k].args.data(), sizeof(t.calls[k].args));
    }
    memcpy(&image[i * head], &t, sizeof(t));
    frames[i] = threads[i]->ReturnFrame(t.frame);
    if (frames[i].size() > slot_size_ - kStack - frame_off_) return Errorf("thread calls: a return frame too large");
    local.push_back({&image[i * head], head});
    remote.push_back({reinterpret_cast<void*>(SlotAddr(i)), head});
    local.push_back({frames[i].data(), frames[i].size()});
    remote.push_back({reinterpret_cast<void*>(t.frame), frames[i].size()});
  }
  RETURN_IF_ERROR(Transfer(pid_, local, remote, true, "thread calls' slots"));

  const uint64_t entry = area_ + CF_PAR_THREAD_ENTRY;
  auto stack_top = [&](size_t i) { return SlotAddr(i) + slot_size_; };
  // The watcher first, alone, until it watches; then the others.
  RETURN_IF_ERROR(leader_->StartCode(entry, stack_top(0), SlotAddr(0)));
  *started = 1;
  RETURN_IF_ERROR(WaitDone(threads.subspan(0, 1), 0));
  int64_t status = 0;
  iovec l{&status, sizeof(status)};
  iovec r{reinterpret_cast<void*>(SlotAddr(0) + offsetof(cf_par_thread, status)), sizeof(status)};
  RETURN_IF_ERROR(Transfer(pid_, {&l, 1}, {&r, 1}, false, "the watcher's status"));
  if (status != 0) {
    watch_failed_ = true;
    return ErrnoStatus(static_cast<int>(-status), "thread calls: pidfd_open of criu-fast");
  }
  for (size_t i = 1; i < n; ++i) {
    RETURN_IF_ERROR(threads[i]->StartCode(entry, stack_top(i), SlotAddr(i)));
    *started = i + 1;
  }
  return WaitDone(threads, 1);
}

Status ThreadCalls::Run(std::span<RemoteSyscall* const> threads, std::span<const std::vector<ThreadCall>> calls,
                        std::vector<long>* results, std::vector<uint8_t>* out) {
  const size_t n = threads.size();
  size_t started = 0;
  Status st = Launch(threads, calls, &started);
  // Every thread back, the others before the watcher, whatever happened:
  // all interrupted first, so that their stops overlap.
  for (size_t i = 1; i < started; ++i) {
    Status s = threads[i]->InterruptCode();
    if (!s.ok() && st.ok()) st = s;
  }
  for (size_t i = 1; i < started; ++i) {
    Status s = threads[i]->StopCode(true, /*count=*/false);
    if (!s.ok() && st.ok()) st = s;
  }
  if (started > 0) {
    // The watcher's pidfd, if it made one, is closed from its stop.
    Status s = leader_->StopCode(true, true, [&]() -> Result<int> {
      cf_par_group g{};
      iovec l{&g, sizeof(g)};
      iovec r{reinterpret_cast<void*>(group_), sizeof(g)};
      RETURN_IF_ERROR(Transfer(pid_, {&l, 1}, {&r, 1}, false, "the thread calls' group"));
      return g.tracer_fd;
    });
    if (!s.ok() && st.ok()) st = s;
  }
  RETURN_IF_ERROR(st);

  // The results.
  std::vector<cf_par_thread> back(n);
  std::vector<iovec> local, remote;
  for (size_t i = 0; i < n; ++i) {
    local.push_back({&back[i], sizeof(cf_par_thread)});
    remote.push_back({reinterpret_cast<void*>(SlotAddr(i)), sizeof(cf_par_thread)});
  }
  RETURN_IF_ERROR(Transfer(pid_, local, remote, false, "thread calls' results"));
  results->assign(n * kMaxCalls, 0);
  out->resize(n * kOutBytes);
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < calls[i].size(); ++k) (*results)[i * kMaxCalls + k] = back[i].calls[k].ret;
    memcpy(out->data() + i * kOutBytes, back[i].out, kOutBytes);
  }
  return OkStatus();
}

}  // namespace cf::memdrain

namespace cf::memdrain {

Status ThreadCalls::StartRunForTest(std::span<RemoteSyscall* const> threads,
                                    std::span<const std::vector<ThreadCall>> calls) {
  size_t started = 0;
  RETURN_IF_ERROR(Launch(threads, calls, &started));
  area_ = 0;  // nothing may be removed: the test abandons the threads here
  return OkStatus();
}

}  // namespace cf::memdrain
