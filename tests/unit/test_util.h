// Helpers shared by the test binaries: fixture paths, scratch dirs, allclose with a report.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

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

// numpy.allclose semantics; on failure says where the worst element is.
::testing::AssertionResult all_close(const torch::Tensor& actual, const torch::Tensor& expected, double atol, double rtol);

}  // namespace sqz::testing
