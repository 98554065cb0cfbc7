// Restoring descriptors, cwd and root of a process being restored (runs in
// the restored process itself, before the restorer).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"
#include "restore/shared_files.h"

namespace cf::restore {

// Opens every descriptor of |core| at its number with its flags, offset and
// close-on-exec bit, each by its kind (kinds/kind.h) with |ctx|: dup'ed
// descriptors share one open file again; descriptions of shared objects are
// placed from |inherited| (created by this process or an ancestor, see
// shared_files.h), which are all closed afterwards, like ctx.shmem; then
// each kind finishes its fds (AfterPlacement: an epoll instance's targets),
// and files recreated from ghost images are unlinked again.
// |keep| are descriptors of ours that must survive: they are moved above the
// target's highest fd first, and their new numbers are written back. With
// |shared_table| (other processes share this table: restore/fdtable.h),
// other descriptors of the files in |keep| survive too: theirs.
Status RestoreFds(const img::Process& core, kinds::RestoreContext& ctx, const InheritedFiles& inherited,
                  std::vector<int*> keep, bool shared_table = false);

}  // namespace cf::restore
