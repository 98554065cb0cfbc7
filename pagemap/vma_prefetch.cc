#include "pagemap/vma_prefetch.h"

#include <algorithm>
#include <utility>

namespace cf::pagemap {

VmaPrefetch::~VmaPrefetch() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void VmaPrefetch::Start(std::vector<pid_t> pids, int threads) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.resize(pids.size());
  for (size_t i = 0; i < pids.size(); ++i) {
    entries_[i].pid = pids[i];
    index_.emplace(pids[i], i);
  }
  max_threads_ = static_cast<size_t>(std::max(threads, 1));
  const size_t n = std::min(pids.size(), max_threads_);
  for (size_t i = 0; i < n; ++i) {
    ++running_;
    threads_.emplace_back([this] { Work(); });
  }
}

void VmaPrefetch::Add(pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index_.count(pid) != 0) return;
  entries_.emplace_back();
  entries_.back().pid = pid;
  index_.emplace(pid, entries_.size() - 1);
  if (running_ < max_threads_) {
    ++running_;
    threads_.emplace_back([this] { Work(); });
  }
}

void VmaPrefetch::Work() {
  for (;;) {
    size_t i;
    pid_t pid;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (next_ < entries_.size() && entries_[next_].taken) ++next_;
      if (stop_ || next_ >= entries_.size()) {
        --running_;
        return;
      }
      i = next_++;
      pid = entries_[i].pid;
    }
    Result<std::vector<VmaInfo>> r = ReadVmas(pid, /*with_vmflags=*/true);
    {
      std::lock_guard<std::mutex> lock(mu_);
      entries_[i].result.emplace(std::move(r));
    }
    done_.notify_all();
  }
}

Result<std::vector<VmaInfo>> VmaPrefetch::Take(pid_t pid) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = index_.find(pid);
  if (it == index_.end() || entries_[it->second].taken) {
    lock.unlock();
    return ReadVmas(pid, /*with_vmflags=*/true);
  }
  Entry& e = entries_[it->second];
  if (!e.result && next_ <= it->second) {
    // Not started yet (the readers are behind): read it here rather than wait.
    // Marked so that no reader starts it meanwhile.
    e.taken = true;
    lock.unlock();
    return ReadVmas(pid, /*with_vmflags=*/true);
  }
  done_.wait(lock, [&] { return e.result.has_value(); });
  e.taken = true;
  Result<std::vector<VmaInfo>> r = std::move(*e.result);
  e.result.reset();
  return r;
}

}  // namespace cf::pagemap
