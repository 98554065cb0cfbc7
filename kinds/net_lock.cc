// See net_lock.h. The guard is forked from a multi-threaded criu-fast, so
// it only makes async-signal-safe calls: everything it needs (the path of
// nft and the command line deleting the table) is prepared before the fork.
#include "kinds/net_lock.h"

#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/io.h"
#include "common/log.h"
#include "kinds/netns.h"
#include "kinds/tcp_fin.h"

extern char** environ;

namespace cf::kinds {
namespace {

// Messages to the guard: one byte each, 'F' with a descriptor.
constexpr char kHold = 'F';
constexpr char kKeep = 'K';
constexpr char kUndo = 'U';        // table deleted
constexpr char kUndoNoTable = 'u'; // no table was made
constexpr int kMaxHeld = 4096;

Result<std::string> FindNft() {
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
  dirs += ":/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string cand = dirs.substr(start, end - start) + "/nft";
    if (end > start && access(cand.c_str(), X_OK) == 0) return cand;
    start = end + 1;
  }
  return Error("the TCP network lock needs nft (nftables), which is not installed or not in PATH", ENOENT);
}

// Runs `nft -f -` with |script| on its stdin, in network namespace |netns|
// (-1: ours); its stderr in the error.
Status RunNft(const std::string& nft, const std::string& script, int netns = -1) {
  Status s = RunIn(netns, {nft, "-f", "-"}, script, nullptr);
  if (!s.ok()) return Error(s.message(), EIO);
  return s;
}

// Runs argv and waits; async-signal-safe.
bool GuardRun(char* const argv[]) {
  const pid_t pid = fork();
  if (pid == 0) {
    execv(argv[0], argv);
    _exit(127);
  }
  if (pid < 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// The guard's life: collect sockets until told what to do with them, or
// until criu-fast is gone (the channel closes), which counts as undo.
[[noreturn]] void GuardMain(int channel, char* const del_argv[]) {
  static int held[kMaxHeld];
  int nheld = 0;
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT}) sigaction(sig, &ign, nullptr);
  setpgid(0, 0);  // out of criu-fast's process group: a group kill spares it
  char what = kUndo;
  for (;;) {
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = recvmsg(channel, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // criu-fast died: undo
    if (byte == kHold) {
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      if (c && c->cmsg_type == SCM_RIGHTS && nheld < kMaxHeld) memcpy(&held[nheld++], CMSG_DATA(c), sizeof(int));
      continue;
    }
    what = byte;
    break;
  }
  bool ok = true;
  if (what == kKeep) {
    // The tree is dead: these are the last references to its sockets. In
    // repair mode their close sends nothing (no FIN, no reset) and frees
    // their addresses for restore at once.
    const int on = TCP_REPAIR_ON;
    for (int i = 0; i < nheld; ++i) {
      if (setsockopt(held[i], IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) != 0) ok = false;
    }
  } else if (what != kUndoNoTable && !GuardRun(del_argv)) {
    ok = false;
  }
  const char reply = ok ? '0' : '1';
  (void)!write(channel, &reply, 1);
  _exit(0);  // closes the held sockets
}

}  // namespace

Result<std::unique_ptr<NetLock>> NetLock::Start(pid_t root, bool rules, int netns) {
  std::string nft = "nft";
  if (rules) {
    ASSIGN_OR_RETURN(nft, FindNft());
  }
  const std::string table = "criu-fast-" + std::to_string(root);
  // The guard's command line, made before the fork.
  static std::string args[5];
  args[0] = nft;
  args[1] = "delete";
  args[2] = "table";
  args[3] = "inet";
  args[4] = table;
  static char* del_argv[6];
  for (int i = 0; i < 5; ++i) del_argv[i] = args[i].data();
  del_argv[5] = nullptr;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return ErrnoStatus("socketpair");
  UniqueFd mine(sv[0]), theirs(sv[1]);
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) return ErrnoStatus("fork the network lock's guard");
  if (pid == 0) {
    // Only the channel stays open (the images, a stream on stdout, the
    // tree's descriptors are none of the guard's business).
    const int devnull = open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd) dup2(devnull, fd);
    dup2(theirs.get(), 3);
    // The table to delete is in the tree's namespace.
    if (netns >= 0 && setns(netns, CLONE_NEWNET) != 0) _exit(1);
    close_range(4, ~0u, 0);
    GuardMain(3, del_argv);
  }
  LOG_DEBUG("net-lock: guard %d for table inet %s", pid, table.c_str());
  std::unique_ptr<NetLock> lock(new NetLock(table, rules, pid, std::move(mine), netns));
  if (netns >= 0 && rules) {
    RETURN_IF_ERROR(LockNamespace(netns, table).WithContext("lock the tree's network namespace"));
    lock->created_ = true;
    LOG_INFO("net-lock: the tree's network namespace locked (table inet %s)", table.c_str());
  }
  return lock;
}

