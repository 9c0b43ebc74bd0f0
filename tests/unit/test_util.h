// Helpers shared by the test binaries: fixture paths, scratch dirs, allclose with a report.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "core/fs.h"

namespace sqz::testing {

fs::path shared_dir();
fs::path fixtures_dir();
// A fresh empty directory under the system temp dir, removed at destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag);
  ~ScratchDir();
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// The message of the sqz::Error `f` throws, or "" when it throws none.
std::string error_of(const std::function<void()>& f);

// Runs the sqz binary with `args` (a shell fragment), stdout and stderr together.
struct RunResult {
  int code;
  std::string output;
};
RunResult run_sqz(const std::string& args);
// Starts the sqz binary with `args` in the background, its stderr into `stderr_log` (truncated),
// stdout discarded; returns its pid (-1 when it could not start), for tests that signal it.
int spawn_sqz(const std::vector<std::string>& args, const fs::path& stderr_log);

// numpy.allclose semantics; on failure says where the worst element is.
::testing::AssertionResult all_close(const torch::Tensor& actual, const torch::Tensor& expected, double atol, double rtol);

// A gtest parameter name from a directory name such as "bert-mlm": non-alphanumerics become '_'.
std::string param_name(const ::testing::TestParamInfo<std::string>& info);
}  // namespace sqz::testing
