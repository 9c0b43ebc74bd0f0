#include "compress/compress.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>

#include "compress/quant/export.h"
#include "compress/site.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "eval/evaluate.h"
#include "eval/latency.h"
#include "eval/plot.h"
#include "io/safetensors.h"
#include "models/registry.h"
#include "speedup/speedup.h"
#include "train/trainer.h"

namespace sqz::compress {

namespace {

// Pruners and the distiller, joined to the trainer's loop.
class CompressHooks : public train::TrainHooks {
 public:
  CompressHooks(const CompressRecipe& r) : lr_(r.train.lr) {
    for (const auto& p : r.prune) pruners.push_back(std::make_unique<Pruner>(p));
    for (const auto& q : r.quantize)
      if (q.qat) quantizers.push_back(std::make_unique<quant::Quantizer>(q));
    if (r.distill) distiller.emplace(*r.distill);
  }
  void on_start(models::TransformerModel& model, const io::Tokenizer& tok, const io::json& config) override {
    if (distiller) distiller->attach(model, tok, config, model.info().head_class);
    for (auto& p : pruners) p->attach(model, lr_);
    for (auto& q : quantizers) q->attach(model);
  }
  std::vector<ParamGroup> extra_parameters() override {
    std::vector<ParamGroup> g;
    for (auto& p : pruners)
      if (!p->trainable().empty()) g.push_back({p->trainable(), p->score_lr_scale()});
    for (auto& q : quantizers)
      if (!q->trainable().empty()) g.push_back({q->trainable(), 1.0});
    if (distiller && !distiller->trainable().empty()) g.push_back({distiller->trainable(), 1.0});
    return g;
  }
  bool wants_hidden_states() const override { return distiller && distiller->wants_hidden_states(); }
  bool wants_attentions() const override { return distiller && distiller->wants_attentions(); }
  bool wants_all_logits() const override { return distiller && distiller->wants_logits(); }
  torch::Tensor total_loss(const train::Batch& batch, const train::LossResult& task, int64_t) override {
    torch::Tensor loss = distiller ? distiller->loss(batch, task) : task.loss;
    for (auto& p : pruners)
      if (auto reg = p->regularizer(); reg.defined()) loss = loss + reg;
    return loss;
  }
  void after_backward(int64_t) override {
    for (auto& p : pruners) p->after_backward();
  }
  void before_step(int64_t step) override {
    for (auto& p : pruners) p->before_step(step);
    for (auto& q : quantizers) q->before_step(step);
  }
  std::string status() const override {
    std::ostringstream s;
    s.precision(2);
    for (const auto& p : pruners) s << " " << p->spec().name << " " << std::fixed << p->sparsity();
    for (const auto& q : quantizers) s << q->status();
    if (distiller) s << distiller->status();
    return s.str();
  }
  std::string describe_nonfinite() const override {
    for (const auto& q : quantizers)
      if (auto d = q->describe_nonfinite(); !d.empty()) return d;
    return "";
  }
  std::vector<std::unique_ptr<Pruner>> pruners;
  std::vector<std::unique_ptr<quant::Quantizer>> quantizers;  // QAT
  std::optional<Distiller> distiller;

