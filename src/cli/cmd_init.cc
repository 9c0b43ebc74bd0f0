// sqz init CONFIG_JSON --out DIR: a randomly initialised model dir as transformers' from_config.
#include <iostream>

#include "cli/commands.h"
#include "core/fs.h"
#include "io/tokenizers/tokenizer.h"
#include "models/registry.h"

namespace sqz::cli {

namespace {

struct InitArgs {
  std::string config, out, head, tokenizer_from;
  uint64_t seed = 0;
  bool overwrite = false;
};

void run_init(const InitArgs& a) {
  auto config = io::JsonFields::from_file(a.config);
  torch::manual_seed(a.seed);
  auto model = models::build_model(config, a.head);
  models::init_weights(*model);
  StagingDir staging(a.out, a.overwrite);
  models::save_model(*model, config.value(), staging.path());
  if (!a.tokenizer_from.empty() && io::copy_tokenizer_files(a.tokenizer_from, staging.path()) == 0)
    fail_not_found(a.tokenizer_from, ": no tokenizer files to copy");
  staging.commit();
  std::cout << "wrote " << a.out << ": " << model->info().head_class << ", " << models::count_parameters(*model)
            << " parameters\n";
}

}  // namespace

void add_init_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("init", "Create a randomly initialised model dir from a config.json (HF init scheme)");
  auto a = std::make_shared<InitArgs>();
  cmd->add_option("config", a->config, "config.json")->required();
  cmd->add_option("--out", a->out, "output model directory")->required();
  cmd->add_option("--seed", a->seed, "random seed");
  cmd->add_option("--head", a->head, "HF class (default: config.architectures[0], else the base model)");
  cmd->add_option("--tokenizer-from", a->tokenizer_from, "copy tokenizer files from this model dir");
  cmd->add_flag("--overwrite", a->overwrite, "replace an existing output directory");
  cmd->callback([a] { run_init(*a); });
}

}  // namespace sqz::cli
