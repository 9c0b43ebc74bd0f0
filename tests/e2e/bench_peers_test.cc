// The engines users would pick instead of sqz, installed from PyPI into the project's venvs:
// CTranslate2 (its own Transformers converter; float32 and int8), OpenVINO (sqz's ONNX graphs;
// f32, bf16 where the CPU has it, and the int8 graph) and PyTorch 2.x (eager fp32, dynamic int8,
// torch.compile; third_party/venv-torch2, only when install_deps.sh --torch2 made it) in one `sqz bench` run, on a BERT
// classifier, on a GPT-2 decoder (prefill, then greedy decode) and on BART and T5 (encode + first
// step, then greedy decode) — each case checked against
// libtorch fp32 before it is timed, or skipped with the reason when the venv lacks the package.
#include <set>

#include "core/process.h"
#include "io/json_file.h"
#include "kernels/cpu_isa.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

// Whether the venv an engine's runner uses imports it (PyTorch 2.x: its own venv, install_deps.sh --torch2).
bool venv_imports(const std::string& engine) {
  const bool torch2 = engine == "pytorch2";
  const fs::path python = fs::path(SQZ_SOURCE_DIR) / "third_party" / (torch2 ? "venv-torch2" : "venv") / "bin" / "python";
  testing::ScratchDir tmp("peers-probe");
  return fs::exists(python) && run_process({python.string(), "-c", "import " + std::string(torch2 ? "torch" : engine)}, {}, tmp / "log") == 0;
}

