#include "pipeline/compress_run.h"

#include "core/interrupt.h"
#include "core/log.h"
#include "pipeline/stages.h"

namespace sqz::pipeline {

namespace {

// Refusals that need no model: a recipe that cannot work fails before anything loads.
void check_recipe(const compress::CompressRecipe& r) {
  data::find_task(r.train.task);
  for (const auto& p : r.prune)
    if (p.granularity == compress::Granularity::kHidden && !r.speedup)
      fail_invalid(p.source, ": hidden-dimension pruning needs speedup: true (the masked norms exist only in memory)");
}

}  // namespace

io::json run_compress(const compress::CompressRecipe& r, const CompressOptions& options) {
  fs::path out(r.out);
  if (fs::exists(out) && !options.overwrite) fail_invalid(out.string(), ": output directory already exists (pass --overwrite)");
  StagingDir staging(out, options.overwrite);
  // Ctrl-C stops at the next stage boundary (or training step) and unwinds: the staging dir goes.
  InterruptGuard interrupt_guard;
  auto stop_if_interrupted = [&](const char* when) {
    if (interrupt_requested()) fail_invalid("compression interrupted ", when, "; nothing was written to ", out.string());
  };
  check_recipe(r);
  CompressRun run{r, staging.path(), r.train, nullptr};
  run.train.out = (run.dir / "train").string();
  if (!r.student.empty()) run.train.model = make_student(r, run.dir / "student_init").string();
  run.tokenizer = io::load_tokenizer(r.train.model);
  check_attachments(run);

  Measurements m;
  {
    // The dense model as the user gave it: the reference for every number in the report.
    auto dense = models::load_model(r.train.model);
    m.dense = measure(*dense.model, run, dense.config, "dense", nullptr);
  }
  stop_if_interrupted("while measuring the dense model");

  compress::CompressHooks hooks(r);
  train::TrainResult result = train_with_hooks(run, hooks);
  stop_if_interrupted("after training");
  result.model->eval();
  // reference_logits: what the saved model must reproduce (masked, and fake-quantized when QAT ran).
  m.masked = measure(*result.model, run, io::JsonFields(result.config, (run.dir / "train").string()),
                     hooks.quantizers.empty() ? "masked" : "masked + fake-quantized", &m.reference_logits);
  Saved saved = bake_and_save(run, hooks, result);
  result.model.reset();
  m.fake_quantized = post_training_stage(run, saved, &m.reference_logits);

  auto compressed = quant::load_any_model(saved.model_dir);
  m.compressed = measure(*compressed.model, run, compressed.config, "compressed", &m.final_logits);
  compressed.model.reset();
  stop_if_interrupted("while measuring the compressed model");
  if (r.latency.enabled) m.bench = bench_stage(run, saved.model_dir, out / "model");
  io::json report = assemble_report(run, result, saved, m, compressed.config.value());
  write_report(run, report);
  fs::remove_all(run.dir / "student_init");
  stop_if_interrupted("while benchmarking");
  staging.commit();
  log_info("compressed model: ", (out / "model").string(), "; report: ", (out / "report.md").string());
  return report;
}

}  // namespace sqz::pipeline
