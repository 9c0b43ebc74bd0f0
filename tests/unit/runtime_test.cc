// The runtime engine against libtorch: fp32 must equal the eager model (1e-4 relative), int8 must
// equal the same model fake-quantized the way the engine quantizes (weights symmetric per output
// channel, Linear inputs asymmetric u8 per token), on a padded batch, on every ISA this CPU runs.
#include <gtest/gtest.h>

#include <map>

#include "compress/pruner.h"
#include "compress/site.h"
#include "io/safetensors.h"
#include "kernels/quant_math.h"
#include "runtime/bert_encoder.h"
#include "runtime/decoder.h"
#include "runtime/block.h"
#include "runtime/engine.h"
#include "runtime/runtime_dir.h"
#include "unit/runtime_reference.h"
#include "unit/test_util.h"
#include "unit/tiny_models.h"

namespace sqz {
namespace {

using testing::fake_quantize_like_engine;
using testing::relative_error;

// HF's init zeroes every bias, which would hide Qwen2's q/k/v biases if the engine dropped them:
// a Qwen2 model gets random ones the first time it is loaded.
models::LoadedModel loaded(std::shared_ptr<models::TransformerModel> model, const io::json& config) {
  torch::NoGradGuard no_grad;
  if (model->info().model_type == "qwen2")
    for (auto& p : model->named_parameters())
      if (p.key().find("_proj.bias") != std::string::npos && p.value().abs().max().item<double>() == 0.0) p.value().normal_(0.0, 0.05);
  return testing::loaded_model(std::move(model), config);
}

struct Compared {
  double hidden, logits;
};

Compared compare(models::TransformerModel& reference, const runtime::BertEncoder& engine, const models::ModelInputs& in) {
  torch::NoGradGuard guard;
  auto want = reference.forward(in);
  auto ids = in.input_ids.contiguous(), mask = in.attention_mask.contiguous();
  auto got = engine.forward(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), nullptr, ids.size(0), ids.size(1));
  // Padded query rows are compared too: the engine computes them exactly as libtorch does.
  auto hidden = want.hidden_states.empty() ? torch::Tensor() : want.hidden_states.back();
  return {hidden.defined() ? relative_error(got.last_hidden_state, hidden) : 0.0, relative_error(got.logits, want.at("logits"))};
}

TEST(Runtime, Fp32EqualsLibtorch) {
  auto config = testing::tiny_bert_config();
  config["hidden_act"] = "gelu";
  auto model = testing::tiny_bert(config);
  runtime::BertEncoder engine(loaded(model, config), {runtime::Precision::kFp32, 2});
  auto in = testing::inputs();
  in.output_hidden_states = true;
  auto r = compare(*model, engine, in);
  std::cout << "fp32 engine vs libtorch: " << r.hidden << " " << r.logits << "\n";
  EXPECT_LT(r.hidden, 1e-4);
  EXPECT_LT(r.logits, 1e-4);
}

// `sqz bench --profile`: an attached profile times every op of every layer and leaves the
// outputs as they were.
TEST(Runtime, ProfileCountsEachOpPerLayerAndChangesNoOutput) {
  auto config = testing::tiny_bert_config();
  auto model = testing::tiny_bert(config);
  runtime::BertEncoder engine(loaded(model, config), {runtime::Precision::kInt8, 2});
  auto in = testing::inputs();
  auto ids = in.input_ids.contiguous(), mask = in.attention_mask.contiguous();
  auto run = [&] { return engine.forward(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), nullptr, ids.size(0), ids.size(1)); };
  const auto plain = run();
  runtime::OpProfile profile;
  engine.set_profile(&profile);
  const auto first = run(), second = run();
  engine.set_profile(nullptr);
  run();  // detached: adds nothing
  EXPECT_EQ(first.logits, plain.logits);
  EXPECT_EQ(second.last_hidden_state, plain.last_hidden_state);
  const int64_t layers = config["num_hidden_layers"].get<int64_t>();
  std::map<std::string, int64_t> calls;
  for (const auto& r : profile.rows()) {
    calls[r.op] = r.calls;
    EXPECT_GE(r.total_ms, 0.0) << r.op;
  }
  EXPECT_EQ(calls["Q/K/V Linear"], 2 * layers);
  EXPECT_EQ(calls["attention (softmax(QK^T)V)"], 2 * layers);
  EXPECT_EQ(calls["FFN input Linear + GELU"], 2 * layers);
  EXPECT_EQ(calls["FFN output Linear + residual"], 2 * layers);
  EXPECT_EQ(calls["LayerNorm"], 4 * layers);
  EXPECT_EQ(calls["embeddings + LayerNorm"], 2);
  EXPECT_GT(profile.total_ms(), 0.0);
}

