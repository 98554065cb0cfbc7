// Process-wide state read from /proc and prlimit(): ids, credentials,
// rlimits, cwd, root, personality, umask.
#include <sys/resource.h>

#include "common/io.h"
#include "engine/collect.h"
#include "proc/proc_parse.h"

namespace cf::engine {
using namespace ::cf::proc;  // /proc parsing, the layer below

Status CollectProcessInfo(pid_t pid, img::Process* out) {
  const std::string proc = "/proc/" + std::to_string(pid);
  ASSIGN_OR_RETURN(ProcStat st, ReadStat(pid));
  ASSIGN_OR_RETURN(ProcStatus status, ReadStatus(pid));
  out->set_pid(pid);
  out->set_ppid(st.ppid);
  out->set_pgid(st.pgid);
  out->set_sid(st.sid);
  out->set_comm(st.comm);
  out->set_umask(status.umask);

  img::Creds* c = out->mutable_creds();
  c->set_uid(status.uid[0]);
  c->set_euid(status.uid[1]);
  c->set_suid(status.uid[2]);
  c->set_fsuid(status.uid[3]);
  c->set_gid(status.gid[0]);
  c->set_egid(status.gid[1]);
  c->set_sgid(status.gid[2]);
  c->set_fsgid(status.gid[3]);
  for (uint32_t g : status.groups) c->add_groups(g);
  c->set_cap_inh(status.cap_inh);
  c->set_cap_prm(status.cap_prm);
  c->set_cap_eff(status.cap_eff);
  c->set_cap_bnd(status.cap_bnd);
  c->set_cap_amb(status.cap_amb);
  c->set_no_new_privs(status.no_new_privs);
  c->set_seccomp_mode(status.seccomp);
  if (status.seccomp != 0) {
    return Errorf("process %d uses seccomp (mode %u): not supported yet", pid, status.seccomp);
  }

  for (int r = 0; r < RLIM_NLIMITS; ++r) {
    struct rlimit rl;
    if (prlimit(pid, static_cast<__rlimit_resource>(r), nullptr, &rl) != 0) {
      return ErrnoStatus("prlimit of " + std::to_string(pid));
    }
    img::Rlimit* l = out->add_rlimits();
    l->set_resource(static_cast<uint32_t>(r));
    l->set_cur(rl.rlim_cur);
    l->set_max(rl.rlim_max);
  }

  ASSIGN_OR_RETURN(std::string cwd, ReadLink(proc + "/cwd"));
  ASSIGN_OR_RETURN(std::string root, ReadLink(proc + "/root"));
  out->set_cwd(cwd);
  out->set_root(root);

  ASSIGN_OR_RETURN(std::string pers, ReadFile(proc + "/personality"));
  out->set_personality(static_cast<uint32_t>(strtoul(pers.c_str(), nullptr, 16)));
  return OkStatus();
}

}  // namespace cf::engine
