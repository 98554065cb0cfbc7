// Network namespaces of the tree (see netns.h). Work inside another
// namespace is done either by a short-lived thread of criu-fast that enters
// it (a network namespace is per thread; a socket stays in the namespace it
// was made in), or by a tool forked into it (the child enters it before
// exec; from a multi-threaded criu-fast it makes system calls only).
#include "kinds/netns.h"

#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if_arp.h>
#include <linux/nsfs.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <thread>

#include "common/io.h"
#include "common/log.h"
#include "kinds/net_lock.h"

extern char** environ;

namespace cf::kinds {
namespace {

std::atomic<int> g_tree_netns{-1};

// Runs |f| on a thread that first enters namespace |nsfd| (unshares a new
// one when |nsfd| < 0); returns |f|'s status.
Status InNetnsThread(int nsfd, const std::function<Status()>& f) {
  Status out;
  std::thread t([&] {
    if (nsfd >= 0 ? setns(nsfd, CLONE_NEWNET) != 0 : unshare(CLONE_NEWNET) != 0) {
      out = ErrnoStatus(nsfd >= 0 ? "enter the network namespace (setns)" : "unshare(CLONE_NEWNET)");
      return;
    }
    out = f();
  });
  t.join();
  return out;
}

Status StatNs(const std::string& path, struct stat* sb) {
  if (stat(path.c_str(), sb) != 0) return ErrnoStatus("stat " + path);
  return OkStatus();
}

// The prefix length of netmask |m| (|len| bytes).
int PrefixOf(const unsigned char* m, size_t len) {
  int n = 0;
  for (size_t i = 0; i < len; ++i) n += std::popcount(static_cast<unsigned>(m[i]));
  return n;
}

// Devices the kernel makes in every new namespace when their module is
// loaded: they come back by themselves.
bool FallbackDevice(const std::string& name) {
  static const std::set<std::string> kNames = {"tunl0",   "sit0",    "ip6tnl0", "ip6gre0",   "gre0",
                                               "gretap0", "erspan0", "ip_vti0", "ip6_vti0", "ip6erspan0"};
  return kNames.count(name) != 0;
}

}  // namespace

Result<std::unique_ptr<TreeNetns>> TreeNetns::Find(const std::vector<pid_t>& pids) {
  struct stat ours {};
  RETURN_IF_ERROR(StatNs("/proc/self/ns/net", &ours));
  struct stat first {};
  pid_t first_pid = 0;
  for (pid_t pid : pids) {
    struct stat sb {};
    RETURN_IF_ERROR(StatNs("/proc/" + std::to_string(pid) + "/ns/net", &sb));
    if (first_pid == 0) {
      first = sb;
      first_pid = pid;
      continue;
    }
    if (sb.st_ino != first.st_ino || sb.st_dev != first.st_dev) {
      return Errorf("process %d is in network namespace net:[%lu], process %d in net:[%lu]: a tree spread over "
                    "several network namespaces is not supported",
                    first_pid, static_cast<unsigned long>(first.st_ino), pid, static_cast<unsigned long>(sb.st_ino));
    }
  }
  if (first_pid == 0 || (first.st_ino == ours.st_ino && first.st_dev == ours.st_dev)) {
    return std::unique_ptr<TreeNetns>();
  }
  const std::string path = "/proc/" + std::to_string(first_pid) + "/ns/net";
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path);
  LOG_INFO("netns: the tree is in network namespace net:[%lu]", static_cast<unsigned long>(first.st_ino));
  return std::unique_ptr<TreeNetns>(new TreeNetns(std::move(fd)));
}

