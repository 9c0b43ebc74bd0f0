// The shipped BART g2p model through the commands a user runs on the encoder-decoder runtime
// engine: eval on the dev split (the same WER, PER and perplexity as libtorch), forward and
// generate (the same numbers and text), pack to an int8 runtime dir and eval / bench that, and
// bench on the model dir (every case checked against libtorch fp32, then timed); beam search on
// the engine against libtorch's.
#include <set>

#include "io/json_file.h"
#include "io/npy.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

using testing::RunResult;

const std::string kModel = (fs::path(SQZ_SOURCE_DIR) / "models" / "bart-g2p").string();

// The JSON result a command prints last (eval's and pack's are flat objects).
io::json last_json(const RunResult& r) { return io::json::parse(r.output.substr(r.output.rfind('{'))); }

io::json eval(const std::string& model, const std::string& flags) {
  const auto split = (testing::shared_dir() / "data" / "cmudict-g2p" / "dev.jsonl").string();
  auto r = testing::run_sqz("eval " + model + " --task cmudict-g2p --split " + split + " --batch-size 32 --max-batches 3 --threads 2" + flags);
  EXPECT_EQ(r.code, 0) << r.output;
  return r.code == 0 ? last_json(r) : io::json();
}

// The engine's eval of the 3 dev batches scores exactly what libtorch's scores.
void expect_same_scores(const io::json& engine, const io::json& torch) {
  ASSERT_TRUE(engine.contains("wer")) << engine.dump();
  EXPECT_EQ(engine["engine"], "runtime fp32");
  EXPECT_EQ(engine["examples"], 96);
  EXPECT_EQ(engine["decoding"], torch["decoding"]);
  EXPECT_EQ(engine["wer"], torch["wer"]);
  EXPECT_EQ(engine["per"], torch["per"]);
}

TEST(Seq2SeqCli, EvalForwardGenerateAndPackOnTheRuntimeEngine) {
  const auto torch_eval = eval(kModel, "");
  const auto fp32 = eval(kModel, " --engine runtime");
  expect_same_scores(fp32, torch_eval);
  EXPECT_NEAR(fp32["perplexity"].get<double>(), torch_eval["perplexity"].get<double>(), 1e-5);

  testing::ScratchDir tmp("seq2seq-cli");
  fs::create_directories(tmp / "in");
  io::write_npy(tmp / "in" / "input_ids.npy", torch::tensor({5, 10, 11, 12, 3, 0, 7, 8, 9, 20, 21, 3}, torch::kLong).view({2, 6}));
  io::write_npy(tmp / "in" / "attention_mask.npy", torch::tensor({1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1}, torch::kLong).view({2, 6}));
  auto forward = [&](const std::string& flags, const std::string& out) {
    auto f = testing::run_sqz("forward " + kModel + " --inputs " + (tmp / "in").string() + " --out " + (tmp / out).string() + flags);
    EXPECT_EQ(f.code, 0) << f.output;
    return io::read_npy(tmp / out / "logits.npy");
  };
  const auto want = forward("", "torch"), got = forward(" --engine runtime", "rt");  // decoder inputs: input_ids shifted right
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_LT(((got - want).abs().max() / want.abs().max()).item<double>(), 1e-4);

  auto gen_torch = testing::run_sqz("generate " + kModel + " --prompt squeeze");
  auto gen_rt = testing::run_sqz("generate " + kModel + " --prompt squeeze --engine runtime");
  ASSERT_EQ(gen_rt.code, 0) << gen_rt.output;
  EXPECT_EQ(gen_rt.output, gen_torch.output);

  auto r = testing::run_sqz("pack " + kModel + " --precision int8 --out " + (tmp / "packed").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(last_json(r)["engine"], "encoder-decoder");
  const auto int8 = eval((tmp / "packed").string(), "");
  EXPECT_EQ(int8["engine"], "runtime int8");
  EXPECT_NEAR(int8["wer"].get<double>(), torch_eval["wer"].get<double>(), 0.05);  // 96 words: a few may flip
  EXPECT_NEAR(int8["per"].get<double>(), torch_eval["per"].get<double>(), 0.02);
  auto gen_packed = testing::run_sqz("generate " + (tmp / "packed").string() + " --prompt squeeze");
  EXPECT_EQ(gen_packed.code, 0) << gen_packed.output;

  r = testing::run_sqz("bench " + kModel + " --batch 2 --seq 8 --decode-steps 4 --runs 1 --warmup 0 --json " + (tmp / "bench.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  std::set<std::string> seen;
  const io::json bench = io::read_json_file(tmp / "bench.json");
  for (const auto& row : bench["rows"]) {
    const auto name = row["case"].get<std::string>();
    seen.insert(name);
    if (name.rfind("libtorch-int8", 0) == 0) continue;  // a peer's int8 is reported, not required
    EXPECT_EQ(row["status"], "ok") << row.dump();
    EXPECT_GT(row["decode_ms_per_token"].get<double>(), 0) << row.dump();
  }
  for (const char* c : {"libtorch-fp32", "sqz-fp32", "sqz-bf16", "sqz-int8", "sqz-int8-2:4"}) EXPECT_TRUE(seen.count(c)) << c;
  r = testing::run_sqz("bench " + (tmp / "packed").string() + " --batch 1 --seq 8 --decode-steps 4 --runs 1 --warmup 0");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("| sqz-int8 | 1 |"), std::string::npos) << r.output;
}

// Beam search on the engine scores what libtorch's beam search scores, and generates its text.
TEST(Seq2SeqCli, BeamSearchOnTheRuntimeEngineEqualsLibtorch) {
  const auto engine_beam = eval(kModel, " --engine runtime --num-beams 3");
  EXPECT_EQ(engine_beam["decoding"], "beam 3");
  expect_same_scores(engine_beam, eval(kModel, " --num-beams 3"));
  for (const char* word : {"squeeze", "transformer", "quantization"}) {
    auto gen_torch = testing::run_sqz(std::string("generate ") + kModel + " --num-beams 4 --prompt " + word);
    auto gen_rt = testing::run_sqz(std::string("generate ") + kModel + " --num-beams 4 --engine runtime --prompt " + word);
    ASSERT_EQ(gen_rt.code, 0) << gen_rt.output;
    EXPECT_EQ(gen_rt.output, gen_torch.output) << word;
  }
}

}  // namespace
}  // namespace sqz