NetLock::~NetLock() {
  if (finished_) return;
  Status s = Undo();
  if (!s.ok()) LOG_ERROR("net-lock: %s", s.ToString().c_str());
}

Status NetLock::Lock(const InetAddr& local, const InetAddr& peer) {
  if (!rules_ || netns_ >= 0) return OkStatus();  // the namespace is locked already
  ASSIGN_OR_RETURN(std::string nft, FindNft());
  std::string script;
  if (!created_) {
    // Before the conntrack hooks (-200): a dropped packet leaves no trace.
    script += "add table inet " + table_ + "\n";
    for (const char* hook : {"input", "output"}) {
      script += std::string("add chain inet ") + table_ + " " + hook + " { type filter hook " + hook +
                " priority -300; policy accept; }\n";
      // Segments restore makes to put a peer's FIN back (kinds/tcp_fin.h).
      script += std::string("add rule inet ") + table_ + " " + hook + " meta mark " + std::to_string(kFinMark) +
                " accept\n";
    }
  }
  const char* ip = local.WireFamily() == AF_INET6 ? "ip6" : "ip";
  auto rule = [&](const char* chain, const InetAddr& from, const InetAddr& to) {
    script += std::string("add rule inet ") + table_ + " " + chain + " " + ip + " saddr " + from.AddrString() + " " +
              ip + " daddr " + to.AddrString() + " tcp sport " + std::to_string(from.port) + " tcp dport " +
              std::to_string(to.port) + " drop\n";
  };
  rule("input", peer, local);
  rule("output", local, peer);
  RETURN_IF_ERROR(RunNft(nft, script).WithContext("lock connection " + local.ToString() + " - " + peer.ToString()));
  created_ = true;
  LOG_DEBUG("net-lock: %s - %s locked", local.ToString().c_str(), peer.ToString().c_str());
  return OkStatus();
}

Status NetLock::Hold(const UniqueFd& sock) {
  char byte = kHold;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  const int fd = sock.get();
  memcpy(CMSG_DATA(c), &fd, sizeof(fd));
  if (sendmsg(channel_.get(), &msg, MSG_NOSIGNAL) != 1) return ErrnoStatus("hand a socket to the network lock's guard");
  return OkStatus();
}

Status NetLock::Finish(char how) {
  finished_ = true;
  Status sent = OkStatus();
  if (send(channel_.get(), &how, 1, MSG_NOSIGNAL) != 1) sent = ErrnoStatus("tell the network lock's guard");
  char reply = '1';
  ssize_t n;
  do {
    n = read(channel_.get(), &reply, 1);
  } while (n < 0 && errno == EINTR);
  channel_.reset();
  int status = 0;
  while (waitpid(guard_, &status, 0) < 0 && errno == EINTR) {
  }
  RETURN_IF_ERROR(sent);
  if (n != 1 || reply != '0') {
    return Error(how == kKeep ? "the network lock's guard failed"
                              : "could not undo the network lock (table inet " + table_ +
                                    "): remove it with `nft delete table inet " + table_ + "`",
                 EIO);
  }
  return OkStatus();
}

Status NetLock::Keep() {
  LOG_INFO("net-lock: table inet %s stays until restore", table_.c_str());
  return Finish(kKeep);
}

Status NetLock::Undo() {
  if (finished_) return OkStatus();
  LOG_DEBUG("net-lock: undone (table inet %s)", table_.c_str());
  return Finish(created_ ? kUndo : kUndoNoTable);
}

Status LockNamespace(int netns, const std::string& table) {
  ASSIGN_OR_RETURN(std::string nft, FindNft());
  // Nothing passes but the segments criu-fast makes (CRIU's SOCCR_MARK is
  // the same mark).
  std::string script = "add table inet " + table + "\n";
  for (const char* hook : {"input", "output"}) {
    script += std::string("add chain inet ") + table + " " + hook + " { type filter hook " + hook +
              " priority -300; policy drop; }\n";
    script += std::string("add rule inet ") + table + " " + hook + " meta mark " + std::to_string(kFinMark) +
              " accept\n";
  }
  return RunNft(nft, script, netns);
}

Status CheckNetLock() { return FindNft().status(); }

Status UnlockNetwork(const std::string& table, int netns) {
  if (table.empty()) return OkStatus();
  ASSIGN_OR_RETURN(std::string nft, FindNft());
  RETURN_IF_ERROR(RunNft(nft, "delete table inet " + table + "\n", netns).WithContext("network unlock"));
  LOG_INFO("net-lock: table inet %s removed", table.c_str());
  return OkStatus();
}

}  // namespace cf::kinds
