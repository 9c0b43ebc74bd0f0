#include "train/trainer.h"

#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>
#include <iostream>

#include "core/interrupt.h"
#include "core/log.h"
#include "core/progress.h"
#include "nn/threads.h"
#include "dist/launch.h"
#include "train/data_parallel.h"
#include "data/evaluate.h"
#include "io/tokenizers/tokenizer.h"
#include "models/registry.h"
#include "data/tasks.h"
#include "data/objectives.h"

namespace sqz::train {

namespace {

constexpr uint64_t kDevOrderSeed = 12345;

// Everything the loop needs, assembled and checked before the first step.
struct Setup {
  std::shared_ptr<models::TransformerModel> model;
  io::json config;
  std::unique_ptr<io::Tokenizer> tokenizer;
  fs::path tokenizer_dir;
  data::Objective objective;
  data::LabelSet labels;
  std::unique_ptr<data::ClassificationData> cls_train, cls_dev;
  std::unique_ptr<data::LmData> lm_train, lm_dev;
  std::unique_ptr<data::Seq2SeqData> s2s_train, s2s_dev;
  data::TrainingData* train = nullptr;  // whichever of the three the task uses
  data::MlmSpecialIds mlm{};
};

std::string head_for(const std::string& model_type, data::Objective o) {
  const auto& arch = models::find_architecture(model_type, "recipe");
  const char* want = o == data::Objective::kClassification ? "SequenceClassification"
                     : o == data::Objective::kMaskedLM     ? "MaskedLM"
                     : o == data::Objective::kSeq2Seq      ? "ConditionalGeneration"
                                                           : (model_type == "gpt2" ? "LMHeadModel" : "CausalLM");
  for (const auto& h : arch.head_classes)
    if (h.find(want) != std::string::npos) return h;
  fail_unimplemented(model_type, " has no head for the ", data::objective_name(o), " objective");
}

Setup prepare(const TrainRecipe& r, const fs::path& resume_from, dist::Group& group) {
  Setup s;
  const data::TaskSpec& task = data::find_task(r.task);
  fs::path data_dir(r.data);
  io::JsonFields start_config = r.model.empty() ? io::JsonFields::from_file(r.config)
                                                : io::JsonFields::from_file(fs::path(r.model) / "config.json");
  std::string model_type = start_config.get_string("model_type");
  data::TaskKind kind = task.kind;
  s.objective = data::parse_objective(r.objective, kind, models::find_architecture(model_type, start_config.source()).is_decoder);
  if ((kind == data::TaskKind::kSeq2Seq) != (s.objective == data::Objective::kSeq2Seq))
    fail_invalid("recipe: objective '", data::objective_name(s.objective), "' does not fit task '", r.task, "' (",
                 data::task_kind_name(kind), ")");
  s.tokenizer_dir = !r.tokenizer.empty() ? fs::path(r.tokenizer) : !r.model.empty() ? fs::path(r.model) : fs::path();
  if (s.tokenizer_dir.empty()) fail_invalid("recipe: 'tokenizer' is required when starting from 'config'");
  s.tokenizer = io::load_tokenizer(s.tokenizer_dir);
  if (s.tokenizer->vocab_size() > start_config.get_int("vocab_size", s.tokenizer->vocab_size()))
    fail_invalid("tokenizer in ", s.tokenizer_dir.string(), " has ", s.tokenizer->vocab_size(),
                 " tokens but the model's vocab_size is ", start_config.get_int("vocab_size"));
  io::json overrides = io::json::object();
  if (kind == data::TaskKind::kClassification) {
    auto train = data::read_classification_jsonl(data_dir / task.train_file);
    auto dev = data::read_classification_jsonl(data_dir / task.dev_file);
    s.labels = data::LabelSet(train);
    io::json id2label = io::json::object(), label2id = io::json::object();
    for (int64_t i = 0; i < s.labels.size(); ++i) {
      id2label[std::to_string(i)] = s.labels.names()[i];
      label2id[s.labels.names()[i]] = i;
    }
    overrides = {{"id2label", id2label}, {"label2id", label2id}, {"num_labels", s.labels.size()}};
    s.cls_train = std::make_unique<data::ClassificationData>(train, *s.tokenizer, s.labels, r.max_length, (data_dir / task.train_file).string(), &group);
    s.cls_dev = std::make_unique<data::ClassificationData>(dev, *s.tokenizer, s.labels, r.max_length, (data_dir / task.dev_file).string(), &group);
    // A fixed order so that evals limited to a few batches still see every label.
    s.cls_dev->shuffle(kDevOrderSeed);
  } else if (kind == data::TaskKind::kLanguageModel) {
    s.lm_train = std::make_unique<data::LmData>(data::read_lm_text(data_dir / task.train_file), *s.tokenizer, r.max_length, &group);
    s.lm_dev = std::make_unique<data::LmData>(data::read_lm_text(data_dir / task.dev_file), *s.tokenizer, r.max_length, &group);
  } else {
    const int64_t start = models::config_token_id(start_config, "decoder_start_token_id")
                              .value_or(models::config_token_id(start_config, "pad_token_id").value_or(0));
    s.s2s_train = std::make_unique<data::Seq2SeqData>(data::read_seq2seq_jsonl(data_dir / task.train_file), *s.tokenizer,
                                                      r.max_length, start, (data_dir / task.train_file).string(), &group);
    s.s2s_dev = std::make_unique<data::Seq2SeqData>(data::read_seq2seq_jsonl(data_dir / task.dev_file), *s.tokenizer, r.max_length,
                                                    start, (data_dir / task.dev_file).string(), &group);
    s.s2s_dev->shuffle(kDevOrderSeed);  // evals limited to a few batches see a sample of the whole dev set
  }
  s.train = s.cls_train ? static_cast<data::TrainingData*>(s.cls_train.get())
            : s.lm_train ? static_cast<data::TrainingData*>(s.lm_train.get())
                         : s.s2s_train.get();
  std::string head = !r.head.empty() ? r.head : head_for(model_type, s.objective);
  models::LoadOptions load_options;
  load_options.head = head;
  // libtorch seeds its default generator from the OS: without this, the weights a fine-tune
  // initialises (a new head) and every dropout mask differ from run to run.
  torch::manual_seed(r.seed);
  if (!resume_from.empty()) {
    auto loaded = models::load_model(resume_from, load_options);
    s.model = loaded.model;
    s.config = loaded.config.value();
  } else if (!r.model.empty()) {
    load_options.init_missing = true;
    load_options.config_overrides = overrides;
    auto loaded = models::load_model(r.model, load_options);
    s.model = loaded.model;
    s.config = loaded.config.value();
  } else {
    io::json c = start_config.value();
    c.update(overrides);
    s.model = models::build_model(io::JsonFields(c, r.config), head);
    models::init_weights(*s.model);
    s.config = c;
  }
  if (s.objective == data::Objective::kMaskedLM) s.mlm = data::mlm_special_ids(*s.tokenizer, s.tokenizer_dir.string());
  return s;
}

std::vector<torch::optim::OptimizerParamGroup> param_groups(models::TransformerModel& model, double weight_decay) {
  // As HF's Trainer: no weight decay on biases and normalisation weights.
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& item : model.named_parameters()) {
    const std::string& n = item.key();
    bool exempt = n.find("bias") != std::string::npos || n.find("norm") != std::string::npos ||
                  n.find("LayerNorm") != std::string::npos || n.find("ln_") != std::string::npos;
    (exempt ? no_decay : decay).push_back(item.value());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions().weight_decay(weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions().weight_decay(0.0)));
  return groups;
}

constexpr const char* kStateFile = "training_state.safetensors";

torch::Tensor generator_state(at::Generator& g) {
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void set_generator_state(at::Generator& g, const torch::Tensor& state) {
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}

// The model, the optimizer, the loop's position and everything else a resumed run must continue
// with: dropout's and MLM masking's generators and the hooks' state.
void save_checkpoint(const Setup& s, torch::optim::AdamW& opt, const fs::path& dir, const io::json& state, const TrainHooks& hooks,
                     at::Generator& mask_gen) {
  StagingDir staging(dir, /*overwrite=*/true);
  models::save_model(*s.model, s.config, staging.path());
  io::copy_tokenizer_files(s.tokenizer_dir, staging.path());
  torch::save(opt, (staging.path() / "optimizer.pt").string());
  StateDict extra;
  auto default_gen = at::detail::getDefaultCPUGenerator();
  extra.put("rng.default", generator_state(default_gen));
  extra.put("rng.mlm", generator_state(mask_gen));
  hooks.save_state(extra);
  extra.save(staging.path() / kStateFile);
  io::write_json_file_atomic(staging.path() / "trainer_state.json", state);
  staging.commit();
}

// Checkpoints written before the state file existed resume without it (generators reseeded).
void load_checkpoint_state(const fs::path& dir, TrainHooks& hooks, at::Generator& mask_gen) {
  if (!fs::exists(dir / kStateFile)) {
    log_warning(dir.string(), ": no ", kStateFile, "; resuming with fresh random generators");
    return;
  }
  StateDict extra = StateDict::load(dir / kStateFile);
  auto default_gen = at::detail::getDefaultCPUGenerator();
  set_generator_state(default_gen, extra.get("rng.default"));
  set_generator_state(mask_gen, extra.get("rng.mlm"));
  hooks.load_state(extra);
}

void save_best(const Setup& s, const fs::path& dir) {
  StagingDir staging(dir, /*overwrite=*/true);
  models::save_model(*s.model, s.config, staging.path());
  io::copy_tokenizer_files(s.tokenizer_dir, staging.path());
  staging.commit();
}

}  // namespace

double linear_schedule(int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return static_cast<double>(step + 1) / static_cast<double>(warmup + 1);
  return std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max<int64_t>(total - warmup, 1)));
}

