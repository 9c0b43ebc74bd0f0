// Small self-contained SVG charts for reports (bar charts of kept heads/neurons per layer,
// accuracy vs sparsity lines): a file any browser shows, no plotting dependency.
#pragma once
#include <string>
#include <vector>

namespace sqz::eval {

struct Series {
  std::string name;
  std::vector<double> values;  // bar charts: one per category; line charts: y values
  std::vector<double> x;       // line charts only
};

// Grouped bars: one group per category, one bar per series.
std::string svg_bar_chart(const std::string& title, const std::vector<std::string>& categories, const std::vector<Series>& series,
                          const std::string& y_label);

// Lines with markers; every point labelled with its y value.
std::string svg_line_chart(const std::string& title, const std::vector<Series>& series, const std::string& x_label,
                           const std::string& y_label);

}  // namespace sqz::eval
