// Runs the sqz binary as a user would: real fixtures in, files out; malformed inputs give a
// named one-line error, a non-zero exit and no output directory.
#include <cstdio>
#include <fstream>
#include <set>

#include "core/process.h"
#include "io/json_file.h"
#include "io/npy.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

using testing::RunResult;

RunResult run(const std::string& args) { return testing::run_sqz(args); }

fs::path fixture(const std::string& name) { return testing::fixtures_dir() / name; }

void copy_model(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) fs::copy_file(e.path(), to / e.path().filename());
}

TEST(Cli, InfoReportsParameterCount) {
  auto r = run("info " + (fixture("bert-mlm") / "model").string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("126999"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bert.encoder.layer.1"), std::string::npos) << r.output;
  r = run("info --json " + (fixture("gpt2-lm") / "model").string());
  EXPECT_EQ(io::json::parse(r.output)["parameters"], 159040) << r.output;
}

// Numbers a user gets wrong are refused by the flag's or the field's name, with a usage exit code,
// never a crash: a Llama config with zero KV heads (it was SIGFPE), zero batch sizes, sampling
// settings out of range, runtime-only flags on libtorch.
TEST(Cli, OutOfRangeNumbersAreRefusedByName) {
  testing::ScratchDir tmp("ranges");
  fs::create_directories(tmp / "llama");
  io::write_json_file_atomic(tmp / "llama" / "config.json",
                             {{"model_type", "llama"}, {"vocab_size", 97}, {"hidden_size", 32}, {"intermediate_size", 56},
                              {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 0},
                              {"architectures", {"LlamaForCausalLM"}}});
  auto info = run("info " + (tmp / "llama").string());
  EXPECT_EQ(info.code, 2) << info.output;
  EXPECT_NE(info.output.find("config.json: field 'num_key_value_heads' expected a positive integer, got 0"), std::string::npos)
      << info.output;

  const std::string bert = (fixture("bert-seqcls") / "model").string(), gpt2 = (fixture("gpt2-lm") / "model").string();
  const std::string split = (testing::shared_dir() / "data" / "spam" / "dev.jsonl").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"eval " + bert + " --task spam --split " + split + " --batch-size 0", "--batch-size"},
      {"eval " + bert + " --task spam --split " + split + " --max-batches -1", "--max-batches"},
      {"eval " + bert + " --task spam --split " + split + " --int8-attention", "--int8-attention: applies to --engine runtime only"},
      {"generate " + gpt2 + " --prompt hi --sample --top-k -3", "--top-k"},
      {"generate " + gpt2 + " --prompt hi --sample --top-p 0", "--top-p"},
      {"generate " + gpt2 + " --prompt hi --sample --temperature 0", "--temperature"},
      {"forward " + bert + " --inputs " + (fixture("bert-seqcls") / "inputs").string() + " --out " + (tmp / "o").string() +
           " --int8-attention",
       "--int8-attention: applies to --engine runtime only"},
      {"train-tokenizer --kind bpe --input " + split + " --vocab-size 0 --out " + (tmp / "tok").string(), "--vocab-size"},
      {"latency " + bert + " --batch 0", "--batch"},
      {"bench " + bert + " --case sqz-int9", "--case 'sqz-int9' is not a bench case"},
  };
  for (const auto& [args, expect] : cases) {
    auto r = run(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(expect), std::string::npos) << args << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(tmp / "o"));
  EXPECT_FALSE(fs::exists(tmp / "tok"));
}

