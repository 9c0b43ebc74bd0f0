// The ViT runtime engine against libtorch: fp32 equals the eager model (1e-4 relative), including
// layers whose heads and FFN neurons were pruned; int8, int8-2:4 and bf16 equal the model
// fake-quantized (rounded) as the engine quantizes; a packed runtime dir runs what the engine ran.
#include <gtest/gtest.h>

#include "runtime/engine.h"
#include "runtime/runtime_dir.h"
#include "runtime/vit_encoder.h"
#include "unit/runtime_reference.h"
#include "unit/test_util.h"
#include "unit/tiny_models.h"

namespace sqz {
namespace {

using testing::relative_error;

io::json vit_config() { return testing::tiny_vit_config(); }

// HF's init leaves biases at zero and norms at one, which would hide a dropped bias or a swapped
// norm: every parameter gets noise.
std::shared_ptr<models::TransformerModel> vit(const io::json& config) {
  auto model = testing::tiny_model(config);
  torch::NoGradGuard g;
  torch::manual_seed(11);
  for (auto& p : model->named_parameters()) p.value().add_(torch::randn_like(p.value()) * 0.05);
  model->eval();
  return model;
}

torch::Tensor pixels() {
  torch::manual_seed(7);
  return torch::randn({3, 3, 16, 16});
}

struct VitCompared {
  double hidden, logits;
};

VitCompared compare(models::TransformerModel& reference, const runtime::VitEncoder& engine) {
  torch::NoGradGuard g;
  models::ModelInputs in;
  in.pixel_values = pixels();
  auto want = reference.forward(in);
  auto got = engine.forward(in.pixel_values);
  EXPECT_EQ(got.seq, 17);
  return {relative_error(got.last_hidden_state, want.at("last_hidden_state")), relative_error(got.logits, want.at("logits"))};
}

TEST(VitRuntime, Fp32EqualsLibtorch) {
  auto model = vit(vit_config());
  runtime::VitEncoder engine(testing::loaded_model(model, vit_config()), {runtime::Precision::kFp32, 2});
  auto r = compare(*model, engine);
  EXPECT_LT(r.hidden, 1e-4);
  EXPECT_LT(r.logits, 1e-4);
}

// What SpeedUp leaves: layer 0 with one of two heads (HF's pruned_heads), a narrower FFN.
TEST(VitRuntime, PrunedLayersEqualLibtorch) {
  auto config = vit_config();
  config["pruned_heads"] = {{"0", {1}}};
  config["intermediate_size"] = 20;
  auto model = vit(config);
  ASSERT_EQ(model->structure().attention[0].num_heads, 1);
  runtime::VitEncoder engine(testing::loaded_model(model, config), {runtime::Precision::kFp32, 1});
  auto r = compare(*model, engine);
  EXPECT_LT(r.hidden, 1e-4);
  EXPECT_LT(r.logits, 1e-4);
}

TEST(VitRuntime, Int8AndBf16EqualTheModelQuantizedAsTheEngineDoes) {
  for (auto precision : {runtime::Precision::kInt8, runtime::Precision::kBf16}) {
    SCOPED_TRACE(runtime::precision_name(precision));
    auto model = vit(vit_config());
    runtime::VitEncoder engine(testing::loaded_model(model, vit_config()), {precision, 2});
    const auto unquantized = compare(*model, engine);
    testing::fake_quantize_like_engine(*model, precision);
    const auto r = compare(*model, engine);
    // The comparison can tell: the engine is far closer to the quantized model than to the float one.
    EXPECT_GT(unquantized.hidden, 20 * r.hidden);
    EXPECT_LT(r.hidden, 1e-5);
    EXPECT_LT(r.logits, 1e-5);
  }
}

// 2:4: the blocks' weights keep the two largest of every four inputs; the int8-2:4 engine runs
// them on the sparse kernel and equals the pruned model quantized as int8.
TEST(VitRuntime, Int8Sparse24EqualsThePrunedQuantizedModel) {
  auto model = vit(vit_config());
  {
    torch::NoGradGuard g;
    for (const auto& lin : model->structure().block_linears()) {
      auto w = lin->weight.view({lin->weight.size(0), -1, 4});
      auto keep = std::get<1>(w.abs().topk(2, -1));
      w.copy_(torch::zeros_like(w).scatter(-1, keep, w.gather(-1, keep)));
    }
  }
  runtime::VitEncoder engine(testing::loaded_model(model, vit_config()), {runtime::Precision::kInt8Sparse24, 2});
  testing::fake_quantize_like_engine(*model, runtime::Precision::kInt8);
  const auto r = compare(*model, engine);
  EXPECT_LT(r.hidden, 1e-5);
  EXPECT_LT(r.logits, 1e-5);
}

// sqz pack's path: the engine saved as a runtime dir and opened again runs the same numbers, and
// the text-only commands refuse it by name.
TEST(VitRuntime, RuntimeDirRunsWhatTheEngineRan) {
  auto model = vit(vit_config());
  auto engine = runtime::build_engine(testing::loaded_model(model, vit_config()), "int8", 2);
  ASSERT_TRUE(engine.vision);
  testing::ScratchDir dir("vit-pack");
  runtime::RuntimeDirWriter writer;
  writer.write(dir.path(), engine.vision->save(writer));
  auto opened = runtime::open_runtime_dir(dir.path(), "", 2);
  ASSERT_TRUE(opened.vision);
  EXPECT_EQ(opened.precision(), runtime::Precision::kInt8);
  const auto a = engine.vision->forward(pixels()), b = opened.vision->forward(pixels());
  EXPECT_EQ(a.logits, b.logits);
  EXPECT_EQ(a.last_hidden_state, b.last_hidden_state);
  EXPECT_THROW(opened.require_text("bench"), std::exception);
  EXPECT_THROW(engine.vision->forward(torch::randn({1, 3, 8, 8})), std::exception);
}

}  // namespace
}  // namespace sqz
