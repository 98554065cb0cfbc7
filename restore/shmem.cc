#include "restore/shmem.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mapping.h"
#include "pagemap/page_ranges.h"
#include "restore/memory.h"
#include "restore/shared_files.h"

namespace cf::restore {
namespace {

using pagemap::PageUp;


// Makes the object, mapped at |view| (writable, shared), and returns a
// descriptor of it.
Result<UniqueFd> MakeObject(const img::Shmem& s, SharedMapping* view) {
  const uint64_t len = PageUp(s.size());
  if (s.kind() == img::Shmem::ANON) {
    // Shared anonymous memory is a shmem file only a mapping reaches:
    // map it, then open it through map_files.
    RETURN_IF_ERROR(view->Map(-1, 0, len, PROT_READ | PROT_WRITE));
    char path[96];
    snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", view->base(), view->base() + len);
    UniqueFd fd(open(path, O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(std::string("open ") + path);
    return fd;
  }
  // Sealing is allowed, so that the seals it had can be put back; a memfd
  // created without MFD_ALLOW_SEALING has F_SEAL_SEAL, which is put back too.
  UniqueFd fd(static_cast<int>(syscall(SYS_memfd_create, s.name().c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  if (!fd.valid()) return ErrnoStatus("memfd_create " + s.name());
  if (ftruncate(fd.get(), static_cast<off_t>(s.size())) != 0) return ErrnoStatus("size memfd " + s.name());
  if (len > 0) RETURN_IF_ERROR(view->Map(fd.get(), 0, len, PROT_READ | PROT_WRITE));
  return fd;
}

}  // namespace

Result<ShmemObjects> ShmemObjects::Create(const ImageSet& images, int temp_base, int jobs) {
  ShmemObjects out;
  if (images.shmems.empty()) return out;
  RETURN_IF_ERROR(EnsureFdRoom(temp_base + static_cast<int>(images.shmems.size()) + 1024));
  for (const auto& [id, s] : images.shmems) {
    const std::string ctx = "shared memory object " + std::to_string(id);
    SharedMapping view;
    ASSIGN_OR_RETURN(UniqueFd fd, MakeObject(s, &view));
    if (s.pages().data_pages() > 0 || s.pages().ranges_size() > 0) {
      PremappedVma whole;
      whole.start = 0;
      whole.len = PageUp(s.size());
      whole.premap = view.base();
      whole.anonymous = true;  // fresh: zero pages need no writes
      RETURN_IF_ERROR(
          FillMemory(getpid(), {whole}, s.pages(), images.dir + "/" + s.pages().pages_file(), jobs).WithContext(ctx));
    }
    if (s.kind() == img::Shmem::MEMFD && s.seals() != 0 && fcntl(fd.get(), F_ADD_SEALS, s.seals()) != 0) {
      return ErrnoStatus(ctx + ": seal");
    }
    const int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, temp_base);
    if (moved < 0) return ErrnoStatus(ctx + ": move descriptor");
    out.owned_[id] = UniqueFd(moved);
    out.fds_[id] = moved;
    LOG_DEBUG("restore: %s (%lu bytes) created as fd %d", ctx.c_str(), s.size(), moved);
  }
  return out;
}

}  // namespace cf::restore
