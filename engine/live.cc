#include "engine/live.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "common/timer.h"
#include "engine/track.h"
#include "memdrain/page_reader.h"
#include "pagemap/scan.h"
#include "pagemap/uffd_track.h"
#include "pagemap/vma.h"
#include "proc/proc_parse.h"
#include "ptrace/seize.h"

namespace cf::engine {

using pagemap::PageRange;
constexpr uint64_t kPage = 4096;

namespace {

enum : uint8_t { kUnsaved = 0, kSaved = 1, kStashed = 2 };

// Write-protects (|wp|) or unprotects (and wakes) [start, end). Unprotecting
// may meet EAGAIN while an event of the target's (mremap, munmap) is being
// delivered: the caller retries.
int WriteProtect(int uffd, uint64_t start, uint64_t end, bool wp) {
  uffdio_writeprotect w{};
  w.range.start = start;
  w.range.len = end - start;
  w.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
  return ioctl(uffd, UFFDIO_WRITEPROTECT, &w) == 0 ? 0 : errno;
}

// Write-protects |ranges|, cut into equal shares for a few threads at once:
// the kernel changes one page table entry at a time (about 0.2-0.4 us each
// here: 50-100 ms for 1 GiB of 4 KiB pages), and this is frozen time.
Status ProtectAll(int uffd, const std::vector<PageRange>& ranges) {
  uint64_t total = 0;
  for (const PageRange& r : ranges) total += r.bytes();
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const uint64_t kMinShare = 64ull << 20;  // a thread is not worth less
  const unsigned n = static_cast<unsigned>(std::clamp<uint64_t>(total / kMinShare, 1, std::min(hw, 8u)));
  // Cut the ranges into n shares of about total/n bytes.
  std::vector<std::vector<PageRange>> shares(n);
  const uint64_t per = (total / n + kPage - 1) & ~(kPage - 1);
  unsigned cur = 0;
  uint64_t in_cur = 0;
  for (PageRange r : ranges) {
    while (!r.empty()) {
      if (in_cur >= per && cur + 1 < n) {
        ++cur;
        in_cur = 0;
      }
      const uint64_t take = cur + 1 < n ? std::min(r.bytes(), per - in_cur) : r.bytes();
      shares[cur].push_back({r.start, r.start + take});
      in_cur += take;
      r.start += take;
    }
  }
  std::vector<int> errs(n, 0);
  std::vector<PageRange> failed(n);
  auto work = [&](unsigned i) {
    for (const PageRange& r : shares[i]) {
      if (int err = WriteProtect(uffd, r.start, r.end, true); err != 0) {
        errs[i] = err;
        failed[i] = r;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < n; ++i) threads.emplace_back(work, i);
  work(0);
  for (std::thread& t : threads) t.join();
  for (unsigned i = 0; i < n; ++i) {
    if (errs[i] != 0) return Errorf("write-protect 0x%lx-0x%lx: %s", failed[i].start, failed[i].end, strerror(errs[i]));
  }
  return OkStatus();
}

}  // namespace

// One process of a live save: its userfaultfd, the pages of the snapshot
// and the state of each, and the copies the fault handler made.
class LiveProcess final : public memdrain::PageDrain {
 public:
  LiveProcess(pid_t pid, UniqueFd uffd, memdrain::PageReader reader, uint64_t start_time)
      : pid_(pid), uffd_(std::move(uffd)), reader_(std::move(reader)), start_time_(start_time) {}

  pid_t pid() const { return pid_; }
  uint64_t start_time() const { return start_time_; }
  bool added = false;     // part of the snapshot (AddProcess)
  // The handler's mode: before the process is armed (its pages set), a
  // fault is only unprotected; after, the page is copied first. Switched
  // under |mode_mu|, which the handler holds while it handles a fault.
  std::mutex mode_mu;
  bool armed = false;
  bool prearmed = false;  // made by PreArm: its pages were protected while it ran
  uint64_t stack_end = 0;  // of its [stack] then: an exec since moves it
  int uffd() const { return uffd_.get(); }
  void CloseUffd() { uffd_.reset(); }
  // Pages in the stashes of every process of the save (LiveSave's).
  std::atomic<uint64_t>* stashed = nullptr;

  // True while the page at |addr| is in the snapshot and neither saved nor
  // copied yet: a write to it needs a copy first.
  bool Unsaved(uint64_t addr) const {
    const int64_t i = Find(addr);
    return i >= 0 && state_[i].load() == kUnsaved;
  }

  void SetPages(std::span<const sched::PageSource> sources) {
    for (const sched::PageSource& s : sources) {
      if (s.range.empty()) continue;
      first_.push_back(total_);
      ranges_.push_back(s.range);
      total_ += s.range.pages();
    }
    state_ = std::make_unique<std::atomic<uint8_t>[]>(total_);
    for (uint64_t i = 0; i < total_; ++i) state_[i].store(kUnsaved, std::memory_order_relaxed);
  }
  std::span<const PageRange> ranges() const { return ranges_; }

  // The index of the snapshot's page at |addr|, or -1.
  int64_t Find(uint64_t addr) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), addr,
                               [](uint64_t a, const PageRange& r) { return a < r.start; });
    if (it == ranges_.begin()) return -1;
    --it;
    if (addr >= it->end) return -1;
    return static_cast<int64_t>(first_[it - ranges_.begin()] + ((addr - it->start) / kPage));
  }

