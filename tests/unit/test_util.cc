#include "unit/test_util.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include "io/json_file.h"
#include "io/safetensors.h"

extern char** environ;

namespace sqz::testing {

RunResult run_sqz(const std::string& args) {
  std::string cmd = std::string(SQZ_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WEXITSTATUS(status), out};
}

int spawn_process(const std::vector<std::string>& argv_in, const fs::path& stderr_log) {
  std::vector<std::string> all = argv_in;
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, stderr_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, all[0].c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

int spawn_sqz(const std::vector<std::string>& args, const fs::path& stderr_log) {
  std::vector<std::string> all{SQZ_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  return spawn_process(all, stderr_log);
}

std::vector<io::json> read_json_lines(const fs::path& path) {
  std::vector<io::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(io::json::parse(line));
  return out;
}

::testing::AssertionResult compare_saved_models(const fs::path& a_dir, const fs::path& b_dir, ModelDifference* out) {
  io::SafetensorsFile a(a_dir / "model.safetensors"), b(b_dir / "model.safetensors");
  if (a.entries().size() != b.entries().size())
    return ::testing::AssertionFailure() << a.entries().size() << " tensors against " << b.entries().size();
  *out = ModelDifference{};
  for (const auto& [name, entry] : a.entries()) {
    if (!b.contains(name)) return ::testing::AssertionFailure() << "'" << name << "' only in " << a_dir;
    auto x = a.tensor(name), y = b.tensor(name);
    if (x.sizes() != y.sizes() || x.scalar_type() != y.scalar_type())
      return ::testing::AssertionFailure() << "'" << name << "': " << x.sizes() << " " << x.scalar_type() << " against " << y.sizes() << " "
                                           << y.scalar_type();
    if (x.is_floating_point()) {
      const double d = x.numel() ? (x.to(torch::kFloat64) - y.to(torch::kFloat64)).abs().max().item<double>() : 0.0;
      if (out->worst.empty() || d > out->max_float) out->max_float = d, out->worst = name;
    } else {
      out->codes += x.numel();
      out->codes_differing += x.ne(y).sum().item<int64_t>();
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult all_close(const torch::Tensor& actual_in, const torch::Tensor& expected_in, double atol, double rtol) {
  auto actual = actual_in.detach().to(torch::kFloat64), expected = expected_in.detach().to(torch::kFloat64);
  if (actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " != expected " << expected.sizes();
  auto excess = (actual - expected).abs() - (atol + rtol * expected.abs());
  auto worst = excess.flatten().argmax().item<int64_t>();
  double worst_excess = excess.flatten()[worst].item<double>();
  if (worst_excess <= 0 && !actual.isnan().any().item<bool>()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |diff| " << (actual - expected).abs().max().item<double>() << " at flat index "
                                       << worst << ": got " << actual.flatten()[worst].item<double>() << ", expected "
                                       << expected.flatten()[worst].item<double>() << " (atol " << atol << ", rtol " << rtol << ")";
}

fs::path write_small_g2p_t5_config(const fs::path& dir) {
  auto config = io::read_json_file(fs::path(SQZ_SOURCE_DIR) / "configs" / "t5-g2p.json");
  config["d_model"] = 64;
  config["d_kv"] = 16;
  config["d_ff"] = 128;
  config["num_layers"] = 2;
  config["num_decoder_layers"] = 2;
  io::write_json_file_atomic(dir / "config.json", config);
  return dir / "config.json";
}

}  // namespace sqz::testing
