// ViT under compression: SpeedUp of pruned heads and neurons, and W8A8 post-training
// quantization with SmoothQuant (calibrated on random pixel batches) exported as compressed-tensors.
#include <yaml-cpp/yaml.h>

#include "compress/quant/export.h"
#include "compress/quant/quantizer.h"
#include "models/registry.h"
#include "speedup/speedup.h"
#include "unit/pruner_cases.h"
#include "unit/test_util.h"
#include "unit/tiny_models.h"

namespace sqz {
namespace {

using compress::Pruner;
using testing::prune_with;
using testing::spec;
using testing::tiny_model;

const io::json kVitConfig = {{"model_type", "vit"}, {"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
                             {"intermediate_size", 48}, {"image_size", 16}, {"patch_size", 4}, {"num_labels", 3},
                             {"architectures", {"ViTForImageClassification"}}};

models::ModelInputs pixels(uint64_t seed) {
  torch::manual_seed(seed);
  models::ModelInputs in;
  in.pixel_values = torch::randn({2, 3, 16, 16});
  return in;
}

torch::Tensor logits_of(models::TransformerModel& model, uint64_t seed = 1) {
  torch::NoGradGuard g;
  model.eval();
  return model.forward(pixels(seed)).at("logits");
}

// ViT: pruned heads go to HF's pruned_heads and one FFN width to intermediate_size, so the shrunk
// model is a plain HF ViT config; its logits are the masked model's.
TEST(VisionSpeedup, HeadsAndNeuronsAreCutExactly) {
  const io::json& config = kVitConfig;
  auto m = tiny_model(config);
  auto forward = [](models::TransformerModel& model) { return logits_of(model); };
  auto dense = forward(*m);
  // The pruners own the masks their sites read: they live as long as the masked model is used.
  Pruner heads(spec("granularity: head\nmetric: l2\nsparsity: 0.5"));
  Pruner neurons(spec("granularity: neuron\nmetric: magnitude\nsparsity: 0.25"));
  for (Pruner* p : {&heads, &neurons}) prune_with(*p, *m, [](int) { return torch::Tensor(); });
  auto masked = forward(*m);
  EXPECT_GT((masked - dense).abs().max().item<double>(), 1e-6);
  auto keep = speedup::groups_from_masks(*m);
  speedup::bake_masks(*m);
  testing::ScratchDir dir("speedup-vit");
  auto report = speedup::shrink_and_save(*m, config, keep, dir.path());
  EXPECT_TRUE(report.hf_loadable);
  const auto saved = io::read_json_file(dir.path() / "config.json");
  EXPECT_EQ(saved["intermediate_size"], 36);
  EXPECT_EQ(saved["pruned_heads"]["0"].size(), 2u);
  auto shrunk = models::load_model(dir.path());
  EXPECT_TRUE(testing::all_close(forward(*shrunk.model), masked, 1e-5, 1e-4));
  EXPECT_EQ(shrunk.model->structure().attention[1].num_heads, 2);
}


// W8A8 PTQ: int8 weights per channel, uint8 inputs per tensor with static min-max ranges after
// SmoothQuant folding; the fake-quantized ViT stays close to the float one, and the exported
// compressed-tensors dir loads back as exactly the fake-quantized model.
TEST(VisionQuant, W8A8WithSmoothQuantStaysCloseAndExportsExactly) {
  auto m = tiny_model(kVitConfig);
  auto float_logits = logits_of(*m);
  quant::Quantizer q(quant::QuantizerSpec::parse(
      YAML::Load("{targets: {types: [linear]}, weight: {bits: 8, symmetric: true, granularity: channel}, "
                 "activation: {bits: 8, symmetric: false, method: static, observer: minmax}, smoothquant: {alpha: 0.5}}"),
      "test.yaml quantize[0]"));
  q.attach(*m);
  auto calibration_pass = [&] {
    torch::NoGradGuard g;
    q.begin_calibration();
    for (uint64_t s = 10; s < 14; ++s) m->forward(pixels(s));
  };
  calibration_pass();
  q.smooth(*m);
  calibration_pass();
  q.end_calibration();
  auto fq_logits = logits_of(*m);
  const double error = (fq_logits - float_logits).abs().max().item<double>();
  EXPECT_GT(error, 0.0);  // quantization did something
  EXPECT_LT(error, 0.05 * float_logits.abs().max().item<double>()) << fq_logits << float_logits;
  EXPECT_TRUE(fq_logits.argmax(-1).equal(float_logits.argmax(-1)));
  testing::ScratchDir dir("vit-w8a8");
  quant::export_compressed_tensors(*m, kVitConfig, q.snapshot(), {}, dir.path());
  auto loaded = quant::load_any_model(dir.path());
  EXPECT_TRUE(testing::all_close(logits_of(*loaded.model), fq_logits, 1e-6, 1e-6));
}

}  // namespace
}  // namespace sqz