  // Copies the page at |addr| into the stash unless it is saved already.
  // The page must still be protected (or the tree frozen). True when copied.
  Result<bool> Stash(uint64_t addr) {
    const int64_t i = Find(addr);
    if (i < 0) return false;
    std::lock_guard<std::mutex> lk(mu_);
    uint8_t expect = kUnsaved;
    if (!state_[i].compare_exchange_strong(expect, kStashed)) return false;
    auto buf = std::make_unique_for_overwrite<uint8_t[]>(kPage);
    const PageRange one{addr, addr + kPage};
    Status st = reader_.Read({&one, 1}, buf.get(), true);
    if (!st.ok()) st = reader_.Read({&one, 1}, buf.get(), false);  // PROT_NONE meanwhile: /proc/PID/mem
    if (!st.ok()) {
      Fail("the page at 0x" + Hex(addr) + " could not be copied before its write (" + st.ToString() + ")");
      return st;
    }
    stash_[addr] = std::move(buf);
    if (stashed) stashed->fetch_add(1);
    return true;
  }

  // An event of the target (mremap, munmap, madvise): fails the snapshot
  // when [start, end) holds pages not saved yet.
  void CheckGone(uint64_t start, uint64_t end, const char* what) {
    for (size_t k = 0; k < ranges_.size(); ++k) {
      const uint64_t s = std::max(start, ranges_[k].start), e = std::min(end, ranges_[k].end);
      for (uint64_t a = s; a < e; a += kPage) {
        if (state_[first_[k] + (a - ranges_[k].start) / kPage].load() == kUnsaved) {
          Fail(std::string(what) + " of 0x" + Hex(start) + "-0x" + Hex(end) +
               " took pages not saved yet (first at 0x" + Hex(a) + ")");
          return;
        }
      }
    }
  }

  void Fail(std::string why) {
    std::lock_guard<std::mutex> lk(fail_mu_);
    if (failure_.empty()) failure_ = std::move(why);
    failed_.store(true);
  }
  bool failed() const { return failed_.load(); }
  Status Failure() const {
    if (!failed_.load()) return OkStatus();
    std::lock_guard<std::mutex> lk(fail_mu_);
    return Error("--live: process " + std::to_string(pid_) + " changed its memory before it was saved: " + failure_ +
                 "; the tree runs on; dump again (or without --live, frozen)");
  }

