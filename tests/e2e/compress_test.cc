// `sqz compress` and `sqz speedup` as a user runs them on the shipped spam teacher: a short
// pruning + distillation run writes a smaller model that loads, its report holds the numbers,
// SpeedUp's output equals the masked model's; bad recipes fail before training and leave no
// output directory.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <fstream>
#include <set>
#include <thread>

#include "io/json_file.h"
#include "io/safetensors.h"
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
         "latency: {batch_sizes: [1], seq: 32, runs: 2, warmup: 0, cases: [sqz-int8]}\neval_batches: 3\nout: " +
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

// The one table users compress for: the compressed model against the model it came from on every
// engine --case asks for, each row scored on the task — written by `sqz compress` into its report,
// and printed by `sqz bench --baseline` for the model dir and for its runtime dir. A variant that
// cannot apply (2:4 on FFN widths that are not multiples of 4) is a one-line skip, not an abort,
// and is not even prepared when --case leaves it out.
TEST(Compress, BenchComparesTheCompressedModelWithItsBaseline) {
  testing::ScratchDir tmp("compress-bench");
  auto recipe = write(tmp / "r.yaml", spam_recipe(tmp / "out"));
  auto r = testing::run_sqz("compress --recipe " + recipe.string() + " --set prune.1.sparsity=0.33 --set prune.1.scope=layer" +
                            " --set latency.cases=[sqz-int8,sqz-int8-2:4] --set latency.score_batches=1");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string dense = (repo() / "models" / "bert-spam").string(), compressed = (tmp / "out" / "model").string();
  const std::string split = (testing::shared_dir() / "data" / "spam" / "dev.jsonl").string();
  // The report's table: both models, each row scored on the recipe's eval batches.
  auto report = io::read_json_file(tmp / "out" / "report.json");
  std::set<std::string> in_report;
  for (const auto& row : report["bench"]["comparison"]) {
    in_report.insert(row["case"].get<std::string>());
    EXPECT_GT(row["speedup_vs_baseline_libtorch_fp32_median_ms"].get<double>(), 0.0) << row.dump();
    // Scored on latency.score_batches (1 batch of 8), not the report's eval_batches (3).
    EXPECT_EQ(row["compressed_eval"]["examples"], 8) << row.dump();
    EXPECT_EQ(report["compressed"]["eval"]["examples"], 24) << report["compressed"].dump();
  }
  EXPECT_EQ(in_report, (std::set<std::string>{"libtorch-fp32", "sqz-int8"})) << report["bench"].dump();
  // compress waits passively (for libtorch's training); its bench is a child with the default back.
  EXPECT_EQ(report["bench"]["openmp_wait_policy"], "default") << report["bench"].dump();
  const std::string md = read_text_file(tmp / "out" / "report.md"), bench_md = read_text_file(tmp / "out" / "bench.md");
  EXPECT_NE(md.find("## Speed and dev score on every engine"), std::string::npos) << md;
  EXPECT_NE(md.find("| sqz-int8 | 1 |"), std::string::npos) << md;
  // The tables name the model where it ended up, not the staging dir it was benched in.
  EXPECT_NE(bench_md.find("sqz bench " + compressed + " --batch 1"), std::string::npos) << bench_md;
  EXPECT_EQ(bench_md.find(".tmp"), std::string::npos) << bench_md;

  auto b = testing::run_sqz("bench " + compressed + " --baseline " + dense + " --task spam --split " + split +
                            " --max-length 32 --seq 32 --runs 2 --warmup 0 --peers-in-process --case sqz-int8 --case sqz-int8-2:4 --json " +
                            (tmp / "bench.json").string());
  ASSERT_EQ(b.code, 0) << b.output;
  auto j = io::read_json_file(tmp / "bench.json");
  EXPECT_NE(b.output.find("skipped sqz-int8-2:4: bert.encoder.layer.0.output.dense has"), std::string::npos) << b.output;
  std::set<std::string> compared;
  for (const auto& row : j["comparison"]) {
    compared.insert(row["case"].get<std::string>());
    EXPECT_GT(row["speedup_vs_baseline_same_engine_median_ms"].get<double>(), 0.0) << row.dump();
    EXPECT_GT(row["speedup_vs_baseline_libtorch_fp32_median_ms"].get<double>(), 0.0) << row.dump();
    EXPECT_EQ(row["compressed_eval"]["examples"], 588) << row.dump();
    EXPECT_GT(row["compressed_eval"]["accuracy"].get<double>(), 0.5) << row.dump();
  }
  EXPECT_EQ(compared, (std::set<std::string>{"libtorch-fp32", "sqz-int8"})) << j["comparison"].dump();
  // The baseline keeps its 2:4 row (its widths allow it); nothing outside --case was prepared.
  std::set<std::string> baseline_cases;
  for (const auto& row : j["baseline"]["rows"]) baseline_cases.insert(row["case"].get<std::string>());
  EXPECT_EQ(baseline_cases, (std::set<std::string>{"libtorch-fp32", "sqz-int8", "sqz-int8-2:4"})) << j["baseline"].dump();
  // The same accuracy as `sqz eval` on the runtime engine.
  auto e = testing::run_sqz("eval " + compressed + " --task spam --split " + split + " --max-length 32 --engine runtime --precision int8");
  ASSERT_EQ(e.code, 0) << e.output;
  const auto runtime_accuracy = io::json::parse(e.output.substr(e.output.rfind('{')))["accuracy"];
  for (const auto& row : j["comparison"])
    if (row["case"] == "sqz-int8") EXPECT_EQ(runtime_accuracy, row["compressed_eval"]["accuracy"]);
  EXPECT_NE(b.output.find("| sqz-int8 | 1 |"), std::string::npos) << b.output;

  // Its runtime dir: the one engine it holds, against the baseline's rows, with the same score.
  const std::string packed = (tmp / "packed").string();
  auto p = testing::run_sqz("pack " + compressed + " --out " + packed + " --precision int8");
  ASSERT_EQ(p.code, 0) << p.output;
  auto pb = testing::run_sqz("bench " + packed + " --baseline " + dense + " --task spam --split " + split +
                             " --max-length 32 --seq 32 --runs 2 --warmup 0 --peers-in-process --case sqz-int8 --json " +
                             (tmp / "packed.json").string());
  ASSERT_EQ(pb.code, 0) << pb.output;
  auto pj = io::read_json_file(tmp / "packed.json");
  ASSERT_EQ(pj["comparison"].size(), 1u) << pj.dump();
  const auto& row = pj["comparison"][0];
  EXPECT_EQ(row["case"], "sqz-int8");
  EXPECT_EQ(row["compressed_eval"]["accuracy"], runtime_accuracy);
  EXPECT_GT(row["speedup_vs_baseline_same_engine_median_ms"].get<double>(), 0.0) << row.dump();
  EXPECT_GT(row["speedup_vs_baseline_libtorch_fp32_median_ms"].get<double>(), 0.0) << row.dump();
  EXPECT_NE(pb.output.find("skipped libtorch-*, onnxruntime-*, other sqz precisions: a runtime dir holds only"), std::string::npos) << pb.output;
  EXPECT_NE(pb.output.find("check: none"), std::string::npos) << pb.output;
  // A case it cannot run is refused by name, as is a case no bench has.
  auto wrong = testing::run_sqz("bench " + packed + " --case sqz-fp32");
  EXPECT_EQ(wrong.code, 2) << wrong.output;
  EXPECT_NE(wrong.output.find("runtime dir packed as sqz-int8"), std::string::npos) << wrong.output;
  auto typo = testing::run_sqz("bench " + packed + " --case sqz-int9");
  EXPECT_EQ(typo.code, 2) << typo.output;
  EXPECT_NE(typo.output.find("--case 'sqz-int9' is not a bench case"), std::string::npos) << typo.output;
}

