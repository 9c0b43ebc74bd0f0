// Stages "attach", "measure", "train", "bake" and "quantize" of `sqz compress` (stages.h).
#include "pipeline/stages.h"

#include <sstream>

#include "compress/quant/calibrate.h"
#include "compress/selector.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "data/evaluate.h"
#include "eval/bench.h"
#include "eval/latency.h"

namespace sqz::pipeline {

void check_attachments(const CompressRun& run) {
  auto probe = models::load_model(run.train.model);
  compress::CompressHooks(run.recipe).on_start(*probe.model, *run.tokenizer, probe.config.value());
  for (const auto& q : run.recipe.quantize)
    if (!q.qat) quant::Quantizer(q).attach(*probe.model);
}

Measured measure(models::TransformerModel& model, const CompressRun& run, const io::JsonFields& config, const std::string& what,
                 std::vector<torch::Tensor>* logits) {
  const auto& r = run.recipe;
  const auto& task = data::find_task(r.train.task);
  data::EvalOptions o{r.train.batch_size, r.eval_batches, r.train.seed, r.train.mlm_probability, logits};
  // A full-dev eval can take minutes: Ctrl-C / SIGTERM stops it at the next batch.
  o.after_batch = [&what](int64_t done, int64_t total) {
    if (interrupt_requested())
      fail_invalid("compression interrupted while evaluating the ", what, " model (after ", done, " of ", total, " batches)");
  };
  Measured m;
  log_info("evaluating the ", what, " model on ", task.dev_file);
  m.eval = data::evaluate_split(&model, *run.tokenizer, config, r.train.task, fs::path(r.train.data) / task.dev_file, r.train.max_length, o);
  m.params = models::count_parameters(model);
  for (const auto& t : compress::list_layers(model))
    if (t.type == "embedding") m.embedding_params += t.weight().numel();
  if (r.latency.enabled)
    for (int64_t b : r.latency.batch_sizes)
      m.flops.push_back({{"batch", b}, {"seq", r.latency.seq}, {"gflops", eval::forward_flops(model, b, r.latency.seq) / 1e9}});
  return m;
}

io::json bench_stage(const CompressRun& run, const fs::path& model_dir, const fs::path& shown_dir) {
  const auto& r = run.recipe;
  eval::BenchOptions o;
  o.model_dir = model_dir.string();
  o.shown_dir = shown_dir.string();
  o.baseline_dir = r.train.model;
  o.batches = r.latency.batch_sizes;
  o.seq = r.latency.seq;
  o.decode_steps = r.latency.decode_steps;
  o.threads = r.latency.threads;
  o.runs = r.latency.runs;
  o.warmup = r.latency.warmup;
  o.cases = r.latency.cases;
  // Seq2seq dev scores (WER, PER) are the report's own, from full decoding; bench times only.
  if (data::find_task(r.train.task).kind != data::TaskKind::kSeq2Seq) {
    o.task = r.train.task;
    o.split = (fs::path(r.train.data) / data::find_task(r.train.task).dev_file).string();
  }
  o.max_length = r.train.max_length;
  o.eval_batches = r.latency.score_batches >= 0 ? r.latency.score_batches : r.eval_batches;
  o.eval_batch_size = r.train.batch_size;  // the same examples as the report's dev scores
  log_info("bench: the compressed model against ", r.train.model, " on every engine (latency.cases limits them)");
  std::ostringstream tables;
  io::json result = eval::run_bench_with_default_openmp(o, tables);
  write_file_atomic(run.dir / "bench.md", "# sqz bench\n\n" + tables.str());
  return result;
}

train::TrainResult train_with_hooks(const CompressRun& run, compress::CompressHooks& hooks) {
  train::TrainResult result;
  if (run.recipe.train_steps_zero) {
    auto loaded = models::load_model(run.train.model);
    result.model = loaded.model;
    result.config = loaded.config.value();
    fs::create_directories(run.dir / "train");
    return result;
  }
  train::TrainOptions topts;
  topts.overwrite = true;
  topts.resume = true;  // the work dir is new, or the user asked to continue it
  topts.hooks = &hooks;
  topts.keep_best = false;
  topts.group = run.group;
  result = train::run_training(run.train, topts);
  if (result.interrupted)
    fail_invalid("compression interrupted at step ", result.steps_done, " of ", run.train.steps, "; nothing was written to ", run.recipe.out,
                 fs::exists(run.dir / "train" / "checkpoint" / "trainer_state.json") ? " (continue the run with --resume)" : "");
  return result;
}

Saved bake_and_save(const CompressRun& run, compress::CompressHooks& hooks, train::TrainResult& result) {
  const auto& r = run.recipe;
  auto& model = *result.model;
  Saved saved;
  for (const auto& p : hooks.pruners)
    saved.pruners.push_back({{"name", p->spec().name}, {"granularity", compress::granularity_name(p->spec().granularity)},
                             {"metric", compress::metric_name(p->spec().metric)}, {"target", p->spec().sparsity},
                             {"achieved", p->sparsity()}});
  saved.nm = compress::nm_sparsity(hooks.pruners);
  saved.nm.format = r.sparsity_format;
  for (auto& q : hooks.quantizers) {
    auto layers = q->snapshot();  // before the masks are baked and the sites removed
    saved.quantized.insert(saved.quantized.end(), layers.begin(), layers.end());
  }
  // Families whose dependency groups SpeedUp can cut out.
  bool can_shrink = r.speedup && !r.prune.empty() && !model.structure().attention.empty() && speedup::can_shrink(model);
  std::optional<speedup::GroupKeep> keep;
  if (can_shrink) keep = speedup::groups_from_masks(model);
  speedup::bake_masks(model);

  saved.model_dir = run.dir / "model";
  fs::remove_all(saved.model_dir);  // what a killed earlier attempt may have left
  fs::create_directories(saved.model_dir);
  if (keep) {
    saved.speedup = speedup::shrink_and_save(model, result.config, *keep, saved.model_dir).to_json();
  } else {
    if (r.speedup && !r.prune.empty())
      log_warning("speedup: ", model.info().model_type, " models are not shrunk yet (or nothing is structural); saving the masked weights");
    models::save_model(model, result.config, saved.model_dir);
  }
  if (!saved.quantized.empty()) quant::export_compressed_tensors(model, result.config, saved.quantized, saved.nm, saved.model_dir);
  io::copy_tokenizer_files(run.train.model, saved.model_dir);
  return saved;
}

bool has_post_training_quantization(const compress::CompressRecipe& r) {
  for (const auto& q : r.quantize)
    if (!q.qat) return true;
  return false;
}

std::optional<Measured> post_training_stage(const CompressRun& run, Saved& saved, std::vector<torch::Tensor>* reference_logits) {
  if (!has_post_training_quantization(run.recipe)) return std::nullopt;
  // Post-training quantization of the model as saved (pruned, shrunk).
  reference_logits->clear();
  auto model = models::load_model(saved.model_dir);
  saved.quantized = quant::post_training_quantize(run.recipe, *model.model, *run.tokenizer, model.config, run.group);
  Measured fake_quant = measure(*model.model, run, model.config, "fake-quantized", reference_logits);
  quant::export_compressed_tensors(*model.model, model.config.value(), saved.quantized, saved.nm, saved.model_dir);
  return fake_quant;
}

void calibrate_with_root(const CompressRun& run, compress::CompressHooks& hooks, train::TrainResult& result) {
  Saved saved = bake_and_save(run, hooks, result);
  result.model.reset();
  auto model = models::load_model(saved.model_dir);
  quant::post_training_quantize(run.recipe, *model.model, *run.tokenizer, model.config, run.group);
}

}  // namespace sqz::pipeline