Result<img::NetNs> TreeNetns::Read() const {
  img::NetNs ns;
  RETURN_IF_ERROR(InNetnsThread(fd_.get(), [&]() -> Status {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return ErrnoStatus("getifaddrs");
    Status st;
    for (ifaddrs* a = list; a != nullptr && st.ok(); a = a->ifa_next) {
      const std::string name = a->ifa_name ? a->ifa_name : "";
      if (a->ifa_addr == nullptr) continue;
      const int family = a->ifa_addr->sa_family;
      if (family == AF_PACKET) {
        const auto* ll = reinterpret_cast<const sockaddr_ll*>(a->ifa_addr);
        if (ll->sll_hatype == ARPHRD_LOOPBACK) {
          ns.set_lo_up((a->ifa_flags & IFF_UP) != 0);
        } else if (!FallbackDevice(name)) {
          st = Errorf("network namespace: link %s (type %u): only the loopback link is restored: not supported",
                      name.c_str(), ll->sll_hatype);
        }
        continue;
      }
      if (family != AF_INET && family != AF_INET6) continue;
      if (!(a->ifa_flags & IFF_LOOPBACK)) {
        st = Error("network namespace: an address on link " + name + ": only the loopback link is restored");
        continue;
      }
      char text[INET6_ADDRSTRLEN] = {};
      int prefix = 0;
      if (family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
        if (a->ifa_netmask) {
          prefix = PrefixOf(reinterpret_cast<const unsigned char*>(
                                &reinterpret_cast<const sockaddr_in*>(a->ifa_netmask)->sin_addr),
                            4);
        }
      } else {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
        if (a->ifa_netmask) {
          prefix = PrefixOf(reinterpret_cast<const unsigned char*>(
                                &reinterpret_cast<const sockaddr_in6*>(a->ifa_netmask)->sin6_addr),
                            16);
        }
      }
      const std::string addr = std::string(text) + "/" + std::to_string(prefix);
      if (addr == "127.0.0.1/8" || addr == "::1/128") continue;  // lo up makes them
      ns.add_lo_addrs(addr);
    }
    freeifaddrs(list);
    return st;
  }));
  // The firewall, as the tools that are here print it.
  struct Dump {
    const char* tool;
    std::vector<std::string> args;
    std::string* into;
  };
  std::string nft, ipt, ip6t;
  const Dump dumps[] = {{"nft", {"list", "ruleset"}, &nft},
                        {"iptables-legacy-save", {}, &ipt},
                        {"ip6tables-legacy-save", {}, &ip6t}};
  for (const Dump& d : dumps) {
    const std::string path = FindTool(d.tool);
    if (path.empty()) {
      LOG_DEBUG("netns: no %s here: its rules are not saved", d.tool);
      continue;
    }
    std::vector<std::string> argv{path};
    argv.insert(argv.end(), d.args.begin(), d.args.end());
    RETURN_IF_ERROR(RunIn(fd_.get(), argv, "", d.into).WithContext("network namespace rules"));
  }
  ns.set_nft_ruleset(nft);
  ns.set_iptables_legacy(ipt);
  ns.set_ip6tables_legacy(ip6t);
  LOG_DEBUG("netns: lo %s, %d more addresses, rules: nft %zu, iptables %zu, ip6tables %zu bytes",
            ns.lo_up() ? "up" : "down", ns.lo_addrs_size(), nft.size(), ipt.size(), ip6t.size());
  return ns;
}

void SetTreeNetns(int fd) { g_tree_netns = fd; }
int TreeNetnsFd() { return g_tree_netns; }

Status CheckTreeNetns(int sock) {
  UniqueFd ns(ioctl(sock, SIOCGSKNS));
  struct stat theirs {}, tree {};
  if (!ns.valid() || fstat(ns.get(), &theirs) != 0) return ErrnoStatus("the socket's network namespace (SIOCGSKNS)");
  const int fd = TreeNetnsFd();
  if (fd >= 0 ? fstat(fd, &tree) != 0 : stat("/proc/self/ns/net", &tree) != 0) {
    return ErrnoStatus("stat the tree's network namespace");
  }
  if (theirs.st_ino != tree.st_ino || theirs.st_dev != tree.st_dev) {
    return Error("a socket of another network namespace than its process's: not supported");
  }
  return OkStatus();
}

Result<UniqueFd> SocketIn(int nsfd, int domain, int type, int protocol) {
  if (nsfd < 0) {
    UniqueFd s(socket(domain, type, protocol));
    if (!s.valid()) return ErrnoStatus("socket");
    return s;
  }
  UniqueFd s;
  RETURN_IF_ERROR(InNetnsThread(nsfd, [&]() -> Status {
    s.reset(socket(domain, type, protocol));
    return s.valid() ? OkStatus() : ErrnoStatus("socket");
  }));
  return s;
}

std::string FindTool(const char* name) {
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
  dirs += ":/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string cand = dirs.substr(start, end - start) + "/" + name;
    if (end > start && access(cand.c_str(), X_OK) == 0) return cand;
    start = end + 1;
  }
  return {};
}

