// Every architecture and head with configs other than the fixtures': save/load round trip, KV
// cache equals full recompute, right padding does not change real positions, and bad inputs
// are named errors.
#include <map>
#include <set>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/beam_search.h"
#include "models/generation.h"
#include "models/layer_surgery.h"
#include "models/registry.h"
#include "unit/test_util.h"
#include "unit/tiny_models.h"

namespace sqz {
namespace {

using io::json;

struct ArchCase {
  std::string name;
  json config;
};

std::vector<ArchCase> arch_cases() {
  return {
      {"bert", {{"model_type", "bert"}, {"vocab_size", 97}, {"hidden_size", 32}, {"num_hidden_layers", 2},
                {"num_attention_heads", 4}, {"intermediate_size", 48}, {"max_position_embeddings", 40},
                {"hidden_act", "gelu_new"}, {"num_labels", 3}}},
      {"roberta", {{"model_type", "roberta"}, {"vocab_size", 97}, {"hidden_size", 32}, {"num_hidden_layers", 2},
                   {"num_attention_heads", 2}, {"intermediate_size", 40}, {"max_position_embeddings", 42},
                   {"pad_token_id", 1}, {"type_vocab_size", 1}}},
      {"distilbert", {{"model_type", "distilbert"}, {"vocab_size", 97}, {"dim", 32}, {"n_layers", 2}, {"n_heads", 4},
                      {"hidden_dim", 64}, {"max_position_embeddings", 40}, {"sinusoidal_pos_embds", true}}},
      {"gpt2", {{"model_type", "gpt2"}, {"vocab_size", 97}, {"n_embd", 32}, {"n_layer", 3}, {"n_head", 4},
                {"n_positions", 40}, {"scale_attn_by_inverse_layer_idx", true}, {"pad_token_id", 0}}},
      {"opt_pre_ln_proj", {{"model_type", "opt"}, {"vocab_size", 97}, {"hidden_size", 32}, {"word_embed_proj_dim", 16},
                           {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"ffn_dim", 48},
                           {"max_position_embeddings", 40}, {"pad_token_id", 1}}},
      {"opt_post_ln", {{"model_type", "opt"}, {"vocab_size", 97}, {"hidden_size", 32}, {"num_hidden_layers", 2},
                       {"num_attention_heads", 4}, {"ffn_dim", 48}, {"max_position_embeddings", 40},
                       {"do_layer_norm_before", false}, {"pad_token_id", 1}}},
      {"llama_gqa", {{"model_type", "llama"}, {"vocab_size", 97}, {"hidden_size", 32}, {"intermediate_size", 56},
                     {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                     {"max_position_embeddings", 64}, {"tie_word_embeddings", true}, {"pad_token_id", 0},
                     {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}}}}},
      {"qwen2", {{"model_type", "qwen2"}, {"vocab_size", 97}, {"hidden_size", 32}, {"intermediate_size", 56},
                 {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                 {"max_position_embeddings", 64}, {"tie_word_embeddings", false}, {"pad_token_id", 0}}},
      {"gpt_neox", {{"model_type", "gpt_neox"}, {"vocab_size", 97}, {"hidden_size", 32}, {"intermediate_size", 64},
                    {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"rotary_pct", 0.5},
                    {"max_position_embeddings", 64}, {"pad_token_id", 0}}},
  };
}

std::shared_ptr<models::TransformerModel> make(const json& config, const std::string& head, uint64_t seed = 7) {
  torch::manual_seed(seed);
  auto m = models::build_model(io::JsonFields(config, "test config"), head);
  models::init_weights(*m);
  m->eval();
  return m;
}

torch::Tensor ids_for(int64_t b, int64_t t) { return torch::randint(2, 97, {b, t}, torch::kLong); }

void PrintTo(const ArchCase& c, std::ostream* os) { *os << c.name; }

class ArchTest : public ::testing::TestWithParam<ArchCase> {};

TEST_P(ArchTest, EveryHeadBuildsAndRuns) {
  const auto& arch = models::find_architecture(GetParam().config["model_type"], "test");
  for (const auto& head : arch.head_classes) {
    auto m = make(GetParam().config, head);
    models::ModelInputs in;
    in.input_ids = ids_for(2, 6);
    torch::NoGradGuard g;
    auto out = m->forward(in);
    EXPECT_EQ(out.at("last_hidden_state").size(1), 6) << head;
    if (head != arch.head_classes.front()) EXPECT_TRUE(out.tensors.count("logits")) << head;
    EXPECT_FALSE(out.at("last_hidden_state").isnan().any().item<bool>()) << head;
  }
}

TEST_P(ArchTest, SaveLoadRoundTrip) {
  const auto& arch = models::find_architecture(GetParam().config["model_type"], "test");
  std::string head = arch.head_classes[1];
  auto m = make(GetParam().config, head);
  testing::ScratchDir dir("model");
  models::save_model(*m, GetParam().config, dir.path());
  auto loaded = models::load_model(dir.path());
  EXPECT_EQ(loaded.model->info().head_class, head);
  models::ModelInputs in;
  in.input_ids = ids_for(2, 5);
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::equal(m->forward(in).at("logits"), loaded.model->forward(in).at("logits")));
  // The base class is stored without the prefix and loads from a head checkpoint as HF does.
  // (init_missing: RoBERTa's classification head has no pooler, which RobertaModel wants.)
  auto base = models::load_model(dir.path(), {arch.head_classes.front(), true});
  EXPECT_TRUE(testing::all_close(base.model->forward(in).at("last_hidden_state"), m->forward(in).at("last_hidden_state"), 0, 0));
}

TEST_P(ArchTest, RightPaddingLeavesRealPositionsUnchanged) {
  const auto& arch = models::find_architecture(GetParam().config["model_type"], "test");
  auto m = make(GetParam().config, arch.head_classes.front());
  torch::NoGradGuard g;
  auto ids = ids_for(1, 5);
  models::ModelInputs single;
  single.input_ids = ids;
  auto want = m->forward(single).at("last_hidden_state");
  int64_t pad = m->info().pad_token_id.value_or(0);
  models::ModelInputs padded;
  padded.input_ids = torch::cat({ids, torch::full({1, 3}, pad, torch::kLong)}, 1);
  padded.attention_mask = torch::cat({torch::ones({1, 5}, torch::kLong), torch::zeros({1, 3}, torch::kLong)}, 1);
  auto got = m->forward(padded).at("last_hidden_state").slice(1, 0, 5);
  EXPECT_TRUE(testing::all_close(got, want, 1e-5, 1e-5));
}

TEST_P(ArchTest, KvCacheMatchesFullRecompute) {
  const auto& arch = models::find_architecture(GetParam().config["model_type"], "test");
  auto m = make(GetParam().config, arch.head_classes[1]);
  if (!m->info().is_decoder) GTEST_SKIP() << "encoder";
  torch::NoGradGuard g;
  auto ids = ids_for(1, 9);
  models::ModelInputs full;
  full.input_ids = ids;
  auto want = m->forward(full).at("logits");
  models::KVCache cache;
  std::vector<torch::Tensor> steps;
  for (auto [lo, hi] : std::vector<std::pair<int64_t, int64_t>>{{0, 4}, {4, 5}, {5, 9}}) {
    models::ModelInputs in;
    in.input_ids = ids.slice(1, lo, hi);
    in.cache = &cache;
    steps.push_back(m->forward(in).at("logits"));
  }
  EXPECT_TRUE(testing::all_close(torch::cat(steps, 1), want, 1e-5, 1e-5));
}

// FastFormers' shallower student: the chosen blocks, renumbered in the order given, everything
// else as it was, with the family's own layer-count key; the result loads with nothing missing.
TEST_P(ArchTest, KeepLayersRenumbersTheChosenBlocks) {
  const auto& arch = models::find_architecture(GetParam().config["model_type"], "test");
  auto m = make(GetParam().config, arch.head_classes[1]);
  testing::ScratchDir dir("teacher");
  models::save_model(*m, GetParam().config, dir.path());
  auto teacher = models::load_model(dir.path());
  const int64_t last = teacher.model->info().num_layers - 1;
  ASSERT_GE(last, 1);
  auto subset = models::keep_layers(teacher, {last, 0}, "test");
  EXPECT_EQ(subset.config[arch.layer_count_key], 2);
  std::map<std::string, torch::Tensor> teacher_tensors;
  for (auto& p : teacher.model->named_parameters()) teacher_tensors[models::hf_name(teacher.model->info(), p.key())] = p.value();
  int64_t in_blocks = 0;
  for (const auto& [name, t] : subset.tensors) {
    std::string source = name;
    if (auto split = models::split_layer_name(arch, name)) {
      ASSERT_LT(split->index, 2) << name;
      source = split->before + std::to_string(split->index == 0 ? last : 0) + split->after;
      ++in_blocks;
    }
    ASSERT_TRUE(teacher_tensors.count(source)) << name << " from " << source;
    EXPECT_TRUE(torch::equal(t, teacher_tensors[source])) << name;
  }
  EXPECT_GT(in_blocks, 0);
  testing::ScratchDir out("student");
  io::write_safetensors(out / "model.safetensors", subset.tensors);
  io::write_json_file_atomic(out / "config.json", subset.config);
  auto student = models::load_model(out.path());
  EXPECT_EQ(student.model->info().num_layers, 2);
  EXPECT_EQ(subset.tensors.size(), student.model->named_parameters().size());
  EXPECT_NE(testing::error_of([&] { models::keep_layers(teacher, {0, 0}, "r.yaml"); }).find("r.yaml: student.layers must be distinct"),
            std::string::npos);
}

TEST(LayerSurgery, SplitLayerNameNeedsTheWholeModuleName) {
  const auto& opt = models::find_architecture("opt", "test");
  auto s = models::split_layer_name(opt, "model.decoder.layers.12.fc1.weight");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->before, "model.decoder.layers.");
  EXPECT_EQ(s->index, 12);
  EXPECT_EQ(s->after, ".fc1.weight");
  EXPECT_FALSE(models::split_layer_name(opt, "model.xdecoder.layers.1.fc1.weight"));
  EXPECT_FALSE(models::split_layer_name(opt, "model.decoder.layers.fc1.weight"));
  EXPECT_FALSE(models::split_layer_name(opt, "model.decoder.embed_tokens.weight"));
  const auto& gpt2 = models::find_architecture("gpt2", "test");
  EXPECT_EQ(models::split_layer_name(gpt2, "h.3.mlp.c_fc.weight")->index, 3);
  EXPECT_FALSE(models::split_layer_name(gpt2, "transformer.wte.weight"));
}

