// The compress recipe: a `train:` section (the training recipe's schema), an optional smaller
// `student:`, `distill:`, a list of `prune:` stages, a list of `quantize:` stages (with
// `calibration: {batches: N}` for PTQ), `speedup`, `latency` and `out`. Any key can
// be overridden by a dotted path: --set prune.0.sparsity=0.6, --set train.steps=200.
#pragma once
#include "compress/distiller.h"
#include "compress/pruner.h"
#include "compress/quant/quantizer.h"
#include "train/recipe.h"

namespace sqz::compress {

struct StudentSpec {
  std::vector<int64_t> layers;  // teacher layers the student keeps (FastFormers-style depth reduction); empty = all
  int64_t hidden = 0;           // narrower student: the hidden dims it keeps (largest L2 over their group); 0 = all
  bool empty() const { return layers.empty() && hidden == 0; }
};

// What `sqz bench` measures at the end of a run: the compressed model against the model given, on
// every engine (or only `cases`), scored on the dev split.
struct LatencySpec {
  std::vector<int64_t> batch_sizes = {1, 8};
  int64_t seq = 128;            // encoders: sequence length; decoders: prompt length
  int64_t decode_steps = 32;    // decoders: greedy tokens timed after the prompt
  int threads = 2;
  int runs = 20;
  int warmup = 3;               // untimed runs before the timed ones
  std::vector<std::string> cases;  // bench case names; empty = every case this build and CPU can run
  // Dev batches each bench case is scored on: -1 = eval_batches (the report's), 0 = the whole split.
  // Scoring every engine on a large split (wordnet: 11,777 glosses) takes longer than timing it.
  int64_t score_batches = -1;
  bool enabled = true;
};

struct CompressRecipe {
  train::TrainRecipe train;
  StudentSpec student;
  std::optional<DistillSpec> distill;
  std::vector<PrunerSpec> prune;
  std::vector<quant::QuantizerSpec> quantize;
  int64_t calibration_batches = 8;
  std::string sparsity_format = "dense";  // export.sparsity_format: dense | sparse-24-bitmask
  bool train_steps_zero = false;  // train.steps: 0 = no training stage (post-training quantization only)  // PTQ: batches of the training split the observers see
  bool speedup = true;
  LatencySpec latency;
  int64_t eval_batches = 0;  // dense / compressed dev evals (0 = whole dev split)
  std::string out;
  std::string source;

  static CompressRecipe load(const fs::path& path, const std::vector<std::string>& overrides);
  static CompressRecipe from_yaml_text(const std::string& text, const std::string& source, const std::vector<std::string>& overrides);
  std::string to_yaml() const;
};

}  // namespace sqz::compress