TEST(Runtime, PrunedLayersWithDifferentShapes) {
  // Layer 0 keeps 3 heads and 20 neurons, layer 1 none of its heads: as SpeedUp leaves a model.
  auto config = testing::tiny_bert_config();
  config["pruned_heads"] = {{"0", {1}}, {"1", {0, 1, 2, 3}}};
  config["sqz_intermediate_sizes"] = {20, 48};
  auto model = testing::tiny_bert(config);
  runtime::BertEncoder engine(loaded(model, config), {runtime::Precision::kFp32, 1});
  auto in = testing::inputs();
  in.output_hidden_states = true;
  auto r = compare(*model, engine, in);
  EXPECT_LT(r.hidden, 1e-4);
  EXPECT_LT(r.logits, 1e-4);
}

TEST(Runtime, Int8EqualsFakeQuantizedLibtorch) {
  auto config = testing::tiny_bert_config();
  auto model = testing::tiny_bert(config);
  runtime::BertEncoder engine(loaded(model, config), {runtime::Precision::kInt8, 2});
  auto in = testing::inputs();
  in.output_hidden_states = true;
  const auto unquantized = compare(*model, engine, in);
  fake_quantize_like_engine(*model);
  auto r = compare(*model, engine, in);
  std::cout << "int8 engine vs fake-quant: " << r.hidden << " " << r.logits << "; vs fp32: " << unquantized.hidden << " "
            << unquantized.logits << "\n";
  // The comparison can tell: the engine is far closer to the fake-quantized model than to the
  // unquantized one (measured: 1.5e-7 vs 1.6e-4).
  EXPECT_GT(unquantized.hidden, 100 * r.hidden);
  // The int32 sums are exact on every ISA; only fp32 rounding in norms and softmax differs, which
  // could flip an activation code that lands on a rounding boundary (it does not on this input).
  EXPECT_LT(r.hidden, 1e-5);
  EXPECT_LT(r.logits, 1e-5);
}

TEST(Runtime, Bf16EqualsBf16RoundedLibtorch) {
  auto config = testing::tiny_bert_config();
  auto model = testing::tiny_bert(config);
  runtime::BertEncoder engine(loaded(model, config), {runtime::Precision::kBf16, 2});
  auto in = testing::inputs();
  in.output_hidden_states = true;
  const auto unrounded = compare(*model, engine, in);
  fake_quantize_like_engine(*model, runtime::Precision::kBf16);
  auto r = compare(*model, engine, in);
  std::cout << "bf16 engine vs bf16-rounded libtorch: " << r.hidden << " " << r.logits << "; vs fp32: " << unrounded.hidden
            << " " << unrounded.logits << "\n";
  // Same products on both sides, but a Linear input that lands next to a rounding boundary can
  // round the other way after the engine's and torch's fp32 softmax differ by an ulp (see the
  // decoder test below): measured 3.5e-6 against 6.6e-5 from the unrounded model.
  EXPECT_GT(unrounded.hidden, 5 * r.hidden);
  EXPECT_LT(r.hidden, 1e-5);
  EXPECT_LT(r.logits, 1e-5);
}

// --precision, else what the checkpoint declares: a bfloat16 checkpoint runs bf16 by default.
TEST(Runtime, PrecisionDefaultsToWhatTheCheckpointDeclares) {
  const io::json bf16 = {{"torch_dtype", "bfloat16"}}, f32 = {{"torch_dtype", "float32"}}, none = io::json::object();
  EXPECT_EQ(runtime::resolve_precision("", bf16), runtime::Precision::kBf16);
  EXPECT_EQ(runtime::resolve_precision("", f32), runtime::Precision::kFp32);
  EXPECT_EQ(runtime::resolve_precision("", none), runtime::Precision::kFp32);
  EXPECT_EQ(runtime::resolve_precision("int8", bf16), runtime::Precision::kInt8);
  EXPECT_EQ(runtime::resolve_precision("fp32", bf16), runtime::Precision::kFp32);
  EXPECT_THROW(runtime::resolve_precision("fp16", none), Error);
  // A quantized export: int8, or the sparse kernel its sparsity config names (block-pruned
  // weights are declared unstructured; int8-block from half of them zero).
  auto export_with = [](const io::json& sparsity) {
    io::json c = {{"quantization_config", {{"quant_method", "compressed-tensors"}, {"config_groups", io::json::object()}}}};
    if (!sparsity.is_null()) c["quantization_config"]["sparsity_config"] = sparsity;
    return c;
  };
  EXPECT_EQ(runtime::resolve_precision("", export_with(nullptr)), runtime::Precision::kInt8);
  EXPECT_EQ(runtime::resolve_precision("", export_with({{"sparsity_structure", "2:4"}})), runtime::Precision::kInt8Sparse24);
  EXPECT_EQ(runtime::resolve_precision("", export_with({{"sparsity_structure", "unstructured"}, {"global_sparsity", 0.8}})),
            runtime::Precision::kInt8Blocks);
  EXPECT_EQ(runtime::resolve_precision("", export_with({{"sparsity_structure", "unstructured"}, {"global_sparsity", 0.3}})),
            runtime::Precision::kInt8);
}

