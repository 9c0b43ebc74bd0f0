// Data-parallel `sqz compress` as a user starts it: one process and `--nproc 2` on the same recipe
// give the same compressed model — pruning with distillation (the same heads and neurons), QAT on
// one quantization grid (ranges reduced inside the batch, stand-in rows for empty shares), and
// PTQ calibration split over the ranks (GPTQ Hessians summed).
#include <cstdio>
#include <fstream>

#include "io/json_file.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

// The bert-spam teacher with dropout off (see dropout_free_gpt2).
fs::path dropout_free_bert(const fs::path& dir) {
  fs::copy(fs::path(SQZ_SOURCE_DIR) / "models" / "bert-spam", dir, fs::copy_options::recursive);
  auto config = io::read_json_object(dir / "config.json");
  for (const char* key : {"hidden_dropout_prob", "attention_probs_dropout_prob"}) config[key] = 0.0;
  io::write_json_file_atomic(dir / "config.json", config);
  return dir;
}

// `train` examples of spam's train split and `dev` of its dev split, as a task data dir: the first
// ones of each label, alternating (the label set comes from the train split).
fs::path small_spam(const fs::path& dir, int train, int dev) {
  fs::create_directories(dir);
  for (auto [file, n] : {std::pair<const char*, int>{"train.jsonl", train}, {"dev.jsonl", dev}}) {
    std::ifstream in(testing::shared_dir() / "data" / "spam" / file);
    std::vector<std::string> by_label[2];
    for (std::string line; std::getline(in, line);) by_label[line.find("\"label\": \"spam\"") != std::string::npos].push_back(line);
    std::ofstream out(dir / file);
    for (int i = 0; i < n; ++i) out << by_label[i % 2].at(static_cast<size_t>(i / 2)) << "\n";
  }
  return dir;
}

// `sqz compress` of one recipe in one process (into tmp/one) and on 2 local ranks (tmp/two); the
// two compressed models must hold the same tensors, within `max_float` and with at most
// `max_codes_differing` of their integer codes different. Returns both training logs.
std::pair<std::vector<io::json>, std::vector<io::json>> compress_one_and_two(const testing::ScratchDir& tmp, const std::string& recipe,
                                                                             double max_float, double max_codes_differing) {
  write_file_atomic(tmp / "r.yaml", recipe + "out: " + (tmp / "one").string() + "\n");
  const std::string cmd = "compress --recipe " + (tmp / "r.yaml").string();
  auto one = testing::run_sqz(cmd);
  EXPECT_EQ(one.code, 0) << one.output;
  auto two = testing::run_sqz(cmd + " --set out=" + (tmp / "two").string() + " --nproc 2");
  EXPECT_EQ(two.code, 0) << two.output;
  EXPECT_NE(two.output.find("\"ranks\":2"), std::string::npos) << two.output;
  testing::ModelDifference d;
  EXPECT_TRUE(testing::compare_saved_models(tmp / "one" / "model", tmp / "two" / "model", &d)) << "the ranks kept other heads or neurons";
  EXPECT_LE(d.max_float, max_float) << d.worst;
  EXPECT_LE(static_cast<double>(d.codes_differing), max_codes_differing * static_cast<double>(d.codes));
  std::printf("compress 1 vs 2 ranks: max |float difference| %g (%s), %lld of %lld integer codes differ\n", d.max_float, d.worst.c_str(),
              static_cast<long long>(d.codes_differing), static_cast<long long>(d.codes));
  const fs::path log = fs::path("train") / "train_log.jsonl";
  return {fs::exists(tmp / "one" / log) ? testing::read_json_lines(tmp / "one" / log) : std::vector<io::json>{},
          fs::exists(tmp / "two" / log) ? testing::read_json_lines(tmp / "two" / log) : std::vector<io::json>{}};
}

void expect_same_losses(const std::vector<io::json>& one, const std::vector<io::json>& two, size_t evals, double rel) {
  ASSERT_EQ(one.size(), evals);
  ASSERT_EQ(two.size(), evals);
  for (size_t i = 0; i < evals; ++i) {
    const double a = one[i]["train_loss"].get<double>(), b = two[i]["train_loss"].get<double>();
    EXPECT_NEAR(b, a, rel * a) << "train_loss at step " << one[i]["step"];
    std::printf("train_loss at step %d: 1 process %.9f, 2 ranks %.9f\n", one[i]["step"].get<int>(), a, b);
  }
}

