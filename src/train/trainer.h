// The training loop: the trainer owns it; objectives, optimizers, schedules and (later)
// compressors plug in. Checkpoints are HF model dirs written atomically, so an interrupted run
// always leaves the last complete one and can resume from it.
#pragma once
#include "data/objectives.h"
#include "data/tasks.h"
#include "dist/group.h"
#include "io/json_file.h"
#include "io/tokenizers/tokenizer.h"
#include "models/model.h"
#include "train/recipe.h"
#include "train/state_dict.h"

namespace sqz::train {

// How compressors (pruners, distillers, quantizers) join the loop without owning it.
class TrainHooks {
 public:
  struct ParamGroup {
    std::vector<torch::Tensor> params;
    double lr_scale = 1.0;  // relative to the recipe's lr; follows the same schedule
  };
  virtual ~TrainHooks() = default;
  // Once the model, tokenizer and labels are ready, before the first step: attach, check, fail early.
  virtual void on_start(models::TransformerModel& /*model*/, const io::Tokenizer& /*tokenizer*/, const io::json& /*config*/) {}
  virtual std::vector<ParamGroup> extra_parameters() { return {}; }
  virtual bool wants_hidden_states() const { return false; }
  virtual bool wants_attentions() const { return false; }
  virtual bool wants_all_logits() const { return false; }  // masked LM: logits at every position
  // The loss to minimise, given the objective's loss on this batch (default: that loss).
  virtual torch::Tensor total_loss(const data::Batch& /*batch*/, const data::LossResult& task, int64_t /*step*/) { return task.loss; }
  virtual void after_backward(int64_t /*step*/) {}
  // Called before every optimizer step `step` (0-based): masks follow their schedules here.
  virtual void before_step(int64_t /*step*/) {}
  virtual std::string status() const { return ""; }  // appended to the progress bar
  // When the loss stops being finite: which compressor state went bad first ("" = none found).
  virtual std::string describe_nonfinite() const { return ""; }
  // Resumable runs: everything the compressors keep between steps (masks, importance scores,
  // observer ranges, learned scales, schedule positions) into each checkpoint, and back after
  // on_start when resuming. Trainable tensors are restored in place: the optimizer holds them.
  virtual void save_state(StateDict& /*state*/) const {}
  virtual void load_state(const StateDict& /*state*/) {}
  // Data parallelism, once before the first step: from then on every rank runs every batch of
  // the loop on its share of the rows (padded as the whole batch), so compressors may reduce a
  // batch's statistics inside the forward pass (activation ranges) and hold what one process holds.
  virtual void join(dist::Group& /*group*/) {}
  // A rank whose share of a batch is empty (the epoch's last, short batch) runs the batch's first
  // row with loss weight 0, so that it meets every reduction; while `on`, nothing it sees counts.
  virtual void stand_in(bool /*on*/) {}
  // Data parallelism: after every optimizer step, make what each rank learned from its own shard
  // outside the reductions (contrastive memories) the group's. Gradients are already averaged
  // before after_backward, so gradient-based importance scores and masks agree without this.
  virtual void synchronize(dist::Group& /*group*/) {}
  // Tensors outside the optimizer whose gradients a hook reads (Taylor pruners' gates): their
  // gradients are averaged over the ranks with the parameters', before after_backward.
  virtual std::vector<torch::Tensor> averaged_gradients() { return {}; }
};

struct TrainOptions {
  bool overwrite = false;  // replace an existing output dir
  bool resume = false;     // continue from out/checkpoint
  TrainHooks* hooks = nullptr;
  bool checkpoints = true;  // resumable checkpoints in out/checkpoint (with the hooks' state)
  // A copy of the best model on dev in out/best. Compression runs turn it off: their result is
  // the final (masked) model, not an earlier one.
  bool keep_best = true;
  // Data-parallel group (null = this process alone). Each rank trains on its share of every global
  // batch (batch_size is the global batch); rank 0 alone writes.
  dist::Group* group = nullptr;
};

struct TrainResult {
  int64_t steps_done = 0;
  io::json best_eval;  // the best dev result (with "step")
  io::json last_eval;
  double wall_s = 0;
  bool interrupted = false;
  std::shared_ptr<models::TransformerModel> model;  // the model as training left it
  io::json config;
};

TrainResult run_training(const TrainRecipe& recipe, const TrainOptions& options);

// Linear warm-up to 1, then linear decay to 0 at `total` (HF's get_linear_schedule_with_warmup).
double linear_schedule(int64_t step, int64_t warmup, int64_t total);

}  // namespace sqz::train
