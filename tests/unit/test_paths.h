// Test helpers that need no torch (the sanitizer build links them): fixture paths, scratch dirs,
// the message of an sqz error, gtest parameter names.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>

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

// A gtest parameter name from a directory name such as "bert-mlm": non-alphanumerics become '_'.
std::string param_name(const ::testing::TestParamInfo<std::string>& info);

}  // namespace sqz::testing
