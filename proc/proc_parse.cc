// Parsers for the /proc files a dump reads: stat, status, fdinfo, auxv,
// timers, and the task/fd/children listings.
//
// Each parser works on a string_view and never reads past it: fields are cut
// with find()/substr() and numbers go through std::from_chars, which must
// consume the whole field. Errors name the file ("stat: ..." for text given
// by a caller, the full /proc path for the Read* wrappers) and the field.
#include "proc/proc_parse.h"

#include <dirent.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>

#include "common/io.h"
#include "common/text.h"

namespace cf::proc {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n'; }

// Cuts the next line (without '\n') off the front of |*text|.
std::string_view NextLine(std::string_view* text) {
  size_t nl = text->find('\n');
  std::string_view line = text->substr(0, nl);
  text->remove_prefix(nl == std::string_view::npos ? text->size() : nl + 1);
  return line;
}

std::string Shown(std::string_view s) {
  constexpr size_t kMaxShown = 80;
  return std::string(s.substr(0, kMaxShown));
}

std::string ProcPath(pid_t pid, pid_t tid, const char* file) {
  std::string path = "/proc/" + std::to_string(pid);
  if (tid != 0) path += "/task/" + std::to_string(tid);
  return path + "/" + file;
}

// --- stat -------------------------------------------------------------------

// Field |n| (1-based, per proc(5)) of a stat line; |fields| starts at field 3.
template <typename T>
Status StatField(const std::vector<std::string_view>& fields, int n, const char* name, T* out,
                 const std::string& what) {
  std::string_view f = fields[static_cast<size_t>(n - 3)];
  if (!ParseNum(f, 10, out))
    return Errorf("%s: field %d (%s): bad number '%s'", what.c_str(), n, name, Shown(f).c_str());
  return OkStatus();
}

Result<ProcStat> ParseStatImpl(std::string_view text, const std::string& what) {
  // "pid (comm) state ppid ...": comm may hold ' ', '(' and ')', so it ends at
  // the last ')'; the numeric fields after it never contain one.
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return Errorf("%s: no '(comm)' in '%s'", what.c_str(), Shown(text).c_str());
  ProcStat st;
  std::string_view pid = Trim(text.substr(0, open));
  if (!ParseNum(pid, 10, &st.pid))
    return Errorf("%s: field 1 (pid): bad number '%s'", what.c_str(), Shown(pid).c_str());
  st.comm.assign(text.substr(open + 1, close - open - 1));

  constexpr int kLastField = 51;  // env_end
  std::vector<std::string_view> f = Words(text.substr(close + 1));
  if (f.size() < static_cast<size_t>(kLastField - 2))
    return Errorf("%s: %zu fields, expected at least %d", what.c_str(), f.size() + 2, kLastField);
  if (f[0].size() != 1)
    return Errorf("%s: field 3 (state): bad state '%s'", what.c_str(), Shown(f[0]).c_str());
  st.state = f[0][0];
  RETURN_IF_ERROR(StatField(f, 4, "ppid", &st.ppid, what));
  RETURN_IF_ERROR(StatField(f, 5, "pgrp", &st.pgid, what));
  RETURN_IF_ERROR(StatField(f, 6, "session", &st.sid, what));
  RETURN_IF_ERROR(StatField(f, 9, "flags", &st.flags, what));
  RETURN_IF_ERROR(StatField(f, 20, "num_threads", &st.num_threads, what));
  RETURN_IF_ERROR(StatField(f, 22, "starttime", &st.start_time, what));
  RETURN_IF_ERROR(StatField(f, 26, "startcode", &st.start_code, what));
  RETURN_IF_ERROR(StatField(f, 27, "endcode", &st.end_code, what));
  RETURN_IF_ERROR(StatField(f, 28, "startstack", &st.start_stack, what));
  RETURN_IF_ERROR(StatField(f, 38, "exit_signal", &st.exit_signal, what));
  RETURN_IF_ERROR(StatField(f, 45, "start_data", &st.start_data, what));
  RETURN_IF_ERROR(StatField(f, 46, "end_data", &st.end_data, what));
  RETURN_IF_ERROR(StatField(f, 47, "start_brk", &st.start_brk, what));
  RETURN_IF_ERROR(StatField(f, 48, "arg_start", &st.arg_start, what));
  RETURN_IF_ERROR(StatField(f, 49, "arg_end", &st.arg_end, what));
  RETURN_IF_ERROR(StatField(f, 50, "env_start", &st.env_start, what));
  RETURN_IF_ERROR(StatField(f, 51, "env_end", &st.env_end, what));
  if (f.size() >= 52 - 2) RETURN_IF_ERROR(StatField(f, 52, "exit_code", &st.exit_code, what));
  return st;
}

// --- status -----------------------------------------------------------------

// The kernel escapes '\n' as "\n" and '\' as "\\" in the Name: line.
std::string UnescapeName(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'n' || s[i + 1] == '\\')) {
      out.push_back(s[i + 1] == 'n' ? '\n' : '\\');
      ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

template <typename T, size_t N>
bool ParseList(std::string_view value, T (&out)[N]) {
  std::vector<std::string_view> w = Words(value);
  if (w.size() != N) return false;
  for (size_t i = 0; i < N; ++i)
    if (!ParseNum(w[i], 10, &out[i])) return false;
  return true;
}

Result<ProcStatus> ParseStatusImpl(std::string_view text, const std::string& what) {
  // Lines every kernel we support prints; Umask, NSpid, CapAmb, NoNewPrivs
  // and Seccomp are newer or config-dependent and stay optional.
  static constexpr std::string_view kRequired[] = {
      "Name",   "State",  "Tgid",   "Pid",    "PPid",   "TracerPid", "Uid",
      "Gid",    "Groups", "Threads", "SigPnd", "ShdPnd", "SigBlk",   "SigIgn",
      "SigCgt", "CapInh", "CapPrm", "CapEff", "CapBnd"};
  constexpr size_t kNumRequired = std::size(kRequired);
  bool seen[kNumRequired] = {};
  bool have_nspid = false;

  ProcStatus st;
  size_t lineno = 0;
  while (!text.empty()) {
    std::string_view line = NextLine(&text);
    ++lineno;
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      return Errorf("%s: line %zu: no ':' in '%s'", what.c_str(), lineno, Shown(line).c_str());
    std::string_view key = line.substr(0, colon);
    std::string_view raw = line.substr(colon + 1);
    std::string_view value = Trim(raw);
    for (size_t i = 0; i < kNumRequired; ++i)
      if (key == kRequired[i]) seen[i] = true;

    bool ok = true;
    if (key == "Name") {
      if (!raw.empty() && raw.front() == '\t') raw.remove_prefix(1);  // "Name:\t<name>"
      st.name = UnescapeName(raw);
    } else if (key == "State") {
      ok = !value.empty();
      if (ok) st.state = value[0];
    } else if (key == "Umask") {
      ok = ParseNum(value, 8, &st.umask);
    } else if (key == "Tgid") {
      ok = ParseNum(value, 10, &st.tgid);
    } else if (key == "Pid") {
      ok = ParseNum(value, 10, &st.pid);
    } else if (key == "PPid") {
      ok = ParseNum(value, 10, &st.ppid);
    } else if (key == "TracerPid") {
      ok = ParseNum(value, 10, &st.tracer_pid);
    } else if (key == "Uid") {
      ok = ParseList(value, st.uid);
    } else if (key == "Gid") {
      ok = ParseList(value, st.gid);
    } else if (key == "Groups") {
      st.groups.clear();
      for (std::string_view w : Words(value)) {
        uint32_t g = 0;
        ok = ParseNum(w, 10, &g);
        if (!ok) break;
        st.groups.push_back(g);
      }
    } else if (key == "NSpid") {
      std::vector<std::string_view> w = Words(value);
      ok = !w.empty() && ParseNum(w.back(), 10, &st.nspid);
      have_nspid = true;
    } else if (key == "Threads") {
      ok = ParseNum(value, 10, &st.threads);
    } else if (key == "SigPnd") {
      ok = ParseNum(value, 16, &st.sig_pnd);
    } else if (key == "ShdPnd") {
      ok = ParseNum(value, 16, &st.shd_pnd);
    } else if (key == "SigBlk") {
      ok = ParseNum(value, 16, &st.sig_blk);
    } else if (key == "SigIgn") {
      ok = ParseNum(value, 16, &st.sig_ign);
    } else if (key == "SigCgt") {
      ok = ParseNum(value, 16, &st.sig_cgt);
    } else if (key == "CapInh") {
      ok = ParseNum(value, 16, &st.cap_inh);
    } else if (key == "CapPrm") {
      ok = ParseNum(value, 16, &st.cap_prm);
    } else if (key == "CapEff") {
      ok = ParseNum(value, 16, &st.cap_eff);
    } else if (key == "CapBnd") {
      ok = ParseNum(value, 16, &st.cap_bnd);
    } else if (key == "CapAmb") {
      ok = ParseNum(value, 16, &st.cap_amb);
    } else if (key == "NoNewPrivs") {
      ok = ParseNum(value, 10, &st.no_new_privs);
    } else if (key == "Seccomp") {
      ok = ParseNum(value, 10, &st.seccomp);
    } else if (key == "THP_enabled") {
      ok = ParseNum(value, 10, &st.thp_enabled);
    } else if (key == "VmRSS" || key == "HugetlbPages") {  // "<n> kB"
      const std::vector<std::string_view> w = Words(value);
      ok = w.size() == 2 && w[1] == "kB" && ParseNum(w[0], 10, key == "VmRSS" ? &st.vm_rss_kb : &st.hugetlb_kb);
    }
    if (!ok)
      return Errorf("%s: line %zu: bad %.*s value '%s'", what.c_str(), lineno,
                    static_cast<int>(key.size()), key.data(), Shown(value).c_str());
  }
  for (size_t i = 0; i < kNumRequired; ++i)
    if (!seen[i])
      return Errorf("%s: no %.*s line", what.c_str(), static_cast<int>(kRequired[i].size()),
                    kRequired[i].data());
  if (!have_nspid) st.nspid = st.pid;  // kernels before 4.1
  return st;
}

// --- fdinfo -----------------------------------------------------------------

Result<FdInfo> ParseFdInfoImpl(std::string_view text, const std::string& what) {
  FdInfo info;
  bool have_pos = false, have_flags = false;
  size_t lineno = 0;
  while (!text.empty()) {
    std::string_view line = NextLine(&text);
    ++lineno;
    if (Trim(line).empty()) continue;
    // The key is what precedes the first ':' ("pos", "tfd", "inotify wd",
    // "settime flags"); a line without one keeps its text as the key.
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      info.extra.emplace_back(std::string(Trim(line)), std::string());
      continue;
    }
    std::string_view key = Trim(line.substr(0, colon));
    std::string_view value = Trim(line.substr(colon + 1));
    bool ok = true;
    if (key == "pos") {
      int64_t pos = 0;  // loff_t, printed with %lli
      ok = ParseNum(value, 10, &pos);
      info.pos = static_cast<uint64_t>(pos);
      have_pos = true;
    } else if (key == "flags") {
      ok = ParseNum(value, 8, &info.flags);
      have_flags = true;
    } else if (key == "mnt_id") {
      ok = ParseNum(value, 10, &info.mnt_id);
    } else if (key == "ino") {
      ok = ParseNum(value, 10, &info.ino);
    } else {
      info.extra.emplace_back(std::string(key), std::string(value));
    }
    if (!ok)
      return Errorf("%s: line %zu: bad %.*s value '%s'", what.c_str(), lineno,
                    static_cast<int>(key.size()), key.data(), Shown(value).c_str());
  }
  if (!have_pos || !have_flags)
    return Errorf("%s: no %s line", what.c_str(), have_pos ? "flags" : "pos");
  return info;
}

