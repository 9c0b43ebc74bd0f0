// `sqz compress` on an encoder-decoder and a seq2seq task, as a user runs it.
#include <set>

#include "core/fs.h"
#include "io/json_file.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

// GPUSQ-TLM on an encoder-decoder: a small random T5 (the g2p config, shrunk) is fine-tuned on
// cmudict-g2p with 2:4 sparsity, int8 QAT and distillation from itself (logits, decoder states,
// token-level contrastive), exported as compressed-tensors, and the export evaluates to the
// report's WER/PER; the bench stage times the export on the encoder-decoder engine (int8-2:4 among
// its cases) against the dense model.
TEST(Compress, Seq2SeqTwoFourInt8QatWithDistillation) {
  testing::ScratchDir tmp("compress-t5");
  const fs::path config = testing::write_small_g2p_t5_config(tmp.path());
  auto init = testing::run_sqz("init " + config.string() + " --out " + (tmp / "t5").string() + " --tokenizer-from " +
                               (fs::path(SQZ_SOURCE_DIR) / "configs" / "g2p-tokenizer").string());
  ASSERT_EQ(init.code, 0) << init.output;
  const std::string data = (testing::shared_dir() / "data" / "cmudict-g2p").string();
  const std::string roles = "{roles: [q, k, v, o, ffn_in, ffn_out]}";
  const fs::path recipe = tmp / "r.yaml";
  write_file_atomic(recipe,
                      "train: {model: " + (tmp / "t5").string() + ", task: cmudict-g2p, data: " + data +
                          ", max_length: 32, steps: 8, batch_size: 16, lr: 0.001, threads: 1, eval_every: 8, eval_batches: 2, seed: 0}\n"
                          "distill: {teacher: " + (tmp / "t5").string() +
                          ", temperature: 2.0, logits_weight: 1.0, labels_weight: 1.0, hidden_weight: 1.0, contrastive_weight: 0.1}\n"
                          "prune:\n  - {name: sparse24, targets: " + roles +
                          ", granularity: nm, n: 2, m: 4, metric: magnitude, schedule: {kind: oneshot, start: 0}}\n"
                          "quantize:\n  - {name: int8, targets: " + roles +
                          ", mode: qat, start_step: 4, weight: {bits: 8}, activation: {bits: 8, symmetric: false}}\n"
                          "speedup: false\neval_batches: 2\n"
                          "latency: {batch_sizes: [2], seq: 12, decode_steps: 3, runs: 1, warmup: 0, cases: [sqz-fp32, sqz-int8-2:4]}\n"
                          "out: " + (tmp / "out").string() + "\n");
  auto r = testing::run_sqz("compress --recipe " + recipe.string());
  ASSERT_EQ(r.code, 0) << r.output;
  auto rep = io::read_json_file(tmp / "out" / "report.json");
  std::set<std::string> timed;
  for (const auto& row : rep["bench"]["compressed"]["rows"])
    if (row["status"] == "ok") timed.insert(row["case"].get<std::string>());
  for (const char* c : {"libtorch-fp32", "sqz-fp32", "sqz-int8-2:4"}) EXPECT_TRUE(timed.count(c)) << c << " " << rep["bench"].dump();
  EXPECT_EQ(rep["sparsity_verified"]["structure"], "2:4");
  EXPECT_EQ(rep["sparsity_verified"]["tensors"], 2 * 6 + 2 * 10);  // encoder q k v o wi wo; decoder + cross q k v o
  EXPECT_LT(rep["equivalence"]["max_abs_logit_diff"].get<double>(), 1e-4);
  EXPECT_GT(rep["equivalence"]["compared"].get<int64_t>(), 0);
  for (const char* key : {"wer", "per"}) EXPECT_TRUE(rep["compressed"]["eval"].contains(key)) << rep.dump();
  auto e = testing::run_sqz("eval " + (tmp / "out" / "model").string() + " --task cmudict-g2p --split " + data +
                            "/dev.jsonl --max-length 32 --batch-size 16 --max-batches 2");
  ASSERT_EQ(e.code, 0) << e.output;
  auto j = io::json::parse(e.output.substr(e.output.rfind("{\"")));
  EXPECT_DOUBLE_EQ(j["wer"].get<double>(), rep["compressed"]["eval"]["wer"].get<double>());
  EXPECT_DOUBLE_EQ(j["per"].get<double>(), rep["compressed"]["eval"]["per"].get<double>());
}

}  // namespace
}  // namespace sqz
