// Ctrl-C (SIGINT) and SIGTERM during a long job: while an InterruptGuard lives, the signals only
// set a flag, and the job checks it at points where stopping is safe (the trainer after each
// step, `sqz compress` between its stages), so it unwinds normally: checkpoints stay whole and
// staging directories are removed. Guards nest; the outermost one installs and restores the
// handlers and clears the flag.
#pragma once

namespace sqz {

class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
};

// True once SIGINT or SIGTERM arrived under a guard.
bool interrupt_requested();

}  // namespace sqz