TEST(Runtime, RefusesWhatItCannotRun) {
  auto config = testing::tiny_gpt2_config();
  auto model = testing::tiny_model(config);
  try {
    runtime::BertEncoder engine(loaded(model, config), {});
    FAIL() << "gpt2 accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("model_type 'bert'"), std::string::npos) << e.what();
  }
  auto bert = testing::tiny_bert();
  runtime::BertEncoder engine(loaded(bert, testing::tiny_bert_config()), {});
  std::vector<int64_t> ids(50, 3);
  EXPECT_THROW(engine.forward(ids.data(), nullptr, nullptr, 1, 50), std::exception);  // > max positions (40)
  ids[0] = 1000;
  EXPECT_THROW(engine.forward(ids.data(), nullptr, nullptr, 1, 5), std::exception);  // id outside the vocabulary
}

}  // namespace
}  // namespace sqz

namespace sqz {
namespace {

io::json tiny_gpt2_lm_config() {
  auto c = testing::tiny_gpt2_config();
  c["architectures"] = {"GPT2LMHeadModel"};
  return c;
}

io::json tiny_opt_lm_config() {
  auto c = testing::tiny_opt_config();
  c["architectures"] = {"OPTForCausalLM"};
  return c;
}

io::json tiny_llama_lm_config(int64_t kv_heads) {
  auto c = testing::tiny_llama_config(kv_heads);
  c["architectures"] = {"LlamaForCausalLM"};
  c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 16}};
  return c;
}

// The decoder families the engine runs, as (name, config) for the tests that loop over them.
std::vector<std::pair<std::string, io::json>> decoder_configs() {
  auto qwen2 = testing::arch_config("qwen2");  // GQA 4/2 with q/k/v biases
  qwen2["num_key_value_heads"] = 2;
  qwen2["architectures"] = {"Qwen2ForCausalLM"};
  // GPT-NeoX: per-head fused QKV, a quarter of each head rotated, parallel residual; and sequential
  // with gelu_new. Two heads of 16 (the bf16 test folds 1/sqrt(head_dim) exactly only for powers of 4).
  io::json neox = {{"model_type", "gpt_neox"}, {"vocab_size", 97}, {"hidden_size", 32}, {"intermediate_size", 48},
                   {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"rotary_pct", 0.25}, {"max_position_embeddings", 40},
                   {"architectures", {"GPTNeoXForCausalLM"}}};
  auto neox_sequential = neox;
  neox_sequential["use_parallel_residual"] = false;
  neox_sequential["hidden_act"] = "gelu_new";
  // GQA after SpeedUp: layer 0 lost one K/V group (query heads 2 and 3) and FFN neurons, layer 1 kept all.
  auto gqa_pruned = tiny_llama_lm_config(2);
  gqa_pruned["pruned_heads"] = {{"0", {2, 3}}};
  gqa_pruned["sqz_intermediate_sizes"] = {20, 48};
  return {{"gpt2", tiny_gpt2_lm_config()}, {"opt", tiny_opt_lm_config()}, {"llama", tiny_llama_lm_config(4)},
          {"llama-gqa", tiny_llama_lm_config(2)}, {"llama-gqa-pruned", gqa_pruned}, {"qwen2-gqa", qwen2},
          {"gpt_neox", neox}, {"gpt_neox-sequential", neox_sequential}};
}

// Runs the decoder on ids [batch, steps] after what the cache holds; logits as [batch, steps, vocab].
torch::Tensor decoder_logits(const runtime::Decoder& d, runtime::Decoder::Cache& cache, const torch::Tensor& ids) {
  auto c = ids.contiguous();
  auto v = d.forward(cache, c.data_ptr<int64_t>(), c.size(1), true);
  return torch::from_blob(v.data(), {c.size(0), c.size(1), d.vocab_size()}, torch::kFloat32).clone();
}

double rel(const torch::Tensor& got, const torch::Tensor& want) { return ((got - want).abs().max() / want.abs().max()).item<double>(); }

TEST(Runtime, DecoderPrefillAndCachedDecodeEqualLibtorch) {
  for (const auto& [arch, config] : decoder_configs()) {
  SCOPED_TRACE(arch);
  auto model = testing::tiny_model(config);
  runtime::Decoder d(loaded(model, config), {runtime::Precision::kFp32, 2});
  torch::NoGradGuard guard;
  torch::manual_seed(1);
  auto ids = torch::randint(0, 97, {2, 15}, torch::kLong);
  models::ModelInputs full;
  full.input_ids = ids;
  auto want = model->forward(full).at("logits");
  auto cache = d.new_cache(2, 15);
  auto prefill = decoder_logits(d, cache, ids.slice(1, 0, 12));
  EXPECT_LT(rel(prefill, want.slice(1, 0, 12)), 1e-4);
  for (int64_t t = 12; t < 15; ++t) {  // one token at a time against the cache
    auto step = decoder_logits(d, cache, ids.slice(1, t, t + 1));
    EXPECT_LT(rel(step, want.slice(1, t, t + 1)), 1e-4) << "step " << t;
  }
  EXPECT_EQ(cache.length, 15);
  auto more = torch::zeros({2, 1}, torch::kLong);
  EXPECT_THROW(decoder_logits(d, cache, more), std::exception);  // past the cache capacity
  }
}