INSTANTIATE_TEST_SUITE_P(Archs, ArchTest, ::testing::ValuesIn(arch_cases()),
                         [](const ::testing::TestParamInfo<ArchCase>& i) { return i.param.name; });


TEST(ModelErrors, UnknownModelTypeListsSupported) {
  auto e = testing::error_of([] { models::build_model(io::JsonFields({{"model_type", "mamba"}}, "cfg.json")); });
  EXPECT_NE(e.find("'mamba'"), std::string::npos) << e;
  EXPECT_NE(e.find("bert"), std::string::npos) << e;
  EXPECT_NE(e.find("llama"), std::string::npos) << e;
}

TEST(ModelErrors, BadConfigFieldIsNamed) {
  json c = arch_cases()[0].config;
  c["hidden_size"] = "wide";
  auto e = testing::error_of([&] { models::build_model(io::JsonFields(c, "cfg.json")); });
  EXPECT_NE(e.find("cfg.json: field 'hidden_size'"), std::string::npos) << e;
  c["hidden_size"] = 30;  // not a multiple of 4 heads
  e = testing::error_of([&] { models::build_model(io::JsonFields(c, "cfg.json")); });
  EXPECT_NE(e.find("multiple of num_attention_heads"), std::string::npos) << e;
}

// Sizes that would divide by zero (or build empty layers) are refused by name in every family, as
// are integers a JSON reader cannot hold exactly: a float beyond int64 (1e30), an unsigned above it.
TEST(ModelErrors, ZeroSizesAndOutOfRangeIntegersAreNamed) {
  const std::map<std::string, std::vector<std::string>> sizes = {
      {"bert", {"num_attention_heads", "hidden_size", "num_hidden_layers", "vocab_size"}},
      {"gpt2", {"n_head", "n_embd", "n_layer"}},
      {"opt", {"num_attention_heads", "hidden_size", "ffn_dim"}},
      {"llama", {"num_key_value_heads", "num_attention_heads", "head_dim", "intermediate_size"}},
      {"distilbert", {"n_heads", "dim", "hidden_dim"}}};
  std::set<std::string> families;
  for (const auto& a : arch_cases()) {
    const std::string type = a.config["model_type"].get<std::string>();
    if (!sizes.count(type) || !families.insert(type).second) continue;
    for (const auto& key : sizes.at(type)) {
      SCOPED_TRACE(type + "." + key);
      json c = a.config;
      c[key] = 0;
      auto e = testing::error_of([&] { models::build_model(io::JsonFields(c, "cfg.json")); });
      EXPECT_NE(e.find("cfg.json: field '" + key + "' expected a positive integer, got 0"), std::string::npos) << e;
    }
  }
  EXPECT_EQ(families.size(), sizes.size());
  json c = arch_cases()[0].config;
  c["vocab_size"] = 1e30;
  auto e = testing::error_of([&] { models::build_model(io::JsonFields(c, "cfg.json")); });
  EXPECT_NE(e.find("field 'vocab_size' expected an integer within int64's range, got 1e+30"), std::string::npos) << e;
  c["vocab_size"] = uint64_t{18446744073709551615ull};
  e = testing::error_of([&] { models::build_model(io::JsonFields(c, "cfg.json")); });
  EXPECT_NE(e.find("field 'vocab_size' expected an integer within int64's range, got 18446744073709551615"), std::string::npos) << e;
}

