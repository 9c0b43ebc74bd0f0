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

// Averages the gradients of `params` over the group, bucketed. A gradient some rank has and
// another lacks (a parameter its shard did not reach) counts as zero there.
void average_gradients(dist::Group& group, const std::vector<torch::Tensor>& params);

// Fails naming the first model tensor or compressor state (mask, score, range, scale) whose
// value differs between ranks: they must move in lockstep.
void check_ranks_agree(dist::Group& group, models::TransformerModel& model, const TrainHooks& hooks);

}  // namespace sqz::train