// Padded batches: right padding (eval) and left padding (generation) give the real positions what
// the libtorch model gives them under the same attention mask, prefill and cached steps alike.
// The decoder's profile: every op of every layer, per forward, outputs unchanged (all families:
// Llama's gated FFN names its own op).
TEST(Runtime, DecoderProfileCountsEachOpPerLayerAndChangesNoOutput) {
  for (const auto& [arch, config] : decoder_configs()) {
    SCOPED_TRACE(arch);
    auto model = testing::tiny_model(config);
    runtime::Decoder d(loaded(model, config), {runtime::Precision::kInt8, 2});
    torch::manual_seed(2);
    auto ids = torch::randint(0, 97, {2, 6}, torch::kLong);
    auto run = [&] {
      auto cache = d.new_cache(2, 6);
      return decoder_logits(d, cache, ids);
    };
    auto plain = run();
    runtime::OpProfile profile;
    d.set_profile(&profile);
    auto profiled = run();
    d.set_profile(nullptr);
    run();
    EXPECT_TRUE(torch::equal(plain, profiled));
    const int64_t layers = config.value("n_layer", config.value("num_hidden_layers", int64_t{0}));
    ASSERT_GT(layers, 0);
    std::map<std::string, int64_t> calls;
    for (const auto& r : profile.rows()) calls[r.op] = r.calls;
    EXPECT_EQ(calls["norm"], 2 * layers);
    EXPECT_EQ(calls["Q/K/V Linear"], layers);
    EXPECT_EQ(calls["KV cache append + attention"], layers);
    EXPECT_EQ(calls["FFN output Linear + residual"], layers);
    EXPECT_EQ(calls["FFN input Linear + activation"] + calls["FFN gate/up Linear + SiLU * up"], layers);
    EXPECT_EQ(calls["final norm + LM head"], 1);
  }
}

TEST(Runtime, DecoderPaddedBatchesEqualLibtorchOnRealPositions) {
  for (const auto& [arch, config] : decoder_configs()) {
  SCOPED_TRACE(arch);
  auto model = testing::tiny_model(config);
  runtime::Decoder d(loaded(model, config), {runtime::Precision::kFp32, 2});
  torch::NoGradGuard guard;
  torch::manual_seed(2);
  auto ids = torch::randint(0, 97, {3, 10}, torch::kLong);
  auto mask = torch::ones({3, 10}, torch::kLong);
  mask[0].slice(0, 7).fill_(0);   // right padding: 7 real tokens
  mask[2].slice(0, 0, 4).fill_(0);  // left padding: 6 real tokens at the end
  models::ModelInputs in;
  in.input_ids = ids;
  in.attention_mask = mask;
  auto want = model->forward(in).at("logits");
  auto cache = d.new_cache(3, 12);
  auto prefill_ids = ids.contiguous();
  auto v = d.forward(cache, prefill_ids.data_ptr<int64_t>(), 10, true, mask.data_ptr<int64_t>());
  auto got = torch::from_blob(v.data(), {3, 10, d.vocab_size()}, torch::kFloat32).clone();
  auto real = mask.to(torch::kBool);
  EXPECT_LT(rel(got.index({real}), want.index({real})), 1e-4);
  // A cached step after the padded prefill (every row real) against the full recompute.
  auto next = torch::randint(0, 97, {3, 1}, torch::kLong);
  models::ModelInputs in2;
  in2.input_ids = torch::cat({ids, next}, 1);
  in2.attention_mask = torch::cat({mask, torch::ones({3, 1}, torch::kLong)}, 1);
  auto want2 = model->forward(in2).at("logits").slice(1, 10, 11);
  EXPECT_LT(rel(decoder_logits(d, cache, next), want2), 1e-4);
  // Masks hold 0 or 1 only.
  auto bad = torch::full({3, 1}, 2, torch::kLong);
  auto ids1 = next.contiguous();
  EXPECT_THROW(d.forward(cache, ids1.data_ptr<int64_t>(), 1, true, bad.data_ptr<int64_t>()), std::exception);
  }
}