TEST(ModelErrors, WrongShapeAndMissingTensorsAreNamed) {
  json c = arch_cases()[0].config;
  auto m = make(c, "BertForMaskedLM");
  testing::ScratchDir dir("model");
  models::save_model(*m, c, dir.path());
  json bigger = c;
  bigger["intermediate_size"] = 50;
  io::write_json_file_atomic(dir / "config.json", bigger);
  auto e = testing::error_of([&] { models::load_model(dir.path()); });
  EXPECT_NE(e.find("intermediate.dense.weight' has shape [48, 32], but config.json implies [50, 32]"), std::string::npos) << e;
  io::write_json_file_atomic(dir / "config.json", c);
  e = testing::error_of([&] { models::load_model(dir.path(), {"BertForSequenceClassification"}); });
  EXPECT_NE(e.find("is missing"), std::string::npos) << e;
  EXPECT_NE(e.find("bert.pooler.dense"), std::string::npos) << e;
  // With init_missing a pretrained body gets a fresh head, as HF's from_pretrained does.
  auto fresh = models::load_model(dir.path(), {"BertForSequenceClassification", true});
  EXPECT_EQ(fresh.model->info().head_class, "BertForSequenceClassification");
}

// Integer weights without the quantization_config that says how to dequantize them (e.g. a
// compressed-tensors checkpoint whose config section a tool renamed or dropped) are refused, not
// read as floats.
TEST(ModelErrors, IntegerWeightsWithoutQuantizationConfigAreRefused) {
  json c = arch_cases()[0].config;
  auto m = make(c, "BertForMaskedLM");
  testing::ScratchDir dir("model-int8");
  models::save_model(*m, c, dir.path());
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  {
    io::SafetensorsFile saved(dir / "model.safetensors");
    for (const auto& [name, entry] : saved.entries()) {
      auto t = saved.tensor(name).clone();
      if (name.find("attention.self.query.weight") != std::string::npos) t = t.mul(100).round().to(torch::kInt8);
      tensors.emplace_back(name, t);
    }
  }
  io::write_safetensors(dir / "model.safetensors", tensors);
  auto e = testing::error_of([&] { models::load_model(dir.path()); });
  EXPECT_NE(e.find("attention.self.query.weight' is stored as I8; integer weights need the quantization_config"), std::string::npos) << e;
}

