// Every pruner and SpeedUp on encoder-decoders (T5, BART).
#include "models/generation.h"
#include "models/registry.h"
#include "speedup/speedup.h"
#include "unit/pruner_cases.h"
#include "unit/test_util.h"
#include "unit/tiny_models.h"

namespace sqz {
namespace {

using compress::Pruner;
using testing::ArchPruner;
using testing::inputs;
using testing::prune_with;
using testing::pruner_cases;
using testing::spec;
using testing::tiny_model;

// Encoder-decoders (T5, BART as ForConditionalGeneration): every pruner masks encoder, decoder and
// cross-attention groups in the stated ratios, baking the masks into the weights changes no logit,
// and SpeedUp's smaller model, loaded back, computes the masked model's logits. (T5's RMS norms
// have no hidden groups.)
class EncoderDecoderPrunerTest : public ::testing::TestWithParam<ArchPruner> {};

io::json tiny_seq2seq_config(const std::string& arch) {
  if (arch == "t5")
    return {{"model_type", "t5"}, {"vocab_size", 97}, {"d_model", 32}, {"d_kv", 8}, {"d_ff", 48}, {"num_layers", 2},
            {"num_heads", 4}, {"feed_forward_proj", "gated-gelu"}, {"architectures", {"T5ForConditionalGeneration"}}};
  return {{"model_type", "bart"}, {"vocab_size", 97}, {"d_model", 32}, {"encoder_layers", 2}, {"decoder_layers", 2},
          {"encoder_attention_heads", 4}, {"decoder_attention_heads", 4}, {"encoder_ffn_dim", 48}, {"decoder_ffn_dim", 48},
          {"max_position_embeddings", 40}, {"scale_embedding", true}, {"architectures", {"BartForConditionalGeneration"}}};
}

TEST_P(EncoderDecoderPrunerTest, MasksEveryStackAndBakesExactly) {
  const auto& [arch, c] = GetParam();
  if (arch == "t5" && c.yaml.find("granularity: hidden") != std::string::npos) GTEST_SKIP();
  auto m = tiny_model(tiny_seq2seq_config(arch));
  auto seq2seq_inputs = [](int seed) {
    auto in = inputs(seed);
    in.decoder_input_ids = torch::randint(3, 97, {3, 5}, torch::kLong);
    return in;
  };
  auto forward = [&](int seed) { return m->forward(seq2seq_inputs(seed)).at("logits"); };
  torch::Tensor dense;
  {
    torch::NoGradGuard g;
    dense = forward(5);
  }
  Pruner p(spec(c.yaml));
  prune_with(p, *m, [&](int i) {
    auto logits = forward(10 + i);
    return torch::nn::functional::cross_entropy(logits.reshape({-1, 97}), torch::randint(0, 97, {15}, torch::kLong));
  });
  const auto structure = m->structure();
  EXPECT_EQ(structure.attention.size(), 6u);  // 2 encoder self, 2 decoder self, 2 cross
  auto report = p.report();
  ASSERT_FALSE(report.empty());
  if (p.spec().granularity == compress::Granularity::kHead && p.spec().scope == compress::Scope::kLayer &&
      p.spec().metric != compress::Metric::kMovement)
    EXPECT_EQ(report.size(), 6u);
  for (const auto& u : report)
    if (p.spec().scope == compress::Scope::kLayer && !(p.spec().metric == compress::Metric::kMovement && p.spec().soft))
      EXPECT_EQ(u.total - u.kept, std::llround(p.spec().sparsity * static_cast<double>(u.total))) << u.name;
  torch::NoGradGuard g;
  auto masked = forward(5);
  EXPECT_GT((masked - dense).abs().max().item<double>(), 1e-6) << "the pruner changed nothing";
  auto keep = speedup::groups_from_masks(*m);
  speedup::bake_masks(*m);
  EXPECT_TRUE(testing::all_close(forward(5), masked, 1e-6, 1e-5));
  ASSERT_TRUE(speedup::can_shrink(*m));
  testing::ScratchDir dir("speedup-" + arch);
  auto speedup_report = speedup::shrink_and_save(*m, tiny_seq2seq_config(arch), keep, dir.path());
  auto shrunk = models::load_model(dir.path());
  shrunk.model->eval();
  EXPECT_TRUE(testing::all_close(shrunk.model->forward(seq2seq_inputs(5)).at("logits"), masked, 1e-5, 1e-4)) << c.name;
  ASSERT_EQ(speedup_report.layers.size(), 4u);  // encoder 0, 1; decoder 0, 1 (with cross-attention)
  EXPECT_EQ(speedup_report.layers[2].name, "decoder 0");
  EXPECT_EQ(speedup_report.layers[2].cross_heads_before, 4);
  if (p.spec().granularity == compress::Granularity::kHead || p.spec().granularity == compress::Granularity::kNeuron ||
      p.spec().granularity == compress::Granularity::kHidden)
    EXPECT_LT(speedup_report.params_after, speedup_report.params_before) << c.name;
  const auto config = io::read_json_file(dir.path() / "config.json");
  if (p.spec().granularity == compress::Granularity::kHead) {
    // Per-layer pruning reaches every stack; global pruning may leave one whole.
    const bool every_stack = p.spec().scope == compress::Scope::kLayer && p.spec().metric != compress::Metric::kMovement;
    int stacks = 0;
    for (const char* key : {"sqz_encoder_pruned_heads", "sqz_decoder_pruned_heads", "sqz_cross_pruned_heads"}) {
      stacks += config.contains(key);
      if (every_stack) EXPECT_TRUE(config.contains(key)) << key << " " << config.dump();
    }
    EXPECT_GT(stacks, 0) << config.dump();
    EXPECT_FALSE(speedup_report.hf_loadable);
  }
}

INSTANTIATE_TEST_SUITE_P(Pruners, EncoderDecoderPrunerTest, ::testing::Combine(::testing::Values("t5", "bart"), ::testing::ValuesIn(pruner_cases())),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param).name; });

// A BART encoder layer whose heads are all pruned keeps zero-width projections: the block adds
// only its output bias, in the masked model and in the shrunk one, and generation caches still work.
TEST(EncoderDecoderSpeedup, EmptyAttentionLayerIsCutExactly) {
  auto m = tiny_model(tiny_seq2seq_config("bart"));
  Pruner p(spec("granularity: head\nmetric: l2\nsparsity: 0.9\nallow_empty_layers: true\ntargets: {layers: [0, 2]}"));
  prune_with(p, *m, [](int) { return torch::Tensor(); });
  auto in = inputs(1);
  in.decoder_input_ids = torch::randint(3, 97, {3, 5}, torch::kLong);
  torch::NoGradGuard g;
  m->eval();
  auto masked = m->forward(in).at("logits");
  auto keep = speedup::groups_from_masks(*m);
  EXPECT_TRUE(keep.heads[0].empty());
  speedup::bake_masks(*m);
  testing::ScratchDir dir("speedup-empty");
  speedup::shrink_and_save(*m, tiny_seq2seq_config("bart"), keep, dir.path());
  auto shrunk = models::load_model(dir.path());
  shrunk.model->eval();
  EXPECT_TRUE(testing::all_close(shrunk.model->forward(in).at("logits"), masked, 1e-5, 1e-4));
  auto ids = torch::randint(4, 97, {2, 6}, torch::kLong);
  EXPECT_TRUE(models::generate_seq2seq_greedy(*shrunk.model, ids, torch::ones_like(ids), 4)
                  .equal(models::generate_seq2seq_greedy(*m, ids, torch::ones_like(ids), 4)));
}

}  // namespace
}  // namespace sqz
