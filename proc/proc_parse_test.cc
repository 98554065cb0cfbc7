#include "proc/proc_parse.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <string>
#include <thread>

#include "common/io.h"

namespace cf::proc {
namespace {

pid_t Gettid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

bool Contains(const Status& s, std::string_view what) {
  return s.message().find(what) != std::string::npos;
}

// --- stat -------------------------------------------------------------------

// Copied from /proc/self/stat of `cat` (kernel 6.18, 52 fields).
constexpr std::string_view kStat =
    "4224 (cat) R 4219 4219 2846 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 224778 3133440 412 "
    "18446744073709551615 94346905784320 94346905804201 140722214411968 0 0 0 0 0 0 0 0 0 17 1 "
    "0 0 0 0 0 94346905820208 94346905821824 94347908153344 140722214419078 140722214419098 "
    "140722214419098 140722214420459 0\n";

TEST(ProcParseTest, RealStat) {
  auto r = ParseStat(kStat);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->pid, 4224);
  EXPECT_EQ(r->comm, "cat");
  EXPECT_EQ(r->state, 'R');
  EXPECT_EQ(r->ppid, 4219);
  EXPECT_EQ(r->pgid, 4219);
  EXPECT_EQ(r->sid, 2846);
  EXPECT_EQ(r->flags, 4194304u);
  EXPECT_EQ(r->num_threads, 1);
  EXPECT_EQ(r->start_time, 224778u);
  EXPECT_EQ(r->start_code, 94346905784320u);
  EXPECT_EQ(r->end_code, 94346905804201u);
  EXPECT_EQ(r->start_stack, 140722214411968u);
  EXPECT_EQ(r->exit_signal, 17);
  EXPECT_EQ(r->start_data, 94346905820208u);
  EXPECT_EQ(r->end_data, 94346905821824u);
  EXPECT_EQ(r->start_brk, 94347908153344u);
  EXPECT_EQ(r->arg_start, 140722214419078u);
  EXPECT_EQ(r->arg_end, 140722214419098u);
  EXPECT_EQ(r->env_start, 140722214419098u);
  EXPECT_EQ(r->env_end, 140722214420459u);
}

std::string WithComm(std::string_view comm) {
  std::string s(kStat);
  s.replace(s.find('(') + 1, 3, comm);
  return s;
}

TEST(ProcParseTest, StatCommWithSpacesAndParens) {
  for (std::string_view comm : {"a) b (c", "my prog", ") R 1 2 3", "((", "))", "", " "}) {
    auto r = ParseStat(WithComm(comm));
    ASSERT_TRUE(r.ok()) << comm << ": " << r.status().ToString();
    EXPECT_EQ(r->comm, comm);
    EXPECT_EQ(r->pid, 4224);
    EXPECT_EQ(r->state, 'R');
    EXPECT_EQ(r->ppid, 4219);
    EXPECT_EQ(r->env_end, 140722214420459u);
  }
}

TEST(ProcParseTest, StatMalformed) {
  const std::string full(kStat);
  const std::string bad[] = {
      "",
      "4224",
      "4224 (cat",
      "4224 cat) R 1",
      "x (cat) R 4219",
      "4224 (cat) R",
      full.substr(0, full.find(" 94346905820208")),  // fields 45.. missing
      std::string(kStat).replace(full.find(") R") + 2, 1, "RS"),  // two-char state
      std::string(kStat).replace(full.find("4219"), 4, "42x9"),  // bad ppid
      std::string(kStat).replace(full.find(" 17 ") + 1, 2, "1e"),  // bad exit_signal
  };
  for (const std::string& text : bad) {
    auto r = ParseStat(text);
    ASSERT_FALSE(r.ok()) << "accepted: " << text;
    EXPECT_TRUE(Contains(r.status(), "stat")) << r.status().message();
  }
  auto r = ParseStat(std::string(kStat).replace(full.find("4219"), 4, "42x9"));
  EXPECT_TRUE(Contains(r.status(), "ppid")) << r.status().message();

  // Every prefix of a real file is rejected or parsed, never read past.
  for (size_t n = 0; n < full.size(); ++n) (void)ParseStat(std::string_view(full).substr(0, n));
}

// --- status -----------------------------------------------------------------

// Copied from /proc/self/status of `cat` (kernel 6.18).
constexpr std::string_view kStatus =
    "Name:\tcat\n"
    "Umask:\t0022\n"
    "State:\tR (running)\n"
    "Tgid:\t3504\n"
    "Ngid:\t0\n"
    "Pid:\t3504\n"
    "PPid:\t3500\n"
    "TracerPid:\t0\n"
    "Uid:\t0\t0\t0\t0\n"
    "Gid:\t0\t0\t0\t0\n"
    "FDSize:\t256\n"
    "Groups:\t \n"
    "NStgid:\t3504\n"
    "NSpid:\t3504\n"
    "NSpgid:\t3500\n"
    "NSsid:\t2846\n"
    "Kthread:\t0\n"
    "VmPeak:\t    3060 kB\n"
    "VmSize:\t    3060 kB\n"
    "VmRSS:\t    1688 kB\n"
    "THP_enabled:\t1\n"
    "untag_mask:\t0xffffffffffffffff\n"
    "Threads:\t1\n"
    "SigQ:\t0/96365\n"
    "SigPnd:\t0000000000000000\n"
    "ShdPnd:\t0000000000000000\n"
    "SigBlk:\t0000000000000000\n"
    "SigIgn:\t0000000000000000\n"
    "SigCgt:\t0000000000000000\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t000001fffeffffff\n"
    "CapEff:\t000001fffeffffff\n"
    "CapBnd:\t000001fffeffffff\n"
    "CapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t0\n"
    "Seccomp:\t0\n"
    "Seccomp_filters:\t0\n"
    "Speculation_Store_Bypass:\tvulnerable\n"
    "Cpus_allowed:\t3\n"
    "Cpus_allowed_list:\t0-1\n"
    "voluntary_ctxt_switches:\t0\n"
    "nonvoluntary_ctxt_switches:\t0\n";

// kStatus with the line that starts with |key| replaced by |line| ("" drops it).
std::string StatusWith(std::string_view key, std::string_view line) {
  std::string s(kStatus);
  std::string needle = "\n";
  needle.append(key);
  size_t at = s.find(needle);
  at = at == std::string::npos ? 0 : at + 1;
  size_t end = s.find('\n', at) + 1;
  s.replace(at, end - at, line.empty() ? std::string() : std::string(line) + "\n");
  return s;
}

TEST(ProcParseTest, RealStatus) {
  auto r = ParseStatus(kStatus);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->name, "cat");
  EXPECT_EQ(r->state, 'R');
  EXPECT_EQ(r->umask, 022u);
  EXPECT_EQ(r->tgid, 3504);
  EXPECT_EQ(r->pid, 3504);
  EXPECT_EQ(r->ppid, 3500);
  EXPECT_EQ(r->tracer_pid, 0);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(r->uid[i], 0u);
  EXPECT_TRUE(r->groups.empty());
  EXPECT_EQ(r->nspid, 3504);
  EXPECT_EQ(r->threads, 1);
  EXPECT_EQ(r->sig_pnd | r->shd_pnd | r->sig_blk | r->sig_ign | r->sig_cgt, 0u);
  EXPECT_EQ(r->cap_inh, 0u);
  EXPECT_EQ(r->cap_prm, 0x1fffeffffffu);
  EXPECT_EQ(r->cap_eff, 0x1fffeffffffu);
  EXPECT_EQ(r->cap_bnd, 0x1fffeffffffu);
  EXPECT_EQ(r->cap_amb, 0u);
  EXPECT_EQ(r->no_new_privs, 0u);
  EXPECT_EQ(r->seccomp, 0u);
  EXPECT_EQ(r->vm_rss_kb, 1688);
  EXPECT_EQ(r->hugetlb_kb, -1);  // no such line in this sample
}