 private:
  double lr_;
};

// The HF config key holding the layer count of a family.
std::string layer_count_key(const io::json& c) {
  for (const char* k : {"num_hidden_layers", "n_layer", "n_layers"})
    if (c.contains(k)) return k;
  return "num_hidden_layers";
}

// A narrower student: the `width` hidden dims with the largest L2 norm over their group (columns
// of the embeddings and of every Linear reading the stream, rows of every Linear writing it) are
// kept, the rest cut out by SpeedUp; the student's norms then run over the kept dims only.
void narrow_student(const CompressRecipe& r, const fs::path& from, const fs::path& dir) {
  torch::NoGradGuard no_grad;
  auto loaded = models::load_model(from);
  auto& model = *loaded.model;
  auto s = model.structure();
  if (s.attention.empty() || s.hidden.norms.empty() || !s.hidden.norms.front()->weight.defined())
    fail_invalid(r.source, ": student.hidden needs the hidden-dimension groups of '", model.info().model_type, "', which sqz does not describe");
  const int64_t width = s.hidden.norms.front()->weight.size(0);
  if (r.student.hidden >= width)
    fail_invalid(r.source, ": student.hidden = ", r.student.hidden, " must be below the teacher's hidden size ", width);
  auto importance = hidden_group_importance(s.hidden, width, [](const torch::Tensor& w) { return w.pow(2); });
  auto top = std::get<0>(std::get<1>(importance.topk(r.student.hidden)).sort()).contiguous();
  auto keep = speedup::groups_from_zeros(model);
  keep.hidden.assign(top.data_ptr<int64_t>(), top.data_ptr<int64_t>() + top.numel());
  fs::create_directories(dir);
  speedup::shrink_and_save(model, loaded.config.value(), keep, dir);
  if (from != dir) io::copy_tokenizer_files(r.train.model, dir);
  log_info("student: hidden ", width, " -> ", r.student.hidden, " (largest L2 over each dim's group)");
}

// FastFormers' smaller student: the chosen teacher layers, renumbered, everything else copied;
// then, with student.hidden, narrowed.
fs::path make_student(const CompressRecipe& r, const fs::path& dir) {
  if (r.student.layers.empty()) {
    narrow_student(r, r.train.model, dir);
    return dir;
  }
  auto loaded = models::load_model(r.train.model);
  io::json c = loaded.config.value();
  const int64_t n = loaded.model->info().num_layers;
  std::map<int64_t, int64_t> new_index;
  for (size_t i = 0; i < r.student.layers.size(); ++i) {
    int64_t l = r.student.layers[i];
    if (l < 0 || l >= n || new_index.count(l))
      fail_invalid(r.source, ": student.layers must be distinct layer indices in [0, ", n, "), got ", l);
    new_index[l] = static_cast<int64_t>(i);
  }
  static const std::regex layer_key(R"((^|.*\.)(layer|layers|h)\.(\d+)\.(.*))");
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& item : loaded.model->named_parameters()) {
    std::string name = models::hf_name(loaded.model->info(), item.key());
    std::smatch m;
    if (std::regex_match(name, m, layer_key)) {
      auto it = new_index.find(std::stoll(m[3]));
      if (it == new_index.end()) continue;
      name = to_text(m[1].str(), m[2].str(), ".", it->second, ".", m[4].str());
    }
    tensors.emplace_back(name, item.value().detach());
  }
  c[layer_count_key(c)] = static_cast<int64_t>(r.student.layers.size());
  if (c.contains("pruned_heads")) {
    io::json ph = io::json::object();
    for (const auto& [old, idx] : new_index)
      if (c["pruned_heads"].contains(std::to_string(old))) ph[std::to_string(idx)] = c["pruned_heads"][std::to_string(old)];
    c["pruned_heads"] = ph;
  }
  if (c.contains("sqz_intermediate_sizes")) {
    io::json sizes = io::json::array();
    for (int64_t l : r.student.layers) sizes.push_back(c["sqz_intermediate_sizes"][l]);
    c["sqz_intermediate_sizes"] = sizes;
  }
  fs::create_directories(dir);
  io::write_safetensors(dir / "model.safetensors", tensors);
  io::write_json_file_atomic(dir / "config.json", c);
  io::copy_tokenizer_files(r.train.model, dir);
  log_info("student: layers ", io::json(r.student.layers).dump(), " of ", n, " -> ", dir.string());
  if (r.student.hidden > 0) narrow_student(r, dir, dir);
  return dir;
}

struct Measured {
  io::json eval, latency = io::json::array();
  int64_t params = 0, embedding_params = 0;
  double flops_b1 = 0;
};

Measured measure(models::TransformerModel& model, const io::Tokenizer& tok, const io::JsonFields& config, const CompressRecipe& r,
                 const std::string& what, std::vector<torch::Tensor>* logits, bool timed = true) {
  const auto& task = train::find_task(r.train.task);
  eval::EvalOptions o{r.train.batch_size, r.eval_batches, r.train.seed, r.train.mlm_probability, logits};
  Measured m;
  log_info("evaluating the ", what, " model on ", task.dev_file);
  m.eval = eval::evaluate_split(&model, tok, config, r.train.task, fs::path(r.train.data) / task.dev_file, r.train.max_length, o);
  m.params = models::count_parameters(model);
  for (const auto& t : list_layers(model))
    if (t.type == "embedding") m.embedding_params += t.weight().numel();
  if (r.latency.enabled && timed)
    for (int64_t b : r.latency.batch_sizes) {
      eval::LatencyOptions lo{b, r.latency.seq, r.latency.threads, 3, r.latency.runs};
      auto res = eval::measure_latency(model, lo);
      m.latency.push_back(res.to_json(lo));
      log_info(what, " latency batch ", b, " seq ", r.latency.seq, ": ", res.median_ms, " ms (median of ", r.latency.runs, ")");
    }
  return m;
}

double max_abs_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

int64_t same_predictions(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b, int64_t* total) {
  int64_t same = 0;
  *total = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    auto eq = a[i].argmax(-1).eq(b[i].argmax(-1));
    same += eq.sum().item<int64_t>();
    *total += eq.numel();
  }
  return same;
}

