// The address space: VMAs from /proc/PID/smaps classified into kinds, and the
// mm fields (code, data, brk, stack, args, env) from /proc/PID/stat, auxv and
// the executable.
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>

#include "common/io.h"
#include "common/log.h"
#include "engine/collect.h"
#include "kinds/aio.h"
#include "kinds/hugetlb.h"
#include "proc/proc_parse.h"

namespace cf::engine {
using namespace ::cf::proc;  // /proc parsing, the layer below
namespace {

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

img::Vma::Kind Classify(const pagemap::VmaInfo& v) {
  if (v.path == "[vdso]") return img::Vma::VDSO;
  if (v.path == "[vvar]") return img::Vma::VVAR;
  if (v.path == "[vvar_vclock]") return img::Vma::VVAR_VCLOCK;
  if (v.path == "[vsyscall]") return img::Vma::VSYSCALL;
  if (!v.is_file()) return v.shared ? img::Vma::ANON_SHARED : img::Vma::ANON_PRIVATE;
  // Shared anonymous memory and memfds are shmem files without a real path
  // (kinds/shmem.h saves them). A private mapping of a memfd reads the
  // memfd's pages until written: a private file mapping of it.
  if (StartsWith(v.path, "/memfd:")) return v.shared ? img::Vma::ANON_SHARED : img::Vma::FILE_PRIVATE;
  // So does a private mapping of shared anonymous memory (a shmem file
  // named "/dev/zero (deleted)", opened through map_files); a private
  // mapping of /dev/zero itself is not deleted.
  if (v.path == "/dev/zero" && v.deleted && !v.shared) return img::Vma::FILE_PRIVATE;
  const bool shmem_anon = StartsWith(v.path, "/dev/zero") || StartsWith(v.path, "/SYSV");
  if (shmem_anon) return v.shared ? img::Vma::ANON_SHARED : img::Vma::ANON_PRIVATE;
  return v.shared ? img::Vma::FILE_SHARED : img::Vma::FILE_PRIVATE;
}

// What only smaps tells (empty when |v| comes from /proc/PID/maps).
void SetSmapsFields(const pagemap::VmaInfo& v, img::Vma* m) {
  if (v.has_vmflag("gd") || v.path == "[stack]") m->set_flags(m->flags() | MAP_GROWSDOWN);
  m->set_may_share(v.shared || v.has_vmflag("ms"));
  m->set_vmflags(v.vmflags);
  if (v.resident_kb >= 0) m->set_resident_kb(static_cast<uint64_t>(v.resident_kb));
}

}  // namespace

bool AdoptSmaps(const std::vector<pagemap::VmaInfo>& smaps, img::Process* out, std::string* why,
                std::vector<int>* droppable) {
  std::vector<int> dropped;
  if (static_cast<size_t>(out->vmas_size()) != smaps.size()) {
    *why = "smaps lists " + std::to_string(smaps.size()) + " VMAs, maps " + std::to_string(out->vmas_size());
    return false;
  }
  for (size_t i = 0; i < smaps.size(); ++i) {
    const pagemap::VmaInfo& v = smaps[i];
    const img::Vma& m = out->vmas(static_cast<int>(i));
    char at[64];
    snprintf(at, sizeof(at), "VMA %#lx-%#lx", v.start, v.end);
    // The fields the maps-based VMA was made of (CollectMm).
    const bool same = m.start() == v.start && m.end() == v.end && m.prot() == v.prot &&
                      ((m.flags() & MAP_SHARED) != 0) == v.shared && m.pgoff() == v.pgoff && m.path() == v.path &&
                      m.dev() == makedev(v.dev_major, v.dev_minor) && m.inode() == v.inode &&
                      m.deleted() == v.deleted;
    if (!same) {
      *why = std::string(at) + " differs from maps";
      return false;
    }
    if (v.has_vmflag("ht") || (v.has_vmflag("dp") && droppable == nullptr)) {
      *why = std::string(at) + " has VmFlags " + v.vmflags + " (droppable or hugetlb)";
      return false;
    }
    if (v.has_vmflag("dp")) dropped.push_back(static_cast<int>(i));
  }
  for (size_t i = 0; i < smaps.size(); ++i) SetSmapsFields(smaps[i], out->mutable_vmas(static_cast<int>(i)));
  if (droppable != nullptr) droppable->insert(droppable->end(), dropped.begin(), dropped.end());
  return true;
}

Result<std::vector<pagemap::VmaInfo>> CollectMm(pid_t pid, img::Process* out,
                                                Result<std::vector<pagemap::VmaInfo>> read,
                                                const ProcStat* known_stat) {
  // smaps, for each VMA's VmFlags: what madvise() and mlock() set
  // (DONTFORK, WIPEONFORK, DONTDUMP, HUGEPAGE, locked...) changes how the
  // program behaves and is given back at restore. Slower than maps (the
  // kernel walks the page tables for its counters), but a lost flag is a
  // silent change of behaviour.
  ASSIGN_OR_RETURN(std::vector<pagemap::VmaInfo> vmas, std::move(read));
  for (const auto& v : vmas) {
    img::Vma* m = out->add_vmas();
    m->set_start(v.start);
    m->set_end(v.end);
    m->set_prot(v.prot);
    const img::Vma::Kind kind = Classify(v);
    m->set_kind(kind);
    uint32_t flags = v.shared ? MAP_SHARED : MAP_PRIVATE;
    if (kind == img::Vma::ANON_PRIVATE || kind == img::Vma::ANON_SHARED) flags |= MAP_ANONYMOUS;
    m->set_flags(flags);
    m->set_pgoff(v.pgoff);
    m->set_path(v.path);
    m->set_dev(makedev(v.dev_major, v.dev_minor));
    m->set_inode(v.inode);
    m->set_deleted(v.deleted);
    SetSmapsFields(v, m);
    m->set_is_heap(v.path == "[heap]");
    m->set_is_stack(v.path == "[stack]");
    // hugetlb memory and AIO rings are described by their kinds.
    if (v.has_vmflag("ht")) RETURN_IF_ERROR(kinds::DescribeHugetlbVma(pid, v, m));
    if (kinds::IsAioRing(v)) RETURN_IF_ERROR(kinds::DescribeAioRing(pid, v, m));
    // A deleted mapped file is saved by kinds/ghost_file.h (SaveMappedGhosts).
  }

  ProcStat read_now;
  if (known_stat == nullptr) {
    ASSIGN_OR_RETURN(read_now, ReadStat(pid));
    known_stat = &read_now;
  }
  const ProcStat& st = *known_stat;
  img::MmState* mm = out->mutable_mm();
  mm->set_start_code(st.start_code);
  mm->set_end_code(st.end_code);
  mm->set_start_data(st.start_data);
  mm->set_end_data(st.end_data);
  mm->set_start_brk(st.start_brk);
  mm->set_start_stack(st.start_stack);
  mm->set_arg_start(st.arg_start);
  mm->set_arg_end(st.arg_end);
  mm->set_env_start(st.env_start);
  mm->set_env_end(st.env_end);

  ASSIGN_OR_RETURN(std::vector<uint64_t> auxv, ReadAuxv(pid));
  for (uint64_t a : auxv) mm->add_auxv(a);

  const std::string exe_link = "/proc/" + std::to_string(pid) + "/exe";
  ASSIGN_OR_RETURN(std::string exe, ReadLink(exe_link));
  struct stat sb;
  if (stat(exe_link.c_str(), &sb) != 0) return ErrnoStatus("stat " + exe_link);
  mm->set_exe_path(exe);
  mm->set_exe_dev(sb.st_dev);
  mm->set_exe_inode(sb.st_ino);
  return vmas;
}

}  // namespace cf::engine
