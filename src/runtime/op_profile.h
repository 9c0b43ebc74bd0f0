// Where an engine's forward pass spends its time: wall time per kind of op, summed over the
// forwards run while a profile is attached (`sqz bench --profile` prints it). Without one the
// engine's timers are a null check.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sqz::runtime {

class OpProfile {
 public:
  struct Row {
    std::string op;
    double total_ms = 0;
    int64_t calls = 0;
  };
  void add(const char* op, double ms);
  // In the order the ops first ran.
  const std::vector<Row>& rows() const { return rows_; }
  double total_ms() const;

 private:
  std::vector<Row> rows_;
};

// Adds the time from construction to destruction to `profile` (nullable) under `op`.
class ScopedOpTimer {
 public:
  ScopedOpTimer(OpProfile* profile, const char* op)
      : profile_(profile),
        op_(op),
        start_(profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{}) {}
  ~ScopedOpTimer() {
    if (profile_)
      profile_->add(op_, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count());
  }
  ScopedOpTimer(const ScopedOpTimer&) = delete;
  ScopedOpTimer& operator=(const ScopedOpTimer&) = delete;

 private:
  OpProfile* profile_;
  const char* op_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace sqz::runtime