std::string fmt(double v, int digits = 4) {
  std::ostringstream s;
  s.precision(digits);
  s << v;
  return s.str();
}

bool has_ptq(const CompressRecipe& r) {
  for (const auto& q : r.quantize)
    if (!q.qat) return true;
  return false;
}

// The N:M structure the export declares and verifies: the targets of the N:M pruners.
quant::SparsityExport nm_sparsity(const std::vector<std::unique_ptr<Pruner>>& pruners) {
  quant::SparsityExport nm;
  for (const auto& p : pruners) {
    if (p->spec().granularity != Granularity::kNM) continue;
    if (nm.n > 0 && (nm.n != p->spec().n || nm.m != p->spec().m))
      fail_invalid(p->spec().source, ": two N:M structures in one model (", nm.n, ":", nm.m, " and ", p->spec().n, ":", p->spec().m,
                   ") cannot be declared in one sparsity_config");
    nm.n = p->spec().n, nm.m = p->spec().m;
    for (const auto& u : p->report()) nm.targets.push_back(u.name);
  }
  return nm;
}

// Attaches the recipe's PTQ quantizers, calibrates them on the first batches of the training
// split, and returns what the export writes.
std::vector<quant::QuantizedLayer> post_training_quantize(const CompressRecipe& r, models::TransformerModel& model, const io::Tokenizer& tok,
                                                          const io::JsonFields& config) {
  std::vector<std::unique_ptr<quant::Quantizer>> ptq;
  for (const auto& q : r.quantize)
    if (!q.qat) {
      ptq.push_back(std::make_unique<quant::Quantizer>(q));
      ptq.back()->attach(model);
    }
  const auto& task = train::find_task(r.train.task);
  eval::EvalOptions o{r.train.batch_size, r.calibration_batches, r.train.seed, r.train.mlm_probability, nullptr};
  auto calibration_pass = [&](const std::string& what) {
    log_info(what, " on ", r.calibration_batches, " batches of ", task.train_file);
    eval::evaluate_split(&model, tok, config, r.train.task, fs::path(r.train.data) / task.train_file, r.train.max_length, o);
  };
  // SmoothQuant first: its per-channel ranges come from a pass of their own, and every later
  // range is measured on the smoothed model.
  bool smoothing = false;
  for (auto& q : ptq)
    if (q->spec().smooth_alpha) q->begin_calibration(), smoothing = true;
  if (smoothing) {
    calibration_pass("smoothquant ranges");
    for (auto& q : ptq)
      if (q->spec().smooth_alpha) q->smooth(model);
  }
  for (auto& q : ptq) q->begin_calibration();
  calibration_pass("calibrating");
  std::vector<quant::QuantizedLayer> layers;
  for (auto& q : ptq) {
    q->end_calibration();
    auto l = q->snapshot();
    layers.insert(layers.end(), l.begin(), l.end());
  }
  return layers;
}

