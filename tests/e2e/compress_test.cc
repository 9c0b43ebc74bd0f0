// `sqz compress` and `sqz speedup` as a user runs them on the shipped spam teacher: a short
// pruning + distillation run writes a smaller model that loads, its report holds the numbers,
// SpeedUp's output equals the masked model's; bad recipes fail before training and leave no
// output directory.
#include <fstream>

#include "io/json_file.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

fs::path repo() { return fs::path(SQZ_SOURCE_DIR); }

std::string spam_recipe(const fs::path& out, const std::string& extra = "") {
  return "train:\n  model: " + (repo() / "models" / "bert-spam").string() + "\n  task: spam\n  data: " +
         (testing::shared_dir() / "data" / "spam").string() +
         "\n  max_length: 48\n  steps: 6\n  batch_size: 8\n  lr: 1.0e-4\n  warmup_steps: 1\n  threads: 2\n  eval_every: 100\n"
         "  eval_batches: 2\n"
         "distill: {temperature: 2.0, logits_weight: 1.0, labels_weight: 0.5, hidden_weight: 1.0}\n"
         "prune:\n"
         "  - {name: heads, granularity: head, metric: movement, sparsity: 0.5, schedule: {kind: agp, start: 0, end: 4, every: 1}}\n"
         "  - {name: ffn, granularity: neuron, metric: taylor, sparsity: 0.5, scope: global, schedule: {kind: oneshot, start: 3}}\n"
         "latency: {batch_sizes: [1], seq: 32, runs: 2}\neval_batches: 3\nout: " +
         out.string() + "\n" + extra;
}

fs::path write(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
  return p;
}

TEST(Compress, PrunesDistillsShrinksAndReports) {
  testing::ScratchDir tmp("compress");
  auto recipe = write(tmp / "r.yaml", spam_recipe(tmp / "out"));
  auto r = testing::run_sqz("compress --recipe " + recipe.string());
  ASSERT_EQ(r.code, 0) << r.output;
  auto report = io::read_json_file(tmp / "out" / "report.json");
  for (const auto& layer : report["speedup"]["layers"]) {
    EXPECT_EQ(layer["heads_after"], 2);
    EXPECT_LT(layer["neurons_after"].get<int64_t>(), 1024);
  }
  EXPECT_GT(report["encoder_params_removed"].get<double>(), 0.4);
  EXPECT_LT(report["compressed"]["params"].get<int64_t>(), report["dense"]["params"].get<int64_t>());
  EXPECT_LT(report["compressed"]["bytes"].get<int64_t>(), report["dense"]["bytes"].get<int64_t>());
  EXPECT_LT(report["equivalence"]["max_abs_logit_diff"].get<double>(), 1e-4);
  EXPECT_EQ(report["equivalence"]["same_predictions"], report["equivalence"]["compared"]);
  EXPECT_EQ(report["masked"]["eval"]["accuracy"], report["compressed"]["eval"]["accuracy"]);
  EXPECT_TRUE(fs::exists(tmp / "out" / "report.md"));
  EXPECT_TRUE(fs::exists(tmp / "out" / "plots" / "kept_per_layer.svg"));
  EXPECT_TRUE(fs::exists(tmp / "out" / "recipe.yaml"));
  // The compressed model is a model dir like any other.
  auto e = testing::run_sqz("eval " + (tmp / "out" / "model").string() + " --task spam --split " +
                            (testing::shared_dir() / "data" / "spam" / "dev.jsonl").string() + " --max-length 48 --max-batches 3 --batch-size 8");
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_EQ(io::json::parse(e.output.substr(e.output.rfind('{')))["accuracy"], report["compressed"]["eval"]["accuracy"]);
  // Its pruned heads are HF's pruned_heads; speedup on it finds nothing more to cut.
  auto config = io::read_json_file(tmp / "out" / "model" / "config.json");
  EXPECT_EQ(config["pruned_heads"].size(), 4u);
  auto s = testing::run_sqz("speedup " + (tmp / "out" / "model").string() + " --out " + (tmp / "again").string());
  ASSERT_EQ(s.code, 0) << s.output;
  auto sr = io::json::parse(s.output.substr(s.output.rfind('{', s.output.find("\"layers\"")) ));
  EXPECT_EQ(sr["params_after"], sr["params_before"]);
}

