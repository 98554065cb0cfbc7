#include "common/serial_worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace cf {
namespace {

TEST(SerialWorkerTest, RunsJobsInOrderOffThePostingThread) {
  SerialWorker w;
  std::vector<int> order;  // written by the worker only, read after Finish
  std::atomic<bool> other_thread{true};
  const auto poster = std::this_thread::get_id();
  for (int i = 0; i < 100; ++i) {
    w.Post([&, i] {
      if (std::this_thread::get_id() == poster) other_thread = false;
      order.push_back(i);
      return OkStatus();
    });
  }
  ASSERT_TRUE(w.Finish().ok());
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
  EXPECT_TRUE(other_thread);
  // Finish again, and more jobs after it.
  w.Post([&] {
    order.push_back(100);
    return OkStatus();
  });
  EXPECT_TRUE(w.Finish().ok());
  EXPECT_EQ(order.size(), 101u);
}

TEST(SerialWorkerTest, AFailureDropsTheJobsAfterIt) {
  SerialWorker w;
  std::atomic<int> ran{0};
  w.Post([&] {
    ++ran;
    return OkStatus();
  });
  w.Post([&] {
    ++ran;
    return Error("second job", EIO);
  });
  for (int i = 0; i < 10; ++i) {
    w.Post([&] {
      ++ran;
      return OkStatus();
    });
  }
  const Status s = w.Finish();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("second job"), std::string::npos) << s.ToString();
  EXPECT_EQ(ran.load(), 2);
  w.Post([&] {
    ++ran;
    return OkStatus();
  });
  EXPECT_FALSE(w.Finish().ok());  // the first failure stays
  EXPECT_EQ(ran.load(), 2);
}

TEST(SerialWorkerTest, FinishWaitsForTheRunningJob) {
  SerialWorker w;
  std::atomic<bool> done{false};
  w.Post([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    done = true;
    return OkStatus();
  });
  EXPECT_TRUE(w.Finish().ok());
  EXPECT_TRUE(done);
}

TEST(SerialWorkerTest, DestructionDropsWhatWasNotStarted) {
  std::atomic<int> ran{0};
  std::atomic<bool> started{false};
  {
    SerialWorker w;
    w.Post([&] {
      started = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      ++ran;
      return OkStatus();
    });
    while (!started) std::this_thread::yield();  // the first job is running
    for (int i = 0; i < 10; ++i) {
      w.Post([&] {
        ++ran;
        return OkStatus();
      });
    }
  }
  EXPECT_EQ(ran.load(), 1);
}

TEST(SerialWorkerTest, NoJobNoThread) {
  SerialWorker w;
  EXPECT_TRUE(w.Finish().ok());
}

}  // namespace
}  // namespace cf