// --- auxv -------------------------------------------------------------------

Result<std::vector<uint64_t>> ParseAuxvImpl(std::string_view bytes, const std::string& what) {
  constexpr size_t kPair = 2 * sizeof(uint64_t);
  if (bytes.size() % kPair != 0)
    return Errorf("%s: size %zu is not a multiple of %zu", what.c_str(), bytes.size(), kPair);
  std::vector<uint64_t> out;
  out.reserve(bytes.size() / sizeof(uint64_t));
  for (size_t off = 0; off < bytes.size(); off += kPair) {
    uint64_t pair[2];
    std::memcpy(pair, bytes.data() + off, kPair);
    out.push_back(pair[0]);
    out.push_back(pair[1]);
    if (pair[0] == 0) return out;  // AT_NULL
  }
  return Errorf("%s: no AT_NULL entry in %zu bytes", what.c_str(), bytes.size());
}

// --- timers -----------------------------------------------------------------

// sigev_notify values of <signal.h>, spelled out so the parser does not
// depend on which header defines SIGEV_THREAD_ID.
constexpr int32_t kSigevSignal = 0, kSigevNone = 1, kSigevThread = 2, kSigevThreadId = 4;

// "signal/tid.1234" -> notify kind and the pid or tid.
bool ParseNotify(std::string_view v, PosixTimerInfo* t) {
  size_t slash = v.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view kind = v.substr(0, slash), target = v.substr(slash + 1);
  if (kind == "signal") {
    t->notify = kSigevSignal;
  } else if (kind == "none") {
    t->notify = kSigevNone;
  } else if (kind == "thread") {
    t->notify = kSigevThread;
  } else {
    return false;
  }
  if (target.starts_with("tid.")) {
    t->notify |= kSigevThreadId;
  } else if (!target.starts_with("pid.")) {
    return false;
  }
  return ParseNum(target.substr(4), 10, &t->notify_pid);
}