// The memory lines a dump decides by (engine/dump.cc, DecideMapsFirst).
TEST(ProcParseTest, StatusMemoryLines) {
  auto r = ParseStatus(StatusWith("VmRSS:", "VmRSS:\t 1050000 kB\nHugetlbPages:\t    4096 kB"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->vm_rss_kb, 1050000);
  EXPECT_EQ(r->hugetlb_kb, 4096);
  EXPECT_FALSE(ParseStatus(StatusWith("VmRSS:", "VmRSS:\t12x kB")).ok());
  EXPECT_FALSE(ParseStatus(StatusWith("VmRSS:", "VmRSS:\t12")).ok());
  r = ParseStatus(StatusWith("VmRSS:", ""));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->vm_rss_kb, -1);
}

TEST(ProcParseTest, StatusFieldVariants) {
  auto r = ParseStatus(StatusWith("Name:", "Name:\t my\\nprog\\\\ x"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->name, " my\nprog\\ x");

  r = ParseStatus(StatusWith("Groups:", "Groups:\t4 24 27 1000 "));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->groups, (std::vector<uint32_t>{4, 24, 27, 1000}));

  r = ParseStatus(StatusWith("Uid:", "Uid:\t1000\t1001\t1002\t1003"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->uid[0], 1000u);
  EXPECT_EQ(r->uid[3], 1003u);

  r = ParseStatus(StatusWith("NSpid:", "NSpid:\t3504\t120\t1"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->nspid, 1);

  r = ParseStatus(StatusWith("NSpid:", ""));  // before 4.1: the pid itself
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->nspid, 3504);

  r = ParseStatus(StatusWith("SigBlk:", "SigBlk:\tfffffffe7ffbfeff"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->sig_blk, 0xfffffffe7ffbfeffu);

  r = ParseStatus(StatusWith("State:", "State:\tt (tracing stop)"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, 't');

  r = ParseStatus(StatusWith("Umask:", "Umask:\t0777"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->umask, 0777u);

  r = ParseStatus(StatusWith("Seccomp:", "Seccomp:\t2"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->seccomp, 2u);
}

TEST(ProcParseTest, StatusMalformed) {
  const std::pair<std::string_view, std::string_view> bad[] = {
      {"Uid:", "Uid:\t0\t0\t0"},            // three values
      {"Uid:", "Uid:\t0\t0\t0\t0\t0"},      // five values
      {"Gid:", "Gid:\t0\tx\t0\t0"},
      {"Groups:", "Groups:\t4 -1"},
      {"Umask:", "Umask:\t0899"},           // not octal
      {"SigPnd:", "SigPnd:\tzz"},
      {"CapEff:", "CapEff:\t1fffffffffffffffff"},  // overflow
      {"State:", "State:\t"},
      {"NSpid:", "NSpid:\t"},
      {"Pid:", ""},                          // required line missing
      {"CapBnd:", ""},
      {"Name:", ""},
      {"Threads:", "Threads:\tmany"},
      {"Tgid:", "garbage line without colon"},
  };
  for (const auto& [key, line] : bad) {
    auto r = ParseStatus(StatusWith(key, line));
    ASSERT_FALSE(r.ok()) << "accepted: " << line;
    EXPECT_TRUE(Contains(r.status(), "status")) << r.status().message();
  }
  EXPECT_FALSE(ParseStatus("").ok());
  const std::string full(kStatus);
  for (size_t n = 0; n < full.size(); ++n) (void)ParseStatus(std::string_view(full).substr(0, n));
}

// --- fdinfo -----------------------------------------------------------------

TEST(ProcParseTest, FdInfoCommonAndEventfd) {
  // Copied from /proc/self/fdinfo of an eventfd(5, EFD_CLOEXEC).
  auto r = ParseFdInfo(
      "pos:\t0\n"
      "flags:\t02000002\n"
      "mnt_id:\t17\n"
      "ino:\t1039\n"
      "eventfd-count:                5\n"
      "eventfd-id: 1\n"
      "eventfd-semaphore: 0\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->pos, 0u);
  EXPECT_EQ(r->flags, static_cast<uint32_t>(O_CLOEXEC | O_RDWR));
  EXPECT_EQ(r->mnt_id, 17u);
  EXPECT_EQ(r->ino, 1039u);
  using Extra = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(r->extra, (Extra{{"eventfd-count", "5"}, {"eventfd-id", "1"}, {"eventfd-semaphore", "0"}}));
}

TEST(ProcParseTest, FdInfoPerKindLines) {
  using Extra = std::vector<std::pair<std::string, std::string>>;
  // epoll: the whole "tfd:" line after the key is one value.
  auto r = ParseFdInfo(
      "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1039\n"
      "tfd:        3 events:       1d data:                3  pos:0 ino:40f sdev:10\n"
      "tfd:        5 events:       19 data:                5  pos:0 ino:1f9c sdev:f\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->extra,
            (Extra{{"tfd", "3 events:       1d data:                3  pos:0 ino:40f sdev:10"},
                   {"tfd", "5 events:       19 data:                5  pos:0 ino:1f9c sdev:f"}}));

  // inotify: no colon-space; the key is the text before the first ':'.
  r = ParseFdInfo(
      "pos:\t0\nflags:\t00\nmnt_id:\t17\nino:\t1039\n"
      "inotify wd:1 ino:3c51a sdev:fe00000 mask:100 ignored_mask:0 fhandle-bytes:8 "
      "fhandle-type:1 f_handle:1ac5030000000000\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->extra.size(), 1u);
  EXPECT_EQ(r->extra[0].first, "inotify wd");
  EXPECT_EQ(r->extra[0].second.substr(0, 12), "1 ino:3c51a ");

  // timerfd, plus a line without any colon and blank lines.
  r = ParseFdInfo(
      "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1039\n"
      "clockid: 1\nticks: 0\nsettime flags: 00\nit_value: (0, 0)\nit_interval: (0, 0)\n"
      "\nno colon here\n   \nlock:\t1: FLOCK  ADVISORY  WRITE 1234 00:1a:77 0 EOF\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->flags, static_cast<uint32_t>(O_RDWR));
  EXPECT_EQ(r->extra, (Extra{{"clockid", "1"},
                             {"ticks", "0"},
                             {"settime flags", "00"},
                             {"it_value", "(0, 0)"},
                             {"it_interval", "(0, 0)"},
                             {"no colon here", ""},
                             {"lock", "1: FLOCK  ADVISORY  WRITE 1234 00:1a:77 0 EOF"}}));

  // Old kernels: no mnt_id/ino lines; a negative loff_t position.
  r = ParseFdInfo("pos:\t-2\nflags:\t0100000\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->pos, static_cast<uint64_t>(-2));
  EXPECT_EQ(r->flags, 0100000u);
  EXPECT_EQ(r->mnt_id, 0u);
}

TEST(ProcParseTest, FdInfoMalformed) {
  for (std::string_view text : {
           "",
           "flags:\t02\n",                   // no pos
           "pos:\t0\n",                      // no flags
           "pos:\tx\nflags:\t02\n",
           "pos:\t0\nflags:\t08\n",          // not octal
           "pos:\t0\nflags:\t02\nmnt_id:\t-1\n",
           "pos:\t0\nflags:\t02\nino:\t\n",
           "pos:\t99999999999999999999\nflags:\t02\n",
       }) {
    auto r = ParseFdInfo(text);
    ASSERT_FALSE(r.ok()) << "accepted: " << text;
    EXPECT_TRUE(Contains(r.status(), "fdinfo")) << r.status().message();
  }
}

// --- auxv -------------------------------------------------------------------

std::string AuxvBytes(std::initializer_list<uint64_t> words) {
  std::string s(words.size() * sizeof(uint64_t), '\0');
  std::memcpy(s.data(), words.begin(), s.size());
  return s;
}

// --- limits -----------------------------------------------------------------

// Copied from /proc/self/limits (kernel 6.18), two limits changed.
constexpr std::string_view kLimits =
    "Limit                     Soft Limit           Hard Limit           Units     \n"
    "Max cpu time              unlimited            unlimited            seconds   \n"
    "Max file size             unlimited            unlimited            bytes     \n"
    "Max data size             unlimited            unlimited            bytes     \n"
    "Max stack size            8388608              unlimited            bytes     \n"
    "Max core file size        0                    unlimited            bytes     \n"
    "Max resident set          unlimited            unlimited            bytes     \n"
    "Max processes             95603                95603                processes \n"
    "Max open files            1024                 1048576              files     \n"
    "Max locked memory         8388608              8388608              bytes     \n"
    "Max address space         unlimited            unlimited            bytes     \n"
    "Max file locks            unlimited            unlimited            locks     \n"
    "Max pending signals       95603                95603                signals   \n"
    "Max msgqueue size         819200               819200               bytes     \n"
    "Max nice priority         0                    0                    \n"
    "Max realtime priority     5                    7                    \n"
    "Max realtime timeout      unlimited            unlimited            us        \n";

TEST(ProcParseTest, Limits) {
  auto r = ParseLimits(kLimits);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 16u);
  for (uint32_t i = 0; i < 16; ++i) EXPECT_EQ((*r)[i].resource, i);
  EXPECT_EQ((*r)[RLIMIT_CPU].cur, RLIM_INFINITY);
  EXPECT_EQ((*r)[RLIMIT_STACK].cur, 8388608u);
  EXPECT_EQ((*r)[RLIMIT_STACK].max, RLIM_INFINITY);
  EXPECT_EQ((*r)[RLIMIT_NOFILE].cur, 1024u);
  EXPECT_EQ((*r)[RLIMIT_NOFILE].max, 1048576u);
  EXPECT_EQ((*r)[RLIMIT_RTPRIO].cur, 5u);
  EXPECT_EQ((*r)[RLIMIT_RTPRIO].max, 7u);
}

TEST(ProcParseTest, LimitsMalformed) {
  EXPECT_FALSE(ParseLimits("").ok());
  EXPECT_FALSE(ParseLimits("Limit  Soft Limit  Hard Limit  Units\n").ok());
  auto r = ParseLimits("Limit\nMax open files            1024                 lots                 files\n");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status(), "line 2"));
  // A limit this parser does not know is skipped.
  r = ParseLimits("Limit\nMax open files            1 2 files\nMax new thing  3 4\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 1u);
}

// Agrees with getrlimit() on ourselves, limits we change included.
TEST(ProcParseTest, LiveLimits) {
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_CORE, &old), 0);
  struct rlimit lower{std::min<rlim_t>(old.rlim_max, 12345), old.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_CORE, &lower), 0);
  auto r = ReadLimits(getpid());
  setrlimit(RLIMIT_CORE, &old);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_GE(r->size(), static_cast<size_t>(RLIMIT_RTTIME + 1));
  for (const RlimitInfo& l : *r) {
    struct rlimit rl;
    ASSERT_EQ(getrlimit(static_cast<__rlimit_resource>(l.resource), &rl), 0);
    if (l.resource == RLIMIT_CORE) rl = lower;
    EXPECT_EQ(l.cur, rl.rlim_cur) << l.resource;
    EXPECT_EQ(l.max, rl.rlim_max) << l.resource;
  }
}

// THP_enabled follows PR_SET_THP_DISABLE.
TEST(ProcParseTest, LiveThpDisabled) {
  auto r = ReadStatus(getpid());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  if (r->thp_enabled < 0) GTEST_SKIP() << "kernel without THP: no THP_enabled line in /proc/PID/status";
  const int was = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
  ASSERT_EQ(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), 0);
  r = ReadStatus(getpid());
  prctl(PR_SET_THP_DISABLE, was, 0, 0, 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->thp_enabled, 0);
}

TEST(ProcParseTest, Auxv) {
  auto r = ParseAuxv(AuxvBytes({AT_PAGESZ, 4096, AT_ENTRY, 0x401000, AT_NULL, 0, 77, 88}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, (std::vector<uint64_t>{AT_PAGESZ, 4096, AT_ENTRY, 0x401000, AT_NULL, 0}));

  r = ParseAuxv(AuxvBytes({AT_NULL, 0}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 2u);

  EXPECT_FALSE(ParseAuxv("").ok());
  EXPECT_FALSE(ParseAuxv(AuxvBytes({AT_PAGESZ, 4096})).ok());  // no AT_NULL
  std::string odd = AuxvBytes({AT_PAGESZ, 4096, AT_NULL, 0});
  EXPECT_FALSE(ParseAuxv(std::string_view(odd).substr(0, 24)).ok());  // half a pair
  auto bad = ParseAuxv(std::string_view(odd).substr(0, 31));
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(bad.status(), "auxv"));
}

// --- timers -----------------------------------------------------------------

// Copied from /proc/PID/timers (kernel 6.18): the kernel's order, newest first.
constexpr std::string_view kTimers =
    "ID: 1001\n"
    "signal: 36/000000001234abcd\n"
    "notify: signal/pid.5036\n"
    "ClockID: 1\n"
    "ID: 3\n"
    "signal: 14/0000000000000003\n"
    "notify: signal/pid.5036\n"
    "ClockID: 1\n"
    "ID: 2\n"
    "signal: 36/ffff8000deadbeef\n"
    "notify: signal/tid.5037\n"
    "ClockID: 7\n"
    "ID: 1\n"
    "signal: 36/000000001234abcd\n"
    "notify: none/pid.5036\n"
    "ClockID: 0\n"
    "ID: 0\n"
    "signal: 34/0000000000000000\n"
    "notify: thread/pid.5036\n"
    "ClockID: -6\n";

TEST(ProcParseTest, PosixTimers) {
  auto r = ParsePosixTimers(kTimers);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 5u);
  std::vector<int32_t> ids;
  for (const auto& t : *r) ids.push_back(t.id);
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1, 2, 3, 1001}));  // sorted

  const PosixTimerInfo& thread_id = (*r)[2];
  EXPECT_EQ(thread_id.signo, 36);
  EXPECT_EQ(thread_id.sigev_value, 0xffff8000deadbeefull);
  EXPECT_EQ(thread_id.notify, SIGEV_SIGNAL | SIGEV_THREAD_ID);
  EXPECT_EQ(thread_id.notify_pid, 5037);
  EXPECT_EQ(thread_id.clock_id, CLOCK_BOOTTIME);

  EXPECT_EQ((*r)[1].notify, SIGEV_NONE);
  EXPECT_EQ((*r)[1].clock_id, CLOCK_REALTIME);
  EXPECT_EQ((*r)[0].notify, SIGEV_THREAD);
  EXPECT_EQ((*r)[0].clock_id, -6);  // a CPU clock of another task
  EXPECT_EQ((*r)[3].signo, SIGALRM);
  EXPECT_EQ((*r)[3].sigev_value, 3u);
  EXPECT_EQ((*r)[4].notify, SIGEV_SIGNAL);
  EXPECT_EQ((*r)[4].notify_pid, 5036);

  // No timers: an empty file.
  r = ParsePosixTimers("");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  // A 0x prefix and a line a later kernel might add are accepted.
  r = ParsePosixTimers("ID: 7\nsignal: 10/0x10\nnotify: signal/pid.1\nClockID: 1\nOverrun: 3\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].sigev_value, 16u);
}

TEST(ProcParseTest, PosixTimersMalformed) {
  for (std::string_view text : {
           "signal: 10/0\n",                                             // before any ID
           "ID: 1\nsignal: 10/0\nnotify: signal/pid.1\n",                // no ClockID
           "ID: 1\nsignal: 10/0\nnotify: signal/pid.1\nClockID: 1\nID: 2\n",  // second one cut
           "ID: x\n",
           "ID: -1\nsignal: 10/0\nnotify: signal/pid.1\nClockID: 1\n",
           "ID: 1\nsignal: 10\nnotify: signal/pid.1\nClockID: 1\n",      // no value
           "ID: 1\nsignal: 10/zz\nnotify: signal/pid.1\nClockID: 1\n",
           "ID: 1\nsignal: 10/0\nnotify: mail/pid.1\nClockID: 1\n",      // unknown kind
           "ID: 1\nsignal: 10/0\nnotify: signal/pgid.1\nClockID: 1\n",
           "ID: 1\nsignal: 10/0\nnotify: signal/pid.\nClockID: 1\n",
           "ID: 1\nsignal: 10/0\nnotify: signal/pid.1\nClockID: one\n",
           "ID: 1\nsignal: 10/0\nnotify: signal/pid.1\nClockID: 1\n"
           "ID: 1\nsignal: 10/0\nnotify: signal/pid.1\nClockID: 1\n",    // listed twice
           "ID: 1\nno colon here\n",
       }) {
    auto r = ParsePosixTimers(text);
    ASSERT_FALSE(r.ok()) << "accepted: " << text;
    EXPECT_TRUE(Contains(r.status(), "timers")) << r.status().message();
  }
}

// --- live /proc/self --------------------------------------------------------

TEST(ProcReadTest, StatOfSelf) {
  auto r = ReadStat(getpid());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->pid, getpid());
  EXPECT_EQ(r->ppid, getppid());
  EXPECT_EQ(r->pgid, getpgrp());
  EXPECT_EQ(r->sid, getsid(0));
  EXPECT_EQ(r->state, 'R');
  EXPECT_GE(r->num_threads, 1);
  EXPECT_EQ(r->comm, std::string(program_invocation_short_name).substr(0, 15));
  auto code = reinterpret_cast<uint64_t>(&Gettid);
  EXPECT_LE(r->start_code, code);
  EXPECT_LT(code, r->end_code);
  ASSERT_TRUE(ReadFile("/proc/self/cmdline").ok());
  EXPECT_EQ(r->arg_end - r->arg_start, ReadFile("/proc/self/cmdline")->size());
  EXPECT_LE(r->start_data, r->end_data);
  EXPECT_LE(r->end_data, r->start_brk);

  auto task = ReadStat(getpid(), Gettid());
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  EXPECT_EQ(task->pid, Gettid());

  auto missing = ReadStat(0x3fffffff);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().err(), ENOENT);
  EXPECT_TRUE(Contains(missing.status(), "/proc/1073741823/stat")) << missing.status().message();
}

