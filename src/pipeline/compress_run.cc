#include "pipeline/compress_run.h"

#include "core/interrupt.h"
#include "core/log.h"
#include "data/tasks.h"
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

// The recipe a work directory was started with: a resumed run must be the same run.
void check_same_recipe(const compress::CompressRecipe& r, const fs::path& dir) {
  const fs::path saved = dir / "recipe.yaml";
  if (!fs::exists(saved)) return;
  if (read_text_file(saved) != r.to_yaml())
    fail_invalid(dir.string(), ": this interrupted run was started from another recipe (its copy: ", saved.string(),
                 "); resume it with that recipe, or pass --overwrite to start over");
}

io::json measured_to_json(const Measured& m) {
  return {{"eval", m.eval}, {"flops", m.flops}, {"params", m.params}, {"embedding_params", m.embedding_params}};
}

Measured measured_from_json(const io::json& j) {
  Measured m;
  m.eval = j.at("eval"), m.flops = j.at("flops");
  m.params = j.at("params").get<int64_t>(), m.embedding_params = j.at("embedding_params").get<int64_t>();
  return m;
}

// The bench stage's lengths against the model's positions, before any work: a run must not spend
// its training and evaluations to fail at its last stage.
void check_latency_lengths(const compress::LatencySpec& l, const models::ModelInfo& info, const std::string& model_dir) {
  if (!l.enabled || info.max_positions <= 0) return;
  const int64_t need = info.is_encoder_decoder ? std::max(l.seq, l.decode_steps + 1) : info.is_decoder ? l.seq + l.decode_steps : l.seq;
  if (need > info.max_positions)
    fail_invalid("recipe: latency.seq ", l.seq, info.is_encoder_decoder || info.is_decoder ? to_text(" and latency.decode_steps ", l.decode_steps) : "",
                 " need ", need, " positions; ", model_dir, " has max_position_embeddings ", info.max_positions,
                 " (expected latency.seq", info.is_decoder ? " + latency.decode_steps" : info.is_encoder_decoder ? " and latency.decode_steps + 1" : "",
                 " <= ", info.max_positions, ")");
}

// The dense model as the user gave it: the reference for every number in the report. Measured
// once per run; a resumed run reads what the first one measured.
Measured measure_dense(const CompressRun& run) {
  const fs::path cached = run.dir / "dense.json";
  if (fs::exists(cached)) return measured_from_json(io::read_json_file(cached));
  auto dense = models::load_model(run.recipe.train.model);
  check_latency_lengths(run.recipe.latency, dense.model->info(), run.recipe.train.model);
  Measured m = measure(*dense.model, run, dense.config, "dense", nullptr);
  io::write_json_file_atomic(cached, measured_to_json(m));
  return m;
}

// How long the other ranks wait while rank 0 alone measures the dense model before training (a
// rank 0 that dies closes its connections and ends the wait at once).
constexpr std::chrono::hours kRootAlone{6};

io::json compress_in(const compress::CompressRecipe& r, const fs::path& dir, const fs::path& out, dist::Group* group) {
  InterruptGuard interrupt_guard;  // Ctrl-C stops at the next stage boundary (or training step)
  auto stop_if_interrupted = [&](const char* when) {
    if (interrupt_requested()) fail_invalid("compression interrupted ", when, "; nothing was written to ", out.string());
  };
  CompressRun run{r, dir, r.train, nullptr, group};
  run.train.out = (run.dir / "train").string();
  if (!r.student.empty()) run.train.model = make_student(r, run.dir / "student_init").string();
  run.tokenizer = io::load_tokenizer(r.train.model);
  check_attachments(run);

  Measurements m;
  m.dense = measure_dense(run);
  stop_if_interrupted("while measuring the dense model");
  if (group) group->barrier(kRootAlone);  // the other ranks start training with rank 0

  compress::CompressHooks hooks(r);
  train::TrainResult result = train_with_hooks(run, hooks);
  stop_if_interrupted("after training");
  result.model->eval();
  // reference_logits: what the saved model must reproduce (masked, and fake-quantized when QAT ran).
  // Without training (PTQ only; the recipe refuses pruning, students and QAT then) the model is the
  // dense one: a second evaluation would repeat its numbers (minutes on a whole decoder dev split),
  // and the post-training stage takes its reference logits from the fake-quantized model.
  if (r.train_steps_zero && has_post_training_quantization(r)) {
    log_info("no training stage: the model before quantization is the dense model (its dev numbers are reused)");
    m.masked = m.dense;
  } else {
    m.masked = measure(*result.model, run, io::JsonFields(result.config, (run.dir / "train").string()),
                       hooks.quantizers.empty() ? "masked" : "masked + fake-quantized", &m.reference_logits);
  }
  Saved saved = bake_and_save(run, hooks, result);
  result.model.reset();
  if (group && has_post_training_quantization(r)) group->barrier(kRootAlone);  // the other ranks calibrate with rank 0
  m.fake_quantized = post_training_stage(run, saved, &m.reference_logits);

  auto compressed = quant::load_any_model(saved.model_dir);
  m.compressed = measure(*compressed.model, run, compressed.config, "compressed", &m.final_logits);
  // sqz bench times encoders, decoders and BART / T5 ForConditionalGeneration (the runtime's engines).
  const auto& info = compressed.model->info();
  const bool engine = info.head_class == "BartForConditionalGeneration" || info.head_class == "T5ForConditionalGeneration";
  const std::string unbenchable = info.is_encoder_decoder && !engine ? info.head_class : "";
  compressed.model.reset();
  stop_if_interrupted("while measuring the compressed model");
  if (r.latency.enabled && unbenchable.empty()) m.bench = bench_stage(run, saved.model_dir, out / "model");
  if (r.latency.enabled && !unbenchable.empty())
    log_info("bench: skipped, ", unbenchable, " has no runtime engine yet (latency.enabled: false silences this line)");
  io::json report = assemble_report(run, result, saved, m, compressed.config.value());
  write_report(run, report);
  stop_if_interrupted("while benchmarking");
  return report;
}

