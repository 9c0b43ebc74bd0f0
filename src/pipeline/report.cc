// Stage "report" of `sqz compress`: the report's JSON (dense vs compressed, pruners, quantizers,
// equivalence of the saved model), its markdown and its plots.
#include <sstream>

#include "core/format.h"
#include "eval/bench.h"
#include "eval/plot.h"
#include "io/safetensors.h"
#include "pipeline/stages.h"

namespace sqz::pipeline {

namespace {

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
  if (q.smooth_alpha) j["smoothquant_alpha"] = *q.smooth_alpha, j["smoothquant_unfoldable"] = q.smooth_unfoldable ? "scale" : "skip";
  return j;
}

std::string report_markdown(const io::json& rep) {
  std::ostringstream md;
  const auto& d = rep["dense"];
  const auto& c = rep["compressed"];
  md << "# sqz compress report\n\nRecipe: `" << rep["recipe"].get<std::string>() << "` (effective copy: `recipe.yaml`). Task `"
     << rep["task"].get<std::string>() << "`, dev split.\n\n";
  md << "| | dense | compressed |\n|---|---|---|\n";
  for (const char* k : {"accuracy", "macro_f1", "wer", "per", "perplexity", "bits_per_byte"})
    if (d["eval"].contains(k)) md << "| " << k << " | " << format_significant(d["eval"][k].get<double>()) << " | " << format_significant(c["eval"][k].get<double>()) << " |\n";
  md << "| parameters | " << d["params"] << " | " << c["params"] << " |\n";
  md << "| encoder parameters (no embeddings) | " << d["encoder_params"] << " | " << c["encoder_params"] << " |\n";
  md << "| model.safetensors bytes | " << d["bytes"] << " | " << c["bytes"] << " |\n";
  for (size_t i = 0; i < d["flops"].size() && i < c["flops"].size(); ++i) {
    const auto& a = d["flops"][i];
    const auto& b = c["flops"][i];
    md << "| GFLOP per forward, batch " << a["batch"] << " seq " << a["seq"] << " | " << format_significant(a["gflops"].get<double>()) << " | "
       << format_significant(b["gflops"].get<double>()) << " (x" << format_significant(a["gflops"].get<double>() / b["gflops"].get<double>(), 3) << ") |\n";
  }
  md << "\nEncoder parameters removed: " << format_significant(100.0 * rep["encoder_params_removed"].get<double>(), 3) << "%. ";
  if (rep.contains("score_change")) md << "Accuracy change: " << format_significant(100.0 * rep["score_change"].get<double>(), 3) << " points.\n";
  if (rep.contains("wer_change")) md << "WER change: " << format_significant(100.0 * rep["wer_change"].get<double>(), 3) << " points.\n";
  if (rep.contains("perplexity_change"))
    md << "Perplexity change: " << format_significant(100.0 * rep["perplexity_change"].get<double>(), 3) << "%.\n";
  md << "\nEquivalence (the model in memory - masked" << (rep.contains("quantizers") ? ", fake-quantized" : "")
     << " - vs the saved model loaded back, first dev batches): max |logit difference| "
     << format_significant(rep["equivalence"]["max_abs_logit_diff"].get<double>(), 3) << ", same prediction on " << rep["equivalence"]["same_predictions"]
     << " of " << rep["equivalence"]["compared"] << ".\n";
  if (rep.contains("speedup")) {
    md << "\n| layer | heads | FFN neurons |\n|---|---|---|\n";
    const auto& layers = rep["speedup"]["layers"];
    for (size_t l = 0; l < layers.size(); ++l) {
      const auto& L = layers[l];
      md << "| " << L.value("name", std::to_string(l)) << " | " << L["heads_after"] << " / " << L["heads_before"];
      if (L.contains("cross_heads_before")) md << " (cross " << L["cross_heads_after"] << " / " << L["cross_heads_before"] << ")";
      md << " | " << L["neurons_after"] << " / " << L["neurons_before"] << " |\n";
    }
    md << "\nHidden size: " << rep["speedup"]["hidden_after"] << " / " << rep["speedup"]["hidden_before"] << ".\n";
    md << "\n![kept heads](plots/kept_per_layer.svg) ![kept neurons](plots/kept_neurons_per_layer.svg)\n";
    if (!rep["speedup"]["hf_loadable"].get<bool>())
      md << "\nThis shape does not fit the HF config of this family (per-layer FFN widths in `sqz_intermediate_sizes`, or a "
            "pruned hidden size with `sqz_attention_head_size`): sqz loads the model, `transformers` cannot.\n";
  }
  if (!rep["pruners"].empty()) md << "\n## Pruners\n\n| pruner | granularity | metric | target sparsity | achieved |\n|---|---|---|---|---|\n";
  for (const auto& p : rep["pruners"])
    md << "| " << p["name"].get<std::string>() << " | " << p["granularity"].get<std::string>() << " | " << p["metric"].get<std::string>()
       << " | " << format_significant(p["target"].get<double>(), 3) << " | " << format_significant(p["achieved"].get<double>(), 3) << " |\n";
  if (rep.contains("quantizers")) {
    md << "\n## Quantization\n\n| quantizer | mode | weights | activations |\n|---|---|---|---|\n";
    for (const auto& q : rep["quantizers"])
      md << "| " << q["name"].get<std::string>() << " | " << q["mode"].get<std::string>()
         << (q.contains("smoothquant_alpha") ? to_text(" + SmoothQuant (alpha ", format_significant(q["smoothquant_alpha"].get<double>(), 2),
                                                                 q.value("smoothquant_unfoldable", "skip") == "scale" ? "; own factors where no norm folds them" : "",
                                                                 ")") : "")
         << " | " << q.value("weight", "-") << " | " << q.value("activation", "-") << " |\n";
    md << "\n" << rep["quantized_layers"] << " linear layers exported as compressed-tensors (`" << rep["format"].get<std::string>()
       << "`). The compressed scores above are of the export as loaded back (libtorch fake-quantizes; the int8 engines "
          "are timed in the bench section).\n";
    if (rep.contains("fake_quantized"))
      md << "Fake-quantized model before export: " << rep["fake_quantized"]["eval"].dump() << ".\n";
    if (rep.contains("sparsity_verified"))
      md << "\n" << rep["sparsity_verified"]["structure"].get<std::string>() << " sparsity verified exactly in "
         << rep["sparsity_verified"]["tensors"] << " exported weights.\n";
  }
  md << "\nTraining: " << rep["train"]["steps"] << " steps in " << format_significant(rep["train"]["wall_s"].get<double>(), 4) << " s.\n";
  if (rep.contains("bench")) {
    md << "\n## Speed and dev score on every engine\n\nThe compressed model (`model/`) against the model it came from, timed and "
          "scored in one `sqz bench` run (full tables, skipped engines and a command per row: `bench.md`):\n\n";
    eval::print_bench_comparison(rep["bench"], md);
  }
  return md.str();
}

int64_t checkpoint_bytes(const fs::path& dir) {
  io::Checkpoint ck(dir);
  int64_t n = 0;
  for (const auto& name : ck.names()) n += static_cast<int64_t>(ck.entry(name).end - ck.entry(name).begin);
  return n;
}

io::json side(const Measured& m, int64_t bytes) {
  return io::json{{"eval", m.eval}, {"params", m.params}, {"encoder_params", m.params - m.embedding_params}, {"bytes", bytes},
                  {"flops", m.flops}};
}

void write_kept_plots(const fs::path& plots, const io::json& speedup) {
  std::vector<std::string> cats;
  eval::Series heads{"heads kept", {}, {}}, heads_all{"heads before", {}, {}};
  eval::Series neurons{"FFN neurons kept", {}, {}}, neurons_all{"FFN neurons before", {}, {}};
  for (size_t l = 0; l < speedup["layers"].size(); ++l) {
    const auto& L = speedup["layers"][l];
    cats.push_back("layer " + L.value("name", std::to_string(l)));
    // A decoder layer's bar counts its self- and cross-attention heads together.
    heads.values.push_back(L["heads_after"].get<double>() + L.value("cross_heads_after", 0.0));
    heads_all.values.push_back(L["heads_before"].get<double>() + L.value("cross_heads_before", 0.0));
    neurons.values.push_back(L["neurons_after"].get<double>());
    neurons_all.values.push_back(L["neurons_before"].get<double>());
  }
  write_file_atomic(plots / "kept_per_layer.svg", eval::svg_bar_chart("Attention heads kept per layer", cats, {heads_all, heads}, "heads"));
  write_file_atomic(plots / "kept_neurons_per_layer.svg",
                    eval::svg_bar_chart("FFN neurons kept per layer", cats, {neurons_all, neurons}, "neurons"));
}

}  // namespace