io::json quantizer_summary(const quant::QuantizerSpec& q) {
  io::json j = {{"name", q.name}, {"mode", q.qat ? "qat" : "ptq"}};
  if (q.weight)
    j["weight"] = to_text("W", q.weight->spec.bits, " ", quant::granularity_name(q.weight->spec.granularity),
                          q.weight->spec.granularity == quant::Granularity::kGroup ? to_text(" ", q.weight->spec.group_size) : "",
                          q.weight->spec.symmetric ? " sym " : " asym ", quant::weight_method_name(q.weight->method));
  if (q.activation)
    j["activation"] = to_text("A", q.activation->spec.bits, " ", quant::granularity_name(q.activation->spec.granularity),
                              q.activation->spec.symmetric ? " sym " : " asym ", quant::activation_method_name(q.activation->method),
                              q.activation->method == quant::ActivationMethod::kStatic
                                  ? to_text(" (", quant::observer_name(q.activation->observer.kind), ")")
                                  : "");
  if (q.qat) j["start_step"] = q.start_step;
  if (q.smooth_alpha) j["smoothquant_alpha"] = *q.smooth_alpha;
  return j;
}

std::string report_markdown(const io::json& rep) {
  std::ostringstream md;
  const auto& d = rep["dense"];
  const auto& c = rep["compressed"];
  md << "# sqz compress report\n\nRecipe: `" << rep["recipe"].get<std::string>() << "` (effective copy: `recipe.yaml`). Task `"
     << rep["task"].get<std::string>() << "`, dev split.\n\n";
  md << "| | dense | compressed |\n|---|---|---|\n";
  for (const char* k : {"accuracy", "macro_f1", "perplexity", "bits_per_byte"})
    if (d["eval"].contains(k)) md << "| " << k << " | " << fmt(d["eval"][k].get<double>()) << " | " << fmt(c["eval"][k].get<double>()) << " |\n";
  md << "| parameters | " << d["params"] << " | " << c["params"] << " |\n";
  md << "| encoder parameters (no embeddings) | " << d["encoder_params"] << " | " << c["encoder_params"] << " |\n";
  md << "| model.safetensors bytes | " << d["bytes"] << " | " << c["bytes"] << " |\n";
  for (size_t i = 0; i < d["latency"].size() && i < c["latency"].size(); ++i) {
    const auto& a = d["latency"][i];
    const auto& b = c["latency"][i];
    md << "| latency batch " << a["batch"] << " seq " << a["seq"] << " (" << a["threads"] << " threads, median ms) | "
       << fmt(a["median_ms"].get<double>()) << " | " << fmt(b["median_ms"].get<double>()) << " (x"
       << fmt(a["median_ms"].get<double>() / b["median_ms"].get<double>(), 3) << ") |\n";
    md << "| GFLOP per forward, batch " << a["batch"] << " | " << fmt(a["gflops"].get<double>()) << " | "
       << fmt(b["gflops"].get<double>()) << " (x" << fmt(a["gflops"].get<double>() / b["gflops"].get<double>(), 3) << ") |\n";
  }
  md << "\nEncoder parameters removed: " << fmt(100.0 * rep["encoder_params_removed"].get<double>(), 3) << "%. ";
  if (rep.contains("score_change")) md << "Accuracy change: " << fmt(100.0 * rep["score_change"].get<double>(), 3) << " points.\n";
  if (rep.contains("perplexity_change"))
    md << "Perplexity change: " << fmt(100.0 * rep["perplexity_change"].get<double>(), 3) << "%.\n";
  md << "\nEquivalence (the model in memory - masked" << (rep.contains("quantizers") ? ", fake-quantized" : "")
     << " - vs the saved model loaded back, first dev batches): max |logit difference| "
     << fmt(rep["equivalence"]["max_abs_logit_diff"].get<double>(), 3) << ", same prediction on " << rep["equivalence"]["same_predictions"]
     << " of " << rep["equivalence"]["compared"] << ".\n";
  if (rep.contains("speedup")) {
    md << "\n| layer | heads | FFN neurons |\n|---|---|---|\n";
    const auto& layers = rep["speedup"]["layers"];
    for (size_t l = 0; l < layers.size(); ++l)
      md << "| " << l << " | " << layers[l]["heads_after"] << " / " << layers[l]["heads_before"] << " | " << layers[l]["neurons_after"]
         << " / " << layers[l]["neurons_before"] << " |\n";
    md << "\nHidden size: " << rep["speedup"]["hidden_after"] << " / " << rep["speedup"]["hidden_before"] << ".\n";
    md << "\n![kept heads](plots/kept_per_layer.svg) ![kept neurons](plots/kept_neurons_per_layer.svg)\n";
    if (!rep["speedup"]["hf_loadable"].get<bool>())
      md << "\nThis shape does not fit the HF config of this family (per-layer FFN widths in `sqz_intermediate_sizes`, or a "
            "pruned hidden size with `sqz_attention_head_size`): sqz loads the model, `transformers` cannot.\n";
  }
  if (!rep["pruners"].empty()) md << "\n## Pruners\n\n| pruner | granularity | metric | target sparsity | achieved |\n|---|---|---|---|---|\n";
  for (const auto& p : rep["pruners"])
    md << "| " << p["name"].get<std::string>() << " | " << p["granularity"].get<std::string>() << " | " << p["metric"].get<std::string>()
       << " | " << fmt(p["target"].get<double>(), 3) << " | " << fmt(p["achieved"].get<double>(), 3) << " |\n";
  if (rep.contains("quantizers")) {
    md << "\n## Quantization\n\n| quantizer | mode | weights | activations |\n|---|---|---|---|\n";
    for (const auto& q : rep["quantizers"])
      md << "| " << q["name"].get<std::string>() << " | " << q["mode"].get<std::string>()
         << (q.contains("smoothquant_alpha") ? to_text(" + SmoothQuant (alpha ", fmt(q["smoothquant_alpha"].get<double>(), 2), ")") : "")
         << " | " << q.value("weight", "-") << " | " << q.value("activation", "-") << " |\n";
    md << "\n" << rep["quantized_layers"] << " linear layers exported as compressed-tensors (`" << rep["format"].get<std::string>()
       << "`). The compressed scores above are of the export as loaded back. Quantized latency is the runtime's to measure "
          "(libtorch only fake-quantizes).\n";
    if (rep.contains("fake_quantized"))
      md << "Fake-quantized model before export: " << rep["fake_quantized"]["eval"].dump() << ".\n";
    if (rep.contains("sparsity_verified"))
      md << "\n" << rep["sparsity_verified"]["structure"].get<std::string>() << " sparsity verified exactly in "
         << rep["sparsity_verified"]["tensors"] << " exported weights.\n";
  }
  md << "\nTraining: " << rep["train"]["steps"] << " steps in " << fmt(rep["train"]["wall_s"].get<double>(), 4) << " s.\n";
  return md.str();
}

}  // namespace