// Runs `sqz bench MODEL ARGS` with every Python peer's case and checks each row it should have:
// every variant of `engines`, and a skip line for the others.
void expect_checked_peer_rows(const fs::path& model, const std::string& args, bool decoder,
                              const std::set<std::string>& engines = {"ctranslate2", "openvino", "pytorch2"}) {
  testing::ScratchDir tmp("peers");
  const std::string cases = " --case libtorch-fp32 --case ctranslate2-fp32 --case ctranslate2-int8 --case openvino-fp32 --case openvino-bf16"
                            " --case openvino-int8 --case pytorch2-fp32 --case pytorch2-int8 --case pytorch2-compile";
  auto r = testing::run_sqz("bench " + model.string() + args + " --runs 2 --warmup 0 --threads 2" + cases + " --json " +
                            (tmp / "bench.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = io::read_json_file(tmp / "bench.json");
  std::map<std::string, io::json> rows;
  for (const auto& row : j["rows"]) rows[row["case"].get<std::string>()] = row;
  for (const std::string engine : {"ctranslate2", "openvino", "pytorch2"}) {
    if (!venv_imports(engine) || !engines.count(engine)) {
      EXPECT_NE(r.output.find("skipped " + engine + "-*: "), std::string::npos) << r.output;
      continue;
    }
    std::vector<std::string> variants{"fp32", "int8"};
    if (engine == "openvino" && kernels::cpu_has_avx512bf16()) variants.push_back("bf16");
    if (engine == "pytorch2") variants.push_back("compile");
    for (const auto& v : variants) {
      const std::string name = engine + "-" + v;
      ASSERT_TRUE(rows.count(name)) << name << " did not run: " << j.dump();
      const auto& row = rows[name];
      EXPECT_EQ(row["status"], "ok") << row.dump();
      EXPECT_GT(row[decoder ? "prefill_ms" : "median_ms"].get<double>(), 0.0) << row.dump();
      if (decoder) EXPECT_TRUE(row.contains("decode_ms_per_token")) << row.dump();
      EXPECT_NE(row["engine"].get<std::string>().find("(PyPI, CPU)"), std::string::npos) << row.dump();  // with its version
      // fp32 computes what libtorch computes; bf16 and int8 within the check's tolerance.
      EXPECT_LT(row["max_rel_err"].get<double>(), v == "fp32" || v == "compile" ? 1e-4 : v == "bf16" ? 0.05 : 0.2) << row.dump();
    }
  }
}

TEST(BenchPeers, PythonPeersAreCheckedThenTimedOnAnEncoder) {
  expect_checked_peer_rows(testing::fixtures_dir() / "bert-seqcls" / "model", " --batch 2 --seq 16", /*decoder=*/false);
  // A model the runner does not take is a named skip, not a failure.
  auto lm = testing::run_sqz("bench " + (testing::fixtures_dir() / "bert-mlm" / "model").string() +
                             " --batch 1 --seq 16 --runs 1 --warmup 0 --case libtorch-fp32 --case ctranslate2-int8");
  ASSERT_EQ(lm.code, 0) << lm.output;
  EXPECT_NE(lm.output.find("skipped ctranslate2-*, openvino-*, pytorch2-*: the ONNX exporter"), std::string::npos) << lm.output;
}

TEST(BenchPeers, PythonPeersAreCheckedThenTimedOnADecoder) {
  expect_checked_peer_rows(testing::fixtures_dir() / "gpt2-lm" / "model", " --batch 1 --batch 2 --seq 8 --decode-steps 4", /*decoder=*/true);
}

// Encoder-decoders: CTranslate2 converts BART and T5 itself; OpenVINO runs sqz's two ONNX graphs
// (scripts/onnx_seq2seq.py). BART: the shipped g2p model; T5: a small random v1.1 one (gated
// GELU, untied head).
TEST(BenchPeers, PythonPeersAreCheckedThenTimedOnBartAndT5) {
  expect_checked_peer_rows(fs::path(SQZ_SOURCE_DIR) / "models" / "bart-g2p", " --batch 2 --seq 12 --decode-steps 4", /*decoder=*/true);
  testing::ScratchDir tmp("peers-t5");
  const io::json t5 = {{"model_type", "t5"}, {"vocab_size", 96}, {"d_model", 32}, {"d_kv", 8}, {"d_ff", 48}, {"num_layers", 2},
                       {"num_decoder_layers", 1}, {"num_heads", 4}, {"feed_forward_proj", "gated-gelu"},
                       {"tie_word_embeddings", false}, {"pad_token_id", 0}, {"eos_token_id", 1}, {"decoder_start_token_id", 0},
                       {"architectures", {"T5ForConditionalGeneration"}}};
  write_file_atomic(tmp / "t5.json", t5.dump());
  auto r = testing::run_sqz("init " + (tmp / "t5.json").string() + " --out " + (tmp / "t5").string());
  ASSERT_EQ(r.code, 0) << r.output;
  expect_checked_peer_rows(tmp / "t5", " --batch 1 --seq 10 --decode-steps 3", /*decoder=*/true);
  // ONNX Runtime runs the same two graphs under Node.js.
  if (!fs::exists(fs::path(SQZ_SOURCE_DIR) / "third_party/onnxruntime/node_modules/onnxruntime-node/package.json")) return;
  for (const fs::path model : {fs::path(SQZ_SOURCE_DIR) / "models" / "bart-g2p", tmp / "t5"}) {
    auto b = testing::run_sqz("bench " + model.string() + " --batch 2 --seq 10 --decode-steps 3 --runs 2 --warmup 0 --threads 2" +
                              " --case libtorch-fp32 --case onnxruntime-fp32 --case onnxruntime-int8 --json " + (tmp / "ort.json").string());
    ASSERT_EQ(b.code, 0) << b.output;
    const io::json j = io::read_json_file(tmp / "ort.json");
    std::map<std::string, io::json> rows;
    for (const auto& row : j["rows"]) rows[row["case"].get<std::string>()] = row;
    for (const std::string v : {"fp32", "int8"}) {
      ASSERT_TRUE(rows.count("onnxruntime-" + v)) << b.output;
      const auto& row = rows["onnxruntime-" + v];
      EXPECT_EQ(row["status"], "ok") << row.dump();
      EXPECT_GT(row["decode_ms_per_token"].get<double>(), 0.0) << row.dump();
      EXPECT_LT(row["max_rel_err"].get<double>(), v == "fp32" ? 1e-4 : 0.2) << row.dump();
    }
  }
}

}  // namespace
}  // namespace sqz