// "34/00000000000000a1" -> signal number and sigev_value (a %px pointer).
bool ParseTimerSignal(std::string_view v, PosixTimerInfo* t) {
  size_t slash = v.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view value = v.substr(slash + 1);
  if (value.starts_with("0x")) value.remove_prefix(2);
  return ParseNum(v.substr(0, slash), 10, &t->signo) && ParseNum(value, 16, &t->sigev_value);
}

// --- limits -----------------------------------------------------------------

// The names the kernel prints (fs/proc/base.c), indexed by RLIMIT_*. A name
// may hold spaces, so a line is matched by its name, not cut into words.
constexpr std::string_view kLimitNames[] = {
    "Max cpu time",      "Max file size",       "Max data size",       "Max stack size",
    "Max core file size", "Max resident set",   "Max processes",       "Max open files",
    "Max locked memory", "Max address space",   "Max file locks",      "Max pending signals",
    "Max msgqueue size", "Max nice priority",   "Max realtime priority", "Max realtime timeout"};

bool ParseLimitValue(std::string_view s, uint64_t* out) {
  if (s == "unlimited") {
    *out = ~uint64_t{0};
    return true;
  }
  return ParseNum(s, 10, out);
}

Result<std::vector<RlimitInfo>> ParseLimitsImpl(std::string_view text, const std::string& what) {
  std::vector<RlimitInfo> out;
  size_t lineno = 0;
  while (!text.empty()) {
    std::string_view line = NextLine(&text);
    ++lineno;
    if (lineno == 1 || Trim(line).empty()) continue;  // the header
    uint32_t res = 0;
    while (res < std::size(kLimitNames) &&
           !(line.starts_with(kLimitNames[res]) && line.size() > kLimitNames[res].size() &&
             IsSpace(line[kLimitNames[res].size()]))) {
      ++res;
    }
    if (res == std::size(kLimitNames)) continue;  // a limit newer than this parser: not restorable anyway
    std::vector<std::string_view> w = Words(line.substr(kLimitNames[res].size()));
    RlimitInfo l;
    l.resource = res;
    if (w.size() < 2 || !ParseLimitValue(w[0], &l.cur) || !ParseLimitValue(w[1], &l.max))
      return Errorf("%s: line %zu: bad limits '%s'", what.c_str(), lineno, Shown(line).c_str());
    out.push_back(l);
  }
  if (out.empty()) return Errorf("%s: no limits", what.c_str());
  return out;
}