// Ranks other than 0: their share of training and of PTQ calibration, nothing else. They read
// rank 0's work directory only to resume from its checkpoint (a shared path on several hosts);
// a student and the baked model they calibrate are built in private scratch space (deterministic:
// the ranks compare the student's weights, the calibration the baked model's activations).
io::json train_with_root(const compress::CompressRecipe& r, const CompressOptions& options) {
  check_recipe(r);
  TempDir scratch("rank" + std::to_string(options.group->rank()));
  CompressRun run{r, ResumableDir::work_path(r.out), r.train, nullptr, options.group};
  run.train.out = (run.dir / "train").string();
  if (!r.student.empty()) run.train.model = make_student(r, scratch.path() / "student_init").string();
  options.group->barrier(kRootAlone);
  const bool ptq = has_post_training_quantization(r);
  if (r.train_steps_zero && !ptq) return io::json::object();
  if (r.train_steps_zero) run.dir = scratch.path();  // nothing to resume; the start model is loaded as is
  compress::CompressHooks hooks(r);
  train::TrainResult result = train_with_hooks(run, hooks);
  if (!ptq) return io::json::object();
  run.tokenizer = io::load_tokenizer(r.train.model);
  run.dir = scratch.path();
  result.model->eval();
  options.group->barrier(kRootAlone);  // rank 0 measures the trained model alone
  calibrate_with_root(run, hooks, result);
  return io::json::object();
}

}  // namespace

io::json run_compress(const compress::CompressRecipe& r, const CompressOptions& options) {
  if (options.group && !options.group->is_root()) return train_with_root(r, options);
  fs::path out(r.out);
  if (fs::exists(out) && !options.overwrite) fail_invalid(out.string(), ": output directory already exists (pass --overwrite)");
  check_recipe(r);
  ResumableDir work(out, options.overwrite, options.resume);
  const fs::path checkpoint = work.path() / "train" / "checkpoint" / "trainer_state.json";
  io::json report;
  try {
    if (work.resumed()) {
      check_same_recipe(r, work.path());
      log_info("resuming the interrupted run in ", work.path().string());
    } else if (options.resume) {
      log_info("nothing to resume at ", work.path().string(), "; starting the run");
    }
    write_file_atomic(work.path() / "recipe.yaml", r.to_yaml());
    report = compress_in(r, work.path(), out, options.group);
  } catch (...) {
    // Once training has a checkpoint, the run can continue from it: keep the work directory.
    if (fs::exists(checkpoint)) {
      work.keep();
      log_info("the run's state is kept in ", work.path().string(), "; continue it with the same command and --resume");
    }
    throw;
  }
  // What only resuming needed does not ship with the result.
  fs::remove_all(work.path() / "student_init");
  fs::remove_all(work.path() / "train" / "checkpoint");
  fs::remove(work.path() / "dense.json");
  work.commit();
  log_info("compressed model: ", (out / "model").string(), "; report: ", (out / "report.md").string());
  return report;
}

}  // namespace sqz::pipeline
