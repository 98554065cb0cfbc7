#include "common/interrupt.h"

#include <signal.h>
#include <string.h>

#include <atomic>
#include <cerrno>
#include <string>

namespace cf {
namespace {

std::atomic<int> g_signal{0};
std::atomic<bool> g_deferred{false};
constexpr int kSignals[] = {SIGTERM, SIGINT, SIGHUP};

void OnTerminate(int sig) {
  int expected = 0;
  g_signal.compare_exchange_strong(expected, sig);
}

}  // namespace

void CatchTerminationSignals() {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnTerminate;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR
  for (int sig : kSignals) sigaction(sig, &sa, nullptr);
}

void DeferTermination() { g_deferred.store(true); }

void RestoreTerminationSignals() {
  for (int sig : kSignals) signal(sig, SIG_DFL);
  if (const int sig = TerminationSignal(); sig != 0) raise(sig);
}

int TerminationSignal() { return g_signal.load(std::memory_order_relaxed); }

Status CheckTerminated() {
  const int sig = TerminationSignal();
  if (sig == 0 || g_deferred.load()) return OkStatus();
  const char* abbrev = sigabbrev_np(sig);
  return Error(std::string("interrupted by SIG") + (abbrev ? abbrev : std::to_string(sig).c_str()));
}

}  // namespace cf
