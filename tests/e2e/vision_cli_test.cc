// A ViT through the commands a user runs: init from a config, pack for the runtime engine,
// forward on pixel values (runtime from the model dir and from the runtime dir, against libtorch),
// and bench (every case checked against libtorch fp32, then timed).
#include <fstream>
#include <set>

#include "io/json_file.h"
#include "io/npy.h"
#include "unit/test_util.h"

namespace sqz {
namespace {


TEST(VisionCli, PackForwardAndBenchOnTheRuntimeEngine) {
  testing::ScratchDir tmp("vision-cli");
  const io::json config = {{"model_type", "vit"}, {"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 2},
                           {"intermediate_size", 64}, {"image_size", 16}, {"patch_size", 4}, {"num_labels", 3},
                           {"architectures", {"ViTForImageClassification"}}};
  std::ofstream(tmp / "config.json") << config.dump();
  auto r = testing::run_sqz("init " + (tmp / "config.json").string() + " --seed 3 --out " + (tmp / "m").string());
  ASSERT_EQ(r.code, 0) << r.output;
  fs::create_directories(tmp / "in");
  torch::manual_seed(5);
  io::write_npy(tmp / "in" / "pixel_values.npy", torch::randn({2, 3, 16, 16}));
  auto forward = [&](const std::string& model, const std::string& flags, const std::string& out) {
    auto f = testing::run_sqz("forward " + model + " --inputs " + (tmp / "in").string() + " --out " + (tmp / out).string() + flags);
    EXPECT_EQ(f.code, 0) << f.output;
    return io::read_npy(tmp / out / "logits.npy");
  };
  const auto want = forward((tmp / "m").string(), "", "torch");
  const auto fp32 = forward((tmp / "m").string(), " --engine runtime", "rt");
  EXPECT_EQ(fp32.sizes(), want.sizes());
  EXPECT_LT(((fp32 - want).abs().max() / want.abs().max()).item<double>(), 1e-4);
  r = testing::run_sqz("pack " + (tmp / "m").string() + " --precision int8 --out " + (tmp / "packed").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("\"engine\":\"vit-encoder\""), std::string::npos) << r.output;
  const auto int8 = forward((tmp / "packed").string(), "", "packed-out");
  const double int8_err = ((int8 - want).abs().max() / want.abs().max()).item<double>();
  EXPECT_GT(int8_err, 0.0);  // quantized: not the fp32 numbers
  EXPECT_LT(int8_err, 0.1);
  r = testing::run_sqz("bench " + (tmp / "m").string() + " --batch 2 --runs 1 --warmup 0 --json " + (tmp / "bench.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  std::set<std::string> seen;
  const io::json bench = io::read_json_file(tmp / "bench.json");
  for (const auto& row : bench["rows"]) {
    const auto name = row["case"].get<std::string>();
    seen.insert(name);
    if (name.rfind("libtorch-int8", 0) == 0) continue;  // a peer's int8 on a tiny random model is reported, not required
    EXPECT_EQ(row["status"], "ok") << row.dump();
  }
  for (const char* c : {"libtorch-fp32", "sqz-fp32", "sqz-bf16", "sqz-int8", "sqz-int8-2:4"}) EXPECT_TRUE(seen.count(c)) << c;
  // A runtime dir of a ViT is refused by the text-only commands, by name.
  r = testing::run_sqz("bench " + (tmp / "packed").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("ViT engine"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sqz