TEST(ProcReadTest, StatusOfSelf) {
  mode_t old_umask = umask(027);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &old_mask), 0);
  auto r = ReadStatus(getpid(), Gettid());
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  umask(old_umask);
  ASSERT_TRUE(r.ok()) << r.status().ToString();

  EXPECT_EQ(r->pid, getpid());  // gtest runs tests on the main thread
  EXPECT_EQ(r->tgid, getpid());
  EXPECT_EQ(r->ppid, getppid());
  EXPECT_EQ(r->nspid, getpid());
  EXPECT_EQ(r->state, 'R');
  EXPECT_EQ(r->umask, 027u);
  EXPECT_EQ(r->name, std::string(program_invocation_short_name).substr(0, 15));
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  getresuid(&ruid, &euid, &suid);
  getresgid(&rgid, &egid, &sgid);
  EXPECT_EQ(r->uid[0], ruid);
  EXPECT_EQ(r->uid[1], euid);
  EXPECT_EQ(r->uid[2], suid);
  EXPECT_EQ(r->gid[0], rgid);
  EXPECT_EQ(r->gid[1], egid);
  EXPECT_EQ(r->gid[2], sgid);
  std::vector<gid_t> groups(static_cast<size_t>(getgroups(0, nullptr)));
  ASSERT_EQ(getgroups(static_cast<int>(groups.size()), groups.data()),
            static_cast<int>(groups.size()));
  std::vector<uint32_t> want(groups.begin(), groups.end());
  std::vector<uint32_t> got = r->groups;
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  EXPECT_TRUE(r->sig_blk & (1ull << (SIGUSR2 - 1)));
  EXPECT_GE(r->threads, 1);

  __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct caps[2] = {};
  ASSERT_EQ(syscall(SYS_capget, &hdr, caps), 0);
  EXPECT_EQ(r->cap_eff, caps[0].effective | (uint64_t{caps[1].effective} << 32));
  EXPECT_EQ(r->cap_prm, caps[0].permitted | (uint64_t{caps[1].permitted} << 32));
  EXPECT_EQ(r->no_new_privs, static_cast<uint32_t>(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)));
}

