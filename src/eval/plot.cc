#include "eval/plot.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace sqz::eval {

namespace {

constexpr double kW = 640, kH = 400, kLeft = 70, kRight = 150, kTop = 40, kBottom = 60;
const char* kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

// A label: three significant digits below 100, whole numbers above (141, not 1e+02).
std::string num(double v) {
  std::ostringstream s;
  if (std::abs(v) >= 100) s << std::fixed << std::setprecision(0) << v;
  else s << std::defaultfloat << std::setprecision(3) << v;
  return s.str();
}

// A pixel coordinate, to a tenth of a pixel.
std::string coord(double v) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << v;
  return s.str();
}

// A rounded-up axis maximum and its tick step.
std::pair<double, double> nice_axis(double max) {
  if (max <= 0) return {1, 0.25};
  double step = std::pow(10, std::floor(std::log10(max)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (max / (step * m) <= 5) return {std::ceil(max / (step * m)) * step * m, step * m};
  return {max, max / 4};
}

struct Frame {
  std::ostringstream svg;
  double x0 = kLeft, x1 = kW - kRight, y0 = kH - kBottom, y1 = kTop;
  double ymin = 0, ymax = 1;
  double y(double v) const { return y0 - (v - ymin) / (ymax - ymin) * (y0 - y1); }

  Frame(const std::string& title, const std::string& y_label, double lo, double hi) {
    auto [top, step] = nice_axis(hi - lo);
    ymin = lo;
    ymax = lo + top;
    svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
        << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    svg << "<text x=\"" << kW / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << escape(title) << "</text>\n";
    for (double v = ymin; v <= ymax + 1e-9; v += step) {
      svg << "<line x1=\"" << x0 << "\" x2=\"" << x1 << "\" y1=\"" << y(v) << "\" y2=\"" << y(v) << "\" stroke=\"#ddd\"/>\n";
      svg << "<text x=\"" << x0 - 6 << "\" y=\"" << y(v) + 4 << "\" text-anchor=\"end\">" << num(v) << "</text>\n";
    }
    svg << "<line x1=\"" << x0 << "\" x2=\"" << x0 << "\" y1=\"" << y0 << "\" y2=\"" << y1 << "\" stroke=\"black\"/>\n";
    svg << "<line x1=\"" << x0 << "\" x2=\"" << x1 << "\" y1=\"" << y0 << "\" y2=\"" << y0 << "\" stroke=\"black\"/>\n";
    svg << "<text transform=\"translate(16," << (y0 + y1) / 2 << ") rotate(-90)\" text-anchor=\"middle\">" << escape(y_label)
        << "</text>\n";
  }
  void legend(const std::vector<Series>& series) {
    for (size_t i = 0; i < series.size(); ++i) {
      double ly = kTop + 10 + 20.0 * static_cast<double>(i);
      svg << "<rect x=\"" << x1 + 15 << "\" y=\"" << ly - 10 << "\" width=\"12\" height=\"12\" fill=\"" << kColors[i % 6] << "\"/>\n";
      svg << "<text x=\"" << x1 + 32 << "\" y=\"" << ly << "\">" << escape(series[i].name) << "</text>\n";
    }
  }
  std::string finish() {
    svg << "</svg>\n";
    return svg.str();
  }
};

}  // namespace

std::string svg_bar_chart(const std::string& title, const std::vector<std::string>& categories, const std::vector<Series>& series,
                          const std::string& y_label) {
  double hi = 0;
  for (const auto& s : series)
    for (double v : s.values) hi = std::max(hi, v);
  Frame f(title, y_label, 0, hi);
  double group_w = (f.x1 - f.x0) / std::max<double>(1, static_cast<double>(categories.size()));
  double bar_w = group_w * 0.8 / std::max<double>(1, static_cast<double>(series.size()));
  for (size_t c = 0; c < categories.size(); ++c) {
    double gx = f.x0 + group_w * static_cast<double>(c) + group_w * 0.1;
    for (size_t s = 0; s < series.size(); ++s) {
      double v = c < series[s].values.size() ? series[s].values[c] : 0;
      double x = gx + bar_w * static_cast<double>(s);
      f.svg << "<rect x=\"" << x << "\" y=\"" << f.y(v) << "\" width=\"" << bar_w * 0.95 << "\" height=\"" << f.y0 - f.y(v)
            << "\" fill=\"" << kColors[s % 6] << "\"><title>" << escape(series[s].name) << ": " << num(v) << "</title></rect>\n";
      f.svg << "<text x=\"" << x + bar_w / 2 << "\" y=\"" << f.y(v) - 3 << "\" text-anchor=\"middle\" font-size=\"10\">" << num(v)
            << "</text>\n";
    }
    f.svg << "<text x=\"" << gx + group_w * 0.4 << "\" y=\"" << f.y0 + 18 << "\" text-anchor=\"middle\">" << escape(categories[c])
          << "</text>\n";
  }
  f.legend(series);
  return f.finish();
}

std::string svg_line_chart(const std::string& title, const std::vector<Series>& series, const std::string& x_label,
                           const std::string& y_label) {
  double lo = 1e300, hi = -1e300, xlo = 1e300, xhi = -1e300;
  for (const auto& s : series) {
    for (double v : s.values) lo = std::min(lo, v), hi = std::max(hi, v);
    for (double v : s.x) xlo = std::min(xlo, v), xhi = std::max(xhi, v);
  }
  if (lo > hi) lo = 0, hi = 1, xlo = 0, xhi = 1;
  double pad = std::max(1e-6, (hi - lo) * 0.1);
  Frame f(title, y_label, lo - pad, hi + pad);
  if (xhi <= xlo) xhi = xlo + 1;
  auto x = [&](double v) { return f.x0 + 20 + (v - xlo) / (xhi - xlo) * (f.x1 - f.x0 - 40); };
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    std::string pts;
    for (size_t p = 0; p < s.values.size() && p < s.x.size(); ++p) pts += coord(x(s.x[p])) + "," + coord(f.y(s.values[p])) + " ";
    f.svg << "<polyline fill=\"none\" stroke=\"" << kColors[i % 6] << "\" stroke-width=\"2\" points=\"" << pts << "\"/>\n";
    for (size_t p = 0; p < s.values.size() && p < s.x.size(); ++p) {
      f.svg << "<circle cx=\"" << x(s.x[p]) << "\" cy=\"" << f.y(s.values[p]) << "\" r=\"4\" fill=\"" << kColors[i % 6] << "\"/>\n";
      f.svg << "<text x=\"" << x(s.x[p]) << "\" y=\"" << f.y(s.values[p]) - 8 << "\" text-anchor=\"middle\" font-size=\"10\">"
            << num(s.values[p]) << "</text>\n";
      f.svg << "<text x=\"" << x(s.x[p]) << "\" y=\"" << f.y0 + 16 << "\" text-anchor=\"middle\">" << num(s.x[p]) << "</text>\n";
    }
  }
  f.svg << "<text x=\"" << (f.x0 + f.x1) / 2 << "\" y=\"" << kH - 15 << "\" text-anchor=\"middle\">" << escape(x_label) << "</text>\n";
  f.legend(series);
  return f.finish();
}

}  // namespace sqz::eval