io::json assemble_report(const CompressRun& run, const train::TrainResult& result,
                         const Saved& saved, const Measurements& m, const io::json& compressed_config) {
  const auto& r = run.recipe;
  io::json report;
  if (!saved.speedup.is_null()) report["speedup"] = saved.speedup;
  report["recipe"] = r.source;
  report["task"] = r.train.task;
  report["dense"] = side(m.dense, checkpoint_bytes(r.train.model));
  report["masked"] = {{"eval", m.masked.eval}};
  if (m.fake_quantized) report["fake_quantized"] = {{"eval", m.fake_quantized->eval}};
  if (!r.quantize.empty()) {
    io::json qs = io::json::array();
    for (const auto& q : r.quantize) qs.push_back(quantizer_summary(q));
    report["quantizers"] = qs;
    report["quantized_layers"] = saved.quantized.size();
    report["format"] = compressed_config["quantization_config"]["format"];
    if (saved.nm.n > 0) report["sparsity_verified"] = {{"structure", to_text(saved.nm.n, ":", saved.nm.m)}, {"tensors", saved.nm.targets.size()}};
  }
  report["compressed"] = side(m.compressed, checkpoint_bytes(saved.model_dir));
  report["pruners"] = saved.pruners;
  report["train"] = {{"steps", result.steps_done}, {"wall_s", result.wall_s}, {"last_eval", result.last_eval}};
  const auto& before = m.dense;
  const auto& after = m.compressed;
  double enc_before = static_cast<double>(before.params - before.embedding_params);
  report["encoder_params_removed"] = 1.0 - static_cast<double>(after.params - after.embedding_params) / enc_before;
  report["params_removed"] = 1.0 - static_cast<double>(after.params) / static_cast<double>(before.params);
  if (before.eval.contains("accuracy")) report["score_change"] = after.eval["accuracy"].get<double>() - before.eval["accuracy"].get<double>();
  else if (before.eval.contains("wer")) report["wer_change"] = after.eval["wer"].get<double>() - before.eval["wer"].get<double>();
  else if (before.eval.contains("perplexity"))
    report["perplexity_change"] = after.eval["perplexity"].get<double>() / before.eval["perplexity"].get<double>() - 1.0;
  int64_t compared = 0;
  int64_t same = same_predictions(m.reference_logits, m.final_logits, &compared);
  if (!m.bench.is_null()) report["bench"] = m.bench;
  report["equivalence"] = {{"max_abs_logit_diff", max_abs_diff(m.reference_logits, m.final_logits)}, {"same_predictions", same},
                           {"compared", compared}};
  return report;
}

void write_report(const CompressRun& run, const io::json& report) {
  fs::create_directories(run.dir / "plots");
  if (report.contains("speedup")) write_kept_plots(run.dir / "plots", report["speedup"]);
  write_file_atomic(run.dir / "recipe.yaml", run.recipe.to_yaml());
  io::write_json_file_atomic(run.dir / "report.json", report);
  write_file_atomic(run.dir / "report.md", report_markdown(report));
}

}  // namespace sqz::pipeline