  // The page pipeline's read: the target's pages, or the copies the fault
  // handler made of those written meanwhile; then the batch is saved and
  // unprotected.
  Status Read(std::span<const PageRange> ranges, uint8_t* out, bool readable) const override {
    RETURN_IF_ERROR(Failure());
    // One read for the batch; if part of it is gone (unmapped after the
    // handler copied it), page by page.
    const bool by_page = !reader_.Read(ranges, out, readable).ok();
    uint8_t* p = out;
    for (const PageRange& r : ranges) {
      for (uint64_t a = r.start; a < r.end; a += kPage, p += kPage) {
        bool read_ok = true;
        if (by_page) {
          const PageRange one{a, a + kPage};
          read_ok = reader_.Read({&one, 1}, p, readable).ok();
        }
        const int64_t i = Find(a);
        if (i < 0) {
          if (!read_ok) return Errorf("--live: page 0x%lx of process %d is gone", a, pid_);
          continue;
        }
        uint8_t expect = kUnsaved;
        if (state_[i].compare_exchange_strong(expect, kSaved)) {
          if (read_ok) continue;
          RETURN_IF_ERROR(Failure());
          return Errorf("--live: page 0x%lx of process %d is gone before it was saved (did it exit or unmap it?)",
                        a, pid_);
        }
        std::lock_guard<std::mutex> lk(mu_);
        auto it = stash_.find(a);
        if (it == stash_.end()) return Errorf("--live: page 0x%lx of process %d: copy missing", a, pid_);
        memcpy(p, it->second.get(), kPage);
        stash_.erase(it);
        if (stashed) stashed->fetch_sub(1);
      }
    }
    // Saved: the program may write these pages freely from now on. A
    // failure leaves them protected (each fault then costs a round trip).
    for (const PageRange& r : ranges) {
      for (int tries = 0; tries < 100 && WriteProtect(uffd_.get(), r.start, r.end, false) == EAGAIN; ++tries) {
        usleep(100);
      }
    }
    return OkStatus();
  }

  static std::string Hex(uint64_t v) {
    char b[32];
    snprintf(b, sizeof(b), "%lx", v);
    return b;
  }

 private:
  pid_t pid_;
  UniqueFd uffd_;
  memdrain::PageReader reader_;
  uint64_t start_time_;
  std::vector<PageRange> ranges_;
  std::vector<uint64_t> first_;
  uint64_t total_ = 0;
  std::unique_ptr<std::atomic<uint8_t>[]> state_;
  mutable std::mutex mu_;  // the stash; held while a copy is made
  mutable std::unordered_map<uint64_t, std::unique_ptr<uint8_t[]>> stash_;
  mutable std::mutex fail_mu_;
  std::string failure_;
  std::atomic<bool> failed_{false};
};

namespace {

// A userfaultfd inside |pid| for the live save (synchronous write-protect,
// mapping events), or EPERM when the process may not have one that
// handles kernel faults.
Result<UniqueFd> MakeLiveUffd(pid_t pid) {
  // Not UFFD_USER_MODE_ONLY: faults of the kernel on the program's behalf
  // must wait too. That needs privilege in the target (CAP_SYS_PTRACE, or
  // vm.unprivileged_userfaultfd=1).
  ASSIGN_OR_RETURN(UniqueFd uffd, MakeUserfaultfdIn(pid, O_CLOEXEC | O_NONBLOCK));
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;
  if (ioctl(uffd.get(), UFFDIO_API, &api) != 0) return ErrnoStatus("--live: UFFDIO_API");
  if (!(api.ioctls & (1ull << _UFFDIO_REGISTER))) return Error("--live: userfaultfd without UFFDIO_REGISTER", ENOTSUP);
  return uffd;
}

// Private anonymous memory, the only kind synchronous write-protect takes
// (and the only kind saved per process but private file pages).
uint64_t StackEnd(const Result<std::vector<pagemap::VmaInfo>>& vmas) {
  if (!vmas.ok()) return 0;
  for (const pagemap::VmaInfo& v : *vmas) {
    if (v.path == "[stack]") return v.end;
  }
  return 0;
}

bool PrivateAnon(const pagemap::VmaInfo& v) {
  if (v.shared || v.is_file()) return false;
  return v.path.empty() || v.path == "[heap]" || v.path == "[stack]";
}

}  // namespace

LiveSave::LiveSave() : stop_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  // CF_LIVE_STASH_PAGES: a smaller bound, for the tests.
  if (const char* e = getenv("CF_LIVE_STASH_PAGES"); e != nullptr && *e != '\0') {
    stash_limit_ = std::max<uint64_t>(1, strtoull(e, nullptr, 10));
  }
}