TEST(Cli, ForwardWritesHFNamedOutputs) {
  testing::ScratchDir tmp("cli");
  auto fx = fixture("bert-seqcls");
  auto r = run("forward " + (fx / "model").string() + " --inputs " + (fx / "inputs").string() + " --out " + (tmp / "out").string());
  ASSERT_EQ(r.code, 0) << r.output;
  auto logits = io::read_npy(tmp / "out" / "logits.npy");
  EXPECT_TRUE(testing::all_close(logits, io::read_npy(fx / "outputs" / "logits.npy"), 1e-4, 1e-4));
  EXPECT_TRUE(fs::exists(tmp / "out" / "last_hidden_state.npy"));
  EXPECT_TRUE(fs::exists(tmp / "out" / "pooler_output.npy"));
  // The runtime engine writes the same logits (and hidden state) under the same names.
  r = run("forward " + (fx / "model").string() + " --inputs " + (fx / "inputs").string() + " --out " + (tmp / "rt").string() +
          " --engine runtime");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(testing::all_close(io::read_npy(tmp / "rt" / "logits.npy"), io::read_npy(fx / "outputs" / "logits.npy"), 1e-4, 1e-4));
  auto gpt = fixture("gpt2-lm");
  r = run("forward " + (gpt / "model").string() + " --inputs " + (gpt / "inputs").string() + " --out " + (tmp / "gpt").string() +
          " --engine runtime");
  ASSERT_EQ(r.code, 0) << r.output;  // the fixture's batch is padded: transformers' logits at every real token
  auto real = io::read_npy(gpt / "inputs" / "attention_mask.npy").to(torch::kBool);
  EXPECT_TRUE(testing::all_close(io::read_npy(tmp / "gpt" / "logits.npy").index({real}),
                                 io::read_npy(gpt / "outputs" / "logits.npy").index({real}), 1e-4, 1e-4));
  fs::create_directories(tmp / "ids");
  io::write_npy(tmp / "ids" / "input_ids.npy", torch::tensor({{5, 80, 13, 400, 7, 62}, {9, 9, 100, 3, 250, 11}}, torch::kLong));
  for (const std::string engine : {"libtorch", "runtime"}) {
    r = run("forward " + (gpt / "model").string() + " --inputs " + (tmp / "ids").string() + " --out " + (tmp / engine).string() +
            " --engine " + engine);
    ASSERT_EQ(r.code, 0) << r.output;
  }
  EXPECT_TRUE(testing::all_close(io::read_npy(tmp / "runtime" / "logits.npy"), io::read_npy(tmp / "libtorch" / "logits.npy"), 1e-4, 1e-4));
  // An existing output dir is refused without --overwrite.
  r = run("forward " + (fx / "model").string() + " --inputs " + (fx / "inputs").string() + " --out " + (tmp / "out").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("already exists"), std::string::npos) << r.output;
}

TEST(Cli, TokenizeAndGenerate) {
  auto r = run("tokenize " + (fixture("bert-mlm") / "model").string() + " --text 'Hello, world!'");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(io::json::parse(r.output)["input_ids"], io::json::parse("[2,119,109,31,48,495,5,3]"));
  r = run("generate " + (fixture("gpt2-lm") / "model").string() + " --prompt 'Call me Ishmael.' --max-new-tokens 8 --ids");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(io::json::parse(r.output)["new_ids"], io::json::parse("[132,383,223,734,762,599,395,494]")) << r.output;
  // The runtime engine continues the prompt the same way.
  r = run("generate " + (fixture("gpt2-lm") / "model").string() + " --prompt 'Call me Ishmael.' --max-new-tokens 8 --ids --engine runtime");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(io::json::parse(r.output)["new_ids"], io::json::parse("[132,383,223,734,762,599,395,494]")) << r.output;
  r = run("generate " + (fixture("gpt2-lm") / "model").string() + " --prompt 'Call me' --engine runtime --sample");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("does not sample"), std::string::npos) << r.output;
}

