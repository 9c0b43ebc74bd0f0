// The encoder-decoder runtime engine (BART and T5) against libtorch: fp32 equals the eager model
// (1e-4 relative) on padded sources, including layers whose self- or cross-attention heads and FFN
// neurons were pruned (T5: each kept head reads its own column of the relative position bias);
// step-by-step decoding equals one pass; greedy decoding picks the tokens
// models::generate_seq2seq_greedy picks and beam search what models::beam_search picks; int8 and bf16 equal the model fake-quantized (rounded)
// as the engine quantizes; a packed runtime dir runs what the engine ran.
#include <gtest/gtest.h>

#include "models/beam_search.h"
#include "models/generation.h"
#include "runtime/encoder_decoder.h"
#include "runtime/engine.h"
#include "runtime/runtime_dir.h"
#include "unit/runtime_reference.h"
#include "unit/test_util.h"
#include "unit/tiny_models.h"

namespace sqz {
namespace {

using testing::relative_error;

constexpr int64_t kVocab = 41;

io::json config(const std::string& family) { return family == "t5" ? testing::tiny_t5_config() : testing::tiny_bart_config(); }

// HF's init leaves biases at zero and norms at one, which would hide a dropped bias or a swapped
// norm: every parameter (final_logits_bias too) gets noise.
std::shared_ptr<models::TransformerModel> noisy_model(const io::json& config) {
  auto model = testing::tiny_model(config);
  torch::NoGradGuard g;
  torch::manual_seed(11);
  for (auto& p : model->named_parameters()) p.value().add_(torch::randn_like(p.value()) * 0.05);
  model->eval();
  return model;
}

struct Inputs {
  torch::Tensor ids, mask, decoder_ids;
};

// Row 1's source is padded at the end (BART pads right); decoder inputs start from the start token.
Inputs inputs() {
  torch::manual_seed(5);
  Inputs in{torch::randint(3, kVocab, {2, 7}, torch::kLong), torch::ones({2, 7}, torch::kLong),
            torch::randint(3, kVocab, {2, 5}, torch::kLong)};
  in.mask.index_put_({1, torch::indexing::Slice(4)}, 0);
  in.ids.index_put_({1, torch::indexing::Slice(4)}, 1);
  in.decoder_ids.index_put_({torch::indexing::Slice(), 0}, 2);
  return in;
}

struct Seq2SeqCompared {
  double memory, logits;
};

Seq2SeqCompared compare(models::TransformerModel& reference, const runtime::EncoderDecoder& engine) {
  torch::NoGradGuard g;
  const auto in = inputs();
  models::ModelInputs mi;
  mi.input_ids = in.ids;
  mi.attention_mask = in.mask;
  mi.decoder_input_ids = in.decoder_ids;
  auto want = reference.forward(mi);
  auto ids = in.ids.contiguous(), mask = in.mask.contiguous(), dec = in.decoder_ids.contiguous();
  auto memory = engine.encode(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), 2, 7);
  auto cache = engine.new_cache(memory, mask.data_ptr<int64_t>(), 2, 7, 5);
  auto logits = engine.decode(cache, dec.data_ptr<int64_t>(), 5, true);
  // Padded source positions' encoder states are not meaningful: compare the real ones.
  auto real = in.mask.to(torch::kBool).unsqueeze(-1).expand({2, 7, 32});
  auto got_memory = torch::from_blob(memory.data(), {2, 7, 32}, torch::kFloat32).masked_select(real).contiguous();
  std::vector<float> got(got_memory.data_ptr<float>(), got_memory.data_ptr<float>() + got_memory.numel());
  return {relative_error(got, want.at("encoder_last_hidden_state").masked_select(real)), relative_error(logits, want.at("logits"))};
}

class Seq2SeqRuntime : public ::testing::TestWithParam<std::string> {};

TEST_P(Seq2SeqRuntime, Fp32EqualsLibtorch) {
  const auto c = config(GetParam());
  auto model = noisy_model(c);
  runtime::EncoderDecoder engine(testing::loaded_model(model, c), {runtime::Precision::kFp32, 2});
  auto r = compare(*model, engine);
  EXPECT_LT(r.memory, 1e-4);
  EXPECT_LT(r.logits, 1e-4);
}

// What SpeedUp leaves: one head in encoder layer 0 and in decoder layer 1's self-attention (T5:
// the second, so it reads the bias table's second column), no cross-attention heads in decoder
// layer 0 (its output bias alone), narrower FFNs; an untied LM head and another activation
// (BART: relu; T5 v1.1: gated-gelu).
TEST_P(Seq2SeqRuntime, PrunedLayersEqualLibtorch) {
  auto c = config(GetParam());
  c["sqz_encoder_pruned_heads"] = {{"0", {1}}};
  c["sqz_decoder_pruned_heads"] = {{"1", {0}}};
  c["sqz_cross_pruned_heads"] = {{"0", {0, 1}}};
  c["sqz_encoder_intermediate_sizes"] = {20, 48};
  c["sqz_decoder_intermediate_sizes"] = {40, 12};
  c["tie_word_embeddings"] = false;
  if (GetParam() == "t5") c["feed_forward_proj"] = "gated-gelu";
  else c["activation_function"] = "relu";
  auto model = noisy_model(c);
  runtime::EncoderDecoder engine(testing::loaded_model(model, c), {runtime::Precision::kFp32, 1});
  auto r = compare(*model, engine);
  EXPECT_LT(r.memory, 1e-4);
  EXPECT_LT(r.logits, 1e-4);
}

// The cache: five one-token steps give the logits of one five-token pass; greedy decoding of a
// padded batch picks what libtorch's cached greedy decoding picks.
TEST_P(Seq2SeqRuntime, CachedStepsAndGreedyEqualLibtorch) {
  const auto c = config(GetParam());
  auto model = noisy_model(c);
  runtime::EncoderDecoder engine(testing::loaded_model(model, c), {runtime::Precision::kFp32, 2});
  const auto in = inputs();
  auto ids = in.ids.contiguous(), mask = in.mask.contiguous(), dec = in.decoder_ids.contiguous();
  auto memory = engine.encode(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), 2, 7);
  auto whole = engine.new_cache(memory, mask.data_ptr<int64_t>(), 2, 7, 5);
  auto all = engine.decode(whole, dec.data_ptr<int64_t>(), 5, true);
  auto stepped = engine.new_cache(memory, mask.data_ptr<int64_t>(), 2, 7, 5);
  for (int64_t s = 0; s < 5; ++s) {
    std::vector<int64_t> step{dec[0][s].item<int64_t>(), dec[1][s].item<int64_t>()};
    auto logits = engine.decode(stepped, step.data(), 1, false);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t v = 0; v < kVocab; ++v) EXPECT_NEAR(logits[b * kVocab + v], all[(b * 5 + s) * kVocab + v], 1e-4);
  }
  int64_t n = 0;
  auto got = engine.generate_greedy(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), 2, 7, 12, &n);
  auto want = models::generate_seq2seq_greedy(*model, in.ids, in.mask, 12);
  ASSERT_EQ(n, want.size(1));
  EXPECT_EQ(got, std::vector<int64_t>(want.data_ptr<int64_t>(), want.data_ptr<int64_t>() + want.numel()));
  // Forced tokens (BART's generation config): the first new token, and the one max_new_tokens ends on.
  auto forced = engine.generate_greedy(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), 1, 7, 3, &n, {7, 2});
  ASSERT_EQ(n, 3);
  EXPECT_EQ(forced.front(), 7);
  EXPECT_EQ(forced.back(), 2);
}