TEST(Runtime, DecoderInt8EqualsFakeQuantizedLibtorch) {
  for (const auto& [arch, config] : decoder_configs()) {
  SCOPED_TRACE(arch);
  auto model = testing::tiny_model(config);
  runtime::EngineOptions o{runtime::Precision::kInt8, 2};
  o.lm_head_follows_precision = false;  // the tied head is not a Linear the fake-quant sites can reach
  runtime::Decoder d(loaded(model, config), o);
  torch::NoGradGuard guard;
  torch::manual_seed(2);
  auto ids = torch::randint(0, 97, {1, 10}, torch::kLong);
  models::ModelInputs in;
  in.input_ids = ids;
  auto unquantized = model->forward(in).at("logits");
  fake_quantize_like_engine(*model);
  auto want = model->forward(in).at("logits");
  auto cache = d.new_cache(1, 10);
  auto got = decoder_logits(d, cache, ids);
  EXPECT_LT(rel(got, want), 1e-5);
  EXPECT_GT(rel(got, unquantized), 100 * rel(got, want));
  }
}

// bf16 rounding is a step function: where the engine's softmax differs from torch's by an ulp,
// a Linear input can round to the neighbouring bf16 value (measured: up to 3e-4 relative on
// later positions). The first position attends to itself only (softmax = 1 exactly on both
// sides), so there every layer's bf16 Linears must agree with torch's rounded ones closely.
TEST(Runtime, DecoderBf16EqualsBf16RoundedLibtorch) {
  for (const auto& [arch, config] : decoder_configs()) {
  SCOPED_TRACE(arch);
  auto model = testing::tiny_model(config);
  runtime::EngineOptions o{runtime::Precision::kBf16, 2};
  o.lm_head_follows_precision = false;  // the tied head is not a Linear the sites can reach
  runtime::Decoder d(loaded(model, config), o);
  torch::NoGradGuard guard;
  torch::manual_seed(2);
  auto ids = torch::randint(0, 97, {1, 10}, torch::kLong);
  models::ModelInputs in;
  in.input_ids = ids;
  auto unrounded = model->forward(in).at("logits");
  fake_quantize_like_engine(*model, runtime::Precision::kBf16);
  auto want = model->forward(in).at("logits");
  auto cache = d.new_cache(1, 10);
  auto got = decoder_logits(d, cache, ids);
  auto first = [](const torch::Tensor& t) { return t.select(1, 0); };
  EXPECT_LT(rel(first(got), first(want)), 1e-6);
  EXPECT_GT(rel(first(got), first(unrounded)), 100 * rel(first(got), first(want)));
  EXPECT_LT(rel(got, want), 1e-3);
  EXPECT_LT(rel(got, want), rel(got, unrounded));
  }
}

