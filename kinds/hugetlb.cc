// hugetlb memory, dump and restore (see hugetlb.h).
#include "kinds/hugetlb.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "common/log.h"

namespace cf::kinds {
namespace {

constexpr int kHugeShift = 26;  // MAP_HUGE_SHIFT == MFD_HUGE_SHIFT

uint64_t AlignUp(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

}  // namespace

Result<uint64_t> HugePageSize(int fd) {
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) return ErrnoStatus("statfs");
  if (static_cast<uint64_t>(fs.f_type) != HUGETLBFS_MAGIC) return uint64_t{0};
  return static_cast<uint64_t>(fs.f_bsize);  // hugetlbfs's block size is its page size
}

// --- dump

Status DescribeHugetlbVma(pid_t pid, const pagemap::VmaInfo& v, img::Vma* m) {
  char path[96];
  snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", pid, v.start, v.end);
  UniqueFd fd(open(path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(std::string("open ") + path);
  ASSIGN_OR_RETURN(uint64_t page_size, HugePageSize(fd.get()));
  if (page_size == 0 || (page_size & (page_size - 1)) != 0) {
    return Errorf("process %d: hugetlb vma %#lx-%#lx (%s) is not on hugetlbfs", pid, v.start, v.end, v.path.c_str());
  }
  if (v.start % page_size != 0 || v.end % page_size != 0) {
    return Errorf("process %d: hugetlb vma %#lx-%#lx is not aligned to its %lu-byte pages", pid, v.start, v.end,
                  page_size);
  }
  m->set_huge_page_size(page_size);
  // MAP_HUGETLB memory is an unlinked file of the kernel's own hugetlbfs
  // mount; memfds and files of a mounted hugetlbfs keep their kinds.
  if (v.path == "/anon_hugepage" && v.deleted) {
    m->set_kind(v.shared ? img::Vma::ANON_SHARED : img::Vma::ANON_PRIVATE);
    m->set_flags(m->flags() | MAP_ANONYMOUS | MAP_HUGETLB);
  }
  return OkStatus();
}

Status ReadHugeObject(int fd, uint64_t offset, uint64_t len, SharedMapping* buf) {
  RETURN_IF_ERROR(buf->Map(-1, 0, len, PROT_READ | PROT_WRITE));
  char* dst = reinterpret_cast<char*>(buf->base());
  uint64_t done = 0;
  while (done < len) {
    const ssize_t n = pread(fd, dst + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read hugetlb object at " + std::to_string(offset + done));
    if (n == 0) break;  // past its size: the rest of |buf| stays zero
    done += static_cast<uint64_t>(n);
  }
  return OkStatus();
}

// --- restore

int HugeSizeFlags(uint64_t page_size) { return (63 - __builtin_clzll(page_size)) << kHugeShift; }

Result<UniqueFd> MakeHugeObject(const img::Shmem& s, uint64_t page_size, SharedMapping* view) {
  if (page_size == 0 || page_size > (1ull << 30) || (page_size & (page_size - 1)) != 0) {
    return Errorf("hugetlb object %u: bad page size %lu", s.id(), page_size);
  }
  const uint64_t len = AlignUp(s.size(), page_size);
  const int size_flags = HugeSizeFlags(page_size);
  if (s.kind() == img::Shmem::ANON) {
    // Like shared anonymous memory (kinds/shmem.cc): a file only a mapping
    // reaches, opened again through map_files.
    RETURN_IF_ERROR(view->Map(-1, 0, len, PROT_READ | PROT_WRITE, MAP_HUGETLB | size_flags)
                        .WithContext("hugetlb object of " + std::to_string(len) + " bytes"));
    char path[96];
    snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", view->base(), view->base() + len);
    UniqueFd fd(open(path, O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(std::string("open ") + path);
    return fd;
  }
  UniqueFd fd(static_cast<int>(
      syscall(SYS_memfd_create, s.name().c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | size_flags)));
  if (!fd.valid()) return ErrnoStatus("memfd_create(MFD_HUGETLB) " + s.name());
  if (ftruncate(fd.get(), static_cast<off_t>(s.size())) != 0) return ErrnoStatus("size hugetlb memfd " + s.name());
  if (len > 0) RETURN_IF_ERROR(view->Map(fd.get(), 0, len, PROT_READ | PROT_WRITE));
  return fd;
}

Status MapHugeAnon(const img::Vma& v, uint64_t addr) {
  const uint64_t page_size = v.huge_page_size();
  const uint64_t len = v.end() - v.start();
  if (page_size == 0 || (page_size & (page_size - 1)) != 0 || addr % page_size != 0 || len % page_size != 0) {
    return Errorf("hugetlb vma %#lx-%#lx: page size %lu does not fit its slot %#lx", v.start(), v.end(), page_size,
                  addr);
  }
  // Without swap reservation ("nr") a private hugetlb mapping takes no pages
  // from the pool up front; with it, mmap reserves them all (ENOMEM when the
  // pool is short: the error says so).
  const int noreserve = (" " + v.vmflags() + " ").find(" nr ") != std::string::npos ? MAP_NORESERVE : 0;
  void* got = mmap(reinterpret_cast<void*>(addr), len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_HUGETLB | HugeSizeFlags(page_size) | noreserve, -1, 0);
  if (got == MAP_FAILED) {
    return ErrnoStatus("map hugetlb vma " + std::to_string(v.start()) + " (" + std::to_string(len / page_size) +
                       " huge pages of " + std::to_string(page_size) + " bytes)");
  }
  return OkStatus();
}

// --- check

ProbeResult ProbeHugetlb() {
  UniqueFd fd(static_cast<int>(syscall(SYS_memfd_create, "cf-check", MFD_CLOEXEC | MFD_HUGETLB)));
  if (!fd.valid()) return ProbeFailed("memfd_create(MFD_HUGETLB)", errno);
  return {true, ""};
}

}  // namespace cf::kinds
