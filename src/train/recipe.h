// The training recipe: one schema shared by YAML files and `--set key=value` overrides; unknown
// keys and bad values are errors that name the key and the line.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/fs.h"

namespace YAML {
class Node;
}

namespace sqz::train {

// Parses YAML text; a syntax error names the source and line.
YAML::Node load_yaml(const std::string& text, const std::string& source);

struct TrainRecipe {
  std::string model;      // HF dir to start from (or)
  std::string config;     // config.json for a fresh HF-style init
  std::string tokenizer;  // dir with tokenizer files (default: model dir)
  std::string head;       // HF class (default from the objective)
  std::string task;
  std::string data;       // the task's data dir (train/dev files)
  std::string objective = "auto";  // auto | mlm | clm | classification
  int64_t max_length = 128;
  int64_t steps = 1000;
  int64_t batch_size = 16;
  int64_t grad_accum = 1;
  double lr = 5e-4;
  double weight_decay = 0.01;
  int64_t warmup_steps = 100;
  double max_grad_norm = 1.0;
  double mlm_probability = 0.15;
  uint64_t seed = 0;
  int64_t threads = 0;
  int64_t eval_every = 200;
  int64_t eval_batches = 0;  // 0 = the whole dev split
  int64_t save_every = 200;
  int64_t early_stop_patience = 0;  // evals without improvement before stopping (0 = off)
  std::string out;

  // Reads a YAML file, then applies "key=value" overrides; validates everything.
  static TrainRecipe load(const fs::path& path, const std::vector<std::string>& overrides);
  static TrainRecipe from_yaml_text(const std::string& yaml, const std::string& source,
                                    const std::vector<std::string>& overrides);
  // The same from an already parsed mapping (e.g. the `train:` section of a compress recipe).
  static TrainRecipe from_node(const YAML::Node& root, const std::string& source, const std::vector<std::string>& overrides);
  std::string to_yaml() const;
};

}  // namespace sqz::train