TEST(Distributed, TwoRanksCompressLikeOneProcess) {
  testing::ScratchDir tmp("dist");
  const fs::path model = dropout_free_bert(tmp / "m");
  auto [one, two] = compress_one_and_two(
      tmp,
      "train:\n  model: " + model.string() + "\n  task: spam\n  data: " + (testing::shared_dir() / "data" / "spam").string() +
          "\n  max_length: 48\n  steps: 8\n  batch_size: 8\n  lr: 1.0e-4\n  warmup_steps: 1\n  threads: 1\n  eval_every: 4\n"
          "  eval_batches: 2\ndistill: {temperature: 2.0, logits_weight: 1.0, labels_weight: 0.5, hidden_weight: 1.0}\nprune:\n"
          "  - {name: heads, granularity: head, metric: movement, sparsity: 0.5, schedule: {kind: agp, start: 0, end: 4, every: 1}}\n"
          "  - {name: ffn, granularity: neuron, metric: taylor, sparsity: 0.5, scope: global, schedule: {kind: oneshot, start: 3}}\n"
          "latency: {enabled: false}\neval_batches: 3\n",
      1e-4, 0);
  expect_same_losses(one, two, 2, 1e-5);
}

// QAT with static activation ranges (moving average; percentile, whose values are gathered) on
// 2:4 weights: each batch's ranges are reduced inside the forward pass, so the ranks quantize on
// the grid one process uses. 9 examples in batches of 2: the epoch's last batch has one row, and
// rank 1 runs a stand-in.
TEST(Distributed, TwoRanksQuantizeAwareLikeOneProcess) {
  testing::ScratchDir tmp("dist");
  const fs::path model = dropout_free_bert(tmp / "m"), data = small_spam(tmp / "data", 9, 24);
  auto [one, two] = compress_one_and_two(
      tmp,
      "train:\n  model: " + model.string() + "\n  task: spam\n  data: " + data.string() +
          "\n  max_length: 48\n  steps: 8\n  batch_size: 2\n  lr: 1.0e-4\n  warmup_steps: 1\n  threads: 1\n  eval_every: 4\n"
          "  eval_batches: 2\ndistill: {temperature: 2.0, logits_weight: 1.0, labels_weight: 0.5, hidden_weight: 1.0}\nprune:\n"
          "  - {name: s24, targets: {roles: [q, k, v, o, ffn_in, ffn_out]}, granularity: nm, n: 2, m: 4, metric: magnitude,"
          " schedule: {kind: oneshot, start: 0}}\nquantize:\n"
          "  - {name: att, targets: {roles: [q, k, v, o]}, mode: qat, start_step: 1, weight: {bits: 8, method: minmax},"
          " activation: {bits: 8, symmetric: false, method: static, observer: moving_average}}\n"
          "  - {name: ffn, targets: {roles: [ffn_in, ffn_out]}, mode: qat, start_step: 1, weight: {bits: 8, method: minmax},"
          " activation: {bits: 8, symmetric: false, method: static, observer: percentile, percentile: 99.9}}\n"
          "speedup: false\nlatency: {enabled: false}\neval_batches: 2\n",
      1e-3, 1e-3);
  // Float sums in another order, which Adam's first steps (updates of about lr x sign) amplify in
  // weights whose gradient is near zero: how much depends on the CPU's kernels (6.0e-5 and 165
  // codes on one AMX Xeon, 2.7e-4 and 461 of 3.15 M on another); per-rank ranges gave 6e-3 and
  // 15% of the codes.
  expect_same_losses(one, two, 2, 5e-5);
}

// PTQ: GPTQ weights (Hessians summed over the ranks) and MSE-clipped static inputs (values
// gathered); 3 calibration batches of 4, 4 and 1 example (rank 1 stands in for the last).
TEST(Distributed, TwoRanksCalibrateLikeOneProcess) {
  testing::ScratchDir tmp("dist");
  const fs::path data = small_spam(tmp / "data", 9, 24);
  compress_one_and_two(tmp,
                       "train:\n  model: " + (fs::path(SQZ_SOURCE_DIR) / "models" / "bert-spam").string() + "\n  task: spam\n  data: " +
                           data.string() + "\n  max_length: 48\n  steps: 0\n  batch_size: 4\n  threads: 1\nquantize:\n"
                           "  - {name: w8a8, targets: {types: [linear]}, mode: ptq, weight: {bits: 8, granularity: channel, method: gptq},"
                           " activation: {bits: 8, symmetric: false, method: static, observer: mse}}\n"
                           "calibration: {batches: 3}\nlatency: {enabled: false}\neval_batches: 2\n",
                       1e-5, 1e-4);
}

}  // namespace
}  // namespace sqz
