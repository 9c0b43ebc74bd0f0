#include "core/interrupt.h"

#include <atomic>
#include <csignal>

namespace sqz {

namespace {
std::atomic<bool> g_interrupted{false};
int g_depth = 0;  // guards alive (they are created on the main thread only)
void (*g_old_int)(int) = SIG_DFL;
void (*g_old_term)(int) = SIG_DFL;
void on_signal(int) { g_interrupted = true; }
}  // namespace

InterruptGuard::InterruptGuard() {
  if (g_depth++ > 0) return;
  g_interrupted = false;
  g_old_int = std::signal(SIGINT, on_signal);
  g_old_term = std::signal(SIGTERM, on_signal);
}

InterruptGuard::~InterruptGuard() {
  if (--g_depth > 0) return;
  std::signal(SIGINT, g_old_int);
  std::signal(SIGTERM, g_old_term);
}

bool interrupt_requested() { return g_interrupted; }

}  // namespace sqz