TEST(Cli, InitWritesALoadableModel) {
  testing::ScratchDir tmp("cli");
  auto r = run("init " + (fixture("gpt2-lm") / "model" / "config.json").string() + " --seed 3 --out " + (tmp / "m").string());
  ASSERT_EQ(r.code, 0) << r.output;
  r = run("info --json " + (tmp / "m").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(io::json::parse(r.output)["parameters"], 159040);
  auto st = io::read_json_file(tmp / "m" / "config.json");
  EXPECT_EQ(st["architectures"][0], "GPT2LMHeadModel");
}

TEST(Cli, EvalOnTheRuntimeEngine) {
  // The shipped spam teacher, first 4 dev batches: fp32 runtime predicts what libtorch predicts.
  const std::string base = "eval " + (fs::path(SQZ_SOURCE_DIR) / "models" / "bert-spam").string() + " --task spam --split " +
                           (testing::shared_dir() / "data" / "spam" / "dev.jsonl").string() + " --max-batches 4";
  auto torch_run = run(base);
  auto fp32_run = run(base + " --engine runtime --precision fp32");
  auto int8_run = run(base + " --engine runtime --precision int8");
  auto bf16_run = run(base + " --engine runtime --precision bf16");
  ASSERT_EQ(torch_run.code, 0) << torch_run.output;
  ASSERT_EQ(bf16_run.code, 0) << bf16_run.output;
  ASSERT_EQ(fp32_run.code, 0) << fp32_run.output;
  ASSERT_EQ(int8_run.code, 0) << int8_run.output;
  auto a = io::json::parse(torch_run.output), b = io::json::parse(fp32_run.output), c = io::json::parse(int8_run.output);
  EXPECT_EQ(b["engine"], "runtime fp32");
  EXPECT_EQ(c["engine"], "runtime int8");
  EXPECT_EQ(a["accuracy"], b["accuracy"]);
  EXPECT_EQ(a["macro_f1"], b["macro_f1"]);
  EXPECT_NEAR(c["accuracy"].get<double>(), a["accuracy"].get<double>(), 0.05);
  auto bf = io::json::parse(bf16_run.output);
  EXPECT_EQ(bf["engine"], "runtime bf16");
  EXPECT_NEAR(bf["accuracy"].get<double>(), a["accuracy"].get<double>(), 0.02);
  auto attention_run = run(base + " --engine runtime --precision int8 --int8-attention");
  ASSERT_EQ(attention_run.code, 0) << attention_run.output;
  auto at = io::json::parse(attention_run.output);
  EXPECT_EQ(at["engine"], "runtime int8 + int8 attention");
  EXPECT_NEAR(at["accuracy"].get<double>(), a["accuracy"].get<double>(), 0.05);
  // Decoders: perplexity from the decoder engine's logits; fp32 equals libtorch's.
  const std::string lm = "eval " + (fixture("gpt2-lm") / "model").string() + " --task lm-books --max-length 64 --max-batches 3 --split " +
                         (testing::shared_dir() / "data" / "lm-books" / "dev.txt").string();
  auto lm_torch = run(lm), lm_fp32 = run(lm + " --engine runtime"), lm_int8 = run(lm + " --engine runtime --precision int8");
  ASSERT_EQ(lm_torch.code, 0) << lm_torch.output;
  ASSERT_EQ(lm_fp32.code, 0) << lm_fp32.output;
  ASSERT_EQ(lm_int8.code, 0) << lm_int8.output;
  const double ppl = io::json::parse(lm_torch.output)["perplexity"];
  EXPECT_NEAR(io::json::parse(lm_fp32.output)["perplexity"].get<double>(), ppl, 1e-4 * ppl);
  EXPECT_EQ(io::json::parse(lm_fp32.output)["tokens"], io::json::parse(lm_torch.output)["tokens"]);
  EXPECT_EQ(io::json::parse(lm_int8.output)["engine"], "runtime int8");
  EXPECT_NEAR(io::json::parse(lm_int8.output)["perplexity"].get<double>(), ppl, 0.02 * ppl);
  // A task the engine cannot score on this model is refused by name; so are blocks past the positions.
  auto cls_lm = run("eval " + (fixture("bert-seqcls") / "model").string() + " --task lm-books --split " +
                    (testing::shared_dir() / "data" / "lm-books" / "dev.txt").string() + " --engine runtime --max-batches 1");
  EXPECT_NE(cls_lm.code, 0);
  EXPECT_NE(cls_lm.output.find("the encoder engine evaluates classification tasks"), std::string::npos) << cls_lm.output;
  auto too_long = run("eval " + (fixture("gpt2-lm") / "model").string() + " --task lm-books --max-length 65 --split " +
                      (testing::shared_dir() / "data" / "lm-books" / "dev.txt").string());
  EXPECT_NE(too_long.code, 0);
  EXPECT_NE(too_long.output.find("--max-length 65 exceed the model's 64 positions"), std::string::npos) << too_long.output;
}

// `sqz pack` writes a runtime dir; forward, generate and eval run it (on the runtime engine, the
// only one it has) and get what the engine built from the model dir gets.
TEST(Cli, PackedRuntimeDirRunsWhatTheModelDirRuns) {
  testing::ScratchDir tmp("cli");
  auto fx = fixture("bert-seqcls");
  const std::string inputs = " --inputs " + (fx / "inputs").string();
  for (const std::string precision : {"fp32", "int8"}) {
    auto r = run("pack " + (fx / "model").string() + " --precision " + precision + " --out " + (tmp / ("bert-" + precision)).string());
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(io::json::parse(r.output)["precision"], precision) << r.output;
    r = run("forward " + (tmp / ("bert-" + precision)).string() + inputs + " --out " + (tmp / ("packed-" + precision)).string());
    ASSERT_EQ(r.code, 0) << r.output;
    r = run("forward " + (fx / "model").string() + inputs + " --engine runtime --precision " + precision + " --out " +
            (tmp / ("built-" + precision)).string());
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(io::read_npy(tmp / ("packed-" + precision) / "logits.npy").equal(io::read_npy(tmp / ("built-" + precision) / "logits.npy")));
  }
  EXPECT_TRUE(testing::all_close(io::read_npy(tmp / "packed-fp32" / "logits.npy"), io::read_npy(fx / "outputs" / "logits.npy"), 1e-4, 1e-4));
  // GPT-2 packed at fp32 generates transformers' greedy tokens.
  auto r = run("pack " + (fixture("gpt2-lm") / "model").string() + " --out " + (tmp / "gpt2").string());
  ASSERT_EQ(r.code, 0) << r.output;
  r = run("generate " + (tmp / "gpt2").string() + " --prompt 'Call me Ishmael.' --max-new-tokens 8 --ids");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(io::json::parse(r.output)["new_ids"], io::json::parse("[132,383,223,734,762,599,395,494]")) << r.output;
  // The shipped spam teacher packed int8 scores what the engine built from its model dir scores.
  const auto spam = fs::path(SQZ_SOURCE_DIR) / "models" / "bert-spam";
  r = run("pack " + spam.string() + " --precision int8 --out " + (tmp / "spam").string());
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string split = " --task spam --max-batches 2 --split " + (testing::shared_dir() / "data" / "spam" / "dev.jsonl").string();
  auto packed = run("eval " + (tmp / "spam").string() + split), built = run("eval " + spam.string() + split + " --engine runtime --precision int8");
  ASSERT_EQ(packed.code, 0) << packed.output;
  ASSERT_EQ(built.code, 0) << built.output;
  EXPECT_EQ(io::json::parse(packed.output)["accuracy"], io::json::parse(built.output)["accuracy"]);
  EXPECT_EQ(io::json::parse(packed.output)["engine"], "runtime int8");
  // Refusals: libtorch on a runtime dir, another precision, an existing output dir (left as it was).
  r = run("forward " + (tmp / "bert-int8").string() + inputs + " --engine libtorch --out " + (tmp / "x").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("runs on --engine runtime only"), std::string::npos) << r.output;
  r = run("forward " + (tmp / "bert-int8").string() + inputs + " --precision bf16 --out " + (tmp / "x").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("packed for precision int8, not bf16"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "x"));
  const auto manifest = read_text_file(tmp / "bert-int8" / "manifest.json");
  r = run("pack " + (fx / "model").string() + " --precision fp32 --out " + (tmp / "bert-int8").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("already exists"), std::string::npos) << r.output;
  EXPECT_EQ(read_text_file(tmp / "bert-int8" / "manifest.json"), manifest);
}

TEST(Cli, BenchChecksThenTimesEveryEngine) {
  testing::ScratchDir tmp("cli");
  auto r = run("bench " + (fixture("bert-seqcls") / "model").string() +
               " --batch 1 --batch 2 --seq 16 --runs 2 --warmup 0 --threads 2 --json " + (tmp / "bench.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("| sqz-fp32 | 2 |"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--case sqz-int8"), std::string::npos) << r.output;  // a line that reproduces each case
  auto j = io::read_json_file(tmp / "bench.json");
  std::set<std::string> seen;
  for (const auto& row : j["rows"]) {
    const auto name = row["case"].get<std::string>();
    seen.insert(name);
    // Peers' int8 may fail the check on this tiny random model; that is reported, not hidden.
    if (name.rfind("libtorch-int8", 0) == 0 && row["status"] != "ok") continue;
    EXPECT_EQ(row["status"], "ok") << row.dump();
    if (row["status"] != "ok") continue;
    EXPECT_GT(row["median_ms"].get<double>(), 0.0);
    if (row["case"] == "sqz-fp32") EXPECT_LT(row["max_rel_err"].get<double>(), 1e-4);
    // libtorch peers are also timed in a child process with passive OpenMP; the row says which won.
    if (name.rfind("libtorch-", 0) == 0) EXPECT_TRUE(row["setting"] == "default" || row["setting"] == "OMP_WAIT_POLICY=passive (own process)") << row.dump();
    else EXPECT_FALSE(row.contains("setting")) << row.dump();
  }
  EXPECT_TRUE(seen.count("libtorch-fp32") && seen.count("sqz-fp32") && seen.count("sqz-bf16") && seen.count("sqz-int8") &&
              seen.count("sqz-int8-attn-int8")) << j.dump();
  EXPECT_NE(r.output.find("OMP_WAIT_POLICY=passive; each keeps its faster setting"), std::string::npos) << r.output;
  // ONNX Runtime: checked and timed when scripts/install_deps.sh installed it, else a named skip.
  const bool have_ort = fs::exists(fs::path(SQZ_SOURCE_DIR) / "third_party/onnxruntime/node_modules/onnxruntime-node/package.json");
  if (have_ort) {
    EXPECT_TRUE(seen.count("onnxruntime-fp32") && seen.count("onnxruntime-int8")) << j.dump();
    for (const auto& row : j["rows"])
      if (row["case"] == "onnxruntime-fp32") {
        EXPECT_EQ(row["status"], "ok") << row.dump();
        EXPECT_LT(row["max_rel_err"].get<double>(), 1e-4) << row.dump();
      }
  } else {
    EXPECT_NE(r.output.find("skipped onnxruntime-*: onnxruntime-node not found"), std::string::npos) << r.output;
  }
  // PyTorch 2.x: its own venv, made only by `scripts/install_deps.sh --torch2`; else a named skip.
  if (fs::exists(fs::path(SQZ_SOURCE_DIR) / "third_party/venv-torch2/bin/python"))
    EXPECT_TRUE(seen.count("pytorch2-fp32") && seen.count("pytorch2-int8") && seen.count("pytorch2-compile")) << j.dump();
  else
    EXPECT_NE(r.output.find("skipped pytorch2-*: no Python venv at"), std::string::npos) << r.output;
  EXPECT_EQ(j["rows"].size() % 2, 0u);  // every case at both batch sizes
  // A decoder: prefill and per-token decode, the engine checked against libtorch first.
  // --profile adds per-op tables (prefill per prompt, decode per token) and the same in the JSON.
  r = run("bench " + (fixture("gpt2-lm") / "model").string() + " --seq 8 --decode-steps 4 --runs 1 --warmup 0 --profile --json " +
          (tmp / "decoder.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("decode ms/token"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("per-op time, sqz-int8, batch 1, decode (--profile: wall ms per token"), std::string::npos) << r.output;
  const auto decoder = io::read_json_file(tmp / "decoder.json");
  std::set<std::string> decoder_cases;
  for (const auto& row : decoder["rows"]) {
    decoder_cases.insert(row["case"].get<std::string>());
    // ONNX Runtime's GPT-2 (scripts/onnx_decoder.py, KV cache): fp32 within 1e-4 of libtorch.
    if (row["case"] == "onnxruntime-fp32") {
      EXPECT_EQ(row["status"], "ok") << row.dump();
      EXPECT_LT(row["max_rel_err"].get<double>(), 1e-4) << row.dump();
      EXPECT_GT(row["decode_ms_per_token"].get<double>(), 0.0) << row.dump();
    }
  }
  EXPECT_EQ(have_ort, decoder_cases.count("onnxruntime-fp32") == 1 && decoder_cases.count("onnxruntime-int8") == 1)
      << decoder.dump();
  for (const auto& row : decoder["rows"])
    if (row["case"].get<std::string>().rfind("sqz-", 0) == 0) {
      EXPECT_EQ(row["status"], "ok") << row.dump();
      if (row["case"] == "sqz-fp32") EXPECT_LT(row["max_rel_err"].get<double>(), 1e-4);
      ASSERT_TRUE(row.contains("profile")) << row.dump();
      EXPECT_FALSE(row["profile"]["prefill"].empty());
      EXPECT_FALSE(row["profile"]["decode"].empty());
    }
  // A head the engine does not run still benchmarks its peers and says why sqz is absent.
  r = run("bench " + (fixture("bert-mlm") / "model").string() + " --seq 8 --runs 1 --warmup 0");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("skipped sqz-*"), std::string::npos) << r.output;
  r = run("bench --preset bert-huge");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--preset 'bert-huge' is not one of: bert-base, gpt2"), std::string::npos) << r.output;
}

// Each case: mutate a copy of a fixture, run, expect a named error and no output dir.
struct BadCase {
  std::string name, expect;
  std::function<void(const fs::path& model, const fs::path& inputs)> mutate;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class BadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadInput, NamedErrorAndNoOutput) {
  testing::ScratchDir tmp("bad");
  copy_model(fixture("bert-mlm") / "model", tmp / "model");
  copy_model(fixture("bert-mlm") / "inputs", tmp / "inputs");
  GetParam().mutate(tmp / "model", tmp / "inputs");
  auto r = run("forward " + (tmp / "model").string() + " --inputs " + (tmp / "inputs").string() + " --out " + (tmp / "out").string());
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(GetParam().expect), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "one line expected: " << r.output;
  EXPECT_FALSE(fs::exists(tmp / "out"));
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename().string().find(".out.tmp"), std::string::npos) << "left behind: " << e.path();
}

void truncate_file(const fs::path& p, size_t keep) {
  std::string bytes = read_text_file(p);
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes.substr(0, keep);
}

void edit_config(const fs::path& model, const std::function<void(io::json&)>& f) {
  auto c = io::read_json_file(model / "config.json");
  f(c);
  io::write_json_file_atomic(model / "config.json", c);
}

std::vector<BadCase> bad_cases() {
  return {
      {"missing_checkpoint", "no model.safetensors", [](auto& m, auto&) { fs::remove(m / "model.safetensors"); }},
      {"truncated_checkpoint", "run past the end", [](auto& m, auto&) { truncate_file(m / "model.safetensors", 300000); }},
      {"tiny_checkpoint", "truncated safetensors file", [](auto& m, auto&) { truncate_file(m / "model.safetensors", 5); }},
      {"header_too_long", "header length", [](auto& m, auto&) {
         std::string b = read_text_file(m / "model.safetensors");
         b[5] = '\x7f';
         std::ofstream(m / "model.safetensors", std::ios::binary | std::ios::trunc) << b;
       }},
      {"config_not_json", "config.json: not valid JSON", [](auto& m, auto&) { std::ofstream(m / "config.json") << "{oops"; }},
      {"unknown_model_type", "model_type 'mamba' is not supported",
       [](auto& m, auto&) { edit_config(m, [](io::json& c) { c["model_type"] = "mamba"; }); }},
      {"wrong_shape", "but config.json implies",
       [](auto& m, auto&) { edit_config(m, [](io::json& c) { c["intermediate_size"] = 96; }); }},
      {"float_ids", "expected an integer array",
       [](auto&, auto& i) { io::write_npy(i / "input_ids.npy", torch::zeros({2, 9})); }},
      {"rank_one_ids", "expected rank 2",
       [](auto&, auto& i) { io::write_npy(i / "input_ids.npy", torch::zeros({9}, torch::kLong)); }},
      {"ids_outside_vocab", "outside the vocabulary [0, 791)",
       [](auto&, auto& i) { io::write_npy(i / "input_ids.npy", torch::full({2, 9}, 5000, torch::kLong)); }},
      {"too_long", "exceeds max_position_embeddings 64", [](auto&, auto& i) {
         io::write_npy(i / "input_ids.npy", torch::ones({1, 65}, torch::kLong));
         fs::remove(i / "attention_mask.npy");
         fs::remove(i / "token_type_ids.npy");
       }},
      {"mask_shape", "attention_mask must have shape [2, 9]",
       [](auto&, auto& i) { io::write_npy(i / "attention_mask.npy", torch::ones({2, 4}, torch::kLong)); }},
  };
}

INSTANTIATE_TEST_SUITE_P(Cli, BadInput, ::testing::ValuesIn(bad_cases()),
                         [](const ::testing::TestParamInfo<BadCase>& i) { return i.param.name; });

}  // namespace
}  // namespace sqz
