// Per-process properties read by criu-fast itself (/proc, prlimit, ptrace):
// the entries of the table in kinds/process_props.h that have a `read`.
// Those read by system calls run in the leader are collected by
// engine/collect_remote.cc, once the threads are known.
#include "engine/collect.h"

namespace cf::engine {

Status CollectProcessProps(kinds::ProcessSource& src, img::Process* out) {
  out->set_pid(src.pid());
  for (const kinds::ProcessProperty& p : kinds::ProcessProperties()) {
    if (p.read) RETURN_IF_ERROR(p.read(src, out));
  }
  return OkStatus();
}

}  // namespace cf::engine