// What the decoder engine cannot run is refused by name: post-LN OPT, OPT with a projection.
TEST(Runtime, DecoderRefusesPostLnAndProjectedOpt) {
  for (auto [key, value, expected] : {std::tuple<std::string, io::json, std::string>{"do_layer_norm_before", false, "post-LN OPT"},
                                      {"word_embed_proj_dim", 16, "project_in/out"}}) {
    auto config = tiny_opt_lm_config();
    config[key] = value;
    auto model = testing::tiny_model(config);
    auto e = testing::error_of([&] { runtime::Decoder d(loaded(model, config), {}); });
    EXPECT_NE(e.find(expected), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace sqz

// sqz pack's runtime dir (runtime/runtime_dir.h): saved, loaded again, checked against the
// manifest, refused by file and field when it is not what the manifest says.
namespace sqz {
namespace {

// Multiplies every block Linear's weight by keep(|w|).
void mask_block_linears(models::TransformerModel& model, const std::function<torch::Tensor(const torch::Tensor&)>& keep) {
  torch::NoGradGuard no_grad;
  for (auto& l : model.structure().block_linears()) {
    auto w = l->logical_weight();
    w.mul_(keep(w.abs()));
  }
}

// Keeps the 2 largest |w| of every 4 along the input of every block Linear (for int8-2:4).
void prune_blocks_2_4(models::TransformerModel& model) {
  mask_block_linears(model, [](const torch::Tensor& a) { return compress::nm_keep_mask(a, 2, 4); });
}

// Zeroes the 4 x 4 blocks (4 outputs x 4 inputs) of smallest |w| sum, `fraction` of each block
// Linear's blocks (for int8-block).
void prune_blocks_4x4(models::TransformerModel& model, double fraction) {
  mask_block_linears(model, [fraction](const torch::Tensor& a) { return compress::block_keep_mask(a, fraction); });
}

template <typename EngineT>
void save_engine(const EngineT& engine, const fs::path& dir) {
  runtime::RuntimeDirWriter writer;
  auto manifest = engine.save(writer);
  writer.write(dir, manifest);
}

const runtime::Precision kAllPrecisions[] = {runtime::Precision::kFp32, runtime::Precision::kBf16, runtime::Precision::kInt8,
                                             runtime::Precision::kInt8Sparse24, runtime::Precision::kInt8Blocks};

// int8-block runs the block-sparse kernel on the same int8 codes: its integer sums are exact, so
// encoder and decoder outputs equal dense int8's bit for bit, and the weights it ships shrink
// with the zero blocks.
TEST(Runtime, Int8BlockEqualsDenseInt8AndShipsFewerBytes) {
  auto config = testing::tiny_bert_config();
  auto model = testing::tiny_bert(config);
  prune_blocks_4x4(*model, 0.75);
  auto in = testing::inputs();
  auto ids = in.input_ids.contiguous(), mask = in.attention_mask.contiguous();
  runtime::BertEncoder dense(loaded(model, config), {runtime::Precision::kInt8, 2});
  runtime::BertEncoder blocks(loaded(model, config), {runtime::Precision::kInt8Blocks, 2});
  auto want = dense.forward(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), nullptr, 3, 12);
  auto got = blocks.forward(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), nullptr, 3, 12);
  EXPECT_EQ(got.last_hidden_state, want.last_hidden_state);
  EXPECT_EQ(got.logits, want.logits);
  // 3/4 of the blocks gone, a 4-byte index per kept 16-byte block: at least half the int8 code
  // bytes of the block Linears saved (embeddings and norms are the same in both).
  int64_t code_bytes = 0;
  for (auto& l : model->structure().block_linears()) code_bytes += l->in_features() * l->out_features();
  EXPECT_LT(blocks.weight_bytes(), dense.weight_bytes() - code_bytes / 2);
  for (const auto& [arch, dconfig] : decoder_configs()) {
    SCOPED_TRACE(arch);
    auto decoder = testing::tiny_model(dconfig);
    prune_blocks_4x4(*decoder, 0.6);
    torch::manual_seed(4);
    auto prompt = torch::randint(0, 97, {2, 6}, torch::kLong);
    runtime::Decoder d8(loaded(decoder, dconfig), {runtime::Precision::kInt8, 2});
    runtime::Decoder db(loaded(decoder, dconfig), {runtime::Precision::kInt8Blocks, 2});
    auto c1 = d8.new_cache(2, 9), c2 = db.new_cache(2, 9);
    EXPECT_TRUE(decoder_logits(d8, c1, prompt).equal(decoder_logits(db, c2, prompt)));
  }
}

// The engine loaded from the dir computes bit for bit what the engine it was saved from computes.
TEST(Runtime, RuntimeDirReloadsTheSameEncoder) {
  auto config = testing::tiny_bert_config();
  auto model = testing::tiny_bert(config);
  prune_blocks_2_4(*model);
  auto in = testing::inputs();
  auto ids = in.input_ids.contiguous(), mask = in.attention_mask.contiguous();
  for (auto precision : kAllPrecisions) {
    SCOPED_TRACE(runtime::precision_name(precision));
    testing::ScratchDir dir("rtdir");
    runtime::BertEncoder built(loaded(model, config), {precision, 2});
    save_engine(built, dir.path());
    auto reopened = runtime::open_runtime_dir(dir.path(), "", 2);
    ASSERT_TRUE(reopened.encoder);
    EXPECT_EQ(reopened.precision(), precision);
    EXPECT_EQ(reopened.encoder->weight_bytes(), built.weight_bytes());
    auto want = built.forward(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), nullptr, 3, 12);
    auto got = reopened.encoder->forward(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), nullptr, 3, 12);
    EXPECT_EQ(got.last_hidden_state, want.last_hidden_state);
    EXPECT_EQ(got.logits, want.logits);
    ASSERT_EQ(want.logits.size(), 9u);
  }
}

TEST(Runtime, RuntimeDirReloadsTheSameDecoder) {
  for (const auto& [arch, config] : decoder_configs()) {
    auto model = testing::tiny_model(config);
    prune_blocks_2_4(*model);
    torch::manual_seed(4);
    auto prompt = torch::randint(0, 97, {2, 6}, torch::kLong);
    for (auto precision : kAllPrecisions) {
      SCOPED_TRACE(arch + " " + runtime::precision_name(precision));
      testing::ScratchDir dir("rtdir");
      runtime::Decoder built(loaded(model, config), {precision, 2});
      save_engine(built, dir.path());
      auto reopened = runtime::open_runtime_dir(dir.path(), "", 2);
      ASSERT_TRUE(reopened.decoder);
      EXPECT_EQ(reopened.decoder->max_positions(), built.max_positions());
      auto c1 = built.new_cache(2, 9), c2 = reopened.decoder->new_cache(2, 9);
      EXPECT_TRUE(decoder_logits(built, c1, prompt).equal(decoder_logits(*reopened.decoder, c2, prompt)));
      EXPECT_EQ(built.generate_greedy(prompt.data_ptr<int64_t>(), 2, 6, 3),
                reopened.decoder->generate_greedy(prompt.data_ptr<int64_t>(), 2, 6, 3));
    }
  }
}

// Rewrites one tensor of a runtime dir's weights file (to corrupt it on purpose).
void replace_tensor(const fs::path& dir, const std::string& name, const torch::Tensor& value) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  {
    io::SafetensorsFile file(dir / runtime::kRuntimeWeightsFile);
    for (const auto& [n, e] : file.entries()) tensors.emplace_back(n, n == name ? value : file.tensor(n).clone());
  }
  io::write_safetensors(dir / runtime::kRuntimeWeightsFile, tensors);
}

