#include "proc/fdinfo_kinds.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <map>

namespace cf::proc {
namespace {

bool ParseU64(const std::string& s, int base, uint64_t* out) {
  if (s.empty() || s[0] == '-' || s[0] == '+') return false;
  char* end = nullptr;
  errno = 0;
  *out = strtoull(s.c_str(), &end, base);
  return errno == 0 && end != s.c_str() && *end == '\0';
}

template <typename T>
bool ParseSmall(const std::string& s, int base, T* out) {
  uint64_t v = 0;
  if (!ParseU64(s, base, &v) || v > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
  *out = static_cast<T>(v);
  return true;
}

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// "7 events: 19 data: ab pos:0" -> head "7", {events: 19, data: ab, pos: 0}.
// Both "key:value" and "key: value" occur in one line.
bool SplitFields(const std::string& value, std::string* head, std::map<std::string, std::string>* fields) {
  std::vector<std::string> w = Words(value);
  if (w.empty()) return false;
  *head = w[0];
  for (size_t i = 1; i < w.size(); ++i) {
    const size_t colon = w[i].find(':');
    if (colon == std::string::npos) return false;
    std::string key = w[i].substr(0, colon);
    std::string val = w[i].substr(colon + 1);
    if (val.empty()) {
      if (i + 1 >= w.size()) return false;
      val = w[++i];
    }
    (*fields)[key] = val;
  }
  return true;
}

// "(1, 500)" -> 1 s 500 ns, in ns.
bool ParseTimespec(const std::string& s, uint64_t* ns) {
  if (s.size() < 5 || s.front() != '(' || s.back() != ')') return false;
  const std::string inner = s.substr(1, s.size() - 2);
  const size_t comma = inner.find(',');
  if (comma == std::string::npos) return false;
  std::vector<std::string> a = Words(inner.substr(0, comma)), b = Words(inner.substr(comma + 1));
  uint64_t sec = 0, nsec = 0;
  if (a.size() != 1 || b.size() != 1 || !ParseU64(a[0], 10, &sec) || !ParseU64(b[0], 10, &nsec)) return false;
  if (nsec >= 1000000000ull || sec > (UINT64_MAX - nsec) / 1000000000ull) return false;
  *ns = sec * 1000000000ull + nsec;
  return true;
}

Status Bad(const char* what, const std::string& text) {
  return Error(std::string("bad ") + what + " line in fdinfo: '" + text + "'");
}

bool HexBytes(const std::string& hex, size_t n, std::string* out) {
  if (hex.size() != 2 * n) return false;
  out->clear();
  for (size_t i = 0; i < n; ++i) {
    uint8_t b = 0;
    if (!ParseSmall(hex.substr(2 * i, 2), 16, &b)) return false;
    out->push_back(static_cast<char>(b));
  }
  return true;
}

}  // namespace

const std::string* FdInfoExtra(const FdInfo& info, const char* key) {
  for (const auto& [k, v] : info.extra) {
    if (k == key) return &v;
  }
  return nullptr;
}

Result<TimerFdInfo> ParseTimerFdInfo(const FdInfo& info) {
  TimerFdInfo t;
  struct Field {
    const char* key;
    bool (*parse)(const std::string&, TimerFdInfo*);
  };
  static const Field kFields[] = {
      {"clockid", [](const std::string& v, TimerFdInfo* t) { return ParseSmall(v, 10, &t->clockid); }},
      {"ticks", [](const std::string& v, TimerFdInfo* t) { return ParseU64(v, 10, &t->ticks); }},
      {"settime flags", [](const std::string& v, TimerFdInfo* t) { return ParseSmall(v, 8, &t->settime_flags); }},
      {"it_value", [](const std::string& v, TimerFdInfo* t) { return ParseTimespec(v, &t->value_ns); }},
      {"it_interval", [](const std::string& v, TimerFdInfo* t) { return ParseTimespec(v, &t->interval_ns); }},
  };
  for (const Field& f : kFields) {
    const std::string* v = FdInfoExtra(info, f.key);
    if (!v) return Error(std::string("no '") + f.key + "' line in the timerfd's fdinfo");
    if (!f.parse(*v, &t)) return Bad(f.key, *v);
  }
  return t;
}

Result<uint64_t> ParseSignalFdMask(const FdInfo& info) {
  const std::string* v = FdInfoExtra(info, "sigmask");
  if (!v) return Error("no 'sigmask' line in the signalfd's fdinfo");
  uint64_t mask = 0;
  if (!ParseU64(*v, 16, &mask)) return Bad("sigmask", *v);
  return mask;
}

Result<std::vector<InotifyWatchInfo>> ParseInotifyWatches(const FdInfo& info) {
  std::vector<InotifyWatchInfo> out;
  for (const auto& [k, v] : info.extra) {
    if (k != "inotify wd") continue;
    std::string head;
    std::map<std::string, std::string> f;
    InotifyWatchInfo w;
    uint32_t nbytes = 0;
    bool ok = SplitFields(v, &head, &f) && ParseSmall(head, 16, &w.wd) && ParseU64(f["ino"], 16, &w.ino) &&
              ParseSmall(f["sdev"], 16, &w.sdev) && ParseSmall(f["mask"], 16, &w.mask) &&
              ParseSmall(f["ignored_mask"], 16, &w.ignored_mask);
    // The handle is missing when the kernel could not encode one.
    if (ok && f.count("fhandle-bytes")) {
      ok = ParseSmall(f["fhandle-bytes"], 16, &nbytes) && ParseSmall(f["fhandle-type"], 16, &w.fhandle_type) &&
           nbytes <= 128 && HexBytes(f["f_handle"], nbytes, &w.fhandle);
    }
    if (!ok) return Bad("inotify", k + ":" + v);
    out.push_back(std::move(w));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.wd < b.wd; });
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i].wd == out[i - 1].wd) return Error("inotify watch descriptor " + std::to_string(out[i].wd) + " twice");
  }
  return out;
}

