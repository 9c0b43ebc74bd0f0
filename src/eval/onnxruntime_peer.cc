#include "eval/onnxruntime_peer.h"

#include <unistd.h>

#include <cstdlib>

#include "build_paths.h"
#include "core/error.h"
#include "core/process.h"
#include "io/json_file.h"
#include "kernels/cpu_isa.h"
#include "models/generation.h"

namespace sqz::eval {

namespace {

const fs::path kSourceDir = SQZ_SOURCE_DIR;
const char* kPython = "/usr/bin/python3";  // Debian's, where python3-onnx and python3-numpy install

fs::path module_dir() {
  if (const char* env = std::getenv("SQZ_ONNXRUNTIME_NODE"); env && *env) return env;
  return kSourceDir / "third_party" / "onnxruntime" / "node_modules" / "onnxruntime-node";
}

}  // namespace

OnnxRuntimePeer::~OnnxRuntimePeer() {
  std::error_code ec;
  fs::remove_all(work_dir, ec);
}

std::string onnxruntime_missing() {
  const fs::path log = fs::temp_directory_path() / ("sqz-ort-probe-" + std::to_string(getpid()) + ".log");
  std::string why;
  if (!fs::exists(module_dir() / "package.json"))
    why = "onnxruntime-node not found at " + module_dir().string() + " (bash scripts/install_deps.sh installs it)";
  else if (run_process({"node", "--version"}, {}, log) != 0)
    why = "Node.js (node) is not installed (bash scripts/install_deps.sh installs it)";
  else if (run_process({kPython, "-c", "import onnx, numpy"}, {}, log) != 0)
    why = "the ONNX exporter needs Debian's python3-onnx and python3-numpy (bash scripts/install_deps.sh)";
  std::error_code ec;
  fs::remove(log, ec);
  return why;
}

std::string onnx_exporter_for(const std::string& model_type) {
  if (model_type == "bert") return "onnx_bert.py";
  if (model_type == "gpt2" || model_type == "opt" || model_type == "llama") return "onnx_decoder.py";
  if (model_type == "bart" || model_type == "t5") return "onnx_seq2seq.py";
  return "";
}

fs::path OnnxRuntimePeer::graph(const std::string& variant) const {
  return work_dir / ("model-" + variant + (seq2seq ? "" : ".onnx"));
}

std::string OnnxRuntimePeer::int8_precision(const std::string& variant) const {
  const std::string form = variant == "int8-matmulinteger" ? "int8 MatMulInteger" : "int8 QDQ";
  return int8_weight_bits == 8 ? form : form + ", 7-bit weights (no VNNI)";
}

std::unique_ptr<OnnxRuntimePeer> save_peer_copy(models::LoadedModel& loaded) {
  auto peer = std::make_unique<OnnxRuntimePeer>();
  peer->work_dir = fs::temp_directory_path() / ("sqz-bench-ort-" + std::to_string(getpid()));
  fs::create_directories(peer->work_dir / "model");
  models::save_model(*loaded.model, loaded.config.value(), peer->work_dir / "model");
  return peer;
}

std::unique_ptr<OnnxRuntimePeer> prepare_onnxruntime(models::LoadedModel& loaded, const std::vector<std::string>& variants) {
  const std::string exporter = onnx_exporter_for(loaded.model->info().model_type);
  if (exporter.empty())
    fail_invalid("no ONNX exporter for model_type '", loaded.model->info().model_type, "' (bert, gpt2, opt, llama, bart, t5)");
  auto peer = save_peer_copy(loaded);
  peer->seq2seq = loaded.model->info().is_encoder_decoder;
  peer->module_dir = module_dir();
  peer->version = io::read_json_file(peer->module_dir / "package.json").value("version", std::string("?"));
  peer->int8_weight_bits = kernels::cpu_max_isa() >= kernels::Isa::kAvx512Vnni ? 8 : 7;
  for (const std::string& variant : variants) {
    std::vector<std::string> argv{kPython, (kSourceDir / "scripts" / exporter).string(), (peer->work_dir / "model").string(),
                                  peer->graph(variant).string()};
    // "int8": the QDQ form, which ONNX Runtime and OpenVINO both run faster than the MatMulInteger
    // form (fused into their int8 GEMMs; docs/runtime.md).
    if (variant != "fp32") argv.insert(argv.end(), {"--int8", "--weight-bits", std::to_string(peer->int8_weight_bits)});
    if (variant == "int8") argv.insert(argv.end(), {"--int8-form", "qdq"});
    const fs::path log = peer->work_dir / "export.log";
    if (run_process(argv, {}, log) != 0) fail_data("ONNX export (scripts/", exporter, ") failed: ", log_tail(log));
  }
  return peer;
}

namespace {

// Runs scripts/SCRIPT (ort_run.js, ort_decode.js or ort_seq2seq.js) on the peer's graph of
// `variant` with `in` as its inputs file; returns its OUT.json.
io::json run_node_script(const OnnxRuntimePeer& peer, const std::string& script, const std::string& variant,
                         const io::json& in, int runs, int warmup, int threads) {
  const fs::path inputs = peer.work_dir / "inputs.json", out = peer.work_dir / "out.json", log = peer.work_dir / "run.log";
  write_file_atomic(inputs, in.dump());
  const int rc = run_process({"node", (kSourceDir / "scripts" / script).string(), peer.module_dir.string(),
                              peer.graph(variant).string(), inputs.string(), out.string(),
                              std::to_string(runs), std::to_string(warmup), std::to_string(threads)},
                             {}, log);
  if (rc != 0) fail_data("ONNX Runtime (scripts/", script, ") failed with exit ", rc, ": ", log_tail(log));
  return io::read_json_file(out);
}

}  // namespace

OnnxRuntimeRun run_onnxruntime(const OnnxRuntimePeer& peer, const std::string& variant, const int64_t* ids,
                               const int64_t* mask, const int64_t* types, int64_t batch, int64_t seq, int runs, int warmup,
                               int threads) {
  const size_t n = static_cast<size_t>(batch * seq);
  io::json in = {{"batch", batch}, {"seq", seq}, {"input_ids", std::vector<int64_t>(ids, ids + n)},
                 {"attention_mask", std::vector<int64_t>(mask, mask + n)},
                 {"token_type_ids", types ? std::vector<int64_t>(types, types + n) : std::vector<int64_t>(n, 0)}};
  const io::json r = run_node_script(peer, "ort_run.js", variant, in, runs, warmup, threads);
  OnnxRuntimeRun run;
  run.output = r.at("values").get<std::vector<float>>();
  run.timing = timing_stats(r.at("times_ms").get<std::vector<double>>());
  run.version = r.at("version").get<std::string>();
  return run;
}

io::json decoder_peer_inputs(models::TransformerModel& model, const torch::Tensor& prompt, int64_t decode_steps) {
  // The cache holds K/V per KV head (grouped-query attention: fewer than the query heads), per
  // layer: SpeedUp may have cut a different number of heads out of each.
  const auto blocks = model.structure().attention;
  std::vector<int64_t> kv_heads;
  for (const auto& b : blocks) kv_heads.push_back(b.cache_heads());
  const torch::Tensor ids = prompt.contiguous();
  const int64_t* p = ids.data_ptr<int64_t>();
  return {{"batch", ids.size(0)}, {"seq", ids.size(1)}, {"input_ids", std::vector<int64_t>(p, p + ids.numel())},
          {"decode_steps", decode_steps}, {"layers", model.info().num_layers}, {"heads", kv_heads}, {"head_dim", blocks.at(0).head_dim}};
}

OnnxRuntimeDecodeRun run_onnxruntime_decoder(const OnnxRuntimePeer& peer, const std::string& variant, models::TransformerModel& model,
                                             const torch::Tensor& prompt, int64_t decode_steps, int runs, int warmup, int threads) {
  const io::json r = run_node_script(peer, "ort_decode.js", variant, decoder_peer_inputs(model, prompt, decode_steps), runs, warmup, threads);
  return {r.at("values").get<std::vector<float>>(), r.at("prefill_ms").get<std::vector<double>>(),
          r.at("decode_ms_per_token").get<std::vector<double>>(), r.at("version").get<std::string>()};
}

OnnxRuntimeDecodeRun run_onnxruntime_seq2seq(const OnnxRuntimePeer& peer, const std::string& variant, const torch::Tensor& source,
                                             int64_t decode_steps, int runs, int warmup, int threads) {
  const torch::Tensor ids = source.to(torch::kLong).contiguous();
  const int64_t* p = ids.data_ptr<int64_t>();
  const io::json in = {{"batch", ids.size(0)}, {"seq", ids.size(1)}, {"input_ids", std::vector<int64_t>(p, p + ids.numel())},
                       {"decode_steps", decode_steps}};
  const io::json r = run_node_script(peer, "ort_seq2seq.js", variant, in, runs, warmup, threads);
  return {r.at("values").get<std::vector<float>>(), r.at("prefill_ms").get<std::vector<double>>(),
          r.at("decode_ms_per_token").get<std::vector<double>>(), r.at("version").get<std::string>()};
}

double max_rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got - want).abs().max() / want.abs().max().clamp_min(1e-30)).item<double>();
}

