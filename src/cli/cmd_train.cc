// sqz train --recipe R.yaml [--set key=value ...]: fine-tune or pretrain with a progress bar,
// a JSON line per eval, and atomic, resumable checkpoints.
#include <iostream>

#include "cli/commands.h"
#include "train/trainer.h"

namespace sqz::cli {

namespace {

struct TrainArgs {
  std::string recipe;
  std::vector<std::string> sets;
  train::TrainOptions options;
  DistArgs dist;
};

void run_train(const TrainArgs& a) {
  auto group = join_group(a.dist);
  auto recipe = train::TrainRecipe::load(a.recipe, a.sets);
  train::TrainOptions options = a.options;
  options.group = group.get();
  auto result = train::run_training(recipe, options);
  io::json summary = {{"steps", result.steps_done}, {"wall_s", result.wall_s}, {"best_dev", result.best_eval},
                      {"interrupted", result.interrupted}, {"out", recipe.out}};
  if (group->distributed()) summary["ranks"] = group->size();
  if (group->is_root()) std::cout << summary.dump() << std::endl;
  if (result.interrupted) throw Error(ErrorKind::kInvalidArgument, "training interrupted; the last checkpoint is intact");
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train or fine-tune a model from a YAML recipe");
  auto a = std::make_shared<TrainArgs>();
  cmd->add_option("--recipe", a->recipe, "YAML recipe (see recipes/)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--set", a->sets, "override a recipe key: --set steps=100 (repeatable)");
  cmd->add_flag("--overwrite", a->options.overwrite, "replace an existing output directory");
  cmd->add_flag("--resume", a->options.resume, "continue from OUT/checkpoint");
  add_dist_options(cmd, &a->dist);
  cmd->callback([a] { run_train(*a); });
}

}  // namespace sqz::cli
