// Per-process properties read by criu-fast itself (/proc, prlimit, ptrace):
// the entries of the table in kinds/process_props.h that have a `read`.
// Those read by system calls run in the leader are collected by
// engine/collect_remote.cc, once the threads are known.
//
// Zombie children are not processes of the image: a zombie has no memory,
// threads or descriptors left, only its ids and the wait status its parent
// has not collected yet. It is saved in its parent's record.
#include <string>

#include "engine/collect.h"
#include "proc/proc_parse.h"

namespace cf::engine {

Status CollectProcessProps(kinds::ProcessSource& src, img::Process* out, PropsPart part) {
  if (part != PropsPart::kTraced) out->set_pid(src.pid());
  for (const kinds::ProcessProperty& p : kinds::ProcessProperties()) {
    if (p.read == nullptr) continue;
    if ((part == PropsPart::kUntraced && p.read_traced) || (part == PropsPart::kTraced && !p.read_traced)) continue;
    RETURN_IF_ERROR(p.read(src, out));
  }
  return OkStatus();
}

Status CollectZombie(pid_t pid, img::Zombie* out) {
  const std::string ctx = "zombie " + std::to_string(pid);
  auto st = proc::ReadStat(pid);
  if (!st.ok()) return st.status().WithContext(ctx);
  auto status = proc::ReadStatus(pid);
  if (!status.ok()) return status.status().WithContext(ctx);
  out->set_pid(pid);
  out->set_pgid(st->pgid);
  out->set_sid(st->sid);
  out->set_comm(st->comm);
  out->set_exit_status(st->exit_code);
  out->set_exit_signal(st->exit_signal);
  out->set_uid(status->uid[0]);
  out->set_gid(status->gid[0]);
  return OkStatus();
}

}  // namespace cf::engine
