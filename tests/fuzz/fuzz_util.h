// Shared by the libFuzzer targets: a scratch dir for loaders that read paths, and the rule that
// only sqz's own named errors are an acceptable way to refuse an input. Anything else (another
// exception, a sanitizer report, a hang) is a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/fs.h"

namespace sqz::fuzz {

// One dir per fuzzing process, removed when it exits.
class ScratchDir {
 public:
  ScratchDir() : path_(fs::temp_directory_path() / ("sqz-fuzz-" + std::to_string(getpid()))) { fs::create_directories(path_); }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  // Empties the dir, then writes each (name, bytes).
  void reset() {
    for (const auto& entry : fs::directory_iterator(path_)) fs::remove_all(entry.path());
  }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path_ / name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

 private:
  fs::path path_;
};

inline ScratchDir& scratch() {
  static ScratchDir dir;
  return dir;
}

template <typename Fn>
void refusals_allowed(Fn&& fn) {
  try {
    fn();
  } catch (const Error&) {
    // A named refusal: what a hostile input should get.
  }
}

}  // namespace sqz::fuzz