TEST(ProcReadTest, FdInfoOfSelf) {
  int efd = eventfd(5, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  auto r = ReadFdInfo(getpid(), efd);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->flags & (O_CLOEXEC | O_NONBLOCK | O_ACCMODE),
            static_cast<uint32_t>(O_CLOEXEC | O_NONBLOCK | O_RDWR));
  bool found = false;
  for (const auto& [key, value] : r->extra)
    if (key == "eventfd-count") found = value == "5";
  EXPECT_TRUE(found);
  close(efd);

  FILE* f = tmpfile();
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(write(fileno(f), "0123456789", 10), 10);
  struct stat st;
  ASSERT_EQ(fstat(fileno(f), &st), 0);
  r = ReadFdInfo(getpid(), fileno(f));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->pos, 10u);
  EXPECT_EQ(r->flags & O_ACCMODE, static_cast<uint32_t>(O_RDWR));
  if (r->ino != 0) {
    EXPECT_EQ(r->ino, st.st_ino);
  }
  EXPECT_NE(r->mnt_id, 0u);
  fclose(f);

  EXPECT_FALSE(ReadFdInfo(getpid(), 1 << 20).ok());
}

// Timers made with the raw syscall (so the ids are the kernel's) are listed
// with their signal, value, notification and clock.
TEST(ProcReadTest, PosixTimersOfSelf) {
  struct sigevent ev;
  memset(&ev, 0, sizeof(ev));
  ev.sigev_notify = SIGEV_SIGNAL | SIGEV_THREAD_ID;
  ev.sigev_signo = SIGRTMIN + 5;
  ev.sigev_value.sival_ptr = reinterpret_cast<void*>(0x5eed);
  ev._sigev_un._tid = Gettid();
  int thread_timer = -1, none_timer = -1;
  ASSERT_EQ(syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &thread_timer), 0) << strerror(errno);
  ev.sigev_notify = SIGEV_NONE;
  ASSERT_EQ(syscall(SYS_timer_create, CLOCK_REALTIME, &ev, &none_timer), 0) << strerror(errno);

  auto r = ReadPosixTimers(getpid());
  syscall(SYS_timer_delete, thread_timer);
  syscall(SYS_timer_delete, none_timer);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  int seen = 0;
  for (const PosixTimerInfo& t : *r) {
    if (t.id == thread_timer) {
      ++seen;
      EXPECT_EQ(t.signo, SIGRTMIN + 5);
      EXPECT_EQ(t.sigev_value, 0x5eedu);
      EXPECT_EQ(t.notify, SIGEV_SIGNAL | SIGEV_THREAD_ID);
      EXPECT_EQ(t.notify_pid, Gettid());
      EXPECT_EQ(t.clock_id, CLOCK_MONOTONIC);
    } else if (t.id == none_timer) {
      ++seen;
      EXPECT_EQ(t.notify, SIGEV_NONE);
      EXPECT_EQ(t.notify_pid, getpid());
      EXPECT_EQ(t.clock_id, CLOCK_REALTIME);
    }
  }
  EXPECT_EQ(seen, 2);
  EXPECT_FALSE(ReadPosixTimers(0x3fffffff).ok());
}

