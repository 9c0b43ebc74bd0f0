// The training loop: the trainer owns it; objectives, optimizers, schedules and (later)
// compressors plug in. Checkpoints are HF model dirs written atomically, so an interrupted run
// always leaves the last complete one and can resume from it.
#pragma once
#include "io/json_file.h"
#include "train/recipe.h"

namespace sqz::train {

struct TrainOptions {
  bool overwrite = false;  // replace an existing output dir
  bool resume = false;     // continue from out/checkpoint
};

struct TrainResult {
  int64_t steps_done = 0;
  io::json best_eval;  // the best dev result (with "step")
  double wall_s = 0;
  bool interrupted = false;
};

TrainResult run_training(const TrainRecipe& recipe, const TrainOptions& options);

// Linear warm-up to 1, then linear decay to 0 at `total` (HF's get_linear_schedule_with_warmup).
double linear_schedule(int64_t step, int64_t warmup, int64_t total);

}  // namespace sqz::train