// Beam search on the engine (each source encoded once, its beams' cache rows reordered every
// step) returns what models::beam_search returns on libtorch, for several settings.
TEST_P(Seq2SeqRuntime, BeamSearchEqualsLibtorch) {
  const auto c = config(GetParam());
  auto model = noisy_model(c);
  runtime::EncoderDecoder engine(testing::loaded_model(model, c), {runtime::Precision::kFp32, 2});
  const auto in = inputs();
  auto ids = in.ids.contiguous(), mask = in.mask.contiguous();
  std::vector<models::BeamSearchOptions> settings(4);
  settings[0].num_beams = 3, settings[0].max_new_tokens = 10;
  settings[1].num_beams = 4, settings[1].max_new_tokens = 12, settings[1].length_penalty = 0.5, settings[1].early_stopping = true;
  settings[2].num_beams = 2, settings[2].max_new_tokens = 6, settings[2].forced_bos_token_id = 7, settings[2].forced_eos_token_id = 2;
  settings[3].num_beams = 5, settings[3].max_new_tokens = 30, settings[3].length_penalty = 2.0;  // BART: up to its 24 positions
  bool differs_from_greedy = false;
  for (const auto& o : settings) {
    auto want = models::beam_search(*model, in.ids, in.mask, o);
    auto got = engine.generate_beam(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), 2, 7, o);
    EXPECT_EQ(got, want) << "num_beams " << o.num_beams;
    int64_t n = 0;
    auto greedy = engine.generate_greedy(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), 2, 7, o.max_new_tokens, &n);
    for (int64_t b = 0; b < 2; ++b)
      differs_from_greedy |= !std::equal(got[b].begin(), got[b].end(), greedy.begin() + b * n,
                                         greedy.begin() + b * n + std::min<int64_t>(n, static_cast<int64_t>(got[b].size())));
  }
  EXPECT_TRUE(differs_from_greedy) << "no setting made beam search pick other tokens than greedy: the test would not see a bad reorder";
}

