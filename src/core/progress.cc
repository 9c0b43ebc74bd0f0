#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

#include "core/error.h"
#include "core/log.h"

namespace sqz {

namespace {
constexpr int kBarWidth = 24;
constexpr int kLogEveryPercent = 5;
bool g_quiet = false;
std::string g_prefix = "sqz: ";
}  // namespace

void set_rank_diagnostics(int rank) {
  g_quiet = rank != 0;
  g_prefix = rank == 0 ? "sqz: " : "sqz: rank " + std::to_string(rank) + ": ";
}
bool diagnostics_quiet() { return g_quiet; }
const std::string& diagnostics_prefix() { return g_prefix; }

std::string format_duration(double s) {
  if (s < 0 || s > 1e7) return "?";
  int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return to_text(t / 3600, "h", (t % 3600) / 60, "m");
  if (t >= 60) return to_text(t / 60, "m", t % 60, "s");
  return to_text(t, "s");
}

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 1)), tty_(isatty(2)),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void Progress::update(int64_t done, const std::string& status) {
  if (g_quiet) return;
  auto now = std::chrono::steady_clock::now();
  int percent = static_cast<int>(100 * done / total_);
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(200) && done < total_) return;
  } else if (percent / kLogEveryPercent == last_percent_ / kLogEveryPercent && done < total_) {
    return;
  }
  last_draw_ = now;
  last_percent_ = percent;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double eta = done > 0 ? elapsed * static_cast<double>(total_ - done) / static_cast<double>(done) : -1;
  int filled = static_cast<int>(kBarWidth * done / total_);
  std::string bar(filled, '#');
  bar += std::string(kBarWidth - filled, '.');
  std::fprintf(stderr, "%s%s [%s] %lld/%lld %s elapsed %s ETA %s%s", tty_ ? "\r" : "", label_.c_str(), bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), status.c_str(),
               format_duration(elapsed).c_str(), format_duration(eta).c_str(), tty_ ? "\033[K" : "\n");
  std::fflush(stderr);
}

void Progress::finish(const std::string& status) {
  update(total_, status);
  if (tty_ && !g_quiet) std::fprintf(stderr, "\n");
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace sqz
