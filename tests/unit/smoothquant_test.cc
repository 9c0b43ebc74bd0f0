// SmoothQuant: folding the factors into pre-LN norms (GPT-2), and the factors a layer keeps of its
// own where no norm can take them (post-LN BERT; every model's attention output and FFN down
// projection) - the float model unchanged, the quantization error of outlier channels smaller,
// the export loaded back exactly and hostile smoothing entries refused.
#include <yaml-cpp/yaml.h>

#include <set>

#include "compress/quant/export.h"
#include "compress/quant/quantizer.h"
#include "compress/selector.h"
#include "io/json_file.h"
#include "unit/test_util.h"
#include "unit/tiny_models.h"

namespace sqz {
namespace {

quant::QuantizerSpec smoothquant_spec(const std::string& yaml) { return quant::QuantizerSpec::parse(YAML::Load(yaml), "test.yaml quantize[0]"); }

torch::Tensor smoothquant_logits(models::TransformerModel& m) {
  torch::NoGradGuard g;
  return m.forward(testing::inputs()).at("logits");
}

torch::Tensor smoothquant_hidden(models::TransformerModel& m) {
  torch::NoGradGuard g;
  return m.forward(testing::inputs()).at("last_hidden_state");
}

// Both calibration passes: SmoothQuant's ranges, smooth() (returning what it smoothed), the real one.
int calibrate_smoothed(quant::Quantizer& q, models::TransformerModel& m) {
  torch::NoGradGuard g;
  auto pass = [&] {
    q.begin_calibration();
    for (uint64_t s = 10; s < 13; ++s) m.forward(testing::inputs(s));
  };
  int smoothed = 0;
  if (q.spec().smooth_alpha) pass(), smoothed = q.smooth(m);
  pass();
  q.end_calibration();
  return smoothed;
}

// SmoothQuant on a GPT-2 whose first block's norms make a few input channels 40x larger than the
// rest (the outliers SmoothQuant is about): folding the factors leaves the float model as it was,
// and W8A6 with per-tensor static activation ranges then errs less than without smoothing.
TEST(SmoothQuant, FoldingKeepsTheFloatModelAndShrinksTheErrorOfOutlierChannels) {
  const std::string plain = "{targets: {types: [linear]}, weight: {bits: 8}, activation: {bits: 6, observer: minmax}}";
  const std::string smooth = "{targets: {types: [linear]}, weight: {bits: 8}, activation: {bits: 6, observer: minmax}, smoothquant: {alpha: 0.5}}";
  auto with_outliers = [] {
    auto m = testing::tiny_model(testing::tiny_gpt2_config());
    torch::NoGradGuard g;
    for (const char* norm : {"transformer.h.0.ln_1.weight", "transformer.h.0.ln_2.weight", "transformer.h.1.ln_1.weight"})
      m->named_parameters()[norm].index_put_({torch::tensor({3, 17, 30})}, torch::full({3}, 40.0));
    return m;
  };
  auto logits = [](models::TransformerModel& m) {
    torch::NoGradGuard g;
    return m.forward(testing::inputs()).at("logits");
  };
  auto reference = logits(*with_outliers());
  auto error_of = [&](const std::string& yaml) {
    auto m = with_outliers();
    quant::Quantizer q(smoothquant_spec(yaml));
    q.attach(*m);
    if (q.spec().smooth_alpha) {
      torch::NoGradGuard g;
      q.begin_calibration();
      for (uint64_t s = 10; s < 13; ++s) m->forward(testing::inputs(s));
      EXPECT_EQ(q.smooth(*m), 4);  // ln_1 and ln_2 of both blocks
      EXPECT_TRUE(testing::all_close(logits(*m), reference, 1e-4, 1e-5));  // same float function
      EXPECT_GT((m->named_parameters()["transformer.h.0.ln_1.weight"] - 1.0).abs().max().item<float>(), 0.1f);
    }
    {
      torch::NoGradGuard g;
      q.begin_calibration();
      for (uint64_t s = 10; s < 13; ++s) m->forward(testing::inputs(s));
      q.end_calibration();
    }
    return (logits(*m) - reference).abs().max().item<float>();
  };
  const float e_plain = error_of(plain), e_smooth = error_of(smooth);
  EXPECT_LT(e_smooth, 0.7f * e_plain) << "plain " << e_plain << ", smoothed " << e_smooth;

  // BERT's norms are post-LN (they also feed the residual): nothing can be folded, and it says so.
  auto bert = testing::tiny_bert();
  quant::Quantizer q(smoothquant_spec(smooth));
  auto e = testing::error_of([&] { q.attach(*bert); });  // at attach, before any calibration
  EXPECT_NE(e.find("post-LN norms (bert) also feed the residual: smoothquant: {unfoldable: scale}"), std::string::npos) << e;
  // Smoothing without its calibration pass has no ranges to work from.
  auto gpt2 = testing::tiny_model(testing::tiny_gpt2_config());
  quant::Quantizer early(smoothquant_spec(smooth));
  early.attach(*gpt2);
  e = testing::error_of([&] { early.smooth(*gpt2); });
  EXPECT_NE(e.find("(transformer.h.0.attn.c_attn): smoothquant saw no calibration inputs"), std::string::npos) << e;
}

// A post-LN BERT whose embedding and attention-output norms make three channels 40x larger: with
// `unfoldable: scale` every Linear gets its own factors (nothing is folded, so the float model's
// parameters stay as they were), W8A6 errs less than without smoothing, and the export carries
// the factors under a format compressed-tensors does not claim, loaded back to the same logits.
TEST(SmoothQuant, PostLnTargetsCarryTheirOwnFactors) {
  const std::string plain = "{targets: {types: [linear]}, weight: {bits: 8}, activation: {bits: 6, observer: minmax}}";
  const std::string smooth =
      "{targets: {types: [linear]}, weight: {bits: 8}, activation: {bits: 6, observer: minmax}, smoothquant: {alpha: 0.5, unfoldable: scale}}";
  auto with_outliers = [] {
    auto m = testing::tiny_bert();
    torch::NoGradGuard g;
    for (const char* norm : {"bert.embeddings.LayerNorm.weight", "bert.encoder.layer.0.attention.output.LayerNorm.weight"})
      m->named_parameters()[norm].index_put_({torch::tensor({3, 17, 30})}, torch::full({3}, 40.0));
    return m;
  };
  auto reference = smoothquant_hidden(*with_outliers());
  const int64_t linears = static_cast<int64_t>(compress::Selector::parse(YAML::Load("{types: [linear]}"), "t")
                                                   .select(compress::list_layers(*with_outliers()))
                                                   .size());
  auto run = [&](const std::string& yaml, testing::ScratchDir* export_dir) {
    auto m = with_outliers();
    auto before = m->named_parameters()["bert.encoder.layer.0.attention.self.query.weight"].clone();
    quant::Quantizer q(smoothquant_spec(yaml));
    q.attach(*m);
    const int smoothed = calibrate_smoothed(q, *m);
    if (q.spec().smooth_alpha) {
      EXPECT_EQ(smoothed, linears);
      EXPECT_TRUE(torch::equal(m->named_parameters()["bert.encoder.layer.0.attention.self.query.weight"], before));
    }
    auto fq = smoothquant_hidden(*m);
    if (export_dir) {
      quant::export_compressed_tensors(*m, testing::tiny_bert_config(), q.snapshot(), {}, export_dir->path());
      EXPECT_TRUE(testing::all_close(smoothquant_hidden(*quant::load_any_model(export_dir->path()).model), fq, 1e-6, 1e-6));
    }
    return (fq - reference).abs().max().item<float>();
  };
  testing::ScratchDir dir("smoothed-export");
  const float e_plain = run(plain, nullptr), e_smooth = run(smooth, &dir);
  EXPECT_LT(e_smooth, 0.7f * e_plain) << "plain " << e_plain << ", smoothed " << e_smooth;
  auto qc = io::JsonFields::from_file(dir / "config.json").value()["quantization_config"];
  EXPECT_EQ(qc["format"], "sqz-smoothed-int-quantized");
  EXPECT_EQ(static_cast<int64_t>(qc["input_smoothing"].size()), linears);

  // Hostile smoothing entries are refused by name: not a layer, or a layer without stored factors.
  auto config = io::JsonFields::from_file(dir / "config.json").value();
  auto refusal = [&](const io::json& list) {
    auto c = config;
    c["quantization_config"]["input_smoothing"] = list;
    io::write_json_file_atomic(dir / "config.json", c);
    return testing::error_of([&] { quant::load_any_model(dir.path()); });
  };
  auto e = refusal({"bert.encoder.nothing"});
  EXPECT_NE(e.find("input_smoothing: \"bert.encoder.nothing\" is not a linear layer"), std::string::npos) << e;
  e = refusal(io::json::object());
  EXPECT_NE(e.find("input_smoothing: expected a list of module names"), std::string::npos) << e;
}

// On a pre-LN Llama, `unfoldable: scale` folds into the RMSNorms where it can and gives the
// attention output and down projections factors of their own.
TEST(SmoothQuant, PreLnModelsFoldWhereTheyCanAndScaleTheRest) {
  auto m = testing::tiny_model(testing::arch_config("llama"));
  quant::Quantizer q(smoothquant_spec("{targets: {types: [linear], exclude: [lm_head]}, weight: {bits: 8}, activation: {bits: 8}, "
                               "smoothquant: {alpha: 0.5, unfoldable: scale}}"));
  q.attach(*m);
  const int layers = static_cast<int>(m->structure().attention.size());
  const int smoothed = calibrate_smoothed(q, *m);
  // Per layer q/k/v (one norm) and gate/up (another) are folded; o_proj, down_proj and the head
  // outside the blocks keep factors of their own.
  std::set<std::string> own;
  for (const auto& l : q.snapshot())
    if (l.input_smoothing.defined()) own.insert(l.name);
  EXPECT_EQ(smoothed, 2 * layers + static_cast<int>(own.size()));
  EXPECT_EQ(static_cast<int>(own.size()), static_cast<int>(q.snapshot().size()) - 5 * layers);
  EXPECT_TRUE(own.count("model.layers.0.self_attn.o_proj") && own.count("model.layers.1.mlp.down_proj"));
  EXPECT_FALSE(own.count("model.layers.0.self_attn.q_proj") || own.count("model.layers.0.mlp.up_proj"));
}

}  // namespace
}  // namespace sqz
