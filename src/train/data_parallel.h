// What the training loop does differently as one rank of a data-parallel group: agree on the run
// at start-up, average gradients, and check that every rank still holds the same model and
// compressor state. All of it is a no-op in a group of one.
#pragma once
#include "dist/group.h"
#include "models/model.h"
#include "train/recipe.h"
#include "train/trainer.h"

namespace sqz::train {

// Refuses, on every rank and by name, a rank that runs another sqz binary, recipe or model than
// rank 0 (the recipe's `out` may differ per host); then gives every rank rank 0's weights.
void agree_on_the_run(dist::Group& group, const TrainRecipe& recipe, models::TransformerModel& model, const io::json& config);

// Averages the gradients of `params` over the group while the step's last backward still runs
// (DDP's scheme, on libtorch's autograd hooks, which its C++ API has no reducer for). The
// parameters are split into buckets in reverse order (backward reaches the last layers first); a
// hook after each parameter's gradient accumulation marks it ready, and the buckets start their
// sums in bucket order as soon as all their parameters are ready, so every rank pairs the same
// buckets. finish() sends what backward did not reach, waits and divides by the group's size. A
// gradient some rank has and another lacks counts as zero there; one no rank has stays undefined
// (each bucket carries a presence count per parameter). A group of one does nothing.
class GradientBuckets {
 public:
  GradientBuckets(dist::Group& group, const std::vector<torch::Tensor>& params, int64_t bucket_bytes = 4 << 20);
  ~GradientBuckets();  // removes the hooks
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  void arm();     // the next backward is the step's last: its hooks start the buckets' sums
  void finish();  // after it: every gradient averaged over the group
  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Over the steps so far: buckets started while backward ran, and all buckets sent.
  int64_t sent_during_backward() const { return sent_during_backward_; }
  int64_t sent() const { return sent_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    int64_t numel = 0;
    size_t ready = 0;
    torch::Tensor flat;  // gradients, then one presence flag per parameter
  };
  void mark_ready(size_t param);
  void start(Bucket& b);

  dist::Group& group_;
  std::vector<torch::Tensor> params_;
  std::vector<size_t> bucket_of_;
  std::vector<bool> ready_;
  std::vector<Bucket> buckets_;
  size_t next_ = 0;  // the next bucket to start
  bool armed_ = false;
  int64_t sent_during_backward_ = 0, sent_ = 0;
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks_;  // accumulator, hook key
};

// Fails naming the first model tensor or compressor state (mask, score, range, scale) whose
// value differs between ranks: they must move in lockstep.
void check_ranks_agree(dist::Group& group, models::TransformerModel& model, const TrainHooks& hooks);

}  // namespace sqz::train