Status LiveSave::PreArm(pid_t root) {
  const uint64_t t0 = MonotonicNs();
  {
    tracing::FrozenTree pre;
    RETURN_IF_ERROR(pre.SeizeTree(root));
    set_keep_shared(pre.processes().size() > 1);
    for (const tracing::SeizedProcess& sp : pre.processes()) {
      ASSIGN_OR_RETURN(const proc::ProcStat st, proc::ReadStat(sp.pid));
      Result<UniqueFd> uffd = MakeLiveUffd(sp.pid);
      if (!uffd.ok()) {
        LOG_DEBUG("dump: --live: process %d not armed early: %s", sp.pid, uffd.status().ToString().c_str());
        continue;
      }
      ASSIGN_OR_RETURN(memdrain::PageReader reader, memdrain::PageReader::Open(sp.pid, keep_shared_));
      auto lp = std::make_unique<LiveProcess>(sp.pid, std::move(*uffd), std::move(reader), st.start_time);
      lp->stashed = &stashed_pages_;
      lp->prearmed = true;
      lp->stack_end = StackEnd(pagemap::ReadVmas(sp.pid));
      procs_[sp.pid] = std::move(lp);
    }
    // Registered while frozen: a mapping's flags change under the mmap lock.
    for (auto& [pid, lp] : procs_) {
      ASSIGN_OR_RETURN(std::vector<pagemap::VmaInfo> vmas, pagemap::ReadVmas(pid));
      for (const pagemap::VmaInfo& v : vmas) {
        if (PrivateAnon(v)) RETURN_IF_ERROR(pagemap::RegisterForTracking(lp->uffd(), v.start, v.end).status());
      }
    }
    pre.Release(false);
  }
  prearm_pause_ns_ = MonotonicNs() - t0;
  RETURN_IF_ERROR(Start());
  // The tree runs; the handler unprotects what it writes (nothing to copy
  // yet). Protect every present page of the registered mappings.
  const uint64_t t1 = MonotonicNs();
  for (auto& [pid, lp] : procs_) {
    ASSIGN_OR_RETURN(pagemap::PageScanner scanner, pagemap::PageScanner::Open(pid));
    ASSIGN_OR_RETURN(std::vector<pagemap::VmaInfo> vmas, pagemap::ReadVmas(pid));
    std::vector<PageRange> present;
    for (const pagemap::VmaInfo& v : vmas) {
      if (!PrivateAnon(v)) continue;
      ASSIGN_OR_RETURN(pagemap::RangeSet set, scanner.Scan(v.start, v.end, pagemap::ScanMode::kAnonPrivate));
      for (const PageRange& r : set) {
        present.push_back(r);
        prearmed_ += r.pages();
      }
    }
    // A mapping gone meanwhile fails its part (ENOENT): the freeze checks
    // every page anyway.
    (void)ProtectAll(lp->uffd(), present);
  }
  prearm_ns_ = MonotonicNs() - t1;
  LOG_INFO("dump: --live: %zu processes armed early (paused %.3f ms), %lu pages protected while running in %.3f ms",
           procs_.size(), static_cast<double>(prearm_pause_ns_) / 1e6, prearmed_, static_cast<double>(prearm_ns_) / 1e6);
  return OkStatus();
}

void LiveSave::Pause() {
  if (!handler_.joinable()) return;
  const uint64_t one = 1;
  if (write(stop_.get(), &one, sizeof(one)) != sizeof(one)) LOG_WARN("--live: eventfd: %m");
  handler_.join();
  uint64_t v;
  if (read(stop_.get(), &v, sizeof(v)) < 0) LOG_DEBUG("--live: eventfd: %m");
}

LiveSave::~LiveSave() { Stop(); }

