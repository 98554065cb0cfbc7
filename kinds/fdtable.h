// Descriptor tables shared between processes (clone with CLONE_FILES but
// not CLONE_VM): what one of them opens or closes, the others see.
//
// Dump compares the tables of the tree with kcmp(KCMP_FILES), sorting the
// processes by table (kcmp orders them), so a tree of n processes costs
// n log n calls. A group sharing one table must be a chain of parents and
// children (the way clone makes it): each member but the topmost is marked
// as sharing its parent's table (Process.fdt_shared). Other shapes (two
// siblings sharing a table their parent left with unshare) are refused.
//
// Restore (restore/task.cc, restore/fdtable.h): the topmost member restores
// the table once; each marked process is cloned with CLONE_FILES by its
// parent and places no descriptor of its own.
#pragma once

#include <sys/types.h>

#include <set>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"

namespace cf::kinds {

class FdTables {
 public:
  // Compares the tables of |pids| (the frozen tree, parents first).
  static Result<FdTables> Read(const std::vector<pid_t>& pids);
  // Marks |p| when it shares its parent's table.
  void Fill(img::Process* p) const;

 private:
  std::set<pid_t> shared_;  // processes sharing their parent's table
};

}  // namespace cf::kinds
