#include "common/log.h"

#include <cstdarg>
#include <cstdio>
#include <mutex>

#include "common/timer.h"

namespace cf {
namespace {

struct LogState {
  std::mutex mu;
  int level = 2;
  FILE* file = nullptr;
  bool detached = false;
  uint64_t start_ns = MonotonicNs();
};

LogState& State() {
  static LogState state;
  return state;
}

}  // namespace

void SetLogLevel(int level) { State().level = level; }
int GetLogLevel() { return State().level; }

bool SetLogFile(const std::string& path) {
  FILE* f = fopen(path.c_str(), "we");
  if (!f) return false;
  std::lock_guard<std::mutex> lock(State().mu);
  if (State().file) fclose(State().file);
  State().file = f;
  setvbuf(f, nullptr, _IOLBF, 0);
  return true;
}

void CloseLogFile() {
  std::lock_guard<std::mutex> lock(State().mu);
  if (State().file) fclose(State().file);
  State().file = nullptr;
}

void DetachLogging() {
  std::lock_guard<std::mutex> lock(State().mu);
  State().file = nullptr;  // its descriptor is not ours any more: leak the FILE
  State().detached = true;
}

void Logf(LogLevel level, const char* fmt, ...) {
  LogState& st = State();
  if (st.detached) return;
  const int lvl = static_cast<int>(level);
  // Errors always reach stderr; other lines only up to the chosen level.
  if (lvl > st.level && level != LogLevel::kError) return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  const double t = static_cast<double>(MonotonicNs() - st.start_ns) / 1e9;
  static const char* kTags[] = {"", "Error", "Warn", "Info", "Debug"};
  std::lock_guard<std::mutex> lock(st.mu);
  if (st.file && lvl <= st.level) {
    fprintf(st.file, "(%.6f) %s (%s)\n", t, msg, kTags[lvl]);
  }
  // stderr gets errors always, and everything up to the level when no file.
  if (level == LogLevel::kError || (!st.file && lvl <= st.level)) {
    fprintf(stderr, "%s%s\n", level == LogLevel::kError ? "Error: " : "", msg);
  }
}

}  // namespace cf
