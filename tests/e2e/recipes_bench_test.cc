// `sqz bench` on what every shipped compression recipe writes: each recipe runs at a tiny budget
// (a few steps, one eval batch, schedules squeezed into those steps) with its latency stage on,
// so its report carries the compressed-against-dense table; then the output is packed as a
// runtime dir and benched against the same teacher. Pruned widths, 2:4 exports, int8 and W4
// exports and decoders all go through the same two commands without an abort.
#include <set>

#include "io/json_file.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

fs::path repo() { return fs::path(SQZ_SOURCE_DIR); }

struct ShippedRecipe {
  std::string name, recipe, teacher, task;
  bool distills;
  std::vector<std::string> budget;  // --set overrides that make it tiny
};

std::vector<ShippedRecipe> shipped_recipes() {
  const std::vector<std::string> agp3 = {"prune.0.schedule.end=3", "prune.0.schedule.every=1", "prune.1.schedule.start=1",
                                         "prune.1.schedule.end=3", "prune.1.schedule.every=1"};
  auto with = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  return {
      {"nni", "recipes/compress/nni_bert_spam.yaml", "models/bert-spam", "spam", true,
       with(agp3, {"train.steps=4", "prune.2.schedule.start=1", "prune.2.schedule.end=3", "prune.2.schedule.every=1"})},
      {"fastformers", "recipes/compress/fastformers_bert_spam.yaml", "models/bert-spam", "spam", true,
       with(agp3, {"train.steps=4", "prune.0.schedule.start=1"})},
      {"gpusq", "recipes/gpusq_bert_spam.yaml", "models/bert-spam", "spam", true, {"train.steps=4", "quantize.0.start_step=2"}},
      {"gpusq_bitmask", "recipes/gpusq_bert_spam.yaml", "models/bert-spam", "spam", true,
       {"train.steps=4", "quantize.0.start_step=2", "export.sparsity_format=sparse-24-bitmask"}},
      {"w8a8", "recipes/quant/w8a8_bert_spam.yaml", "models/bert-spam", "spam", false, {"calibration.batches=2"}},
      {"gptq_w4", "recipes/quant/w4_gptq_gpt2_lm_books.yaml", "models/gpt2-lm-books", "lm-books", false, {"calibration.batches=2"}},
  };
}

void PrintTo(const ShippedRecipe& r, std::ostream* os) { *os << r.recipe; }

class RecipeOutput : public ::testing::TestWithParam<ShippedRecipe> {};

// The rows of a --baseline result's comparison, by case; every one sped up by a positive factor
// over the dense model on libtorch fp32 and scored.
std::set<std::string> check_comparison(const io::json& result, bool decoder) {
  std::set<std::string> cases;
  const std::string time = decoder ? "prefill_ms" : "median_ms";
  for (const auto& row : result["comparison"]) {
    cases.insert(row["case"].get<std::string>());
    EXPECT_GT(row.value("speedup_vs_baseline_libtorch_fp32_" + time, 0.0), 0.0) << row.dump();
    EXPECT_TRUE(row.contains("compressed_eval")) << row.dump();
  }
  for (const auto& row : result["compressed"]["rows"])
    EXPECT_EQ(row["status"], "ok") << row.dump();
  return cases;
}

TEST_P(RecipeOutput, ReportCarriesTheBenchTableAndItsRuntimeDirBenches) {
  const auto& p = GetParam();
  testing::ScratchDir tmp("recipe-bench-" + p.name);
  const std::string teacher = (repo() / p.teacher).string(), data = (testing::shared_dir() / "data" / p.task).string();
  const bool decoder = p.task == "lm-books";
  std::string sets = " --set out=" + (tmp / "out").string() + " --set train.model=" + teacher + " --set train.data=" + data +
                     " --set eval_batches=1 --set latency.enabled=true --set latency.batch_sizes=[1] --set latency.seq=16" +
                     " --set latency.decode_steps=2 --set latency.runs=1 --set latency.warmup=0" +
                     " --set latency.cases=[sqz-fp32,sqz-int8,sqz-int8-2:4]";
  if (p.distills) sets += " --set distill.teacher=" + teacher;
  for (const auto& s : p.budget) sets += " --set " + s;
  auto r = testing::run_sqz("compress --recipe " + (repo() / p.recipe).string() + sets);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto report = io::read_json_file(tmp / "out" / "report.json");
  const auto in_report = check_comparison(report["bench"], decoder);
  EXPECT_TRUE(in_report.count("libtorch-fp32") && in_report.count("sqz-int8")) << report["bench"].dump();
  EXPECT_NE(read_text_file(tmp / "out" / "report.md").find("## Speed and dev score on every engine"), std::string::npos);

  const std::string packed = (tmp / "packed").string();
  auto pk = testing::run_sqz("pack " + (tmp / "out" / "model").string() + " --out " + packed + " --precision int8");
  ASSERT_EQ(pk.code, 0) << pk.output;
  const std::string split = data + (decoder ? "/dev.txt" : "/dev.jsonl");
  auto b = testing::run_sqz("bench " + packed + " --baseline " + teacher + " --task " + p.task + " --split " + split +
                            " --seq 16 --decode-steps 2 --runs 1 --warmup 0 --max-length 32 --max-batches 2 --peers-in-process --case sqz-int8 --json " +
                            (tmp / "packed.json").string());
  ASSERT_EQ(b.code, 0) << b.output;
  EXPECT_EQ(check_comparison(io::read_json_file(tmp / "packed.json"), decoder), (std::set<std::string>{"sqz-int8"})) << b.output;
}

INSTANTIATE_TEST_SUITE_P(Shipped, RecipeOutput, ::testing::ValuesIn(shipped_recipes()),
                         [](const ::testing::TestParamInfo<ShippedRecipe>& info) { return info.param.name; });

}  // namespace
}  // namespace sqz