Status RunIn(int nsfd, const std::vector<std::string>& argv, const std::string& input, std::string* out) {
  int in[2], so[2], se[2];
  if (pipe2(in, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (pipe2(so, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  UniqueFd so_r(so[0]), so_w(so[1]);
  if (pipe2(se, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  UniqueFd se_r(se[0]), se_w(se[1]);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return ErrnoStatus("fork to run " + argv[0]);
  if (pid == 0) {
    // System calls only: criu-fast may have other threads.
    if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) != 0) _exit(126);
    if (dup2(in_r.get(), 0) < 0 || dup2(so_w.get(), 1) < 0 || dup2(se_w.get(), 2) < 0) _exit(126);
    close_range(3, ~0u, 0);
    execve(args[0], args.data(), environ);
    _exit(127);
  }
  in_r.reset();
  so_w.reset();
  se_w.reset();
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &old);
  Status wrote = WriteAll(in_w.get(), input.data(), input.size(), argv[0] + "'s input");
  sigaction(SIGPIPE, &old, nullptr);
  in_w.reset();
  std::string got, err;
  pollfd p[2] = {{so_r.get(), POLLIN, 0}, {se_r.get(), POLLIN, 0}};
  int open_ends = 2;
  while (open_ends > 0) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t n = read(p[i].fd, buf, sizeof(buf));
      if (n > 0) {
        (i == 0 ? got : err).append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        p[i].fd = -1;
        --open_ends;
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return Error(argv[0] + " failed" + (err.empty() ? std::string() : ": " + err), EIO);
  }
  RETURN_IF_ERROR(wrote);
  if (out) *out = std::move(got);
  return OkStatus();
}

Result<UniqueFd> MakeNetns(const img::NetNs& ns, const std::string& lock_table) {
  UniqueFd fd;
  RETURN_IF_ERROR(InNetnsThread(-1, [&]() -> Status {
    fd.reset(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus("open the new network namespace");
    if (!ns.lo_up()) return OkStatus();
    UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s.valid()) return ErrnoStatus("socket");
    ifreq ifr{};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return ErrnoStatus("SIOCGIFFLAGS lo");
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) return ErrnoStatus("bring lo up");
    return OkStatus();
  }).WithContext("network namespace"));
  if (ns.lo_addrs_size() > 0) {
    const std::string ip = FindTool("ip");
    if (ip.empty()) return Error("network namespace: lo has addresses to restore, and ip (iproute2) is not in PATH");
    for (const std::string& a : ns.lo_addrs()) {
      RETURN_IF_ERROR(RunIn(fd.get(), {ip, "addr", "add", a, "dev", "lo"}, "", nullptr)
                          .WithContext("network namespace: address " + a));
    }
  }
  struct Load {
    const char* tool;
    std::vector<std::string> args;
    const std::string& rules;
  };
  const Load loads[] = {{"nft", {"-f", "-"}, ns.nft_ruleset()},
                        {"iptables-legacy-restore", {}, ns.iptables_legacy()},
                        {"ip6tables-legacy-restore", {}, ns.ip6tables_legacy()}};
  for (const Load& l : loads) {
    if (l.rules.find_first_not_of(" \t\n") == std::string::npos) continue;
    const std::string path = FindTool(l.tool);
    if (path.empty()) return Errorf("network namespace: rules to load with %s, which is not in PATH", l.tool);
    std::vector<std::string> argv{path};
    argv.insert(argv.end(), l.args.begin(), l.args.end());
    RETURN_IF_ERROR(RunIn(fd.get(), argv, l.rules, nullptr).WithContext("network namespace rules"));
  }
  if (!lock_table.empty()) RETURN_IF_ERROR(LockNamespace(fd.get(), lock_table).WithContext("network namespace lock"));
  LOG_INFO("netns: a network namespace made again (lo %s, %d more addresses)", ns.lo_up() ? "up" : "down",
           ns.lo_addrs_size());
  return fd;
}

Result<UniqueFd> OpenJoinNetns(const std::string& spec) {
  const size_t colon = spec.find(':');
  const std::string type = spec.substr(0, colon);
  if (colon == std::string::npos || type != "net") {
    return Error("--join-ns " + spec + ": only net:PATH or net:PID is supported");
  }
  std::string target = spec.substr(colon + 1);
  if (const size_t comma = target.find(','); comma != std::string::npos) target.resize(comma);
  if (!target.empty() && target.find_first_not_of("0123456789") == std::string::npos) {
    target = "/proc/" + target + "/ns/net";
  }
  UniqueFd fd(open(target.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("--join-ns: open " + target);
  struct stat sb {};
  int type_of = 0;
  if (fstat(fd.get(), &sb) != 0 || (type_of = ioctl(fd.get(), NS_GET_NSTYPE)) != CLONE_NEWNET) {
    return Error("--join-ns: " + target + " is not a network namespace");
  }
  return fd;
}

}  // namespace cf::kinds