io::json run_compress(const CompressRecipe& r, const CompressOptions& options) {
  fs::path out(r.out);
  if (fs::exists(out) && !options.overwrite) fail_invalid(out.string(), ": output directory already exists (pass --overwrite)");
  StagingDir staging(out, options.overwrite);
  const fs::path dir = staging.path();
  // Ctrl-C stops at the next stage boundary (or training step) and unwinds: the staging dir goes.
  InterruptGuard interrupt_guard;
  auto stop_if_interrupted = [&](const char* when) {
    if (interrupt_requested()) fail_invalid("compression interrupted ", when, "; nothing was written to ", out.string());
  };
  train::find_task(r.train.task);
  for (const auto& p : r.prune)
    if (p.granularity == Granularity::kHidden && !r.speedup)
      fail_invalid(p.source, ": hidden-dimension pruning needs speedup: true (the masked norms exist only in memory)");

  train::TrainRecipe tr = r.train;
  tr.out = (dir / "train").string();
  if (!r.student.empty()) tr.model = make_student(r, dir / "student_init").string();
  auto tok = io::load_tokenizer(r.train.model);
  {
    // Attach everything to a throwaway copy first: a bad target, ratio, bit width or teacher
    // fails now, not after the dense measurements.
    auto probe = models::load_model(tr.model);
    CompressHooks(r).on_start(*probe.model, *tok, probe.config.value());
    for (const auto& q : r.quantize)
      if (!q.qat) quant::Quantizer(q).attach(*probe.model);
  }
  // The dense model as the user gave it: the reference for every number in the report.
  auto dense = models::load_model(r.train.model);
  Measured before = measure(*dense.model, *tok, dense.config, r, "dense", nullptr);
  dense.model.reset();
  stop_if_interrupted("while measuring the dense model");

  CompressHooks hooks(r);
  train::TrainResult result;
  if (r.train_steps_zero) {
    auto loaded = models::load_model(tr.model);
    result.model = loaded.model;
    result.config = loaded.config.value();
    fs::create_directories(dir / "train");
  } else {
    train::TrainOptions topts;
    topts.overwrite = true;
    topts.hooks = &hooks;
    topts.checkpoints = false;
    result = train::run_training(tr, topts);
    if (result.interrupted) fail_invalid("compression interrupted at step ", result.steps_done, "; nothing was written to ", out.string());
  }
  stop_if_interrupted("after training");
  auto& model = *result.model;
  model.eval();
  io::JsonFields config(result.config, (dir / "train").string());

  // reference_logits: what the saved model must reproduce (masked, and fake-quantized when QAT ran).
  std::vector<torch::Tensor> reference_logits, final_logits;
  // Masked weights cost as much as dense ones: only the shrunk model's latency is worth timing.
  Measured masked = measure(model, *tok, config, r, hooks.quantizers.empty() ? "masked" : "masked + fake-quantized", &reference_logits,
                            /*timed=*/false);
  io::json pruners = io::json::array();
  for (const auto& p : hooks.pruners)
    pruners.push_back({{"name", p->spec().name}, {"granularity", granularity_name(p->spec().granularity)},
                       {"metric", metric_name(p->spec().metric)}, {"target", p->spec().sparsity}, {"achieved", p->sparsity()}});
  quant::SparsityExport nm = nm_sparsity(hooks.pruners);
  nm.format = r.sparsity_format;
  std::vector<quant::QuantizedLayer> quantized;
  for (auto& q : hooks.quantizers) {
    auto layers = q->snapshot();  // before the masks are baked and the sites removed
    quantized.insert(quantized.end(), layers.begin(), layers.end());
  }
  // Families with dependency groups: bert, roberta, gpt2, opt.
  bool can_shrink = r.speedup && !r.prune.empty() && !model.structure().attention.empty();
  std::optional<speedup::GroupKeep> keep;
  if (can_shrink) keep = speedup::groups_from_masks(model);
  speedup::bake_masks(model);

  fs::path model_dir = dir / "model";
  fs::create_directories(model_dir);
  io::json report;
  if (keep) {
    auto sr = speedup::shrink_and_save(model, result.config, *keep, model_dir);
    report["speedup"] = sr.to_json();
  } else {
    if (r.speedup && !r.prune.empty()) log_warning("speedup: nothing to shrink structurally for this model; saving the masked weights");
    models::save_model(model, result.config, model_dir);
  }
  if (!quantized.empty()) quant::export_compressed_tensors(model, result.config, quantized, nm, model_dir);
  io::copy_tokenizer_files(tr.model, model_dir);
  result.model.reset();
  std::optional<Measured> fake_quant;
  if (has_ptq(r)) {
    // Post-training quantization of the model as saved (pruned, shrunk).
    reference_logits.clear();
    auto saved = models::load_model(model_dir);
    quantized = post_training_quantize(r, *saved.model, *tok, saved.config);
    fake_quant = measure(*saved.model, *tok, saved.config, r, "fake-quantized", &reference_logits, /*timed=*/false);
    quant::export_compressed_tensors(*saved.model, saved.config.value(), quantized, nm, model_dir);
  }
  auto compressed = quant::load_any_model(model_dir);
  // Fake quantization in libtorch is slower than float: quantized latency belongs to the runtime.
  Measured after = measure(*compressed.model, *tok, compressed.config, r, "compressed", &final_logits, quantized.empty());

  auto bytes_of = [](const fs::path& d) {
    io::Checkpoint ck(d);
    int64_t n = 0;
    for (const auto& name : ck.names()) n += static_cast<int64_t>(ck.entry(name).end - ck.entry(name).begin);
    return n;
  };
  auto side = [&](const Measured& m, int64_t bytes) {
    return io::json{{"eval", m.eval}, {"params", m.params}, {"encoder_params", m.params - m.embedding_params}, {"bytes", bytes},
                    {"latency", m.latency}};
  };
  report["recipe"] = r.source;
  report["task"] = r.train.task;
  report["dense"] = side(before, bytes_of(r.train.model));
  report["masked"] = {{"eval", masked.eval}};
  if (fake_quant) report["fake_quantized"] = {{"eval", fake_quant->eval}};
  if (!r.quantize.empty()) {
    io::json qs = io::json::array();
    for (const auto& q : r.quantize) qs.push_back(quantizer_summary(q));
    report["quantizers"] = qs;
    report["quantized_layers"] = quantized.size();
    report["format"] = compressed.config.value()["quantization_config"]["format"];
    if (nm.n > 0) report["sparsity_verified"] = {{"structure", to_text(nm.n, ":", nm.m)}, {"tensors", nm.targets.size()}};
  }
  report["compressed"] = side(after, bytes_of(model_dir));
  report["pruners"] = pruners;
  report["train"] = {{"steps", result.steps_done}, {"wall_s", result.wall_s}, {"last_eval", result.last_eval}};
  double enc_before = static_cast<double>(before.params - before.embedding_params);
  report["encoder_params_removed"] = 1.0 - static_cast<double>(after.params - after.embedding_params) / enc_before;
  report["params_removed"] = 1.0 - static_cast<double>(after.params) / static_cast<double>(before.params);
  if (before.eval.contains("accuracy")) report["score_change"] = after.eval["accuracy"].get<double>() - before.eval["accuracy"].get<double>();
  else if (before.eval.contains("perplexity"))
    report["perplexity_change"] = after.eval["perplexity"].get<double>() / before.eval["perplexity"].get<double>() - 1.0;
  int64_t compared = 0;
  int64_t same = same_predictions(reference_logits, final_logits, &compared);
  report["equivalence"] = {{"max_abs_logit_diff", max_abs_diff(reference_logits, final_logits)}, {"same_predictions", same}, {"compared", compared}};

  fs::create_directories(dir / "plots");
  if (report.contains("speedup")) {
    std::vector<std::string> cats;
    eval::Series heads{"heads kept", {}, {}}, heads_all{"heads before", {}, {}};
    eval::Series neurons{"FFN neurons kept", {}, {}}, neurons_all{"FFN neurons before", {}, {}};
    for (size_t l = 0; l < report["speedup"]["layers"].size(); ++l) {
      const auto& L = report["speedup"]["layers"][l];
      cats.push_back("layer " + std::to_string(l));
      heads.values.push_back(L["heads_after"].get<double>());
      heads_all.values.push_back(L["heads_before"].get<double>());
      neurons.values.push_back(L["neurons_after"].get<double>());
      neurons_all.values.push_back(L["neurons_before"].get<double>());
    }
    write_file_atomic(dir / "plots" / "kept_per_layer.svg",
                      eval::svg_bar_chart("Attention heads kept per layer", cats, {heads_all, heads}, "heads"));
    write_file_atomic(dir / "plots" / "kept_neurons_per_layer.svg",
                      eval::svg_bar_chart("FFN neurons kept per layer", cats, {neurons_all, neurons}, "neurons"));
  }
  write_file_atomic(dir / "recipe.yaml", r.to_yaml());
  io::write_json_file_atomic(dir / "report.json", report);
  write_file_atomic(dir / "report.md", report_markdown(report));
  fs::remove_all(dir / "student_init");
  stop_if_interrupted("while measuring the compressed model");
  staging.commit();
  log_info("compressed model: ", (out / "model").string(), "; report: ", (out / "report.md").string());
  return report;
}

