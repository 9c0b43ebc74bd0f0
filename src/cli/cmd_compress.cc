// sqz compress --recipe R.yaml [--set key.path=value ...] [--sweep key=v1,v2,...]: prune and
// distill while training, SpeedUp, then a report. sqz speedup MODEL_DIR --out DIR: shrink a
// model whose pruned heads/neurons are zero in its weights.
#include <iostream>

#include "cli/commands.h"
#include "pipeline/compress_run.h"
#include "io/tokenizers/tokenizer.h"
#include "models/registry.h"
#include "speedup/speedup.h"

namespace sqz::cli {

namespace {

struct CompressArgs {
  std::string recipe;
  std::vector<std::string> sweeps;
  std::vector<std::string> sets;
  bool overwrite = false, resume = false;
  DistArgs dist;
};

void run_compress_cmd(const CompressArgs& a) {
  if (!a.sweeps.empty() && (a.dist.nproc > 1 || a.dist.spec.world_size > 1))
    fail_invalid("--sweep runs its points one after another in one process; run each point with --nproc instead (--set KEY=VALUE)");
  auto group = join_group(a.dist);
  pipeline::CompressOptions o{a.overwrite, a.resume, group.get()};
  if (!a.sweeps.empty()) {
    std::vector<pipeline::Sweep> sweeps;
    for (const auto& s : a.sweeps) sweeps.push_back(pipeline::Sweep::parse(s));
    std::cout << pipeline::run_sweep(a.recipe, a.sets, sweeps, o).dump() << std::endl;
    return;
  }
  auto report = pipeline::run_compress(compress::CompressRecipe::load(a.recipe, a.sets), o);
  if (!group->is_root()) return;
  io::json summary = {{"dense", report["dense"]["eval"]}, {"compressed", report["compressed"]["eval"]},
                      {"params_removed", report["params_removed"]}, {"encoder_params_removed", report["encoder_params_removed"]}};
  if (group->distributed()) summary["ranks"] = group->size();
  std::cout << summary.dump() << std::endl;
}

struct SpeedupArgs {
  std::string model_dir, out;
  bool overwrite = false;
};

void run_speedup_cmd(const SpeedupArgs& a) {
  auto loaded = models::load_model(a.model_dir);
  auto keep = speedup::groups_from_zeros(*loaded.model);
  StagingDir staging(a.out, a.overwrite);
  auto report = speedup::shrink_and_save(*loaded.model, loaded.config.value(), keep, staging.path());
  io::copy_tokenizer_files(a.model_dir, staging.path());
  models::load_model(staging.path());  // what was written must load
  staging.commit();
  std::cout << report.to_json().dump() << std::endl;
}

}  // namespace

void add_compress_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("compress", "Prune / distill a model from a YAML recipe, SpeedUp, and write a report");
  auto a = std::make_shared<CompressArgs>();
  cmd->add_option("--recipe", a->recipe, "YAML recipe (see recipes/)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--set", a->sets, "override a recipe key by path: --set prune.0.sparsity=0.6 (repeatable)");
  cmd->add_option("--sweep", a->sweeps,
                  "run once per value and plot: --sweep prune.0.sparsity=0.25,0.5,0.75 (repeat to move several keys in lockstep)");
  cmd->add_flag("--overwrite", a->overwrite, "replace an existing output directory (and discard an interrupted run's OUT.partial)");
  cmd->add_flag("--resume", a->resume,
                "continue the interrupted run in OUT.partial from its last checkpoint (same recipe); starts it when there is none");
  add_dist_options(cmd, &a->dist);
  cmd->callback([a] { run_compress_cmd(*a); });

  auto* sp = app.add_subcommand("speedup", "Cut heads/FFN neurons that are zero in a model's weights out of its matrices");
  auto s = std::make_shared<SpeedupArgs>();
  sp->add_option("model_dir", s->model_dir, "model directory")->required();
  sp->add_option("--out", s->out, "output model directory")->required();
  sp->add_flag("--overwrite", s->overwrite, "replace an existing output directory");
  sp->callback([s] { run_speedup_cmd(*s); });
}

}  // namespace sqz::cli
