// sqz eval MODEL_DIR --task NAME --split FILE: one JSON object with the task's dev metrics.
#include <iostream>

#include "compress/quant/export.h"
#include "cli/commands.h"
#include "eval/evaluate.h"
#include "io/tokenizers/tokenizer.h"
#include "models/registry.h"
#include "runtime/bert_encoder.h"
#include "train/data.h"

namespace sqz::cli {

namespace {

struct EvalArgs {
  std::string model_dir, task, split;
  int64_t batch_size = 16, max_length = 128, max_batches = 0;
  int threads = 0;
  std::string engine = "libtorch", precision;
};

void run_eval(const EvalArgs& a) {
  apply_threads(a.threads);
  auto loaded = quant::load_any_model(a.model_dir);
  auto tok = io::load_tokenizer(a.model_dir);
  eval::EvalOptions o{a.batch_size, a.max_batches, 0, 0.15};
  std::shared_ptr<runtime::BertEncoder> engine;
  if (a.engine == "runtime") {
    // An export runs as it was exported (int8, and 2:4 when its sparsity config says so) unless told otherwise.
    const auto precision = runtime::resolve_precision(a.precision, loaded.config.value());
    engine = std::make_shared<runtime::BertEncoder>(loaded, runtime::EngineOptions{precision, a.threads});
    o.classification_logits = [engine](const models::ModelInputs& in) { return engine->logits(in); };
  } else if (!a.precision.empty()) {
    throw CLI::ValidationError("--precision", "applies to --engine runtime only");
  }
  io::json result = eval::evaluate_split(*loaded.model, *tok, loaded.config, a.task, a.split, a.max_length, o);
  result["task"] = a.task;
  result["split"] = a.split;
  result["model"] = a.model_dir;
  result["engine"] = engine ? std::string("runtime ") + runtime::precision_name(engine->options().precision) : "libtorch";
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
  cmd->add_option("--engine", a->engine, "libtorch (default) or runtime (sqz's inference engine, BERT encoders)")
      ->check(CLI::IsMember({"libtorch", "runtime"}));
  add_precision_option(cmd, &a->precision);
  add_threads_option(cmd, &a->threads);
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace sqz::cli