Result<bool> LiveSave::AddProcess(pid_t pid, uint64_t start_time, const img::Process& proc,
                                  std::span<const sched::PageSource> sources) {
  const uint64_t t0 = MonotonicNs();
  LiveProcess* lp = nullptr;
  uint64_t stack_end = 0;
  for (const img::Vma& v : proc.vmas()) {
    if (v.path() == "[stack]") stack_end = v.end();
  }
  auto it = procs_.find(pid);
  if (it != procs_.end() && (it->second->start_time() != start_time || it->second->stack_end != stack_end)) {
    // Not the memory armed early (another process under the pid, or an
    // exec since): let that userfaultfd go, with the handler stopped
    // meanwhile (it polls it), and make a new one.
    LOG_INFO("dump: --live: process %d changed since the early arm (exec?): armed again now", pid);
    Pause();
    procs_.erase(it);
    it = procs_.end();
    StartHandler();
  }
  if (it != procs_.end()) {
    lp = it->second.get();
  } else {
    Result<UniqueFd> made = MakeLiveUffd(pid);
    if (!made.ok()) {
      if (made.status().err() == EPERM) {
        LOG_WARN("dump: --live: process %d may not make a userfaultfd for kernel faults: its pages are saved frozen",
                 pid);
        return false;
      }
      return made.status();
    }
    ASSIGN_OR_RETURN(memdrain::PageReader reader, memdrain::PageReader::Open(pid, keep_shared_));
    auto fresh = std::make_unique<LiveProcess>(pid, std::move(*made), std::move(reader), start_time);
    fresh->stashed = &stashed_pages_;
    lp = fresh.get();
    procs_[pid] = std::move(fresh);
  }
  lp->added = true;
  {
    // From here on the handler copies before it unprotects: whatever it
    // unprotected before is found below (not protected any more).
    std::lock_guard<std::mutex> lk(lp->mode_mu);
    lp->SetPages(sources);
    lp->armed = true;
  }
  const uint64_t t1 = MonotonicNs();
  std::optional<pagemap::PageScanner> scanner;
  if (lp->prearmed) {
    ASSIGN_OR_RETURN(pagemap::PageScanner sc, pagemap::PageScanner::Open(pid));
    scanner.emplace(std::move(sc));
  }

  // Register each private mapping that holds pages of the snapshot; protect
  // those pages. A mapping userfaultfd refuses is copied now, while frozen.
  std::span<const PageRange> ranges = lp->ranges();
  std::vector<PageRange> to_protect;
  size_t k = 0;
  for (const img::Vma& v : proc.vmas()) {
    if (v.kind() != img::Vma::ANON_PRIVATE && v.kind() != img::Vma::FILE_PRIVATE) continue;
    while (k < ranges.size() && ranges[k].end <= v.start()) ++k;
    size_t j = k;
    while (j < ranges.size() && ranges[j].start < v.end()) ++j;
    if (j == k) continue;
    ASSIGN_OR_RETURN(bool registered, pagemap::RegisterForTracking(lp->uffd(), v.start(), v.end()));
    for (size_t r = k; r < j; ++r) {
      const uint64_t s = std::max(ranges[r].start, v.start()), e = std::min(ranges[r].end, v.end());
      if (registered && scanner) {
        // Armed early: only what is not protected any more (written since,
        // or mapped since) needs it now.
        ASSIGN_OR_RETURN(pagemap::RangeSet open, scanner->ScanUnprotected(s, e));
        for (const PageRange& c : open) {
          to_protect.push_back(c);
          protected_ += c.pages();
        }
      } else if (registered) {
        to_protect.push_back({s, e});
        protected_ += (e - s) / kPage;
      } else {
        for (uint64_t a = s; a < e; a += kPage) RETURN_IF_ERROR(lp->Stash(a).status());
        copied_frozen_ += (e - s) / kPage;
      }
    }
  }
  RETURN_IF_ERROR(ProtectAll(lp->uffd(), to_protect).WithContext("--live: process " + std::to_string(pid)));
  LOG_DEBUG("dump: --live: process %d: userfaultfd made in %.3f ms, %lu pages protected in %.3f ms", pid,
            static_cast<double>(t1 - t0) / 1e6, protected_, static_cast<double>(MonotonicNs() - t1) / 1e6);
  return true;
}

Status LiveSave::Start() {
  if (!stop_.valid()) return ErrnoStatus("--live: eventfd");
  Pause();  // the early arm's handler: restarted with every process
  // After the freeze: a process armed early but not in the snapshot (gone,
  // or its pid reused) is let go.
  bool snapshot = false;
  for (const auto& [pid, lp] : procs_) snapshot = snapshot || lp->added;
  if (snapshot) std::erase_if(procs_, [](const auto& e) { return !e.second->added; });
  faults_ = 0;
  copied_ = 0;
  StartHandler();
  return OkStatus();
}

const memdrain::PageDrain& LiveSave::DrainOf(pid_t pid) const { return *procs_.at(pid); }

// The handler's list of processes is made here, on the calling thread:
// procs_ may change (AddProcess) while the handler runs.
void LiveSave::StartHandler() {
  std::vector<LiveProcess*> who;
  for (auto& [pid, lp] : procs_) who.push_back(lp.get());
  handler_ = std::thread([this, who = std::move(who)] { Loop(who); });
}