Result<std::vector<PosixTimerInfo>> ParsePosixTimersImpl(std::string_view text, const std::string& what) {
  std::vector<PosixTimerInfo> out;
  constexpr unsigned kHaveAll = 0xf;  // ID, signal, notify, ClockID
  unsigned have = 0;
  size_t lineno = 0;
  auto finish = [&]() -> Status {
    if (!out.empty() && have != kHaveAll)
      return Errorf("%s: timer %d before line %zu lacks a field", what.c_str(), out.back().id, lineno);
    return OkStatus();
  };
  while (!text.empty()) {
    std::string_view line = NextLine(&text);
    ++lineno;
    if (Trim(line).empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Errorf("%s: line %zu has no ':'", what.c_str(), lineno);
    std::string_view key = Trim(line.substr(0, colon));
    std::string_view value = Trim(line.substr(colon + 1));
    if (key == "ID") {
      RETURN_IF_ERROR(finish());
      out.emplace_back();
      have = 1;
      if (!ParseNum(value, 10, &out.back().id) || out.back().id < 0)
        return Errorf("%s: line %zu: bad ID '%s'", what.c_str(), lineno, Shown(value).c_str());
      continue;
    }
    if (out.empty()) return Errorf("%s: line %zu: '%s' before the first ID", what.c_str(), lineno, Shown(line).c_str());
    PosixTimerInfo& t = out.back();
    bool ok = true;
    if (key == "signal") {
      ok = ParseTimerSignal(value, &t);
      have |= 2;
    } else if (key == "notify") {
      ok = ParseNotify(value, &t);
      have |= 4;
    } else if (key == "ClockID") {
      ok = ParseNum(value, 10, &t.clock_id);
      have |= 8;
    }  // other keys: lines a later kernel may add; nothing we need
    if (!ok)
      return Errorf("%s: line %zu: bad %.*s value '%s'", what.c_str(), lineno, static_cast<int>(key.size()),
                    key.data(), Shown(value).c_str());
  }
  RETURN_IF_ERROR(finish());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i].id == out[i - 1].id) return Errorf("%s: timer %d listed twice", what.c_str(), out[i].id);
  }
  return out;
}