TrainResult run_training(const TrainRecipe& r, const TrainOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  dist::Group alone;
  dist::Group& group = options.group ? *options.group : alone;
  const bool root = group.is_root();  // rank 0 alone writes
  fs::path out(r.out);
  fs::path ckpt_dir = out / "checkpoint", best_dir = out / "best";
  bool resuming = options.resume && fs::exists(ckpt_dir / "trainer_state.json");
  group.agree("resume decision", resuming ? "resume from " + ckpt_dir.string() : "fresh start");
  if (fs::exists(out) && !resuming && root) {
    if (!options.overwrite) fail_invalid(out.string(), ": output directory already exists (pass --overwrite or --resume)");
    fs::remove_all(out);
  }
  if (r.batch_size % group.size() != 0)
    fail_invalid("recipe: batch_size ", r.batch_size, " is the global batch and must split evenly over the ", group.size(), " ranks");
  if (r.threads > 0) set_torch_threads(static_cast<int>(r.threads));
  else if (group.distributed()) set_torch_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / dist::local_world_size()));
  if (resuming && !options.checkpoints) fail_invalid("this run cannot resume: it keeps no checkpoints");
  Setup s = prepare(r, resuming ? ckpt_dir : fs::path(), group);
  TrainHooks no_hooks;
  TrainHooks& hooks = options.hooks ? *options.hooks : no_hooks;
  hooks.on_start(*s.model, *s.tokenizer, s.config);
  agree_on_the_run(group, r, *s.model, s.config);
  if (group.distributed()) hooks.join(group);
  if (root) {
    fs::create_directories(out);
    write_file_atomic(out / "recipe.yaml", r.to_yaml());
  }

  auto groups = param_groups(*s.model, r.weight_decay);
  std::vector<double> lr_scales(groups.size(), 1.0);
  for (auto& g : hooks.extra_parameters()) {
    groups.emplace_back(g.params, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions().weight_decay(0.0)));
    lr_scales.push_back(g.lr_scale);
  }
  torch::optim::AdamW opt(std::move(groups), torch::optim::AdamWOptions(r.lr));
  io::json state = {{"step", 0}, {"best_score", nullptr}, {"best_eval", nullptr}, {"evals_without_improvement", 0},
                    {"last_eval", nullptr}, {"wall_s", 0.0}};
  if (resuming) {
    state.update(io::read_json_file(ckpt_dir / "trainer_state.json"));
    torch::load(opt, (ckpt_dir / "optimizer.pt").string());
    log_info("resuming from ", ckpt_dir.string(), " at step ", state["step"].get<int64_t>());
  }
  int64_t step = state["step"].get<int64_t>();
  const double wall_before_s = state["wall_s"].get<double>();  // the earlier runs' training time
  const int64_t examples_per_step = r.batch_size * r.grad_accum;
  const int64_t n_train = s.train->size();
  auto shuffle = [&](int64_t epoch) { s.train->shuffle(r.seed + epoch); };
  int64_t epoch = step * examples_per_step / n_train;
  shuffle(epoch);
  auto mask_gen = at::detail::createCPUGenerator(r.seed * 7919);
  if (resuming) load_checkpoint_state(ckpt_dir, hooks, mask_gen);
  data::EvalOptions eval_opts{r.batch_size, r.eval_batches, r.seed, r.mlm_probability};
  eval_opts.group = &group;  // each rank scores its share of the dev batches
  auto run_eval = [&]() {
    s.model->eval();
    io::json res = s.cls_dev   ? data::evaluate_classification(s.model.get(), *s.cls_dev, s.labels.size(), eval_opts)
                   : s.s2s_dev ? data::evaluate_seq2seq(&*s.model, *s.tokenizer, *s.s2s_dev, eval_opts)
                               : data::evaluate_lm(s.model.get(), *s.lm_dev, s.objective, &s.mlm, eval_opts);
    s.model->train();
    return res;
  };

  InterruptGuard interrupt_guard;  // Ctrl-C stops after the current step, with a checkpoint
  std::ofstream log;
  if (root) log.open(out / "train_log.jsonl", std::ios::app);
  std::vector<torch::Tensor> trained = hooks.averaged_gradients();  // gradients averaged over ranks
  for (auto& g : opt.param_groups())
    for (auto& p : g.params()) trained.push_back(p);
  GradientBuckets gradients(group, trained);
  Progress progress("train", r.steps);
  s.model->train();
  double loss_avg = 0;
  int64_t tokens = 0;
  auto t_start = std::chrono::steady_clock::now();
  TrainResult result;
  bool stop = false;  // the group's decision: any rank interrupted
  while (step < r.steps && !stop) {
    hooks.before_step(step);
    double step_loss = 0;
    int64_t step_tokens = 0;
    for (int64_t micro = 0; micro < r.grad_accum; ++micro) {
      int64_t pos = (step * examples_per_step + micro * r.batch_size);
      if (pos / n_train != epoch) shuffle(epoch = pos / n_train);
      int64_t begin = pos % n_train;
      // Every rank builds the whole batch (padding, MLM masks) and takes its rows of it; the
      // share's loss is its part of the whole batch's mean (data::Batch::whole), so the ranks'
      // gradients, averaged, are the whole batch's.
      const int64_t rows = std::min(r.batch_size, n_train - begin);
      data::Batch whole = s.train->batch(begin, begin + rows);
      if (s.objective == data::Objective::kMaskedLM)
        whole.labels = data::mask_tokens(whole.input_ids, whole.attention_mask, s.mlm, r.mlm_probability, mask_gen);
      auto [batch, stand_in] = data::rank_share(whole, s.objective, &group);
      hooks.stand_in(stand_in);
      if (!stand_in)
        step_tokens += batch.attention_mask.sum().item<int64_t>() + (batch.decoder_input_ids.defined() ? batch.labels.ne(-100).sum().item<int64_t>() : 0);
      auto task = data::compute_loss(*s.model, batch, s.objective, hooks.wants_hidden_states(), hooks.wants_attentions(),
                               hooks.wants_all_logits());
      auto loss = hooks.total_loss(batch, task, step);
      hooks.stand_in(false);
      if (!std::isfinite(loss.item<double>())) {
        std::string culprit = hooks.describe_nonfinite();
        fail_data("training diverged at step ", step + 1, ": loss is ", loss.item<double>(), culprit.empty() ? "" : " (" + culprit + ")",
                  options.checkpoints ? " (last good checkpoint: " + ckpt_dir.string() + ")" : std::string(" (nothing was written)"));
      }
      // The gradient average divides by the group's size: each share's part counts whole.
      const double weight = stand_in ? 0.0 : static_cast<double>(group.size());
      if (micro == r.grad_accum - 1) gradients.arm();  // the step's gradients are final as this backward reaches them
      (loss * (weight / static_cast<double>(r.grad_accum))).backward();
      if (!stand_in) step_loss += loss.item<double>() / static_cast<double>(r.grad_accum);
    }
    // One exchange per step: the gradients (mostly sent while backward ran), then the loss, tokens
    // and whether any rank was interrupted.
    gradients.finish();
    auto totals = torch::tensor({step_loss, static_cast<double>(step_tokens), interrupt_requested() ? 1.0 : 0.0}, torch::kDouble);
    group.sum({totals});
    step_loss = totals[0].item<double>();
    tokens += static_cast<int64_t>(totals[1].item<double>());
    stop = totals[2].item<double>() > 0;
    hooks.after_backward(step);
    if (r.max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(s.model->parameters(), r.max_grad_norm);
    double lr = r.lr * linear_schedule(step, r.warmup_steps, r.steps);
    for (size_t g = 0; g < opt.param_groups().size(); ++g)
      static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[g].options()).lr(lr * lr_scales[g]);
    opt.step();
    opt.zero_grad();
    hooks.synchronize(group);
    ++step;
    loss_avg = step == 1 ? step_loss : 0.95 * loss_avg + 0.05 * step_loss;
    double since_start_s = seconds_since(t_start);
    progress.update(step, to_text("loss ", std::to_string(loss_avg).substr(0, 6), " tok/s ",
                                  static_cast<int64_t>(tokens / std::max(since_start_s, 1e-9)), hooks.status()));
    bool last = step == r.steps;
    if (step % r.eval_every == 0 || last) {
      io::json res = run_eval();
      res["step"] = step;
      res["train_loss"] = loss_avg;
      res["lr"] = lr;
      if (root) std::cout << res.dump() << std::endl;
      if (root) log << res.dump() << "\n" << std::flush;
      result.last_eval = res;
      state["last_eval"] = res;
      double score = data::primary_score(res);
      if (!options.keep_best) {
        // no best-on-dev copy: the final (compressed) model is the result
      } else if (state["best_score"].is_null() || score > state["best_score"].get<double>()) {
        state["best_score"] = score;
        state["best_eval"] = res;
        state["evals_without_improvement"] = 0;
        if (root) save_best(s, best_dir);
      } else {
        state["evals_without_improvement"] = state["evals_without_improvement"].get<int64_t>() + 1;
      }
    }
    if (options.checkpoints && (step % r.save_every == 0 || last || stop)) {
      check_ranks_agree(group, *s.model, hooks);
      state["step"] = step;
      state["wall_s"] = wall_before_s + seconds_since(t0);
      if (root) save_checkpoint(s, opt, ckpt_dir, state, hooks, mask_gen);
    }
    if (r.early_stop_patience > 0 && state["evals_without_improvement"].get<int64_t>() >= r.early_stop_patience) {
      log_info("early stop at step ", step, ": no dev improvement in ", r.early_stop_patience, " evals");
      break;
    }
  }
  const bool stopped = stop && step < r.steps;  // a signal after the last step stops nothing here
  result.interrupted = stopped;
  const bool has_checkpoint = options.checkpoints && fs::exists(ckpt_dir / "trainer_state.json");
  if (stopped && has_checkpoint) log_info("interrupted at step ", step, "; resume with --resume (checkpoint: ", ckpt_dir.string(), ")");
  else if (stopped) log_info("interrupted at step ", step, " before any checkpoint: a new run starts from the beginning");
  if (root && gradients.sent() > 0)
    log_info("gradients: ", gradients.buckets(), " buckets per step; ", gradients.sent_during_backward(), " of ", gradients.sent(),
             " bucket sums started while backward still ran");
  result.steps_done = step;
  result.best_eval = state["best_eval"];
  if (result.last_eval.is_null()) result.last_eval = state["last_eval"];  // a resumed run that had nothing left to train
  result.model = s.model;
  result.config = s.config;
  result.wall_s = wall_before_s + seconds_since(t0);
  return result;
}

}  // namespace sqz::train