Sweep Sweep::parse(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) fail_invalid("--sweep '", text, "': expected key=v1,v2,...");
  Sweep s{text.substr(0, eq), {}};
  std::stringstream ss(text.substr(eq + 1));
  for (std::string v; std::getline(ss, v, ',');)
    if (!v.empty()) s.values.push_back(v);
  if (s.values.empty()) fail_invalid("--sweep '", text, "': give at least one value");
  return s;
}

io::json run_sweep(const fs::path& recipe_path, const std::vector<std::string>& overrides, const std::vector<Sweep>& sweeps,
                   const CompressOptions& options) {
  auto base = CompressRecipe::load(recipe_path, overrides);
  fs::path out(base.out);
  if (fs::exists(out) && !options.overwrite) fail_invalid(out.string(), ": output directory already exists (pass --overwrite)");
  const size_t n = sweeps.front().values.size();
  for (const auto& s : sweeps)
    if (s.values.size() != n) fail_invalid("--sweep ", s.key, ": ", s.values.size(), " values, but ", sweeps.front().key, " has ", n);
  auto point_overrides = [&](size_t i) {
    auto o = overrides;
    for (const auto& s : sweeps) o.push_back(s.key + "=" + s.values[i]);
    return o;
  };
  for (size_t i = 0; i < n; ++i) CompressRecipe::load(recipe_path, point_overrides(i));  // every point is valid before any runs
  StagingDir staging(out, options.overwrite);
  InterruptGuard interrupt_guard;  // one for every point: Ctrl-C between points unwinds too
  io::json points = io::json::array();
  eval::Series score{"compressed", {}, {}}, dense{"dense", {}, {}};
  std::string metric;
  std::ostringstream md;
  md << "# sqz compress sweep\n\nRecipe `" << recipe_path.string() << "`; each point's report is in `point-<i>/report.md`.\n\n"
     << "| point | settings | encoder params removed | params removed | dev score | dense |\n|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < n; ++i) {
    auto o = point_overrides(i);
    std::string settings;
    for (const auto& s : sweeps) settings += (settings.empty() ? "" : ", ") + s.key + "=" + s.values[i];
    log_info("sweep point ", i + 1, " of ", n, ": ", settings);
    std::string dir = "point-" + std::to_string(i);
    o.push_back("out=" + (staging.path() / dir).string());
    auto rep = run_compress(CompressRecipe::load(recipe_path, o), {true});
    metric = rep["dense"]["eval"].contains("accuracy") ? "accuracy" : "perplexity";
    double removed = rep["encoder_params_removed"].get<double>();
    points.push_back({{"settings", settings}, {"encoder_params_removed", removed}, {"params_removed", rep["params_removed"]},
                      {metric, rep["compressed"]["eval"][metric]}, {"dense_" + metric, rep["dense"]["eval"][metric]},
                      {"report", (out / dir / "report.md").string()}});
    score.x.push_back(100.0 * removed);
    score.values.push_back(rep["compressed"]["eval"][metric].get<double>());
    dense.x.push_back(100.0 * removed);
    dense.values.push_back(rep["dense"]["eval"][metric].get<double>());
    md << "| " << i << " | " << settings << " | " << fmt(100 * removed, 3) << "% | " << fmt(100 * rep["params_removed"].get<double>(), 3)
       << "% | " << fmt(score.values.back()) << " | " << fmt(dense.values.back()) << " |\n";
  }
  md << "\n![dev score vs encoder parameters removed](sweep.svg)\n";
  io::json sweep = {{"recipe", recipe_path.string()}, {"points", points}};
  io::write_json_file_atomic(staging.path() / "sweep.json", sweep);
  write_file_atomic(staging.path() / "sweep.md", md.str());
  write_file_atomic(staging.path() / "sweep.svg",
                    eval::svg_line_chart("Dev " + metric + " vs encoder parameters removed", {dense, score},
                                         "encoder parameters removed (%)", metric));
  staging.commit();
  return sweep;
}

}  // namespace sqz::compress
