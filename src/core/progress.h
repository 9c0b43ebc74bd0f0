// A progress bar on stderr for long work: redrawn in place on a terminal, a line every few
// percent otherwise (CI logs stay short).
#pragma once
#include <chrono>
#include <string>

namespace sqz {

class Progress {
 public:
  Progress(std::string label, int64_t total);
  // `done` units finished; `status` is shown after the bar (loss, tokens/s, ...).
  void update(int64_t done, const std::string& status = "");
  void finish(const std::string& status = "");

 private:
  std::string label_;
  int64_t total_;
  bool tty_;
  int last_percent_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);

// Wall seconds on the steady clock since `t0`.
double seconds_since(std::chrono::steady_clock::time_point t0);

}  // namespace sqz
