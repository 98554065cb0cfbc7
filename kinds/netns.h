// Network namespaces: a tree whose processes live in a network namespace
// other than criu-fast's.
//
// Dump: every process of the tree must be in one network namespace (a tree
// split over several is refused). When it is not criu-fast's, the dump
//   - reads what the namespace holds (Read): the loopback link (up or down)
//     and its addresses beyond the automatic 127.0.0.1/8 and ::1/128, and
//     the firewall, as `nft list ruleset`, `iptables-legacy-save` and
//     `ip6tables-legacy-save` print it (the tools that are installed). A
//     link other than lo is refused (veth, bridges, tunnels... are not
//     restored); the fallback tunnel devices the kernel makes in every
//     namespace by itself (tunl0, sit0, ...) are left to it;
//   - points sock_diag queries and the socket kinds' checks at it
//     (SetTreeNetns), since sock_diag only answers for the namespace of its
//     own socket: that socket is made by a thread that entered the
//     namespace (SocketIn);
//   - locks it as a whole (kinds/net_lock.h): every packet in it is dropped
//     but those marked with kFinMark, CRIU's SOCCR_MARK.
// Restore makes a namespace like it (MakeNetns: a thread of criu-fast
// unshares one, brings lo up, adds the addresses, loads the rules with the
// same tools run inside it), or joins one given by `--join-ns net:PATH`
// (or net:PID); the root process enters it before anything else, so every
// socket of the tree is made there. A new namespace is locked as the old
// one was, while the tree is restored; the lock is removed from it (or from
// the joined one, where the dump left it) once the tree is back.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "criu_fast.pb.h"

namespace cf::kinds {

// The network namespace of a dumped tree, when it is not criu-fast's.
class TreeNetns {
 public:
  // Null when every process of |pids| is in criu-fast's namespace; an error
  // when they are not all in one.
  static Result<std::unique_ptr<TreeNetns>> Find(const std::vector<pid_t>& pids);
  int fd() const { return fd_.get(); }
  // What restore makes again; refuses what it would not.
  Result<img::NetNs> Read() const;

 private:
  explicit TreeNetns(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// The namespace sock_diag queries and socket checks are about: |fd| (held
// by the caller, -1: criu-fast's own).
void SetTreeNetns(int fd);
int TreeNetnsFd();
// OK when socket |sock| is of the tree's namespace.
Status CheckTreeNetns(int sock);

// A socket made in network namespace |nsfd| (-1: ours).
Result<UniqueFd> SocketIn(int nsfd, int domain, int type, int protocol);

// The path of tool |name| in PATH (and /usr/sbin, /sbin), or empty.
std::string FindTool(const char* name);
// Runs |argv| (argv[0] a path) inside network namespace |nsfd| (-1: ours),
// with |input| on its stdin; its stdout in *out when given. A failure
// carries its stderr.
Status RunIn(int nsfd, const std::vector<std::string>& argv, const std::string& input, std::string* out);

// Restore: a new network namespace made like |ns|, held by the returned fd,
// locked under |lock_table| when not empty (kinds/net_lock.h): its
// connections are restored one end after the other, and a packet from a
// restored end must not meet a namespace without the other (a reset).
Result<UniqueFd> MakeNetns(const img::NetNs& ns, const std::string& lock_table);
// --join-ns net:PATH or net:PID: the namespace to join.
Result<UniqueFd> OpenJoinNetns(const std::string& spec);

}  // namespace cf::kinds
