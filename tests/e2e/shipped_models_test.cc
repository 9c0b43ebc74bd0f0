// Every shipped model under models/ that records a dev score (eval_dev.json: accuracy, perplexity or
// seq2seq WER/PER) gets that score again from `sqz eval` on this code, and its card (README.md)
// quotes it: what the issue's "sqz eval reports the teachers' dev scores; the numbers in the model
// cards match" asks, checked on each run.
// The scores were recorded on libtorch. By default they are reproduced on the runtime engine in
// fp32 (what `sqz pack` deploys; 5-15x faster here, since Debian's OpenBLAS falls back to its SSE3
// kernels on CPUs it does not know), except masked-LM perplexity, which only libtorch computes, and
// quantized exports (compressed-tensors), whose fake-quantized activations only libtorch runs;
// SQZ_SHIPPED_ENGINE=libtorch reproduces every one on libtorch (ctest label `slow`).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/json_file.h"
#include "train/recipe.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

fs::path models_dir() { return fs::path(SQZ_SOURCE_DIR) / "models"; }

std::vector<std::string> models_with_dev_scores() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(models_dir()))
    if (fs::exists(e.path() / "eval_dev.json")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// The engine `sqz eval` runs a shipped model on: "runtime" (fp32) or "libtorch". A quantized
// export stays on libtorch, where its score was recorded: the runtime's fp32 reads its weights
// dequantized but leaves the activations unquantized, a different model (g2p GPUSQ: 2 words of
// 12277 apart).
std::string engine_for(const fs::path& dir) {
  const char* forced = std::getenv("SQZ_SHIPPED_ENGINE");
  if (forced && std::string(forced) == "libtorch") return "libtorch";
  const auto config = io::read_json_file(dir / "config.json");
  if (config.contains("quantization_config")) return "libtorch";
  for (const auto& a : config.value("architectures", io::json::array()))
    if (a.get<std::string>().find("MaskedLM") != std::string::npos) return "libtorch";
  return "runtime";
}

class ShippedModel : public ::testing::TestWithParam<std::string> {};

TEST_P(ShippedModel, EvalReproducesEvalDevJsonAndTheCardQuotesIt) {
  const fs::path dir = models_dir() / GetParam();
  const auto recorded = io::read_json_file(dir / "eval_dev.json");
  // A teacher's recipe.yaml is its training recipe; a compressed model's is a compress recipe, and
  // its eval_dev.json records the task and max length itself.
  std::string task;
  int64_t max_length = 0;
  if (recorded.contains("max_length")) {
    task = recorded["task"].get<std::string>();
    max_length = recorded["max_length"].get<int64_t>();
  } else {
    const auto recipe = train::TrainRecipe::load(dir / "recipe.yaml", {});
    task = recipe.task;
    max_length = recipe.max_length;
  }
  // The recorded split is relative to the repo; the tests read the same file from ../shared.
  const std::string split_file = fs::path(recorded["split"].get<std::string>()).filename().string();
  const fs::path split = testing::shared_dir() / "data" / task / split_file;
  const std::string engine = engine_for(dir);
  auto r = testing::run_sqz("eval " + dir.string() + " --task " + task + " --split " + split.string() + " --max-length " +
                            std::to_string(max_length) + (engine == "runtime" ? " --engine runtime --precision fp32" : ""));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto now = io::json::parse(r.output.substr(r.output.rfind('{')));
  EXPECT_EQ(now["engine"], engine == "runtime" ? "runtime fp32" : "libtorch");
  const std::string card = read_text_file(dir / "README.md");
  if (recorded.contains("accuracy")) {
    const double examples = recorded["examples"].get<double>();
    EXPECT_EQ(now["examples"], recorded["examples"]);
    // Thread counts change float sums; allow one example to flip across a decision boundary.
    EXPECT_NEAR(now["accuracy"].get<double>(), recorded["accuracy"].get<double>(), 1.0 / examples + 1e-12);
    EXPECT_NEAR(now["macro_f1"].get<double>(), recorded["macro_f1"].get<double>(), 0.01);
    for (const char* key : {"accuracy", "macro_f1"}) {
      const std::string quoted = fixed(recorded[key].get<double>(), 4);
      EXPECT_NE(card.find(quoted), std::string::npos) << GetParam() << "/README.md does not quote " << key << " " << quoted;
    }
  } else if (recorded.contains("wer")) {  // seq2seq: greedy decoding of the whole dev split
    const double examples = recorded["examples"].get<double>();
    EXPECT_EQ(now["examples"], recorded["examples"]);
    EXPECT_NEAR(now["wer"].get<double>(), recorded["wer"].get<double>(), 2.0 / examples + 1e-12);
    EXPECT_NEAR(now["per"].get<double>(), recorded["per"].get<double>(), 0.002);
    for (const char* key : {"wer", "per"}) {
      const std::string quoted = fixed(recorded[key].get<double>(), 4);
      EXPECT_NE(card.find(quoted), std::string::npos) << GetParam() << "/README.md does not quote " << key << " " << quoted;
    }
  } else {
    EXPECT_EQ(now["tokens"], recorded["tokens"]);
    const double ppl = recorded["perplexity"].get<double>();
    EXPECT_NEAR(now["perplexity"].get<double>(), ppl, 1e-4 * ppl);
    EXPECT_NE(card.find(fixed(ppl, 1)), std::string::npos) << GetParam() << "/README.md does not quote perplexity " << fixed(ppl, 1);
    if (recorded.contains("bits_per_byte")) {
      const std::string bpb = fixed(recorded["bits_per_byte"].get<double>(), 3);
      EXPECT_NE(card.find(bpb), std::string::npos) << GetParam() << "/README.md does not quote bits per byte " << bpb;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ShippedModel, ::testing::ValuesIn(models_with_dev_scores()), testing::param_name);

TEST(ShippedModels, TheTeachersRecordDevScores) {
  const auto names = models_with_dev_scores();
  for (const char* teacher : {"bert-spam", "bert-sotu-party", "bert-wordnet-supersense", "gpt2-lm-books", "minilm-spam",
                              "minilm-sotu-party", "minilm-wordnet-supersense"})
    EXPECT_NE(std::find(names.begin(), names.end(), teacher), names.end()) << teacher << " has no eval_dev.json";
}

}  // namespace
}  // namespace sqz
