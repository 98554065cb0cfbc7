// The worker threads of a dump: one tbb::task_arena sized by --jobs.
//
// All parallel work of a dump (today the page pipeline of each process,
// sched/page_pipeline.h) runs inside one Arena, so --jobs bounds the CPU
// criu-fast uses whatever runs side by side. The thread that calls Execute()
// takes part in the work: with jobs == 1 no worker thread is involved at all.
//
// TBB starts its worker threads lazily, on the first parallel algorithm run in
// an arena, and is not fork-safe (design.md, section 6): a process that must
// fork later (restore) must not run anything through an Arena first.
#pragma once

#include <memory>
#include <utility>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

namespace cf::sched {

// The number of CPUs this process may run on (affinity and cgroup limits
// included): the default of --jobs.
int DefaultJobs();

class Arena {
 public:
  // |jobs| <= 0 means DefaultJobs(). More jobs than CPUs is allowed (TBB's
  // process-wide thread limit is raised while this arena lives).
  explicit Arena(int jobs);
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  int jobs() const { return jobs_; }

  // Runs |f| in the arena on the calling thread, which also works on the
  // parallel tasks |f| starts; returns what |f| returns.
  template <typename F>
  auto Execute(F&& f) {
    return arena_.execute(std::forward<F>(f));
  }

 private:
  int jobs_;
  std::unique_ptr<tbb::global_control> limit_;
  tbb::task_arena arena_;
};

}  // namespace cf::sched
