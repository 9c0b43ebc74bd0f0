// The stages of one `sqz compress` run and what they hand each other. The recipe is resolved
// once (CompressRecipe::load); run_compress (compress_run.cc) calls the stages in this order:
//   student -> check attachments -> measure dense -> train -> bake + SpeedUp + QAT export
//   -> post-training quantization -> measure compressed -> bench both -> report.
// Each stage takes what it needs as arguments and returns what it made, so it can be run and
// tested alone.
#pragma once
#include <optional>

#include "compress/hooks.h"
#include "compress/recipe.h"
#include "core/fs.h"
#include "models/registry.h"
#include "speedup/speedup.h"

namespace sqz::pipeline {

// One model's numbers as the report gives them (its speed is the bench stage's).
struct Measured {
  io::json eval, flops = io::json::array();  // flops: GFLOP per forward at each recipe latency batch
  int64_t params = 0, embedding_params = 0;
};

// What the whole run shares: the recipe, the staging dir, the training recipe (pointed at the
// student and at dir/train) and the tokenizer of the model given.
struct CompressRun {
  const compress::CompressRecipe& recipe;
  fs::path dir;
  train::TrainRecipe train;
  std::unique_ptr<io::Tokenizer> tokenizer;
  dist::Group* group = nullptr;  // data-parallel training (nullptr: one process)
};

// Stage "student": FastFormers' shallower student (the recipe's student.layers of the teacher,
// renumbered) and/or a narrower one (student.hidden dims kept by L2 over their group), written to
// `dir`; returns the model dir training starts from.
fs::path make_student(const compress::CompressRecipe& r, const fs::path& dir);

// Stage "attach": every pruner, quantizer and the distiller attached to a throwaway copy of the
// starting model, so a bad target, ratio, bit width or teacher fails before any long work.
void check_attachments(const CompressRun& run);

// Stage "measure": dev scores, parameters and FLOPs of `model`; `logits`, when set, receives the
// first dev batches' logits.
Measured measure(models::TransformerModel& model, const CompressRun& run, const io::JsonFields& config, const std::string& what,
                 std::vector<torch::Tensor>* logits);

// Stage "bench" (when the recipe's latency is enabled): `sqz bench` of the saved model against the
// model given, on every engine (or latency.cases), each row scored on the dev split; the tables go
// to dir/bench.md, the JSON is returned. `shown_dir` is where the saved model will be once the run
// commits (what the tables name).
io::json bench_stage(const CompressRun& run, const fs::path& model_dir, const fs::path& shown_dir);

// Stage "train": fine-tuning with the compressors attached (or the starting model as is when
// train.steps is 0), checkpointed every train.save_every steps with the compressors' state into
// dir/train/checkpoint and continued from there when one exists. An interrupted run throws.
train::TrainResult train_with_hooks(const CompressRun& run, compress::CompressHooks& hooks);

// Stage "bake": the QAT snapshot, the masks baked into the weights, SpeedUp's shrinking (when
// the recipe asks and the family has dependency groups), and the model (compressed-tensors when
// QAT ran) saved to dir/model.
struct Saved {
  fs::path model_dir;
  io::json speedup;  // SpeedUp's report; null when nothing was shrunk
  io::json pruners = io::json::array();  // each pruner's target and reached sparsity, read before baking
  std::vector<quant::QuantizedLayer> quantized;
  quant::SparsityExport nm;
};
Saved bake_and_save(const CompressRun& run, compress::CompressHooks& hooks, train::TrainResult& result);

// Stage "quantize": post-training quantization of the saved model, calibrated, measured
// fake-quantized (its logits into `reference_logits`) and exported over dir/model. nullopt when
// the recipe has no PTQ quantizer. With run.group, every rank calibrates on its share of each
// batch: rank 0 here, the others through calibrate_with_root.
bool has_post_training_quantization(const compress::CompressRecipe& r);
std::optional<Measured> post_training_stage(const CompressRun& run, Saved& saved, std::vector<torch::Tensor>* reference_logits);
// Ranks other than 0: the same model as rank 0's (baked into run.dir, their private scratch) and
// their share of its calibration; nothing is measured or kept.
void calibrate_with_root(const CompressRun& run, compress::CompressHooks& hooks, train::TrainResult& result);

// Stage "report": report.json, report.md, recipe.yaml and the plots, into the run's dir.
struct Measurements {
  Measured dense, masked, compressed;
  std::optional<Measured> fake_quantized;
  std::vector<torch::Tensor> reference_logits, final_logits;
  io::json bench;  // bench_stage's result; null when the recipe's latency is disabled
};
io::json assemble_report(const CompressRun& run, const train::TrainResult& result,
                         const Saved& saved, const Measurements& m, const io::json& compressed_config);
void write_report(const CompressRun& run, const io::json& report);

}  // namespace sqz::pipeline
