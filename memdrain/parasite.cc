#include "memdrain/parasite.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "common/fault.h"
#include "common/log.h"
#include "blobs/parasite/parasite_abi.h"
#include "pagemap/page_ranges.h"

extern "C" const uint8_t cf_parasite_blob_start[];
extern "C" const uint8_t cf_parasite_blob_end[];

namespace cf::memdrain {
namespace {

static_assert(Parasite::kMaxJobs == CF_PAR_MAX_JOBS);
static_assert(Parasite::kMaxIovs == CF_PAR_MAX_IOVS);
static_assert(sizeof(cf_par_iovec) == sizeof(iovec));

constexpr uint64_t kPage = 4096;
constexpr int kRunTimeoutMs = 10000;  // the parasite makes only non-blocking calls
constexpr uint64_t kMaxPipe = 2ull << 20;

using pagemap::PageUp;

// The part of the args block the parasite writes back (everything but iovs).
constexpr size_t kArgsHead = offsetof(cf_par_args, iovs);

const char* StageName(uint32_t stage) {
  switch (stage) {
    case CF_PAR_STAGE_PIPE: return "pipe2";
    case CF_PAR_STAGE_SETPIPE_SZ: return "fcntl(F_SETPIPE_SZ)";
    case CF_PAR_STAGE_VMSPLICE: return "vmsplice";
    default: return "start";
  }
}

Status WriteRemote(pid_t pid, uint64_t addr, const void* buf, size_t len) {
  iovec local{const_cast<void*>(buf), len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  if (process_vm_writev(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(len)) {
    return ErrnoStatus("write parasite memory of " + std::to_string(pid));
  }
  return OkStatus();
}

Status ReadRemote(pid_t pid, uint64_t addr, void* buf, size_t len) {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(len)) {
    return ErrnoStatus("read parasite memory of " + std::to_string(pid));
  }
  return OkStatus();
}

Status CheckRemote(long r, const char* what, pid_t pid) {
  if (r < 0 && r > -4096) return ErrnoStatus(static_cast<int>(-r), std::string(what) + " in " + std::to_string(pid));
  return OkStatus();
}

}  // namespace

pid_t TracerPidFor(pid_t pid) {
  struct stat self_ns, target_ns;
  if (stat("/proc/self/ns/pid", &self_ns) != 0) return 0;
  if (stat(("/proc/" + std::to_string(pid) + "/ns/pid").c_str(), &target_ns) != 0) return 0;
  if (self_ns.st_ino != target_ns.st_ino || self_ns.st_dev != target_ns.st_dev) return 0;
  return getpid();
}

uint64_t PipeCapacity() {
  static const uint64_t cap = [] {
    uint64_t max = 1ull << 20;
    if (FILE* f = fopen("/proc/sys/fs/pipe-max-size", "r")) {
      unsigned long v = 0;
      if (fscanf(f, "%lu", &v) == 1 && v >= kPage) max = v;
      fclose(f);
    }
    max = std::min(max, kMaxPipe);
    uint64_t p = kPage;
    while (p * 2 <= max) p *= 2;
    return p;
  }();
  return cap;
}

Result<std::unique_ptr<Parasite>> Parasite::Inject(pid_t pid) {
  ASSIGN_OR_RETURN(RemoteSyscall rs, RemoteSyscall::Attach(pid, pid));
  std::unique_ptr<Parasite> p(new Parasite(pid, std::move(rs)));
  // From here on, p's destructor removes whatever was put in place.
  const uint64_t blob_len = static_cast<uint64_t>(cf_parasite_blob_end - cf_parasite_blob_start);
  const uint64_t code = PageUp(blob_len);
  const uint64_t args = PageUp(sizeof(cf_par_args));
  const uint64_t frame_len = PageUp(p->rs_.ReturnFrame(0).size());
  p->area_size_ = code + args + frame_len + CF_PAR_STACK_SIZE;
  ASSIGN_OR_RETURN(long r, p->rs_.Call(__NR_mmap, 0, p->area_size_, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, static_cast<uint64_t>(-1), 0));
  RETURN_IF_ERROR(CheckRemote(r, "mmap of the parasite area", pid));
  p->area_ = static_cast<uint64_t>(r);
  p->args_addr_ = p->area_ + code;
  p->frame_addr_ = p->args_addr_ + args;
  p->stack_top_ = p->area_ + p->area_size_;
  p->tracer_pid_ = TracerPidFor(pid);
  RETURN_IF_ERROR(WriteRemote(pid, p->area_, cf_parasite_blob_start, blob_len));
  const std::vector<uint8_t> frame = p->rs_.ReturnFrame(p->frame_addr_);
  RETURN_IF_ERROR(WriteRemote(pid, p->frame_addr_, frame.data(), frame.size()));
  ASSIGN_OR_RETURN(r, p->rs_.Call(__NR_mprotect, p->area_, code, PROT_READ | PROT_EXEC));
  RETURN_IF_ERROR(CheckRemote(r, "mprotect of the parasite code", pid));
  p->pidfd_.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!p->pidfd_.valid()) return ErrnoStatus("pidfd_open " + std::to_string(pid));
  LOG_DEBUG("parasite: injected in %d at %#lx (%lu bytes, blob %lu)", pid, p->area_, p->area_size_, blob_len);
  return p;
}

Parasite::~Parasite() {
  Status s = Cure();
  if (!s.ok()) LOG_ERROR("parasite: %s", s.ToString().c_str());
}

// Fills in the protocol fields of |a| and writes it into the target.
Status Parasite::WriteArgs(cf_par_args* a) {
  a->magic = CF_PAR_MAGIC;
  a->version = CF_PAR_VERSION;
  a->done = CF_PAR_DONE_NOT_YET;
  a->taken = 0;
  a->status = 0;
  a->frame = frame_addr_;
  a->tracer_pid = tracer_pid_;
  a->tracer_fd = -1;
  uint64_t iov_used = 0;
  for (uint32_t j = 0; j < a->njobs; ++j) iov_used = std::max<uint64_t>(iov_used, a->jobs[j].iov_first + a->jobs[j].iov_count);
  return WriteRemote(pid_, args_addr_, a, kArgsHead + iov_used * sizeof(cf_par_iovec));
}

// Runs the command in |a| (see parasite_abi.h for the steps of its end):
// takes the pipes into |out| while the parasite waits, then closes the
// parasite's pidfd of criu-fast once the thread is back.
Status Parasite::Run(cf_par_args* a, std::vector<UniqueFd>* out) {
  FAULT_POINT("parasite");
  RETURN_IF_ERROR(WriteArgs(a));
  bool taken = false;
  Status take_status;
  auto ended = [&]() -> Result<bool> {
    uint64_t done = 0;
    RETURN_IF_ERROR(ReadRemote(pid_, args_addr_ + offsetof(cf_par_args, done), &done, sizeof(done)));
    if (done == CF_PAR_DONE_OVER) return true;
    if (done != CF_PAR_DONE_PIPES || taken) return false;
    RETURN_IF_ERROR(ReadRemote(pid_, args_addr_, a, kArgsHead));
    for (uint32_t j = 0; j < a->njobs && take_status.ok(); ++j) {
      if (a->jobs[j].fd < 0) break;
      UniqueFd fd(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd_.get(), a->jobs[j].fd, 0)));
      if (!fd.valid()) {
        take_status = ErrnoStatus("pidfd_getfd of a parasite pipe of " + std::to_string(pid_));
        break;
      }
      out->push_back(std::move(fd));
    }
    // Whatever happened, the parasite may now close its copies.
    const uint64_t one = 1;
    taken = true;
    RETURN_IF_ERROR(WriteRemote(pid_, args_addr_ + offsetof(cf_par_args, taken), &one, sizeof(one)));
    return false;
  };
  // Whatever happened, the target keeps nothing of the command: its pidfd
  // of criu-fast is closed from the parasite's stop (RunCode |left_open|),
  // the pipes after it when the parasite was stopped before it closed them
  // (criu-fast failed or timed out while it waited for `taken`).
  bool read = false;
  Status st = rs_.RunCode(area_, stack_top_, args_addr_, ended, kRunTimeoutMs, tracer_pid_ != 0,
                          [&]() -> Result<int> {
                            RETURN_IF_ERROR(ReadRemote(pid_, args_addr_, a, kArgsHead));
                            read = true;
                            return a->tracer_fd;
                          });
  if (read && a->done != CF_PAR_DONE_OVER) {
    for (uint32_t j = 0; j < a->njobs && j < kMaxJobs; ++j) {
      if (a->jobs[j].fd >= 0) (void)rs_.CleanupCall(__NR_close, static_cast<uint64_t>(a->jobs[j].fd));
    }
  }
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(take_status);
  if (a->done != CF_PAR_DONE_OVER) return Errorf("parasite in %d did not finish its command", pid_);
  if (a->status != 0) {
    return ErrnoStatus(static_cast<int>(-a->status),
                       std::string("parasite in process ") + std::to_string(pid_) + ": " + StageName(a->stage) +
                           " (job " + std::to_string(a->failed_job) + ")");
  }
  if (out->size() != a->njobs) return Errorf("parasite in %d made %zu pipes of %u", pid_, out->size(), a->njobs);
  return OkStatus();
}