TEST(ProcReadTest, AuxvOfSelf) {
  auto r = ReadAuxv(getpid());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_GE(r->size(), 2u);
  ASSERT_EQ(r->size() % 2, 0u);
  EXPECT_EQ((*r)[r->size() - 2], static_cast<uint64_t>(AT_NULL));
  int checked = 0;
  for (size_t i = 0; i + 1 < r->size(); i += 2) {
    uint64_t key = (*r)[i];
    if (key == AT_PAGESZ || key == AT_ENTRY || key == AT_PHDR || key == AT_UID) {
      EXPECT_EQ((*r)[i + 1], getauxval(key)) << "key " << key;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 4);
}

TEST(ProcReadTest, ThreadsChildrenAndFds) {
  // A second thread that forks a child of its own, and a child of the leader.
  int gate[2];
  ASSERT_EQ(pipe2(gate, O_CLOEXEC), 0);
  auto spawn = [&]() -> pid_t {
    pid_t c = fork();
    if (c == 0) {
      char b;
      close(gate[1]);
      while (read(gate[0], &b, 1) < 0 && errno == EINTR) {
      }
      _exit(0);
    }
    return c;
  };
  std::promise<std::pair<pid_t, pid_t>> started;
  std::promise<void> release;
  std::thread t([&] {
    pid_t tid = Gettid();
    started.set_value({tid, spawn()});
    release.get_future().wait();
  });
  auto [tid, thread_child] = started.get_future().get();
  pid_t leader_child = spawn();
  ASSERT_GT(thread_child, 0);
  ASSERT_GT(leader_child, 0);

  auto threads = ListThreads(getpid());
  auto children = ListChildren(getpid());
  auto fds = ListFds(getpid());
  auto thread_stat = ReadStat(getpid(), tid);

  close(gate[1]);
  release.set_value();
  t.join();
  waitpid(thread_child, nullptr, 0);
  waitpid(leader_child, nullptr, 0);

  ASSERT_TRUE(threads.ok()) << threads.status().ToString();
  ASSERT_GE(threads->size(), 2u);
  EXPECT_EQ((*threads)[0], getpid());
  EXPECT_TRUE(std::is_sorted(threads->begin() + 1, threads->end()));
  EXPECT_NE(std::find(threads->begin(), threads->end(), tid), threads->end());

  ASSERT_TRUE(children.ok()) << children.status().ToString();
  EXPECT_TRUE(std::is_sorted(children->begin(), children->end()));
  EXPECT_EQ(std::adjacent_find(children->begin(), children->end()), children->end());
  EXPECT_NE(std::find(children->begin(), children->end(), thread_child), children->end());
  EXPECT_NE(std::find(children->begin(), children->end(), leader_child), children->end());

  ASSERT_TRUE(fds.ok()) << fds.status().ToString();
  EXPECT_TRUE(std::is_sorted(fds->begin(), fds->end()));
  EXPECT_NE(std::find(fds->begin(), fds->end(), gate[0]), fds->end());
  close(gate[0]);

  ASSERT_TRUE(thread_stat.ok()) << thread_stat.status().ToString();
  EXPECT_EQ(thread_stat->pid, tid);
  EXPECT_GE(thread_stat->num_threads, 2);

  EXPECT_FALSE(ListThreads(0x3fffffff).ok());
  EXPECT_FALSE(ListChildren(0x3fffffff).ok());
  EXPECT_FALSE(ListFds(0x3fffffff).ok());
}

}  // namespace
}  // namespace cf::proc
