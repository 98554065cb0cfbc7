// Per-thread state read by criu-fast itself (ptrace requests, /proc): the
// properties of the table in kinds/thread_props.h that have a `read`, for
// the leader and every other thread alike. Those read by a system call run
// in the thread are collected in groups by engine/collect_remote.cc.
#include "engine/collect.h"
#include "kinds/thread_props.h"

namespace cf::engine {

Status CollectThread(pid_t pid, pid_t tid, img::Thread* out) {
  out->set_tid(tid);
  for (const kinds::ThreadProperty& p : kinds::ThreadProperties()) {
    if (p.read) RETURN_IF_ERROR(p.read(pid, tid, out));
  }
  return OkStatus();
}

}  // namespace cf::engine