TEST(ModelErrors, InputsOutsideVocabOrTooLong) {
  auto m = make(arch_cases()[3].config, "GPT2LMHeadModel");
  models::ModelInputs in;
  in.input_ids = torch::tensor({{1, 200}}, torch::kLong);
  auto e = testing::error_of([&] { models::validate_inputs(m->info(), in, "ids.npy"); });
  EXPECT_NE(e.find("outside the vocabulary [0, 97)"), std::string::npos) << e;
  in.input_ids = torch::ones({1, 41}, torch::kLong);
  e = testing::error_of([&] { models::validate_inputs(m->info(), in, "ids.npy"); });
  EXPECT_NE(e.find("exceeds max_position_embeddings 40"), std::string::npos) << e;
}

TEST(Generation, SamplingIsSeededAndGreedyIsArgmax) {
  auto m = make(arch_cases()[3].config, "GPT2LMHeadModel");
  auto prompt = torch::tensor({{5, 6, 7}}, torch::kLong);
  models::GenerationOptions o;
  o.max_new_tokens = 6;
  o.stop_at_eos = false;
  auto greedy = models::generate(*m, prompt, o);
  EXPECT_EQ(greedy.size(1), 9);
  models::ModelInputs in;
  in.input_ids = greedy.slice(1, 0, 8);
  torch::NoGradGuard g;
  auto logits = m->forward(in).at("logits");
  EXPECT_TRUE(torch::equal(logits.argmax(-1).slice(1, 2, 8), greedy.slice(1, 3, 9)));
  o.sample = true;
  o.top_k = 5;
  o.top_p = 0.9;
  o.seed = 11;
  EXPECT_TRUE(torch::equal(models::generate(*m, prompt, o), models::generate(*m, prompt, o)));
}

}  // namespace
}  // namespace sqz

