#include "unit/test_paths.h"

#include <unistd.h>

#include <cctype>
#include <random>

#include "core/error.h"

namespace sqz::testing {

fs::path shared_dir() { return SQZ_SHARED_DIR; }
fs::path fixtures_dir() { return shared_dir() / "fixtures"; }

ScratchDir::ScratchDir(const std::string& tag) {
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("sqz-test-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
  fs::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

}  // namespace sqz::testing
