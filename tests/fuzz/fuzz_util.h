// Shared by the libFuzzer targets: a scratch dir for loaders that read paths (test_paths.h's), and the rule that
// only sqz's own named errors are an acceptable way to refuse an input. Anything else (another
// exception, a sanitizer report, a hang) is a finding.
#pragma once
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/fs.h"
#include "unit/test_paths.h"

namespace sqz::fuzz {

// One scratch dir per fuzzing process (removed when it exits), emptied before each input.
inline const fs::path& fresh_scratch_dir() {
  static const testing::ScratchDir dir("fuzz");
  for (const auto& entry : fs::directory_iterator(dir.path())) fs::remove_all(entry.path());
  return dir.path();
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
