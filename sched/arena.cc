#include "sched/arena.h"

#include <oneapi/tbb/info.h>

#include <algorithm>

namespace cf::sched {

int DefaultJobs() { return std::max(1, tbb::info::default_concurrency()); }

Arena::Arena(int jobs) : jobs_(jobs > 0 ? jobs : DefaultJobs()), arena_(jobs_) {
  // TBB caps its worker pool at the number of CPUs unless told otherwise; an
  // explicit --jobs above that gets its threads. (The cap is process-wide and
  // the smallest active limit wins, so only ever raise it.)
  if (jobs_ > tbb::info::default_concurrency()) {
    limit_ = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                   static_cast<size_t>(jobs_));
  }
}

}  // namespace cf::sched
