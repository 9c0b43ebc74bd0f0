// sqz eval MODEL_DIR --task NAME --split FILE: one JSON object with the task's dev metrics.
#include <iostream>
#include <optional>
#include <thread>

#include "compress/quant/export.h"
#include "cli/commands.h"
#include "data/evaluate.h"
#include "dist/launch.h"
#include "io/tokenizers/tokenizer.h"
#include "models/beam_search.h"
#include "models/registry.h"
#include "runtime/decoder.h"
#include "runtime/engine.h"
#include "runtime/runtime_dir.h"
#include "data/tasks.h"

namespace sqz::cli {

namespace {

struct EvalArgs {
  std::string model_dir, task, split;
  int64_t batch_size = 16, max_length = 128, max_batches = 0, num_beams = 1;
  int threads = 0;
  std::string engine, precision;
  bool int8_attention = false;
  DistArgs dist;
};

// The encoder-decoder engine's decoding of a batch as a [batch, n] tensor: greedy, or beam
// search with num_beams > 1 (-1 past each row's end).
torch::Tensor runtime_decode(const runtime::EncoderDecoder& engine, const data::Batch& b, int64_t room, int64_t num_beams) {
  auto ids = b.input_ids.to(torch::kLong).contiguous();
  auto mask = b.attention_mask.to(torch::kLong).contiguous();
  if (num_beams > 1) {
    models::BeamSearchOptions beams;
    beams.num_beams = num_beams;
    beams.max_new_tokens = room;
    auto rows = engine.generate_beam(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), ids.size(0), ids.size(1), beams);
    return models::padded_token_rows(rows, room + 1);
  }
  int64_t n = 0;
  auto out = engine.generate_greedy(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), ids.size(0), ids.size(1), room, &n);
  return torch::tensor(out, torch::kLong).view({ids.size(0), n});
}

void run_eval(const EvalArgs& a) {
  auto group = join_group(a.dist);
  apply_threads(a.threads > 0 || !group->distributed() ? a.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / dist::local_world_size()));
  const std::string engine_name = resolve_engine(a.engine, a.model_dir);
  refuse_runtime_options_on_libtorch(engine_name, a.precision, a.int8_attention);
  // A runtime dir has no libtorch model: the engine alone gives the logits.
  const bool packed = runtime::is_runtime_dir(a.model_dir);
  std::optional<models::LoadedModel> loaded;
  if (!packed) loaded = quant::load_any_model(a.model_dir);
  const auto config = packed ? io::JsonFields::from_file(fs::path(a.model_dir) / "config.json") : loaded->config;
  auto tok = io::load_tokenizer(a.model_dir);
  data::EvalOptions o{a.batch_size, a.max_batches, 0, 0.15};
  o.num_beams = a.num_beams;
  o.group = group.get();
  if (a.num_beams > 1 && data::find_task(a.task).kind != data::TaskKind::kSeq2Seq)
    fail_invalid("eval: --num-beams applies to seq2seq tasks; '", a.task, "' is ", data::task_kind_name(data::find_task(a.task).kind));
  std::shared_ptr<runtime::Engine> engine;
  if (engine_name == "runtime") {
    // An export runs as it was exported (int8, and 2:4 when its sparsity config says so) unless told otherwise.
    engine = std::make_shared<runtime::Engine>(packed ? runtime::open_runtime_dir(a.model_dir, a.precision, a.threads, a.int8_attention)
                                                      : runtime::build_engine(*loaded, a.precision, a.threads, a.int8_attention));
    engine->require_text("eval");
    const bool lm = data::find_task(a.task).kind == data::TaskKind::kLanguageModel;
    if (engine->encoder && !lm) o.classification_logits = [engine](const models::ModelInputs& in) { return engine->encoder->logits(in); };
    if (engine->decoder && lm) o.lm_logits = [engine](const data::Batch& b) { return runtime::prefill_logits(*engine->decoder, b.input_ids, b.attention_mask); };
    if (engine->seq2seq && data::find_task(a.task).kind == data::TaskKind::kSeq2Seq) {
      o.seq2seq_logits = [engine](const data::Batch& b) {
        return runtime::seq2seq_logits(*engine->seq2seq, b.input_ids, b.attention_mask, b.decoder_input_ids);
      };
      o.seq2seq_decode = [engine, beams = a.num_beams](const data::Batch& b, int64_t room) {
        return runtime_decode(*engine->seq2seq, b, room, beams);
      };
    }
    if (!o.classification_logits && !o.lm_logits && !o.seq2seq_logits)
      fail_unimplemented("eval --engine runtime: the encoder engine evaluates classification tasks, the decoder engine "
                         "language modelling and the encoder-decoder engine seq2seq tasks; task '", a.task, "' on this ",
                         engine->encoder ? "encoder" : engine->decoder ? "decoder" : "encoder-decoder", " is none of them");
  }
  io::json result = data::evaluate_split(loaded ? loaded->model.get() : nullptr, *tok, config, a.task, a.split, a.max_length, o);
  result["task"] = a.task;
  result["split"] = a.split;
  result["model"] = a.model_dir;
  result["engine"] = engine ? engine->name() : "libtorch";
  if (group->distributed()) result["ranks"] = group->size();
  if (group->is_root()) std::cout << result.dump() << std::endl;
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a model on a task split (accuracy/macro-F1 or perplexity/bits per byte)");
  auto a = std::make_shared<EvalArgs>();
  cmd->add_option("model_dir", a->model_dir, "model directory")->required();
  cmd->add_option("--task", a->task, "task name (lm-books, spam, sotu-party, wordnet-supersense)")->required();
  cmd->add_option("--split", a->split, "the split's file (e.g. ../shared/data/spam/dev.jsonl)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--batch-size", a->batch_size, "examples per batch")->check(positive());
  cmd->add_option("--max-length", a->max_length, "tokens per example / LM block")->check(positive());
  cmd->add_option("--num-beams", a->num_beams, "seq2seq tasks: decode with beam search (1 = greedy)")->check(positive());
  cmd->add_option("--max-batches", a->max_batches, "stop after this many batches (0 = all)")->check(non_negative());
  add_engine_option(cmd, &a->engine);
  add_precision_option(cmd, &a->precision, &a->int8_attention);
  add_threads_option(cmd, &a->threads);
  add_dist_options(cmd, &a->dist);
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace sqz::cli
