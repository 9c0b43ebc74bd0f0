// sqz eval MODEL_DIR --task NAME --split FILE: one JSON object with the task's dev metrics.
#include <iostream>

#include "cli/commands.h"
#include "eval/evaluate.h"
#include "io/tokenizers/tokenizer.h"
#include "models/registry.h"
#include "train/data.h"

namespace sqz::cli {

namespace {

struct EvalArgs {
  std::string model_dir, task, split;
  int64_t batch_size = 16, max_length = 128, max_batches = 0;
  int threads = 0;
};

void run_eval(const EvalArgs& a) {
  apply_threads(a.threads);
  const auto& task = train::find_task(a.task);
  auto loaded = models::load_model(a.model_dir);
  auto tok = io::load_tokenizer(a.model_dir);
  auto& model = *loaded.model;
  eval::EvalOptions o{a.batch_size, a.max_batches, 0, 0.15};
  io::json result;
  if (task.kind == train::TaskKind::kClassification) {
    if (!loaded.config.has("id2label")) fail_invalid(a.model_dir, "/config.json: no id2label, so the labels are unknown");
    std::vector<std::string> names(loaded.config.value()["id2label"].size());
    for (auto& [id, name] : loaded.config.value()["id2label"].items()) names.at(std::stoul(id)) = name.get<std::string>();
    train::LabelSet labels(names);
    auto examples = train::read_classification_jsonl(a.split);
    train::ClassificationData data(examples, *tok, labels, a.max_length, a.split);
    result = eval::evaluate_classification(model, data, labels.size(), o);
  } else if (task.kind == train::TaskKind::kLanguageModel) {
    train::LmData data(train::read_lm_text(a.split), *tok, a.max_length);
    auto objective = model.info().is_decoder ? train::Objective::kCausalLM : train::Objective::kMaskedLM;
    train::MlmSpecialIds mlm{};
    if (objective == train::Objective::kMaskedLM) mlm = train::mlm_special_ids(*tok, a.model_dir);
    result = eval::evaluate_lm(model, data, objective, &mlm, o);
  } else {
    fail_unimplemented("task '", a.task, "' needs encoder-decoder models, not built yet");
  }
  result["task"] = a.task;
  result["split"] = a.split;
  result["model"] = a.model_dir;
  std::cout << result.dump() << std::endl;
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a model on a task split (accuracy/macro-F1 or perplexity/bits per byte)");
  auto a = std::make_shared<EvalArgs>();
  cmd->add_option("model_dir", a->model_dir, "model directory")->required();
  cmd->add_option("--task", a->task, "task name (lm-books, spam, sotu-party, wordnet-supersense)")->required();
  cmd->add_option("--split", a->split, "the split's file (e.g. ../shared/data/spam/dev.jsonl)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--batch-size", a->batch_size, "examples per batch");
  cmd->add_option("--max-length", a->max_length, "tokens per example / LM block");
  cmd->add_option("--max-batches", a->max_batches, "stop after this many batches (0 = all)");
  add_threads_option(cmd, &a->threads);
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace sqz::cli
