// `sqz export --format onnx` and the ONNX Runtime peers' exporters, run as a user would: every
// graph is checked by ONNX Runtime against sqz, transformers or libtorch on real fixtures.
#include <fstream>

#include "core/process.h"
#include "io/json_file.h"
#include "io/npy.h"
#include "unit/test_util.h"

// Its own namespace: the e2e files are compiled as one unity source, next to cli_test.cc's helpers.
namespace sqz::onnx_cli_test {
namespace {

using testing::RunResult;

RunResult run(const std::string& args) { return testing::run_sqz(args); }

fs::path fixture(const std::string& name) { return testing::fixtures_dir() / name; }

// `sqz export --format onnx`: the graph ONNX Runtime runs, checked by ONNX Runtime before it is
// written — an encoder and a decoder with its KV cache, fp32 and int8; refusals leave no file.
TEST(Cli, ExportOnnxIsCheckedByOnnxRuntime) {
  const fs::path ort = fs::path(SQZ_SOURCE_DIR) / "third_party/onnxruntime/node_modules/onnxruntime-node";
  if (!fs::exists(ort / "package.json")) GTEST_SKIP() << "onnxruntime-node not installed (scripts/install_deps.sh)";
  testing::ScratchDir tmp("export");
  // --int8 writes the QDQ form by default, --int8-form dynamic ONNX Runtime's MatMulInteger form;
  // both compute the same quantized products, so ONNX Runtime gives both the same logits.
  for (const std::string name : {"bert-seqcls", "gpt2-lm"}) {
    std::map<std::string, double> errors;
    for (const auto& [flag, variant] : std::vector<std::pair<std::string, std::string>>{
             {"", "fp32"}, {" --int8", "int8"}, {" --int8 --int8-form dynamic", "int8-matmulinteger"}}) {
      SCOPED_TRACE(name + flag);
      const fs::path out = tmp / (name + "-" + variant + ".onnx");
      auto r = run("export " + (fixture(name) / "model").string() + " --format onnx --out " + out.string() + flag);
      ASSERT_EQ(r.code, 0) << r.output;
      auto j = io::json::parse(r.output.substr(r.output.rfind('{')));
      EXPECT_EQ(j["variant"], variant);
      EXPECT_GT(fs::file_size(out), 10000u);
      EXPECT_EQ(j["bytes"], fs::file_size(out));
      EXPECT_LE(j["max_rel_err"].get<double>(), flag.empty() ? 1e-4 : 0.2) << j.dump();
      errors[variant] = j["max_rel_err"].get<double>();
      // Op types are plain strings in the protobuf.
      const std::string graph = read_text_file(out);
      EXPECT_EQ(graph.find("DequantizeLinear") != std::string::npos, variant == "int8");
      EXPECT_EQ(graph.find("MatMulInteger") != std::string::npos, variant == "int8-matmulinteger");
    }
    EXPECT_NEAR(errors["int8"], errors["int8-matmulinteger"], 1e-3) << name;
  }
  auto form_alone = run("export " + (fixture("gpt2-lm") / "model").string() + " --int8-form qdq --out " + (tmp / "f.onnx").string());
  EXPECT_EQ(form_alone.code, 2) << form_alone.output;
  EXPECT_NE(form_alone.output.find("--int8-form: needs --int8"), std::string::npos) << form_alone.output;
  EXPECT_FALSE(fs::exists(tmp / "f.onnx"));
  auto again = run("export " + (fixture("gpt2-lm") / "model").string() + " --out " + (tmp / "gpt2-lm-fp32.onnx").string());
  EXPECT_EQ(again.code, 2) << again.output;
  EXPECT_NE(again.output.find("already exists (pass --overwrite)"), std::string::npos) << again.output;
  auto nowhere = run("export " + (fixture("gpt2-lm") / "model").string() + " --out " + (tmp / "no" / "m.onnx").string());
  EXPECT_NE(nowhere.code, 0);
  EXPECT_NE(nowhere.output.find("its directory does not exist"), std::string::npos) << nowhere.output;
  auto format = run("export " + (fixture("gpt2-lm") / "model").string() + " --format tflite --out " + (tmp / "m.tflite").string());
  EXPECT_EQ(format.code, 2) << format.output;
  EXPECT_FALSE(fs::exists(tmp / "m.tflite"));
}

// Encoder-decoders export as a directory: the encoder graph (which also projects every decoder
// layer's cross-attention K/V once) and the decoder graph with its KV cache, checked by ONNX
// Runtime on the first decoder step before the directory appears. BART: the shipped g2p model;
// T5: a small random v1.1 one (gated GELU, untied head, relative position buckets).
TEST(Cli, ExportOnnxWritesEncoderDecodersAsTwoCheckedGraphs) {
  const fs::path ort = fs::path(SQZ_SOURCE_DIR) / "third_party/onnxruntime/node_modules/onnxruntime-node";
  if (!fs::exists(ort / "package.json")) GTEST_SKIP() << "onnxruntime-node not installed (scripts/install_deps.sh)";
  testing::ScratchDir tmp("export-seq2seq");
  const io::json t5 = {{"model_type", "t5"}, {"vocab_size", 96}, {"d_model", 32}, {"d_kv", 8}, {"d_ff", 48}, {"num_layers", 2},
                       {"num_decoder_layers", 3}, {"num_heads", 4}, {"feed_forward_proj", "gated-gelu"},
                       {"relative_attention_num_buckets", 8}, {"relative_attention_max_distance", 12}, {"tie_word_embeddings", false},
                       {"pad_token_id", 0}, {"eos_token_id", 1}, {"decoder_start_token_id", 0}, {"architectures", {"T5ForConditionalGeneration"}}};
  write_file_atomic(tmp / "t5.json", t5.dump());
  auto init = run("init " + (tmp / "t5.json").string() + " --out " + (tmp / "t5").string());
  ASSERT_EQ(init.code, 0) << init.output;
  for (const fs::path model : {fs::path(SQZ_SOURCE_DIR) / "models" / "bart-g2p", tmp / "t5"}) {
    for (const std::string flag : {"", " --int8"}) {
      SCOPED_TRACE(model.string() + flag);
      const fs::path out = tmp / (model.filename().string() + (flag.empty() ? "-fp32" : "-int8"));
      auto r = run("export " + model.string() + " --format onnx --out " + out.string() + flag);
      ASSERT_EQ(r.code, 0) << r.output;
      auto j = io::json::parse(r.output.substr(r.output.rfind('{')));
      uintmax_t bytes = 0;
      for (const char* file : {"encoder_model.onnx", "decoder_model.onnx", "cache_shapes.json"}) {
        ASSERT_TRUE(fs::exists(out / file)) << file;
        bytes += fs::file_size(out / file);
      }
      EXPECT_EQ(j["bytes"], bytes);
      // fp32 computes libtorch's first-step logits; int8 (QDQ) stays within the bench's tolerance.
      EXPECT_LE(j["max_rel_err"].get<double>(), flag.empty() ? 1e-4 : 0.2) << j.dump();
      EXPECT_EQ(read_text_file(out / "decoder_model.onnx").find("DequantizeLinear") != std::string::npos, !flag.empty());
      const auto shapes = io::read_json_file(out / "cache_shapes.json");
      EXPECT_EQ(shapes["layers"], 3);  // decoder layers of both
      EXPECT_EQ(shapes["head_dim"], model.filename() == "t5" ? 8 : 64);
    }
  }
  EXPECT_FALSE(fs::exists(tmp / "t5-fp32.tmp"));
  auto again = run("export " + (tmp / "t5").string() + " --out " + (tmp / "t5-fp32").string());
  EXPECT_EQ(again.code, 2) << again.output;
  EXPECT_NE(again.output.find("already exists (pass --overwrite)"), std::string::npos) << again.output;
  auto replaced = run("export " + (tmp / "t5").string() + " --out " + (tmp / "t5-fp32").string() + " --overwrite --int8");
  ASSERT_EQ(replaced.code, 0) << replaced.output;
  EXPECT_NE(read_text_file(tmp / "t5-fp32" / "decoder_model.onnx").find("DequantizeLinear"), std::string::npos);
}

// The ONNX Runtime decoder peer is what transformers computes: scripts/onnx_decoder.py's graph with
// its KV cache, run by scripts/ort_decode.js, generates the GPT-2 fixture's greedy tokens exactly.
TEST(Cli, OnnxGpt2DecoderGeneratesWhatTransformersGenerates) {
  const fs::path ort = fs::path(SQZ_SOURCE_DIR) / "third_party/onnxruntime/node_modules/onnxruntime-node";
  if (!fs::exists(ort / "package.json")) GTEST_SKIP() << "onnxruntime-node not installed (scripts/install_deps.sh)";
  testing::ScratchDir tmp("ort-gpt2");
  const fs::path scripts = fs::path(SQZ_SOURCE_DIR) / "scripts", log = tmp / "log";
  auto prompt = io::read_npy(fixture("gpt2-lm") / "inputs" / "gen_prompt_0.npy").to(torch::kLong).contiguous();
  auto expected = io::read_npy(fixture("gpt2-lm") / "outputs" / "gen_output_0.npy").to(torch::kLong).contiguous();
  const int64_t len = prompt.size(1), steps = expected.size(1) - len;
  auto config = io::read_json_file(fixture("gpt2-lm") / "model" / "config.json");
  const int64_t heads = config["n_head"], hidden = config["n_embd"];
  const io::json in = {{"batch", 1}, {"seq", len}, {"input_ids", std::vector<int64_t>(prompt.data_ptr<int64_t>(), prompt.data_ptr<int64_t>() + len)},
                       {"decode_steps", steps}, {"layers", config["n_layer"]},
                       {"heads", std::vector<int64_t>(config["n_layer"].get<size_t>(), heads)}, {"head_dim", hidden / heads}};
  std::ofstream(tmp / "in.json") << in.dump();
  for (const std::string variant : {"fp32", "int8"}) {
    SCOPED_TRACE(variant);
    std::vector<std::string> exporter{"/usr/bin/python3", (scripts / "onnx_decoder.py").string(), (fixture("gpt2-lm") / "model").string(),
                                      (tmp / "m.onnx").string()};
    if (variant == "int8") exporter.push_back("--int8");
    ASSERT_EQ(run_process(exporter, {}, log), 0) << log_tail(log);
    ASSERT_EQ(run_process({"node", (scripts / "ort_decode.js").string(), ort.string(), (tmp / "m.onnx").string(),
                           (tmp / "in.json").string(), (tmp / "out.json").string(), "1", "0", "1"}, {}, log), 0)
        << log_tail(log);
    auto out = io::read_json_file(tmp / "out.json");
    std::vector<int64_t> got;
    for (const auto& step : out["tokens"]) got.push_back(step[0].get<int64_t>());
    std::vector<int64_t> want(expected.data_ptr<int64_t>() + len, expected.data_ptr<int64_t>() + len + steps);
    if (variant == "fp32") EXPECT_EQ(got, want);
    else EXPECT_EQ(got.size(), want.size());  // int8 may pick another token on this tiny random model
  }
  // Another family is refused by name.
  EXPECT_NE(run_process({"/usr/bin/python3", (scripts / "onnx_decoder.py").string(), (fixture("bert-seqcls") / "model").string(),
                         (tmp / "x.onnx").string()}, {}, log), 0);
  EXPECT_NE(log_tail(log).find("field 'model_type' is 'bert'"), std::string::npos) << log_tail(log);
  EXPECT_FALSE(fs::exists(tmp / "x.onnx"));
}

// OPT, grouped-query Llama (llama3 rope scaling) and a Llama SpeedUp shrank (layer 0 lost a K/V
// group and FFN neurons: per-layer shapes only sqz's config describes, read by the exporter from
// the weights) through the same exporter: ONNX Runtime's greedy tokens (prefill, then decode steps
// on its KV cache) equal sqz's libtorch generate.
TEST(Cli, OnnxOptAndLlamaDecodersGenerateWhatLibtorchGenerates) {
  const fs::path ort = fs::path(SQZ_SOURCE_DIR) / "third_party/onnxruntime/node_modules/onnxruntime-node";
  if (!fs::exists(ort / "package.json")) GTEST_SKIP() << "onnxruntime-node not installed (scripts/install_deps.sh)";
  testing::ScratchDir tmp("ort-dec");
  const fs::path scripts = fs::path(SQZ_SOURCE_DIR) / "scripts", log = tmp / "log";
  const io::json opt = {{"model_type", "opt"}, {"vocab_size", 857}, {"hidden_size", 32}, {"word_embed_proj_dim", 32},
                        {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"ffn_dim", 48}, {"max_position_embeddings", 64},
                        {"pad_token_id", 1}, {"architectures", {"OPTForCausalLM"}}};
  const io::json llama = {{"model_type", "llama"}, {"vocab_size", 857}, {"hidden_size", 32}, {"num_hidden_layers", 2},
                          {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"intermediate_size", 48},
                          {"max_position_embeddings", 64}, {"architectures", {"LlamaForCausalLM"}},
                          {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                                            {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}}}};
  io::json shrunk = llama;
  shrunk["pruned_heads"] = {{"0", {0, 1}}};
  shrunk["sqz_intermediate_sizes"] = {20, 48};
  using Kv = std::vector<int64_t>;
  for (const auto& [name, config, kv_heads] :
       {std::tuple{"opt", opt, Kv{4, 4}}, std::tuple{"llama", llama, Kv{2, 2}}, std::tuple{"llama-shrunk", shrunk, Kv{1, 2}}}) {
    SCOPED_TRACE(name);
    const auto dir = tmp / name;
    io::write_json_file_atomic(tmp / "config.json", config);
    auto r = run("init " + (tmp / "config.json").string() + " --seed 4 --out " + dir.string() + " --tokenizer-from " +
                 (fixture("gpt2-lm") / "model").string());
    ASSERT_EQ(r.code, 0) << r.output;
    r = run("generate " + dir.string() + " --prompt 'Call me Ishmael. Some years ago' --max-new-tokens 8 --ids");
    ASSERT_EQ(r.code, 0) << r.output;
    const auto gen = io::json::parse(r.output);
    const auto prompt = gen["prompt_ids"].get<std::vector<int64_t>>();
    const auto want = gen["new_ids"].get<std::vector<int64_t>>();  // may stop early at EOS
    const io::json in = {{"batch", 1}, {"seq", prompt.size()}, {"input_ids", prompt}, {"decode_steps", 8}, {"layers", 2},
                         {"heads", kv_heads}, {"head_dim", 8}};
    std::ofstream(tmp / "in.json") << in.dump();
    ASSERT_EQ(run_process({"/usr/bin/python3", (scripts / "onnx_decoder.py").string(), dir.string(), (tmp / "m.onnx").string()}, {}, log), 0)
        << log_tail(log);
    ASSERT_EQ(run_process({"node", (scripts / "ort_decode.js").string(), ort.string(), (tmp / "m.onnx").string(),
                           (tmp / "in.json").string(), (tmp / "out.json").string(), "1", "0", "1"}, {}, log), 0)
        << log_tail(log);
    std::vector<int64_t> got;
    const auto out = io::read_json_file(tmp / "out.json");
    for (const auto& step : out["tokens"]) got.push_back(step[0].get<int64_t>());
    ASSERT_FALSE(want.empty());
    got.resize(want.size());
    EXPECT_EQ(got, want);
  }
}

}  // namespace
}  // namespace sqz::onnx_cli_test
