// The images a restore loads, kept in memory shared with the restored
// processes instead of copied into each of them.
//
// Every process of the tree is forked, directly or not, from criu-fast after
// the images are loaded, and reads them until it jumps into the restorer,
// which unmaps all of it. Private heap is copied by every fork (its page
// tables, then a copy-on-write fault for each page either side writes) and
// torn down again by every restorer: for 500 processes that was about a
// fifth of the restore's CPU time (README, "Scale"). Heap in a MAP_SHARED
// mapping is not copied at fork: a child maps only the pages it reads,
// when it reads them.
//
// While a SharedHeapScope lives, the calling thread allocates from a
// jemalloc arena of its own whose memory comes from one shared anonymous
// mapping (falling back to private memory once that is full). Only
// allocations made then go there: what is allocated after the scope (by
// criu-fast or the new processes) is private, as before. The new
// processes only read the images and never free any of them (criu-fast
// frees them once the tree runs). Without jemalloc (sanitizer builds) the
// scope does nothing. While a scope lives, a helper thread allocates the
// mapping's pages ahead of the loading thread's needs.
#pragma once

#include <thread>

namespace cf::restore {

class SharedHeapScope {
 public:
  SharedHeapScope();
  ~SharedHeapScope();
  SharedHeapScope(const SharedHeapScope&) = delete;
  SharedHeapScope& operator=(const SharedHeapScope&) = delete;

  // Whether allocations go to the shared arena (jemalloc is there and the
  // arena was made).
  bool active() const { return active_; }

 private:
  void StopHelper();

  bool active_ = false;
  unsigned previous_ = 0;
  std::thread ahead_;  // allocates the shared mapping's pages ahead of use
};

// Empties the calling thread's cache of freed blocks, so that no block of
// the shared arena freed since the scope is handed out again in a forked
// process, where every process would write to the same shared block. Called
// before the root is forked.
void ForgetCachedBlocks();

}  // namespace cf::restore
