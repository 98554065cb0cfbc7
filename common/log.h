// Logging, CRIU style: -v0..-v4 levels and an optional log file (-o).
//
// Every line starts with the module prefix written by the caller
// ("pagemap: scanned 12 vmas"). Errors always reach stderr as well, so the CLI
// prints one clear line even when the log goes to a file.
#pragma once

#include <string>

namespace cf {

enum class LogLevel : int { kError = 1, kWarn = 2, kInfo = 3, kDebug = 4 };

// Sets the verbosity (0 = silent but errors, 4 = debug). Default 2.
void SetLogLevel(int level);
int GetLogLevel();
// Sends log lines to |path| (truncated). Returns false if it cannot be opened.
bool SetLogFile(const std::string& path);
void CloseLogFile();
// Stops all logging without closing anything: for a process whose descriptor
// numbers are about to be reused for other files (a process being restored).
void DetachLogging();

void Logf(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace cf

#define LOG_ERROR(...) ::cf::Logf(::cf::LogLevel::kError, __VA_ARGS__)
#define LOG_WARN(...) ::cf::Logf(::cf::LogLevel::kWarn, __VA_ARGS__)
#define LOG_INFO(...) ::cf::Logf(::cf::LogLevel::kInfo, __VA_ARGS__)
#define LOG_DEBUG(...)                                                   \
  do {                                                                   \
    if (::cf::GetLogLevel() >= 4) ::cf::Logf(::cf::LogLevel::kDebug, __VA_ARGS__); \
  } while (0)
