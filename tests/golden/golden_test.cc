// Every fixture in ../shared/fixtures (real transformers outputs) must match: outputs within
// the fixture's tolerance, tokenizer cases exactly, greedy generations exactly.
#include "io/json_file.h"
#include "io/npy.h"
#include "io/tokenizers/tokenizer.h"
#include "models/generation.h"
#include "models/registry.h"
#include "runtime/bert_encoder.h"
#include "runtime/decoder.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

using io::json;

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  fs::path index = testing::fixtures_dir() / "index.json";
  if (!fs::exists(index)) return {"missing-fixtures-index"};
  json all = io::read_json_file(index);
  for (const auto& f : all["fixtures"]) names.push_back(f["name"].get<std::string>());
  return names;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = testing::fixtures_dir() / GetParam();
    ASSERT_TRUE(fs::exists(dir_ / "manifest.json")) << "fixture missing: " << dir_;
    manifest_ = io::read_json_file(dir_ / "manifest.json");
  }
  fs::path dir_;
  json manifest_;
};

TEST_P(GoldenTest, OutputsMatchTransformers) {
  auto loaded = models::load_model(dir_ / manifest_["model_dir"].get<std::string>());
  EXPECT_EQ(models::count_parameters(*loaded.model), manifest_["parameter_count"].get<int64_t>());
  models::ModelInputs in;
  for (auto& [name, spec] : manifest_["inputs"].items()) {
    auto t = io::read_npy(dir_ / spec["file"].get<std::string>());
    if (name == "input_ids") in.input_ids = t;
    else if (name == "attention_mask") in.attention_mask = t;
    else if (name == "token_type_ids") in.token_type_ids = t;
    else if (name == "position_ids") in.position_ids = t;
    else if (name.rfind("gen_prompt_", 0) != 0) FAIL() << "fixture input '" << name << "' is not supported yet";
  }
  in.output_hidden_states = in.output_attentions = true;
  torch::NoGradGuard no_grad;
  auto out = loaded.model->forward(in);
  double atol = manifest_["tolerance"]["atol"], rtol = manifest_["tolerance"]["rtol"];
  int checked = 0;
  for (auto& [name, spec] : manifest_["outputs"].items()) {
    if (name.rfind("gen_output_", 0) == 0) continue;
    auto expected = io::read_npy(dir_ / spec["file"].get<std::string>());
    torch::Tensor actual;
    if (name == "hidden_states") actual = torch::stack(out.hidden_states);
    else if (name == "attentions") actual = torch::stack(out.attentions);
    else if (out.tensors.count(name)) actual = out.tensors.at(name);
    else {
      ADD_FAILURE() << "model produced no output '" << name << "'";
      continue;
    }
    EXPECT_TRUE(testing::all_close(actual, expected, atol, rtol)) << GetParam() << " output " << name;
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

TEST_P(GoldenTest, GreedyGenerationMatches) {
  if (!manifest_.contains("generation")) GTEST_SKIP() << "not a generative fixture";
  auto loaded = models::load_model(dir_ / manifest_["model_dir"].get<std::string>());
  for (const auto& p : manifest_["generation"]["prompts"]) {
    auto prompt = io::read_npy(dir_ / p["prompt_file"].get<std::string>());
    auto expected = io::read_npy(dir_ / p["output_file"].get<std::string>());
    models::GenerationOptions o;
    o.max_new_tokens = expected.size(1) - prompt.size(1);
    auto got = models::generate(*loaded.model, prompt, o);
    EXPECT_TRUE(torch::equal(got, expected)) << "prompt " << p["prompt_text"] << ": got " << got << " expected " << expected;
  }
}

TEST_P(GoldenTest, TokenizerCasesMatch) {
  if (!manifest_.contains("tokenizer")) GTEST_SKIP() << "fixture has no tokenizer";
  auto tok = io::load_tokenizer(dir_ / manifest_["model_dir"].get<std::string>());
  json cases = io::read_json_file(dir_ / manifest_["tokenizer"]["cases_file"].get<std::string>());
  ASSERT_FALSE(cases["cases"].empty());
  for (const auto& c : cases["cases"]) {
    std::string text = c["text"];
    std::string pair = c.contains("text_pair") && c["text_pair"].is_string() ? c["text_pair"].get<std::string>() : "";
    bool has_pair = c.contains("text_pair") && c["text_pair"].is_string();
    auto enc = tok->encode(text, has_pair ? &pair : nullptr);
    EXPECT_EQ(enc.ids, c["input_ids"].get<std::vector<int64_t>>()) << "text: " << text;
    if (c.contains("tokens")) EXPECT_EQ(tok->tokenize(text), c["tokens"].get<std::vector<std::string>>()) << "text: " << text;
    if (c.contains("token_type_ids"))
      EXPECT_EQ(enc.type_ids, c["token_type_ids"].get<std::vector<int64_t>>()) << "text: " << text;
    if (c.contains("decoded")) EXPECT_EQ(tok->decode(c["input_ids"].get<std::vector<int64_t>>()), c["decoded"].get<std::string>());
  }
}

// sqz's runtime engine (fp32) on the real transformers outputs of the BERT classifier fixture:
// logits, and the last hidden state at every real (unpadded) token.
TEST(GoldenRuntime, BertClassifierMatchesTransformers) {
  const fs::path dir = testing::fixtures_dir() / "bert-seqcls";
  ASSERT_TRUE(fs::exists(dir / "manifest.json")) << "fixture missing: " << dir;
  const json manifest = io::read_json_file(dir / "manifest.json");
  auto loaded = models::load_model(dir / "model");
  runtime::BertEncoder engine(loaded, {runtime::Precision::kFp32, 2});
  auto ids = io::read_npy(dir / "inputs" / "input_ids.npy").to(torch::kLong).contiguous();
  auto mask = io::read_npy(dir / "inputs" / "attention_mask.npy").to(torch::kLong).contiguous();
  auto types = io::read_npy(dir / "inputs" / "token_type_ids.npy").to(torch::kLong).contiguous();
  auto out = engine.forward(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), types.data_ptr<int64_t>(), ids.size(0), ids.size(1));
  const double atol = manifest["tolerance"]["atol"], rtol = manifest["tolerance"]["rtol"];
  auto logits = torch::from_blob(out.logits.data(), {out.batch, out.num_labels}, torch::kFloat32);
  EXPECT_TRUE(testing::all_close(logits, io::read_npy(dir / "outputs" / "logits.npy"), atol, rtol));
  auto hidden = torch::from_blob(out.last_hidden_state.data(), {out.batch, out.seq, out.hidden}, torch::kFloat32);
  auto real = mask.to(torch::kBool).unsqueeze(-1).expand_as(hidden);
  auto expected = io::read_npy(dir / "outputs" / "last_hidden_state.npy");
  EXPECT_TRUE(testing::all_close(hidden.masked_select(real), expected.masked_select(real), atol, rtol));
}

// The runtime's decoder (fp32, KV cache) reproduces transformers' greedy generations exactly.
TEST(GoldenRuntime, Gpt2GreedyGenerationMatchesTransformers) {
  const fs::path dir = testing::fixtures_dir() / "gpt2-lm";
  ASSERT_TRUE(fs::exists(dir / "manifest.json")) << "fixture missing: " << dir;
  const json manifest = io::read_json_file(dir / "manifest.json");
  auto loaded = models::load_model(dir / manifest["model_dir"].get<std::string>());
  runtime::Decoder engine(loaded, {runtime::Precision::kFp32, 2});
  int checked = 0;
  for (const auto& p : manifest["generation"]["prompts"]) {
    auto prompt = io::read_npy(dir / p["prompt_file"].get<std::string>()).to(torch::kLong).contiguous();
    auto expected = io::read_npy(dir / p["output_file"].get<std::string>()).to(torch::kLong);
    auto got = engine.generate_greedy(prompt.data_ptr<int64_t>(), prompt.size(0), prompt.size(1), expected.size(1) - prompt.size(1));
    auto got_t = torch::from_blob(got.data(), expected.sizes(), torch::kLong);
    EXPECT_TRUE(torch::equal(got_t, expected)) << "prompt " << p["prompt_text"] << ": got " << got_t;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenTest, ::testing::ValuesIn(fixture_names()), testing::param_name);

}  // namespace
}  // namespace sqz