TEST_P(Seq2SeqRuntime, Int8AndBf16EqualTheModelQuantizedAsTheEngineDoes) {
  const auto c = config(GetParam());
  for (auto precision : {runtime::Precision::kInt8, runtime::Precision::kBf16}) {
    SCOPED_TRACE(runtime::precision_name(precision));
    auto model = noisy_model(c);
    runtime::EngineOptions options{precision, 2};
    options.lm_head_follows_precision = false;  // the fake-quantized model's LM head is not a compression site
    runtime::EncoderDecoder engine(testing::loaded_model(model, c), options);
    const auto unquantized = compare(*model, engine);
    testing::fake_quantize_like_engine(*model, precision);
    const auto r = compare(*model, engine);
    // The comparison can tell: the engine is far closer to the quantized model than to the float one.
    EXPECT_GT(unquantized.logits, 20 * r.logits);
    EXPECT_LT(r.memory, 1e-5);
    EXPECT_LT(r.logits, 1e-5);
  }
}

// sqz pack's path: the engine saved as a runtime dir and opened again runs the same numbers.
TEST_P(Seq2SeqRuntime, RuntimeDirRunsWhatTheEngineRan) {
  auto c = config(GetParam());
  c["sqz_decoder_pruned_heads"] = {{"1", {0}}};  // T5: a kept head's bias column goes through the dir too
  auto model = noisy_model(c);
  auto engine = runtime::build_engine(testing::loaded_model(model, c), "int8", 2);
  ASSERT_TRUE(engine.seq2seq);
  testing::ScratchDir dir("seq2seq-pack");
  runtime::RuntimeDirWriter writer;
  writer.write(dir.path(), engine.seq2seq->save(writer));
  auto opened = runtime::open_runtime_dir(dir.path(), "", 2);
  ASSERT_TRUE(opened.seq2seq);
  EXPECT_EQ(opened.precision(), runtime::Precision::kInt8);
  EXPECT_EQ(opened.vocab_size(), kVocab);
  const auto in = inputs();
  auto ids = in.ids.contiguous(), mask = in.mask.contiguous();
  int64_t n1 = 0, n2 = 0;
  EXPECT_EQ(engine.seq2seq->generate_greedy(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), 2, 7, 10, &n1),
            opened.seq2seq->generate_greedy(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), 2, 7, 10, &n2));
  EXPECT_EQ(n1, n2);
  auto a = runtime::seq2seq_logits(*engine.seq2seq, in.ids, in.mask, in.decoder_ids);
  auto b = runtime::seq2seq_logits(*opened.seq2seq, in.ids, in.mask, in.decoder_ids);
  EXPECT_TRUE(a.equal(b));
  // A decoder position past BART's table is refused by name, not read out of bounds.
  auto memory = opened.seq2seq->encode(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), 2, 7);
  if (GetParam() == "bart") EXPECT_THROW(opened.seq2seq->new_cache(memory, mask.data_ptr<int64_t>(), 2, 7, 25), std::exception);
}

INSTANTIATE_TEST_SUITE_P(Families, Seq2SeqRuntime, ::testing::Values("bart", "t5"));

}  // namespace
}  // namespace sqz