io::json export_onnx(models::LoadedModel& loaded, const fs::path& out, const std::string& variant, int threads) {
  if (auto why = onnxruntime_missing(); !why.empty()) fail_not_found("export --format onnx: ", why);
  if (variant != "fp32" && variant != "int8" && variant != "int8-matmulinteger")
    fail_invalid("export --format onnx: variant '", variant, "' (expected fp32, int8 or int8-matmulinteger)");
  const bool int8 = variant != "fp32";
  auto& model = *loaded.model;
  model.eval();
  torch::NoGradGuard no_grad;
  auto peer = prepare_onnxruntime(loaded, {variant});
  // The check: ONNX Runtime and libtorch on one batch of random ids.
  const int64_t max_positions = model.info().max_positions;  // 0: no position table (T5)
  const int64_t batch = 2, seq = max_positions > 0 ? std::min<int64_t>(16, max_positions) : 16;
  auto gen = at::detail::createCPUGenerator(1);
  const torch::Tensor ids = torch::randint(model.info().vocab_size, {batch, seq}, gen, torch::kLong);
  models::ModelInputs in;
  in.input_ids = ids;
  torch::Tensor reference, got;
  std::string version;
  if (model.info().is_encoder_decoder) {
    if (!model.info().decoder_start_token_id) fail_invalid(loaded.config.source(), ": decoder_start_token_id is not set; decoding cannot start");
    const torch::Tensor source = ids.clamp_min(std::min<int64_t>(4, model.info().vocab_size - 1));  // no special tokens
    models::DecodingSteps decoding(model, source, torch::ones_like(source), "export");
    reference = decoding.next_logits(torch::full({batch, 1}, *model.info().decoder_start_token_id, torch::kLong));
    auto r = run_onnxruntime_seq2seq(*peer, variant, source, 1, 1, 0, threads);
    got = torch::tensor(r.first_logits).reshape({batch, -1});
    version = r.version;
  } else if (model.info().is_decoder) {
    reference = model.forward(in).at("logits").select(1, -1);
    auto r = run_onnxruntime_decoder(*peer, variant, model, ids, 1, 1, 0, threads);
    got = torch::tensor(r.first_logits).reshape({batch, -1});
    version = r.version;
  } else {
    in.attention_mask = torch::ones({batch, seq}, torch::kLong);
    const torch::Tensor types = torch::zeros({batch, seq}, torch::kLong);
    if (model.info().uses_token_type_ids) in.token_type_ids = types;
    const torch::Tensor mask = in.attention_mask;
    reference = model.forward(in).at("logits");
    auto r = run_onnxruntime(*peer, variant, ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), types.data_ptr<int64_t>(), batch, seq, 1, 0,
                             threads);
    got = torch::tensor(r.output).reshape({batch, -1});
    version = r.version;
  }
  const double err = max_rel_err(got, reference);
  if (!int8 && !(err <= 1e-4))
    fail_data("export --format onnx: ONNX Runtime's logits differ from libtorch's by ", err, " (relative; expected <= 1e-4); nothing written");
  const std::string precision = int8 ? peer->int8_precision(variant) : "fp32";
  // Copied beside `out` first, then renamed over it: a reader never sees half a graph.
  const fs::path graph = peer->graph(variant), tmp = out.string() + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::copy(graph, tmp, fs::copy_options::recursive);
  if (peer->seq2seq) fs::remove_all(out, ec);  // a directory is not replaced by rename
  fs::rename(tmp, out);
  uintmax_t bytes = 0;
  if (peer->seq2seq)
    for (const auto& e : fs::directory_iterator(out)) bytes += e.file_size();
  else
    bytes = fs::file_size(out);
  return {{"out", out.string()}, {"variant", variant}, {"bytes", bytes}, {"onnxruntime", version},
          {"checked_on", "random ids [2, " + std::to_string(seq) + "]"}, {"max_rel_err", err},
          {"precision", precision}};
}

}  // namespace sqz::eval
