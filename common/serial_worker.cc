#include "common/serial_worker.h"

#include <utility>

namespace cf {

SerialWorker::~SerialWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SerialWorker::Post(std::function<Status()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!first_.ok()) return;  // dropped: an earlier job failed
    jobs_.push_back(std::move(job));
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  }
  cv_.notify_all();
}

Status SerialWorker::Finish() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return jobs_.empty() && !busy_; });
  return first_;
}

void SerialWorker::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    std::function<Status()> job = std::move(jobs_.front());
    jobs_.pop_front();
    busy_ = true;
    lock.unlock();
    Status s = job();
    lock.lock();
    busy_ = false;
    if (!s.ok() && first_.ok()) {
      first_ = std::move(s);
      jobs_.clear();
    }
    cv_.notify_all();
  }
}

}  // namespace cf