// A write fault on a protected page: copied first (once the process is
// armed and the page not saved yet), then unprotected, which wakes the
// writer, even when the copy failed (the dump fails; the program must not).
// EAGAIN: an event is being delivered; |take_events| takes it in.
template <typename TakeEvents>
void LiveSave::HandleFault(LiveProcess* lp, uint64_t addr, TakeEvents& take_events) {
  std::lock_guard<std::mutex> mode(lp->mode_mu);
  if (lp->armed) {
    Result<bool> copied = lp->Stash(addr);
    if (copied.ok() && *copied) copied_++;
  }
  for (int tries = 0; tries < 100000; ++tries) {
    const int err = WriteProtect(lp->uffd(), addr, addr + kPage, false);
    if (err != EAGAIN) break;
    take_events(lp);
    usleep(10);
  }
}

// The fault handler: one thread for every process of the tree.
void LiveSave::Loop(const std::vector<LiveProcess*>& procs) {
  std::vector<pollfd> pfds;
  std::vector<LiveProcess*> who;
  pfds.push_back({stop_.get(), POLLIN, 0});
  who.push_back(nullptr);
  for (LiveProcess* lp : procs) {
    pfds.push_back({lp->uffd(), POLLIN, 0});
    who.push_back(lp);
  }
  std::deque<uffd_msg> queue;
  auto read_msgs = [&](LiveProcess* lp) {
    uffd_msg msgs[64];
    for (;;) {
      const ssize_t n = read(lp->uffd(), msgs, sizeof(msgs));
      if (n <= 0) return;
      for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof(uffd_msg)); ++i) queue.push_back(msgs[i]);
    }
  };
  for (;;) {
    // Deferred faults are looked at again every millisecond.
    if (poll(pfds.data(), pfds.size(), deferred_.empty() ? -1 : 1) < 0) {
      if (errno == EINTR) continue;
      LOG_ERROR("--live: poll: %m");
      return;
    }
    if (pfds[0].revents) return;
    while (!deferred_.empty() && stashed_pages_.load() < stash_limit_) {
      const auto [lp, addr] = deferred_.front();
      deferred_.pop_front();
      HandleFault(lp, addr, read_msgs);
    }
    for (size_t i = 1; i < pfds.size(); ++i) {
      if (!pfds[i].revents) continue;
      LiveProcess* lp = who[i];
      if (pfds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) pfds[i].fd = -1;
      read_msgs(lp);
      while (!queue.empty()) {
        const uffd_msg m = queue.front();
        queue.pop_front();
        switch (m.event) {
          case UFFD_EVENT_PAGEFAULT: {
            const uint64_t addr = m.arg.pagefault.address & ~(kPage - 1);
            faults_++;
            if (stashed_pages_.load() >= stash_limit_ && lp->armed && lp->Unsaved(addr)) {
              // The stash is full: the writer waits (its fault unanswered)
              // until the pipeline has taken copies out, or has saved this
              // page itself (which unprotects and wakes it).
              deferred_.push_back({lp, addr});
              deferred_total_++;
              break;
            }
            HandleFault(lp, addr, read_msgs);
            break;
          }
          case UFFD_EVENT_REMAP:
            lp->CheckGone(m.arg.remap.from, m.arg.remap.from + m.arg.remap.len, "mremap");
            break;
          case UFFD_EVENT_REMOVE:
            lp->CheckGone(m.arg.remove.start, m.arg.remove.end, "madvise");
            break;
          case UFFD_EVENT_UNMAP:
            lp->CheckGone(m.arg.remove.start, m.arg.remove.end, "munmap");
            break;
          default: break;
        }
      }
    }
  }
}

void LiveSave::Stop() {
  Pause();
  // The last descriptor of each userfaultfd: the kernel drops the
  // registrations and wakes any thread still waiting on a fault.
  for (auto& [pid, lp] : procs_) lp->CloseUffd();
}

bool LiveSave::changed() const {
  for (const auto& [pid, lp] : procs_) {
    if (lp->failed()) return true;
  }
  return false;
}

Status LiveSave::Finish() {
  Stop();
  for (const auto& [pid, lp] : procs_) RETURN_IF_ERROR(lp->Failure());
  return OkStatus();
}

}  // namespace cf::engine