Status Parasite::PrepareFill(std::span<const std::vector<pagemap::PageRange>> jobs, cf_par_args* a) {
  if (cured_) return Errorf("parasite in %d already removed", pid_);
  if (jobs.size() > kMaxJobs) return Errorf("parasite: %zu jobs in one command (at most %zu)", jobs.size(), kMaxJobs);
  a->cmd = CF_PAR_CMD_FILL;
  a->njobs = static_cast<uint32_t>(jobs.size());
  a->pipe_size = PipeCapacity();
  uint32_t iov = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    cf_par_job& job = a->jobs[j];
    job.iov_first = iov;
    job.iov_count = static_cast<uint32_t>(jobs[j].size());
    job.bytes = 0;
    job.fd = -1;
    if (iov + jobs[j].size() > kMaxIovs) return Errorf("parasite: more than %zu ranges in one command", kMaxIovs);
    for (const pagemap::PageRange& r : jobs[j]) {
      a->iovs[iov++] = {r.start, r.bytes()};
      job.bytes += r.bytes();
    }
    if (job.bytes > a->pipe_size) return Errorf("parasite: job of %lu bytes exceeds a pipe", job.bytes);
  }
  return OkStatus();
}

Result<std::vector<UniqueFd>> Parasite::Fill(std::span<const std::vector<pagemap::PageRange>> jobs) {
  auto a = std::make_unique<cf_par_args>();
  RETURN_IF_ERROR(PrepareFill(jobs, a.get()));
  std::vector<UniqueFd> out;
  out.reserve(jobs.size());
  RETURN_IF_ERROR(Run(a.get(), &out));
  return out;
}

Status Parasite::StartFillForTest(std::span<const std::vector<pagemap::PageRange>> jobs) {
  auto a = std::make_unique<cf_par_args>();
  RETURN_IF_ERROR(PrepareFill(jobs, a.get()));
  RETURN_IF_ERROR(WriteArgs(a.get()));
  RETURN_IF_ERROR(rs_.StartCodeForTest(area_, stack_top_, args_addr_));
  cured_ = true;  // nothing may be removed: the test abandons the thread here
  return OkStatus();
}

Status Parasite::Cure() {
  if (cured_) return OkStatus();
  cured_ = true;
  Status result;
  if (area_ != 0) {
    auto r = rs_.CleanupCall(__NR_munmap, area_, area_size_);
    result = r.ok() ? CheckRemote(*r, "munmap of the parasite area", pid_) : r.status();
    area_ = 0;
  }
  Status s = rs_.Restore();
  if (!s.ok() && result.ok()) result = s;
  pidfd_.reset();
  if (result.ok()) LOG_DEBUG("parasite: removed from %d", pid_);
  return result;
}

}  // namespace cf::memdrain