namespace sqz {
namespace {

TEST(ModelSize, BaseConfigsHaveHFParameterCounts) {
  // bert-base-uncased (BertModel) and gpt2 (GPT2LMHeadModel, tied head) as HF counts them.
  auto bert = models::build_model(io::JsonFields({{"model_type", "bert"}}, "bert-base"));
  EXPECT_EQ(models::count_parameters(*bert), 109482240);
  auto gpt2 = models::build_model(io::JsonFields({{"model_type", "gpt2"}, {"architectures", {"GPT2LMHeadModel"}}}, "gpt2"));
  EXPECT_EQ(models::count_parameters(*gpt2), 124439808);
  // t5-small (T5ForConditionalGeneration, tied) and bart-base's BartModel, counted by transformers 4.46.
  auto t5 = models::build_model(io::JsonFields({{"model_type", "t5"}, {"architectures", {"T5ForConditionalGeneration"}}}, "t5-small"));
  EXPECT_EQ(models::count_parameters(*t5), 60506624);
  auto bart = models::build_model(
      io::JsonFields({{"model_type", "bart"}, {"d_model", 768}, {"encoder_layers", 6}, {"decoder_layers", 6}, {"encoder_attention_heads", 12},
                      {"decoder_attention_heads", 12}, {"encoder_ffn_dim", 3072}, {"decoder_ffn_dim", 3072}},
                     "bart-base"));
  EXPECT_EQ(models::count_parameters(*bart), 139420416);
}

io::json tiny_t5_config() {
  return {{"model_type", "t5"}, {"vocab_size", 61}, {"d_model", 32}, {"d_kv", 8}, {"d_ff", 48}, {"num_layers", 2},
          {"num_decoder_layers", 3}, {"num_heads", 4}, {"relative_attention_num_buckets", 8}, {"relative_attention_max_distance", 10},
          {"pad_token_id", 0}, {"eos_token_id", 1}, {"decoder_start_token_id", 0}, {"architectures", {"T5ForConditionalGeneration"}}};
}

io::json tiny_bart_config() {
  return {{"model_type", "bart"}, {"vocab_size", 61}, {"d_model", 32}, {"encoder_layers", 2}, {"decoder_layers", 2},
          {"encoder_attention_heads", 4}, {"decoder_attention_heads", 2}, {"encoder_ffn_dim", 48}, {"decoder_ffn_dim", 40},
          {"max_position_embeddings", 40}, {"pad_token_id", 1}, {"eos_token_id", 2}, {"decoder_start_token_id", 2},
          {"architectures", {"BartForConditionalGeneration"}}};
}

// Cached decoding (cross-attention K/V projected once, self-attention K/V appended, positions and
// T5's relative bias offset by the past) must give the logits a full forward gives, step by step,
// and the batched greedy decode the tokens a one-row decode gives.
TEST(Seq2Seq, CachedDecodingEqualsFullForwards) {
  for (const auto& config : {tiny_t5_config(), tiny_bart_config()}) {
    SCOPED_TRACE(config["model_type"].get<std::string>());
    auto m = testing::tiny_model(config);
    torch::NoGradGuard no_grad;
    torch::manual_seed(4);
    auto ids = torch::randint(3, 61, {2, 9}, torch::kLong);
    auto mask = torch::ones({2, 9}, torch::kLong);
    mask[1].slice(0, 5).fill_(0);
    auto dec = torch::randint(3, 61, {2, 6}, torch::kLong);
    models::ModelInputs full;
    full.input_ids = ids;
    full.attention_mask = mask;
    full.decoder_input_ids = dec;
    auto want = m->forward(full).at("logits");
    models::KVCache cache;
    torch::Tensor memory;
    for (int64_t t = 0; t < dec.size(1); ++t) {
      models::ModelInputs step = full;
      step.decoder_input_ids = dec.slice(1, t, t + 1);
      step.cache = &cache;
      step.encoder_last_hidden_state = memory;
      auto out = m->forward(step);
      if (!memory.defined()) memory = out.at("encoder_last_hidden_state");
      EXPECT_LT((out.at("logits").select(1, 0) - want.select(1, t)).abs().max().item<double>(), 1e-5) << "step " << t;
    }
    auto batched = models::generate_seq2seq_greedy(*m, ids, mask, 5);
    for (int64_t row = 0; row < 2; ++row) {
      const int64_t real = mask[row].sum().item<int64_t>();
      auto one = models::generate_seq2seq_greedy(*m, ids.slice(0, row, row + 1).slice(1, 0, real), torch::ones({1, real}, torch::kLong), 5);
      EXPECT_TRUE(torch::equal(one[0], batched[row].slice(0, 0, one.size(1)))) << "row " << row;
    }
  }
}

// A batch of padded rows decodes as each row alone (beams of different rows never mix; the padding
// reaches no real position), and one beam is greedy decoding.
TEST(Seq2Seq, BatchedBeamSearchEqualsOneRowAtATime) {
  for (const auto& config : {tiny_t5_config(), tiny_bart_config()}) {
    SCOPED_TRACE(config["model_type"].get<std::string>());
    auto m = testing::tiny_model(config);
    torch::manual_seed(6);
    auto ids = torch::randint(3, 61, {3, 7}, torch::kLong);
    auto mask = torch::ones({3, 7}, torch::kLong);
    mask[2].slice(0, 4).fill_(0);
    models::BeamSearchOptions o;
    o.num_beams = 3;
    o.max_new_tokens = 6;
    auto batched = models::beam_search(*m, ids, mask, o);
    ASSERT_EQ(batched.size(), 3u);
    for (int64_t row = 0; row < 3; ++row) {
      const int64_t real = mask[row].sum().item<int64_t>();
      auto one = models::beam_search(*m, ids.slice(0, row, row + 1).slice(1, 0, real), {}, o);
      EXPECT_EQ(one.front(), batched[row]) << "row " << row;
    }
    o.num_beams = 1;
    auto greedy = models::generate_seq2seq_greedy(*m, ids, mask, 6);
    auto single = models::beam_search(*m, ids, mask, o);
    for (int64_t row = 0; row < 3; ++row)
      for (size_t j = 0; j < single[row].size() && j < static_cast<size_t>(greedy.size(1)); ++j)
        EXPECT_EQ(single[row][j], greedy[row][static_cast<int64_t>(j)].item<int64_t>()) << "row " << row << " token " << j;
  }
}

TEST(Vision, PixelValuesAreCheckedAndTextInputsRefused) {
  auto vit = testing::tiny_model({{"model_type", "vit"}, {"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
                                  {"intermediate_size", 48}, {"image_size", 16}, {"patch_size", 4}, {"num_labels", 3},
                                  {"architectures", {"ViTForImageClassification"}}});
  models::ModelInputs in;
  in.pixel_values = torch::randn({2, 3, 16, 16});
  models::validate_inputs(vit->info(), in, "in/");
  torch::NoGradGuard g;
  EXPECT_EQ(vit->forward(in).at("logits").sizes(), torch::IntArrayRef({2, 3}));
  EXPECT_EQ(vit->structure().attention.size(), 2u);
  in.pixel_values = torch::randn({2, 3, 32, 32});
  auto e = testing::error_of([&] { models::validate_inputs(vit->info(), in, "in/"); });
  EXPECT_NE(e.find("pixel_values must have shape [batch, 3, 16, 16] (no position interpolation)"), std::string::npos) << e;
  in.pixel_values = torch::Tensor();
  in.input_ids = torch::ones({1, 4}, torch::kLong);
  e = testing::error_of([&] { models::validate_inputs(vit->info(), in, "in/"); });
  EXPECT_NE(e.find("pixel_values is required"), std::string::npos) << e;
  auto bad = testing::error_of([] {
    testing::tiny_model({{"model_type", "vit"}, {"image_size", 30}, {"patch_size", 4}, {"architectures", {"ViTModel"}}});
  });
  EXPECT_NE(bad.find("image_size"), std::string::npos) << bad;
}

TEST(Seq2Seq, MissingOrMisplacedDecoderInputsAreNamed) {
  auto t5 = testing::tiny_model(tiny_t5_config());
  models::ModelInputs in;
  in.input_ids = torch::tensor({{5, 6, 7}}, torch::kLong);
  auto e = testing::error_of([&] { t5->forward(in); });
  EXPECT_NE(e.find("T5ForConditionalGeneration needs decoder_input_ids"), std::string::npos) << e;
  in.decoder_input_ids = torch::tensor({{0, 70}}, torch::kLong);
  e = testing::error_of([&] { models::validate_inputs(t5->info(), in, "in/"); });
  EXPECT_NE(e.find("decoder_input_ids contain 70, outside the vocabulary [0, 61)"), std::string::npos) << e;
  auto gpt2 = make(arch_cases()[3].config, "GPT2LMHeadModel");
  in.decoder_input_ids = torch::tensor({{0, 5}}, torch::kLong);
  e = testing::error_of([&] { models::validate_inputs(gpt2->info(), in, "in/"); });
  EXPECT_NE(e.find("decoder_input_ids given, but gpt2 is not an encoder-decoder"), std::string::npos) << e;
  auto bad = tiny_t5_config();
  bad["relative_attention_max_distance"] = 4;
  e = testing::error_of([&] { testing::tiny_model(bad); });
  EXPECT_NE(e.find("relative_attention_max_distance"), std::string::npos) << e;
}

// What transformers can load: GPT-2 and BERT apply pruned_heads, Llama does not; per-layer FFN
// widths are sqz's key for any family.
TEST(SqzOnlyShape, NamesTheFieldTransformersCannotRead) {
  auto gpt2 = testing::tiny_gpt2_config();
  gpt2["pruned_heads"] = {{"0", {1}}};
  EXPECT_EQ(models::sqz_only_shape(*testing::tiny_model(gpt2), gpt2), "");
  auto bert = testing::tiny_bert_config();
  EXPECT_EQ(models::sqz_only_shape(*testing::tiny_model(bert), bert), "");
  bert["sqz_intermediate_sizes"] = {8, 16};
  EXPECT_NE(models::sqz_only_shape(*testing::tiny_model(bert), bert).find("field 'sqz_intermediate_sizes'"), std::string::npos);
  auto llama = testing::tiny_llama_config(4);
  llama["pruned_heads"] = {{"1", {0}}};
  EXPECT_NE(models::sqz_only_shape(*testing::tiny_model(llama), llama).find("does not apply it to llama"), std::string::npos);
}

}  // namespace
}  // namespace sqz
