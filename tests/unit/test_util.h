// Helpers shared by the torch-linking test binaries: running the sqz binary, allclose with a report
// (and, from test_paths.h, fixture paths and scratch dirs).
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "core/fs.h"
#include "io/json_file.h"
#include "unit/test_paths.h"

namespace sqz::testing {

// Runs the sqz binary with `args` (a shell fragment), stdout and stderr together.
struct RunResult {
  int code;
  std::string output;
};
RunResult run_sqz(const std::string& args);
// Starts the sqz binary with `args` in the background, its stderr into `stderr_log` (truncated),
// stdout discarded; returns its pid (-1 when it could not start), for tests that signal it.
int spawn_sqz(const std::vector<std::string>& args, const fs::path& stderr_log);
// The same for any program (argv[0] looked up on PATH).
int spawn_process(const std::vector<std::string>& argv, const fs::path& stderr_log);

// configs/t5-g2p.json shrunk to d_model 64 and 2+2 layers (seconds to train), written as
// dir/config.json; returns that path.
fs::path write_small_g2p_t5_config(const fs::path& dir);

// One JSON value per line (train_log.jsonl and the like).
std::vector<io::json> read_json_lines(const fs::path& path);

// How far the model.safetensors of two model dirs are apart: the largest |difference| over the
// floating-point tensors (and which), and how many integer codes (int8 weights, packed nibbles)
// differ. Fails when the two do not hold the same tensor names, shapes and dtypes.
struct ModelDifference {
  double max_float = 0;
  std::string worst;
  int64_t codes = 0, codes_differing = 0;
};
::testing::AssertionResult compare_saved_models(const fs::path& a, const fs::path& b, ModelDifference* out);

// numpy.allclose semantics; on failure says where the worst element is.
::testing::AssertionResult all_close(const torch::Tensor& actual, const torch::Tensor& expected, double atol, double rtol);

}  // namespace sqz::testing
