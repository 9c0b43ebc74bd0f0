// `sqz compress --sweep`: one run per point, a table and a chart of the dev score against the
// encoder parameters removed.
#include <sstream>

#include "core/format.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "eval/plot.h"
#include "pipeline/compress_run.h"

namespace sqz::pipeline {

Sweep Sweep::parse(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) fail_invalid("--sweep '", text, "': expected key=v1,v2,...");
  Sweep s{text.substr(0, eq), {}};
  std::stringstream ss(text.substr(eq + 1));
  for (std::string v; std::getline(ss, v, ',');)
    if (!v.empty()) s.values.push_back(v);
  if (s.values.empty()) fail_invalid("--sweep '", text, "': give at least one value");
  return s;
}

io::json run_sweep(const fs::path& recipe_path, const std::vector<std::string>& overrides, const std::vector<Sweep>& sweeps,
                   const CompressOptions& options) {
  auto base = compress::CompressRecipe::load(recipe_path, overrides);
  fs::path out(base.out);
  if (fs::exists(out) && !options.overwrite) fail_invalid(out.string(), ": output directory already exists (pass --overwrite)");
  const size_t n = sweeps.front().values.size();
  for (const auto& s : sweeps)
    if (s.values.size() != n) fail_invalid("--sweep ", s.key, ": ", s.values.size(), " values, but ", sweeps.front().key, " has ", n);
  auto point_overrides = [&](size_t i) {
    auto o = overrides;
    for (const auto& s : sweeps) o.push_back(s.key + "=" + s.values[i]);
    return o;
  };
  for (size_t i = 0; i < n; ++i) compress::CompressRecipe::load(recipe_path, point_overrides(i));  // every point is valid before any runs
  ResumableDir staging(out, options.overwrite, options.resume);
  if (staging.resumed()) log_info("resuming the interrupted sweep in ", staging.path().string());
  InterruptGuard interrupt_guard;  // one for every point: Ctrl-C between points unwinds too
  io::json points = io::json::array();
  eval::Series score{"compressed", {}, {}}, dense{"dense", {}, {}};
  std::string metric;
  std::ostringstream md;
  md << "# sqz compress sweep\n\nRecipe `" << recipe_path.string() << "`; each point's report is in `point-<i>/report.md`.\n\n"
     << "| point | settings | encoder params removed | params removed | dev score | dense |\n|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < n; ++i) {
    auto o = point_overrides(i);
    std::string settings;
    for (const auto& s : sweeps) settings += (settings.empty() ? "" : ", ") + s.key + "=" + s.values[i];
    log_info("sweep point ", i + 1, " of ", n, ": ", settings);
    std::string dir = "point-" + std::to_string(i);
    o.push_back("out=" + (staging.path() / dir).string());
    io::json rep;
    if (staging.resumed() && fs::exists(staging.path() / dir / "report.json")) {
      log_info("sweep point ", i + 1, " finished before the interruption: its report is reused");
      rep = io::read_json_file(staging.path() / dir / "report.json");
    } else {
      try {
        rep = run_compress(compress::CompressRecipe::load(recipe_path, o), {false, options.resume});
      } catch (...) {
        staging.keep();  // the points done, and this point's own work dir, stay for --resume
        throw;
      }
    }
    metric = rep["dense"]["eval"].contains("accuracy") ? "accuracy" : "perplexity";
    double removed = rep["encoder_params_removed"].get<double>();
    points.push_back({{"settings", settings}, {"encoder_params_removed", removed}, {"params_removed", rep["params_removed"]},
                      {metric, rep["compressed"]["eval"][metric]}, {"dense_" + metric, rep["dense"]["eval"][metric]},
                      {"report", (out / dir / "report.md").string()}});
    score.x.push_back(100.0 * removed);
    score.values.push_back(rep["compressed"]["eval"][metric].get<double>());
    dense.x.push_back(100.0 * removed);
    dense.values.push_back(rep["dense"]["eval"][metric].get<double>());
    md << "| " << i << " | " << settings << " | " << format_significant(100 * removed, 3) << "% | " << format_significant(100 * rep["params_removed"].get<double>(), 3)
       << "% | " << format_significant(score.values.back()) << " | " << format_significant(dense.values.back()) << " |\n";
  }
  md << "\n![dev score vs encoder parameters removed](sweep.svg)\n";
  io::json sweep = {{"recipe", recipe_path.string()}, {"points", points}};
  io::write_json_file_atomic(staging.path() / "sweep.json", sweep);
  write_file_atomic(staging.path() / "sweep.md", md.str());
  write_file_atomic(staging.path() / "sweep.svg",
                    eval::svg_line_chart("Dev " + metric + " vs encoder parameters removed", {dense, score},
                                         "encoder parameters removed (%)", metric));
  staging.commit();
  return sweep;
}

}  // namespace sqz::pipeline