// --- directory listings -----------------------------------------------------

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

// Names of |path| that are decimal numbers, sorted ascending.
template <typename T>
Result<std::vector<T>> ListNumericDir(const std::string& path) {
  std::unique_ptr<DIR, DirCloser> dir(opendir(path.c_str()));
  if (!dir) return ErrnoStatus("opendir " + path);
  std::vector<T> out;
  for (;;) {
    errno = 0;
    dirent* de = readdir(dir.get());
    if (de == nullptr) {
      if (errno != 0) return ErrnoStatus("readdir " + path);
      break;
    }
    T n = 0;
    if (ParseNum(std::string_view(de->d_name), 10, &n)) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Result<ProcStat> ParseStat(std::string_view text) { return ParseStatImpl(text, "stat"); }

Result<ProcStat> ReadStat(pid_t pid, pid_t tid) {
  std::string path = ProcPath(pid, tid, "stat");
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseStatImpl(text, path);
}

Result<ProcStatus> ParseStatus(std::string_view text) { return ParseStatusImpl(text, "status"); }

Result<ProcStatus> ReadStatus(pid_t pid, pid_t tid) {
  std::string path = ProcPath(pid, tid, "status");
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseStatusImpl(text, path);
}

Result<FdInfo> ParseFdInfo(std::string_view text) { return ParseFdInfoImpl(text, "fdinfo"); }

Result<FdInfo> ReadFdInfo(pid_t pid, int fd) {
  std::string path = "/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd);
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseFdInfoImpl(text, path);
}

Result<std::vector<PosixTimerInfo>> ParsePosixTimers(std::string_view text) {
  return ParsePosixTimersImpl(text, "timers");
}

Result<std::vector<PosixTimerInfo>> ReadPosixTimers(pid_t pid) {
  std::string path = ProcPath(pid, 0, "timers");
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParsePosixTimersImpl(text, path);
}

Result<std::vector<RlimitInfo>> ParseLimits(std::string_view text) { return ParseLimitsImpl(text, "limits"); }

Result<std::vector<RlimitInfo>> ReadLimits(pid_t pid) {
  std::string path = ProcPath(pid, 0, "limits");
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseLimitsImpl(text, path);
}

Result<std::vector<uint64_t>> ParseAuxv(std::string_view bytes) {
  return ParseAuxvImpl(bytes, "auxv");
}

Result<std::vector<uint64_t>> ReadAuxv(pid_t pid) {
  std::string path = ProcPath(pid, 0, "auxv");
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseAuxvImpl(bytes, path);
}

Result<std::vector<pid_t>> ListThreads(pid_t pid) {
  ASSIGN_OR_RETURN(std::vector<pid_t> tids,
                   ListNumericDir<pid_t>("/proc/" + std::to_string(pid) + "/task"));
  auto leader = std::find(tids.begin(), tids.end(), pid);
  if (leader != tids.end()) std::rotate(tids.begin(), leader, leader + 1);
  return tids;
}

Result<std::vector<pid_t>> ListChildren(pid_t pid, const std::vector<pid_t>* known_tids) {
  std::vector<pid_t> listed;
  if (known_tids == nullptr) {
    ASSIGN_OR_RETURN(listed, ListThreads(pid));
    known_tids = &listed;
  }
  std::vector<pid_t> children;
  for (pid_t tid : *known_tids) {
    std::string path = ProcPath(pid, tid, "children");
    Result<std::string> text = ReadFile(path);
    if (!text.ok()) {
      if (text.status().err() == ENOENT && tid != pid) continue;  // thread exited meanwhile
      return text.status();
    }
    for (std::string_view w : Words(*text)) {
      pid_t child = 0;
      if (!ParseNum(w, 10, &child) || child <= 0)
        return Errorf("%s: bad pid '%s'", path.c_str(), Shown(w).c_str());
      children.push_back(child);
    }
  }
  std::sort(children.begin(), children.end());
  children.erase(std::unique(children.begin(), children.end()), children.end());
  return children;
}

Result<std::vector<int>> ListFds(pid_t pid) {
  return ListNumericDir<int>("/proc/" + std::to_string(pid) + "/fd");
}

bool ParseMemfdPath(const std::string& path, std::string* name) {
  static constexpr char kPrefix[] = "/memfd:";
  static constexpr char kDeleted[] = " (deleted)";
  if (path.rfind(kPrefix, 0) != 0) return false;
  std::string n = path.substr(sizeof(kPrefix) - 1);
  const size_t dl = sizeof(kDeleted) - 1;
  if (n.size() >= dl && n.compare(n.size() - dl, dl, kDeleted) == 0) n.resize(n.size() - dl);
  *name = n;
  return true;
}

}  // namespace cf::proc
