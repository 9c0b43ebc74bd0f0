// Helpers shared by the test binaries: fixture paths, scratch dirs, allclose with a report.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>

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

// numpy.allclose semantics; on failure says where the worst element is.
::testing::AssertionResult all_close(const torch::Tensor& actual, const torch::Tensor& expected, double atol, double rtol);

}  // namespace sqz::testing