void edit_manifest(const fs::path& dir, const std::function<void(io::json&)>& edit) {
  auto m = io::read_json_file(dir / runtime::kManifestFile);
  edit(m);
  io::write_json_file_atomic(dir / runtime::kManifestFile, m);
}

TEST(Runtime, RuntimeDirRefusesWhatItsManifestDoesNotDescribe) {
  auto config = testing::tiny_bert_config();
  auto model = testing::tiny_bert(config);
  prune_blocks_2_4(*model);
  runtime::BertEncoder built(loaded(model, config), {runtime::Precision::kInt8Sparse24, 2});
  auto fresh = [&](testing::ScratchDir& d) { save_engine(built, d.path()); };
  auto open = [](const testing::ScratchDir& d, const std::string& precision = "") {
    return testing::error_of([&] { runtime::open_runtime_dir(d.path(), precision, 1); });
  };
  auto expect_error = [](const std::string& e, std::initializer_list<const char*> parts) {
    EXPECT_FALSE(e.empty());
    for (const char* p : parts) EXPECT_NE(e.find(p), std::string::npos) << "'" << p << "' not in: " << e;
  };
  {  // another format version
    testing::ScratchDir d("rtdir");
    fresh(d);
    edit_manifest(d.path(), [](io::json& m) { m["format_version"] = 2; });
    expect_error(open(d), {"manifest.json", "format_version", "2", "sqz pack"});
  }
  {  // a block whose counts disagree with its Linears
    testing::ScratchDir d("rtdir");
    fresh(d);
    edit_manifest(d.path(), [](io::json& m) { m["layers"][1]["ffn"] = 52; });
    expect_error(open(d), {"manifest.json", "layers[1].ffn_in", "field 'out' expected 52, as the model's structure implies, got 48"});
  }
  {  // a weight whose shape disagrees with the manifest
    testing::ScratchDir d("rtdir");
    fresh(d);
    edit_manifest(d.path(), [](io::json& m) {
      m["layers"][0]["ffn"] = 44;
      m["layers"][0]["ffn_in"]["out"] = 44;
      m["layers"][0]["ffn_out"]["in"] = 44;
    });
    expect_error(open(d), {"weights.safetensors", "layers.0.ffn_in.bias", "F32 [48]", "implies F32 [44]"});
  }
  {  // a 2:4 bitmask that keeps three of a group of four
    testing::ScratchDir d("rtdir");
    fresh(d);
    torch::Tensor bitmask;
    {
      io::SafetensorsFile file(d / runtime::kRuntimeWeightsFile);
      bitmask = file.tensor("layers.1.qkv.bitmask").clone();
    }
    bitmask[2][0] = static_cast<uint8_t>(0x07 | (bitmask[2][0].item<int>() & 0xF0));
    replace_tensor(d.path(), "layers.1.qkv.bitmask", bitmask);
    expect_error(open(d), {"weights.safetensors", "layers.1.qkv", "row 2, group 0", "keeps 3"});
  }
  {  // a block-sparse weight whose k groups run past its inputs
    testing::ScratchDir d("rtdir");
    runtime::BertEncoder blocks(loaded(model, config), {runtime::Precision::kInt8Blocks, 2});
    save_engine(blocks, d.path());
    torch::Tensor ks;
    {
      io::SafetensorsFile file(d / runtime::kRuntimeWeightsFile);
      ks = file.tensor("layers.0.ffn_out.block_k").clone();
    }
    ks[0] = 1000;
    replace_tensor(d.path(), "layers.0.ffn_out.block_k", ks);
    expect_error(open(d), {"weights.safetensors", "layers.0.ffn_out", "k group out of range"});
  }
  {  // a truncated weights file
    testing::ScratchDir d("rtdir");
    fresh(d);
    const auto path = d / runtime::kRuntimeWeightsFile;
    fs::resize_file(path, fs::file_size(path) - 100);
    expect_error(open(d), {"weights.safetensors"});
  }
  {  // another engine, another precision
    testing::ScratchDir d("rtdir");
    fresh(d);
    expect_error(open(d, "fp32"), {"manifest.json", "packed for precision int8-2:4", "sqz pack"});
    edit_manifest(d.path(), [](io::json& m) { m["engine"] = "t5-encoder-decoder"; });
    expect_error(open(d), {"manifest.json", "'engine'", "'bert-encoder', 'decoder', 'encoder-decoder' or 'vit-encoder'"});
  }
  {  // not a runtime dir at all
    testing::ScratchDir d("rtdir");
    EXPECT_FALSE(runtime::is_runtime_dir(d.path()));
    fresh(d);
    EXPECT_TRUE(runtime::is_runtime_dir(d.path()));
  }
}

}  // namespace
}  // namespace sqz

