// Runs jobs one at a time, in the order they were posted, on a thread of
// its own: work that must keep its order but need not hold up the thread
// that posts it (engine/dump.cc: what follows the collection of each
// process, while the tracer thread collects the next ones). Once a job
// fails, the jobs after it are dropped.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "common/status.h"

namespace cf {

class SerialWorker {
 public:
  SerialWorker() = default;
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;
  // Drops the jobs not started and waits for the one running.
  ~SerialWorker();

  // The thread starts with the first job.
  void Post(std::function<Status()> job);
  // Waits until every job posted so far has run or was dropped; the first
  // failure.
  Status Finish();

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<Status()>> jobs_;
  bool busy_ = false;  // a job is running
  bool stop_ = false;
  Status first_;
  std::thread thread_;
};

}  // namespace cf
