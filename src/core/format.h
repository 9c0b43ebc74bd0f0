// Numbers as reports print them.
#pragma once
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

namespace sqz {

// `digits` significant digits, as a stream prints by default: 0.97794, 1.2e+03.
inline std::string format_significant(double v, int digits = 4) {
  std::ostringstream s;
  s.precision(digits);
  s << v;
  return s.str();
}

// `digits` digits after the point: 12.35.
inline std::string format_fixed(double v, int digits = 2) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// The parts with `separator` between them: "a, b, c".
inline std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? separator : "") + parts[i];
  return s;
}

}  // namespace sqz
