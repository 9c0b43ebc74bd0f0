#include "runtime/op_profile.h"

namespace sqz::runtime {

void OpProfile::add(const char* op, double ms) {
  for (auto& r : rows_)
    if (r.op == op) {
      r.total_ms += ms;
      ++r.calls;
      return;
    }
  rows_.push_back({op, ms, 1});
}

double OpProfile::total_ms() const {
  double t = 0;
  for (const auto& r : rows_) t += r.total_ms;
  return t;
}

}  // namespace sqz::runtime