// Block pruning (4 x 4) with int8 QAT: the export declares its sparsity unstructured with the
// global sparsity, `sqz pack` then picks the int8-block kernel by default, and the packed model
// scores what the dense int8 engine scores on the same weights (its sums are exact).
TEST(Compress, BlockPrunedInt8ExportRunsOnTheBlockSparseKernel) {
  testing::ScratchDir tmp("compress");
  std::string text = spam_recipe(tmp / "out",
      "quantize:\n  - {name: int8, targets: {roles: [q, k, v, o, ffn_in, ffn_out]}, mode: qat, start_step: 2,"
      " weight: {bits: 8}, activation: {bits: 8, symmetric: false, observer: moving_average}}\nspeedup: false\n");
  const auto a = text.find("prune:\n"), b = text.find("latency:");
  text.replace(a, b - a,
               "prune:\n  - {name: blocks, targets: {roles: [q, k, v, o, ffn_in, ffn_out]}, granularity: block, sparsity: 0.75, "
               "metric: magnitude, schedule: {kind: agp, start: 0, end: 3, every: 1}}\n");
  text.replace(text.find("cases: [sqz-int8]"), 17, "cases: [sqz-int8-block]");
  auto r = testing::run_sqz("compress --recipe " + write(tmp / "r.yaml", text).string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto config = io::read_json_file(tmp / "out" / "model" / "config.json");
  const auto& sparsity = config["quantization_config"]["sparsity_config"];
  EXPECT_EQ(sparsity["sparsity_structure"], "unstructured") << config.dump();
  EXPECT_GE(sparsity["global_sparsity"].get<double>(), 0.7) << config.dump();
  EXPECT_EQ(sparsity["targets"].size(), 24u);  // 4 layers x 6 roles of the spam teacher
  const std::string model = (tmp / "out" / "model").string(), packed = (tmp / "packed").string();
  auto p = testing::run_sqz("pack " + model + " --out " + packed);
  ASSERT_EQ(p.code, 0) << p.output;
  EXPECT_EQ(io::read_json_file(tmp / "packed" / "manifest.json")["precision"], "int8-block");
  const std::string split = (testing::shared_dir() / "data" / "spam" / "dev.jsonl").string();
  auto blocks = testing::run_sqz("eval " + packed + " --task spam --split " + split + " --max-length 32 --engine runtime");
  auto dense = testing::run_sqz("eval " + model + " --task spam --split " + split + " --max-length 32 --engine runtime --precision int8");
  ASSERT_EQ(blocks.code, 0) << blocks.output;
  ASSERT_EQ(dense.code, 0) << dense.output;
  auto score = [](const std::string& out) { return io::json::parse(out.substr(out.rfind('{')))["accuracy"].get<double>(); };
  EXPECT_EQ(score(blocks.output), score(dense.output));
  // The report's bench timed the pruned model on the block-sparse kernel.
  const auto report = io::read_json_file(tmp / "out" / "report.json");
  bool timed = false;
  for (const auto& row : report["bench"]["compressed"]["rows"]) timed |= row["case"] == "sqz-int8-block" && row["status"] == "ok";
  EXPECT_TRUE(timed) << report["bench"].dump();
}

// Ctrl-C before training ends the run with a named error and leaves nothing (during the dense
// model's eval: at the next eval batch). Ctrl-C in training
// stops after the current step with a checkpoint: OUT is not written, OUT.partial keeps the run's
// state and the message points at --resume; a new run without --resume refuses to overwrite it.
TEST(Compress, InterruptedRunKeepsItsStateForResume) {
  testing::ScratchDir tmp("compress-int");
  auto recipe = write(tmp / "r.yaml", spam_recipe(tmp / "out"));
  const fs::path log = tmp / "log.txt", partial = tmp / "out.partial";
  for (const std::string marker : {"evaluating the dense model", "train ["}) {
    SCOPED_TRACE(marker);
    // The dense model's eval on the whole dev split (74 batches): the signal lands inside it.
    const std::string evals = marker == "train [" ? "eval_batches=3" : "eval_batches=0";
    const pid_t pid = testing::spawn_sqz({"compress", "--recipe", recipe.string(), "--set", "train.steps=400", "--set", evals}, log);
    ASSERT_GT(pid, 0);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    while (read_text_file(log).find(marker) == std::string::npos && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    kill(pid, SIGINT);
    int status = 0;
    waitpid(pid, &status, 0);
    const std::string out = read_text_file(log);
    ASSERT_NE(out.find(marker), std::string::npos) << out;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << out;
    EXPECT_NE(out.find("compression interrupted"), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(tmp / "out"));
    for (const auto& e : fs::directory_iterator(tmp.path()))
      EXPECT_EQ(e.path().filename().string().find(".out.tmp"), std::string::npos) << e.path();
    if (marker != "train [") {
      // Stopped between eval batches, not after the whole split.
      EXPECT_NE(out.find("while evaluating the dense model (after "), std::string::npos) << out;
      EXPECT_EQ(out.find("(after 74 of 74 batches)"), std::string::npos) << out;
      EXPECT_EQ(out.find("--resume"), std::string::npos) << out;
      EXPECT_FALSE(fs::exists(partial));
      continue;
    }
    EXPECT_NE(out.find("continue it with the same command and --resume"), std::string::npos) << out;
    ASSERT_TRUE(fs::exists(partial / "train" / "checkpoint" / "trainer_state.json")) << out;
    EXPECT_TRUE(fs::exists(partial / "train" / "checkpoint" / "training_state.safetensors"));
    auto again = testing::run_sqz("compress --recipe " + recipe.string() + " --set train.steps=400");
    EXPECT_EQ(again.code, 2) << again.output;
    EXPECT_NE(again.output.find("pass --resume to continue it or --overwrite to start over"), std::string::npos) << again.output;
    EXPECT_TRUE(fs::exists(partial / "train" / "checkpoint" / "trainer_state.json"));
    // Another recipe cannot continue this run.
    auto other = testing::run_sqz("compress --resume --recipe " + recipe.string() + " --set train.steps=300");
    EXPECT_EQ(other.code, 2) << other.output;
    EXPECT_NE(other.output.find("was started from another recipe"), std::string::npos) << other.output;
    EXPECT_TRUE(fs::exists(partial / "train" / "checkpoint" / "trainer_state.json"));
  }
}

// Resumable compression: a run SIGKILLed in training (after a checkpoint) and again between the
// stages after training, resumed each time, ends with the model an uninterrupted run of the same
// recipe writes. Two recipes cover the state that must come back: movement scores on an AGP
// schedule, Taylor importance accumulated before a one-shot prune, distillation (structured); and
// 2:4 masks with int8 QAT's learned LSQ weight scales and moving-average activation observers
// (GPUSQ-TLM).
class CompressResume : public ::testing::TestWithParam<const char*> {};

std::string resume_recipe(const std::string& kind, const fs::path& out) {
  std::string text = spam_recipe(out, kind == "structured" ? "" :
      "quantize:\n  - {name: int8, targets: {roles: [q, k, v, o, ffn_in, ffn_out]}, mode: qat, start_step: 2,"
      " weight: {bits: 8, method: lsq}, activation: {bits: 8, symmetric: false, observer: moving_average}}\nspeedup: false\n");
  if (kind != "structured") {
    auto a = text.find("prune:\n"), b = text.find("latency:");
    text.replace(a, b - a,
                 "prune:\n  - {name: sparse24, targets: {roles: [q, k, v, o, ffn_in, ffn_out]}, granularity: nm, n: 2, m: 4, "
                 "metric: magnitude, schedule: {kind: oneshot, start: 0}}\n");
  }
  return text;
}

TEST_P(CompressResume, KilledTwiceEndsWithTheUninterruptedModel) {
  const std::string kind = GetParam();
  testing::ScratchDir tmp("compress-resume-" + kind);
  auto recipe = write(tmp / "r.yaml", resume_recipe(kind, tmp / "out"));
  const std::vector<std::string> args = {"compress", "--recipe", recipe.string(), "--set", "train.steps=12", "--set", "train.save_every=3",
                                         "--set", "latency.enabled=false"};
  const fs::path partial = tmp / "out.partial", state = partial / "train" / "checkpoint" / "trainer_state.json";
  // Starts a run (with --resume after the first) and SIGKILLs it once `ready` holds.
  auto run_and_kill = [&](bool resume, const std::function<bool(const std::string&)>& ready, const fs::path& log) {
    auto a = args;
    if (resume) a.push_back("--resume");
    const pid_t pid = testing::spawn_sqz(a, log);
    EXPECT_GT(pid, 0);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
    while (!ready(read_text_file(log)) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the run ended before it was killed:\n" << read_text_file(log);
  };
  // 1: killed in training, once the first checkpoint (step 3) is on disk.
  run_and_kill(false, [&](const std::string&) { return fs::exists(state); }, tmp / "log1.txt");
  ASSERT_TRUE(fs::exists(state)) << read_text_file(tmp / "log1.txt");
  const int64_t first_stop = io::read_json_file(state)["step"].get<int64_t>();
  EXPECT_GE(first_stop, 3);
  EXPECT_LT(first_stop, 12);
  EXPECT_FALSE(fs::exists(tmp / "out"));
  // 2: resumed, then killed after training, while the trained model is being measured.
  run_and_kill(true, [](const std::string& log) { return log.find("evaluating the masked") != std::string::npos; }, tmp / "log2.txt");
  const std::string log2 = read_text_file(tmp / "log2.txt");
  EXPECT_NE(log2.find("at step " + std::to_string(first_stop)), std::string::npos) << log2;
  ASSERT_TRUE(fs::exists(state)) << log2;
  EXPECT_EQ(io::read_json_file(state)["step"], 12);
  EXPECT_FALSE(fs::exists(tmp / "out"));
  // 3: resumed to the end: the stages after training run again from the trained state.
  std::string cmd;
  for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  auto done = testing::run_sqz(cmd + " --resume");
  ASSERT_EQ(done.code, 0) << done.output;
  EXPECT_NE(done.output.find("at step 12"), std::string::npos) << done.output;
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_FALSE(fs::exists(tmp / "out" / "train" / "checkpoint"));  // resume state does not ship
  // The same recipe uninterrupted.
  auto ref = testing::run_sqz(cmd + " --set out=" + (tmp / "ref").string());
  ASSERT_EQ(ref.code, 0) << ref.output;
  testing::ModelDifference diff;
  ASSERT_TRUE(testing::compare_saved_models(tmp / "out" / "model", tmp / "ref" / "model", &diff));
  EXPECT_EQ(diff.codes_differing, 0) << "of " << diff.codes << " integer codes";
  const double max_diff = diff.max_float;
  EXPECT_LE(max_diff, 1e-6) << "largest weight difference between the resumed and the uninterrupted model (" << diff.worst << ")";
  auto rep = io::read_json_file(tmp / "out" / "report.json"), ref_rep = io::read_json_file(tmp / "ref" / "report.json");
  for (const char* k : {"accuracy", "macro_f1", "examples"}) EXPECT_EQ(rep["compressed"]["eval"][k], ref_rep["compressed"]["eval"][k]) << k;
  EXPECT_EQ(rep["train"]["last_eval"]["accuracy"], ref_rep["train"]["last_eval"]["accuracy"]);
  std::cout << "[ resume  ] " << kind << ": killed at step " << first_stop << " and after training; max |weight difference| "
            << max_diff << "\n";
}

INSTANTIATE_TEST_SUITE_P(Recipes, CompressResume, ::testing::Values("structured", "gpusq"));

// A sweep, SIGKILLed during its second point and resumed: the first point's result is reused.
TEST(Compress, SweepPlotsScoreAgainstParametersRemoved) {
  testing::ScratchDir tmp("sweep");
  auto recipe = write(tmp / "r.yaml", spam_recipe(tmp / "out"));
  const std::vector<std::string> args = {"compress", "--recipe", recipe.string(), "--set", "train.steps=4", "--set", "eval_batches=1",
                                         "--set", "latency.enabled=false", "--sweep", "prune.0.sparsity=0.25,0.5",
                                         "--sweep", "prune.1.sparsity=0.2,0.6"};
  const fs::path log = tmp / "log.txt";
  const pid_t pid = testing::spawn_sqz(args, log);
  ASSERT_GT(pid, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (read_text_file(log).find("sweep point 2 of 2") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_TRUE(fs::exists(tmp / "out.partial" / "point-0" / "report.json")) << read_text_file(log);
  EXPECT_FALSE(fs::exists(tmp / "out"));
  std::string cmd;
  for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  auto r = testing::run_sqz(cmd + " --resume");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("sweep point 1 finished before the interruption: its report is reused"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "out.partial"));
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

// FastFormers' student, shallower and narrower: two of the four teacher layers, 192 of 256
// hidden dims (largest L2), distilled through a learned projection of its hidden states.
TEST(Compress, NarrowerShallowerStudentIsDistilled) {
  testing::ScratchDir tmp("compress-student");
  std::string text = spam_recipe(tmp / "out", "student: {layers: [1, 3], hidden: 192}\nspeedup: false\n");
  text.replace(text.find("hidden_weight: 1.0}"), 19, "hidden_weight: 1.0, project: true}");
  text.replace(text.find("prune:\n"), text.find("latency:") - text.find("prune:\n"), "");
  auto r = testing::run_sqz("compress --recipe " + write(tmp / "r.yaml", text).string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("student: hidden 256 -> 192"), std::string::npos) << r.output;
  auto config = io::read_json_file(tmp / "out" / "model" / "config.json");
  EXPECT_EQ(config["hidden_size"], 192);
  EXPECT_EQ(config["num_hidden_layers"], 2);
  EXPECT_EQ(config["sqz_attention_head_size"], 64);  // heads keep their width; the stream narrows
  auto report = io::read_json_file(tmp / "out" / "report.json");
  EXPECT_LT(report["compressed"]["params"].get<int64_t>(), report["dense"]["params"].get<int64_t>() * 3 / 4);
  // It evaluates like any model dir.
  auto e = testing::run_sqz("eval " + (tmp / "out" / "model").string() + " --task spam --split " +
                            (testing::shared_dir() / "data" / "spam" / "dev.jsonl").string() + " --max-length 48 --max-batches 2 --batch-size 8");
  ASSERT_EQ(e.code, 0) << e.output;
}

// A masked-LM body distilled into itself while its FFN is pruned: the MLM head scores only the
// masked rows unless the KL term needs the logits at every position (the teacher's are [B, T, V]).
TEST(Compress, MaskedLmBodyDistillsWithAndWithoutLogits) {
  for (const std::string distill : {"{logits_weight: 0.0, labels_weight: 1.0, hidden_weight: 1.0}",
                                    "{logits_weight: 1.0, labels_weight: 1.0, hidden_weight: 1.0}"}) {
    testing::ScratchDir tmp("compress-mlm");
    const std::string text = "train:\n  model: " + (testing::fixtures_dir() / "bert-mlm" / "model").string() +
                             "\n  task: lm-books\n  data: " + (testing::shared_dir() / "data" / "lm-books").string() +
                             "\n  objective: mlm\n  max_length: 32\n  steps: 4\n  batch_size: 4\n  lr: 1.0e-4\n"
                             "  warmup_steps: 1\n  threads: 2\n  eval_every: 100\n  eval_batches: 2\n"
                             "distill: " + distill + "\n"
                             "prune:\n  - {name: ffn, granularity: neuron, metric: taylor, sparsity: 0.5, schedule: {kind: oneshot, start: 2}}\n"
                             "latency: {batch_sizes: [1], seq: 16, runs: 1}\neval_batches: 2\nout: " + (tmp / "out").string() + "\n";
    auto r = testing::run_sqz("compress --recipe " + write(tmp / "r.yaml", text).string());
    ASSERT_EQ(r.code, 0) << distill << "\n" << r.output;
    auto config = io::read_json_file(tmp / "out" / "model" / "config.json");
    EXPECT_EQ(config["architectures"][0], "BertForMaskedLM");
    auto report = io::read_json_file(tmp / "out" / "report.json");
    EXPECT_LT(report["compressed"]["params"].get<int64_t>(), report["dense"]["params"].get<int64_t>()) << distill;
    EXPECT_GT(report["compressed"]["eval"]["perplexity"].get<double>(), 1.0) << report["compressed"]["eval"].dump();
  }
}

TEST(Compress, BadRecipesFailBeforeTrainingAndLeaveNothing) {
  testing::ScratchDir tmp("compress-bad");
  struct Case {
    std::string extra_or_override, expected, recipe_extra = "";
  };
  std::vector<Case> cases = {
      {"--set prune.0.sparsity=1.0", "sparsity 1 is outside [0, 1)"},
      {"--set prune.0.targets.names=[bert.encoder.layer.7.attention.self.query]", "no module named 'bert.encoder.layer.7"},
      {"--set prune.0.granularity=nm --set prune.0.m=3 --set prune.0.metric=magnitude", "m=3 does not divide"},
      {"--set prune.0.sparsity=0.9 --set prune.0.scope=layer", "would prune all 4 heads of layer 0"},
      {"--set distill.teacher=" + (testing::fixtures_dir() / "bert-mlm" / "model").string(), "tokenizer has 791 tokens"},
      {"--set distill.hidden_map=[[1,9]]", "indices run 0..4 (student) and 0..4 (teacher)"},
      {"--set student.layers=[0,9]", "student.layers must be distinct layer indices in [0, 4)"},
      {"--set student.hidden=256", "student.hidden = 256 must be below the teacher's hidden size 256"},
      {"--set prune.0.shape=3", "unknown pruner key 'shape'"},
      {"--set latency.seq=100000", "recipe: latency.seq 100000 need 100000 positions"},
      {"--set latency.score_batches=-2", "latency.score_batches is -2; expected -1 (as eval_batches)"},
      {"", "bits = 9 is outside 2..8", "quantize:\n  - {targets: {types: [linear]}, weight: {bits: 9}}\n"},
      {"", "group_size 300 is outside 1..256",
       "quantize:\n  - {targets: {types: [linear]}, weight: {bits: 4, granularity: group, group_size: 300}}\n"},
      {"", "structural pruning (head) and QAT in one run are not supported",
       "quantize:\n  - {targets: {types: [linear]}, mode: qat, weight: {bits: 8}}\n"},
      {"", "it needs a 2:4 pruner and a quantize: stage", "export: {sparsity_format: sparse-24-bitmask}\n"},
      {"", "export.sparsity_format 'zip' is not one of: dense, sparse-24-bitmask", "export: {sparsity_format: zip}\n"},
      {"", "smoothquant found no target that reads a pre-LN norm",
       "quantize:\n  - {targets: {types: [linear]}, weight: {bits: 8}, activation: {bits: 8}, smoothquant: {alpha: 0.5}}\n"},
  };
  for (const auto& c : cases) {
    auto recipe = write(tmp / "r.yaml", spam_recipe(tmp / "out", c.recipe_extra));
    auto r = testing::run_sqz("compress --recipe " + recipe.string() + " " + c.extra_or_override);
    EXPECT_EQ(r.code, 2) << c.extra_or_override << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.extra_or_override << "\n" << r.output;
    EXPECT_EQ(r.output.find("evaluating the dense model"), std::string::npos) << "work started: " << r.output;
    EXPECT_FALSE(fs::exists(tmp / "out")) << c.extra_or_override;
    for (const auto& e : fs::directory_iterator(tmp.path()))
      EXPECT_EQ(e.path().filename().string().find("out"), std::string::npos) << "left behind: " << e.path();
  }
}

// The GPUSQ-TLM pipeline in miniature: 2:4 magnitude masks, sparse distillation, int8 QAT from
// step 3 with the masks fixed, compressed-tensors export with a verified 2:4 sparsity_config.
TEST(Compress, TwoFourPlusInt8QatExportsWhatItEvaluated) {
  testing::ScratchDir tmp("compress-gpusq");
  std::string recipe_text = spam_recipe(tmp / "out",
                                        "quantize:\n  - {name: int8, targets: {roles: [q, k, v, o, ffn_in, ffn_out]}, mode: qat, start_step: 3,"
                                        " weight: {bits: 8}, activation: {bits: 8, symmetric: false}}\nspeedup: false\n"
                                        "export: {sparsity_format: sparse-24-bitmask}\n");
  // Swap the structural pruners for one 2:4 pruner.
  auto a = recipe_text.find("prune:\n"), b = recipe_text.find("latency:");
  recipe_text.replace(a, b - a,
                      "prune:\n  - {name: sparse24, targets: {roles: [q, k, v, o, ffn_in, ffn_out]}, granularity: nm, n: 2, m: 4, "
                      "metric: magnitude, schedule: {kind: oneshot, start: 0}}\n");
  auto recipe = write(tmp / "r.yaml", recipe_text);
  auto r = testing::run_sqz("compress --recipe " + recipe.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("fake quantization on from step 4"), std::string::npos) << r.output;
  auto rep = io::JsonFields::from_file(tmp / "out" / "report.json").value();
  EXPECT_EQ(rep["sparsity_verified"]["structure"], "2:4");
  EXPECT_EQ(rep["sparsity_verified"]["tensors"], 24);
  EXPECT_LT(rep["equivalence"]["max_abs_logit_diff"].get<double>(), 1e-5);
  auto config = io::JsonFields::from_file(tmp / "out" / "model" / "config.json").value();
  EXPECT_EQ(config["quantization_config"]["format"], "int-quantized");
  EXPECT_EQ(config["quantization_config"]["config_groups"]["group_0"]["targets"].size(), 24u);
  EXPECT_EQ(config["quantization_config"]["sparsity_config"]["format"], "sparse-24-bitmask");
  EXPECT_TRUE(io::SafetensorsFile(tmp / "out" / "model" / "model.safetensors").contains("bert.encoder.layer.0.output.dense.bitmask"));
  // `sqz eval` on the export measures the same model the report measured.
  auto e = testing::run_sqz("eval " + (tmp / "out" / "model").string() + " --task spam --split " +
                            (testing::shared_dir() / "data" / "spam" / "dev.jsonl").string() + " --max-length 48 --batch-size 8 --max-batches 3");
  ASSERT_EQ(e.code, 0) << e.output;
  auto j = io::json::parse(e.output.substr(e.output.rfind("{\"")));
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), rep["compressed"]["eval"]["accuracy"].get<double>());
}

// Post-training quantization with no training stage: W4 GPTQ weights packed into int32.
TEST(Compress, PostTrainingGptqNeedsNoTraining) {
  testing::ScratchDir tmp("compress-ptq");
  std::string text = "train:\n  model: " + (repo() / "models" / "bert-spam").string() + "\n  task: spam\n  data: " +
                     (testing::shared_dir() / "data" / "spam").string() +
                     "\n  max_length: 48\n  steps: 0\n  batch_size: 8\n"
                     "quantize:\n  - {targets: {roles: [ffn_in, ffn_out]}, weight: {bits: 4, granularity: group, group_size: 64, method: gptq}}\n"
                     "calibration: {batches: 2}\nlatency: {enabled: false}\neval_batches: 2\nout: " + (tmp / "out").string() + "\n";
  auto r = testing::run_sqz("compress --recipe " + write(tmp / "r.yaml", text).string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("calibrating on 2 batches of train.jsonl"), std::string::npos) << r.output;
  // Untrained, the model before quantization is the dense one: evaluated once, not twice.
  EXPECT_NE(r.output.find("evaluating the dense model"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("evaluating the masked model"), std::string::npos) << r.output;
  auto rep = io::JsonFields::from_file(tmp / "out" / "report.json").value();
  ASSERT_TRUE(rep["dense"]["eval"].is_object());
  EXPECT_EQ(rep["masked"]["eval"], rep["dense"]["eval"]);
  EXPECT_EQ(rep["format"], "pack-quantized");
  EXPECT_EQ(rep["quantized_layers"], 8);
  EXPECT_GT(rep["dense"]["bytes"].get<int64_t>() - rep["compressed"]["bytes"].get<int64_t>(), 3 * 1000 * 1000);  // 8 x 256x1024 fp32 -> 4 bits
  EXPECT_EQ(rep["equivalence"]["max_abs_logit_diff"].get<double>(), 0.0);
}

}  // namespace
}  // namespace sqz