Result<std::vector<EpollTargetInfo>> ParseEpollTargets(const FdInfo& info) {
  std::vector<EpollTargetInfo> out;
  for (const auto& [k, v] : info.extra) {
    if (k != "tfd") continue;
    std::string head;
    std::map<std::string, std::string> f;
    EpollTargetInfo t;
    const bool ok = SplitFields(v, &head, &f) && ParseSmall(head, 10, &t.tfd) &&
                    ParseSmall(f["events"], 16, &t.events) && ParseU64(f["data"], 16, &t.data) &&
                    ParseU64(f["ino"], 16, &t.ino) && ParseSmall(f["sdev"], 16, &t.sdev);
    if (!ok) return Bad("epoll", k + ":" + v);
    out.push_back(t);
  }
  return out;
}

Result<FanotifyInfo> ParseFanotify(const FdInfo& info) {
  FanotifyInfo out;
  bool have_flags = false;
  for (const auto& [k, v] : info.extra) {
    if (!(k.rfind("fanotify ", 0) == 0)) continue;
    std::string head;
    std::map<std::string, std::string> f;
    if (!SplitFields(v, &head, &f)) return Bad("fanotify", k + ":" + v);
    if (k == "fanotify flags") {
      if (!ParseSmall(head, 16, &out.flags) || !ParseSmall(f["event-flags"], 16, &out.event_flags)) {
        return Bad("fanotify", k + ":" + v);
      }
      have_flags = true;
      continue;
    }
    FanotifyMarkInfo m;
    bool ok = ParseSmall(f["mflags"], 16, &m.mflags) && ParseSmall(f["mask"], 16, &m.mask) &&
              ParseSmall(f["ignored_mask"], 16, &m.ignored_mask);
    if (k == "fanotify ino") {
      m.kind = FanotifyMarkInfo::kInode;
      uint32_t nbytes = 0;
      ok = ok && ParseU64(head, 16, &m.ino) && ParseSmall(f["sdev"], 16, &m.sdev);
      if (ok && f.count("fhandle-bytes")) {
        ok = ParseSmall(f["fhandle-bytes"], 16, &nbytes) && ParseSmall(f["fhandle-type"], 16, &m.fhandle_type) &&
             nbytes <= 128 && HexBytes(f["f_handle"], nbytes, &m.fhandle);
      }
    } else if (k == "fanotify mnt_id") {
      m.kind = FanotifyMarkInfo::kMount;
      ok = ok && ParseSmall(head, 16, &m.mnt_id);
    } else if (k == "fanotify sdev") {
      m.kind = FanotifyMarkInfo::kFilesystem;
      ok = ok && ParseSmall(head, 16, &m.sdev);
    } else {
      ok = false;
    }
    if (!ok) return Bad("fanotify", k + ":" + v);
    out.marks.push_back(std::move(m));
  }
  if (!have_flags) return Error("no fanotify flags line in fdinfo");
  return out;
}

}  // namespace cf::proc