TEST(Compress, SweepPlotsScoreAgainstParametersRemoved) {
  testing::ScratchDir tmp("sweep");
  auto recipe = write(tmp / "r.yaml", spam_recipe(tmp / "out"));
  auto r = testing::run_sqz("compress --recipe " + recipe.string() + " --set train.steps=4 --set eval_batches=1 --set latency.enabled=false" +
                            " --sweep prune.0.sparsity=0.25,0.5 --sweep prune.1.sparsity=0.2,0.6");
  ASSERT_EQ(r.code, 0) << r.output;
  auto sweep = io::read_json_file(tmp / "out" / "sweep.json");
  ASSERT_EQ(sweep["points"].size(), 2u);
  EXPECT_LT(sweep["points"][0]["encoder_params_removed"].get<double>(), sweep["points"][1]["encoder_params_removed"].get<double>());
  EXPECT_EQ(sweep["points"][1]["settings"], "prune.0.sparsity=0.5, prune.1.sparsity=0.6");
  EXPECT_TRUE(fs::exists(tmp / "out" / "point-1" / "model" / "model.safetensors"));
  std::ifstream svg(tmp / "out" / "sweep.svg");
  std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("encoder parameters removed"), std::string::npos);
  // Lockstep sweeps need the same number of values.
  auto bad = testing::run_sqz("compress --recipe " + recipe.string() + " --set out=" + (tmp / "o2").string() +
                              " --sweep prune.0.sparsity=0.25,0.5 --sweep prune.1.sparsity=0.2");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.output.find("1 values, but prune.0.sparsity has 2"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(tmp / "o2"));
}

TEST(Compress, BadRecipesFailBeforeTrainingAndLeaveNothing) {
  testing::ScratchDir tmp("compress-bad");
  struct Case {
    std::string extra_or_override, expected;
  };
  std::vector<Case> cases = {
      {"--set prune.0.sparsity=1.0", "sparsity 1 is outside [0, 1)"},
      {"--set prune.0.targets.names=[bert.encoder.layer.7.attention.self.query]", "no module named 'bert.encoder.layer.7"},
      {"--set prune.0.granularity=nm --set prune.0.m=3 --set prune.0.metric=magnitude", "m=3 does not divide"},
      {"--set prune.0.sparsity=0.9 --set prune.0.scope=layer", "would prune all 4 heads of layer 0"},
      {"--set distill.teacher=" + (testing::fixtures_dir() / "bert-mlm" / "model").string(), "tokenizer has 791 tokens"},
      {"--set distill.hidden_map=[[1,9]]", "indices run 0..4 (student) and 0..4 (teacher)"},
      {"--set student.layers=[0,9]", "student.layers must be distinct layer indices in [0, 4)"},
      {"--set prune.0.shape=3", "unknown pruner key 'shape'"},
  };
  for (const auto& c : cases) {
    auto recipe = write(tmp / "r.yaml", spam_recipe(tmp / "out"));
    auto r = testing::run_sqz("compress --recipe " + recipe.string() + " " + c.extra_or_override);
    EXPECT_EQ(r.code, 2) << c.extra_or_override << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.extra_or_override << "\n" << r.output;
    EXPECT_EQ(r.output.find("evaluating the dense model"), std::string::npos) << "work started: " << r.output;
    EXPECT_FALSE(fs::exists(tmp / "out")) << c.extra_or_override;
    for (const auto& e : fs::directory_iterator(tmp.path()))
      EXPECT_EQ(e.path().filename().string().find("out"), std::string::npos) << "left behind: " << e.path();
  }
}

}  // namespace
}  // namespace sqz