// Attention on the int8 GEMM against the same quantization written with torch ops.
namespace sqz {
namespace {

torch::Tensor fake_u8_rows(const torch::Tensor& x) {  // per row, asymmetric, range widened to 0
  auto lo = x.amin(-1, true).clamp_max(0), hi = x.amax(-1, true).clamp_min(0);
  auto scale = ((hi - lo) / 255.0).clamp_min(1e-30);
  auto zero = torch::round(-lo / scale).clamp(0, 255);
  return (torch::clamp(torch::round(x / scale) + zero, 0, 255) - zero) * scale;
}

torch::Tensor fake_s8(const torch::Tensor& x, int64_t dim) {  // symmetric, one scale per slice along `dim`
  auto s = (x.abs().amax(dim, true) / 127.0).clamp_min(1e-30);
  return torch::round(x / s).clamp(-127, 127) * s;
}

TEST(Runtime, Int8AttentionEqualsItsQuantizedReference) {
  torch::manual_seed(7);
  const int64_t rows = 9, keys = 13, hd = 16;
  auto q = torch::randn({rows, hd}) * 0.5, k = torch::randn({keys, hd}), v = torch::randn({keys, hd});
  std::vector<int64_t> key_mask(keys, 1);
  key_mask[3] = key_mask[10] = 0;
  for (int64_t causal : {int64_t{-1}, int64_t{4}}) {
    SCOPED_TRACE(causal);
    auto scores = torch::matmul(fake_u8_rows(q), fake_s8(k, 1).t());
    auto hidden = torch::zeros({rows, keys}, torch::kBool);
    for (int64_t j = 0; j < keys; ++j)
      for (int64_t i = 0; i < rows; ++i) hidden[i][j] = key_mask[j] == 0 || (causal >= 0 && j > causal + i);
    auto p = torch::softmax(scores.masked_fill(hidden, -INFINITY), -1);
    auto want = torch::matmul(fake_u8_rows(p), fake_s8(v, 0));
    auto fp32 = torch::matmul(torch::softmax(torch::matmul(q, k.t()).masked_fill(hidden, -INFINITY), -1), v);
    std::vector<float> got(static_cast<size_t>(rows * hd));
    runtime::attend_head_int8(q.data_ptr<float>(), hd, k.data_ptr<float>(), hd, v.data_ptr<float>(), hd, rows, keys, hd,
                              key_mask.data(), causal, got.data(), hd);
    const double to_reference = relative_error(got, want), to_fp32 = relative_error(got, fp32);
    std::cout << "int8 attention vs its quantized reference: " << to_reference << "; vs fp32 attention: " << to_fp32 << "\n";
    // Measured 1.4e-7 and 2.5e-7 (against 1e-2 from fp32 attention). A softmax value next to a u8
    // rounding boundary could round the other way (the engine's exp differs from torch's in the
    // last bits), which would move one code by 1/255 of the row's largest probability.
    EXPECT_LT(to_reference, 1e-4);
    EXPECT_GT(to_fp32, 50 * to_reference);
  }
}

// The option reaches both engines; with it the outputs move by what int8 attention costs and no more.
TEST(Runtime, Int8AttentionOptionInBothEngines) {
  auto config = testing::tiny_bert_config();
  auto model = testing::tiny_bert(config);
  auto in = testing::inputs();
  auto ids = in.input_ids.contiguous(), mask = in.attention_mask.contiguous();
  runtime::EngineOptions plain{runtime::Precision::kInt8, 2}, quantized = plain;
  quantized.int8_attention = true;
  runtime::BertEncoder a(loaded(model, config), plain), b(loaded(model, config), quantized);
  auto ra = a.forward(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), nullptr, 3, 12);
  auto rb = b.forward(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), nullptr, 3, 12);
  const double moved = relative_error(rb.logits, torch::from_blob(ra.logits.data(), {9}, torch::kFloat32));
  std::cout << "encoder logits, int8 attention vs fp32 attention: " << moved << "\n";
  EXPECT_GT(moved, 0.0);
  EXPECT_LT(moved, 0.05);
  for (const auto& [arch, dconfig] : decoder_configs()) {
    SCOPED_TRACE(arch);
    auto dmodel = testing::tiny_model(dconfig);
    runtime::Decoder da(loaded(dmodel, dconfig), plain), db(loaded(dmodel, dconfig), quantized);
    torch::manual_seed(2);
    auto prompt = torch::randint(0, 97, {2, 7}, torch::kLong);
    auto ca = da.new_cache(2, 7), cb = db.new_cache(2, 7);
    auto la = decoder_logits(da, ca, prompt), lb = decoder_logits(db, cb, prompt);
    EXPECT_GT(rel(lb, la), 0.0);
    EXPECT_LT(rel(lb, la), 0.05);
  }
}

}  // namespace
}  // namespace sqz
