#include "restore/fdtable.h"

namespace cf::restore {

SharedTableOrder::SharedTableOrder(const ImageSet& images) {
  std::map<pid_t, const img::Process*> by_pid;
  for (const ProcessImages& p : images.processes) by_pid[p.core.pid()] = &p.core;
  for (const ProcessImages& p : images.processes) {
    if (!p.core.fdt_shared()) continue;
    // Up the chain of members to the one that does not share its parent's.
    const img::Process* top = &p.core;
    while (top->fdt_shared() && by_pid.count(top->ppid())) top = by_pid[top->ppid()];
    owner_[p.core.pid()] = top->pid();
    ++unfilled_[top->pid()];
  }
}

std::vector<pid_t> SharedTableOrder::Filled(pid_t pid) {
  if (auto it = owner_.find(pid); it != owner_.end()) {
    const pid_t owner = it->second;
    held_[owner].push_back(pid);
    if (--unfilled_[owner] == 0 && owner_waiting_.erase(owner)) return {owner};
    return {};
  }
  if (auto it = unfilled_.find(pid); it != unfilled_.end() && it->second > 0) {
    owner_waiting_.insert(pid);
    return {};
  }
  return {pid};
}

std::vector<pid_t> SharedTableOrder::RestorerDone(pid_t pid) {
  auto it = held_.find(pid);
  if (it == held_.end()) return {};
  std::vector<pid_t> go = std::move(it->second);
  held_.erase(it);
  return go;
}

bool HasTableSharers(const ImageSet& images, size_t index) {
  for (size_t i : images.processes[index].children) {
    if (images.processes[i].core.fdt_shared()) return true;
  }
  return false;
}

}  // namespace cf::restore
