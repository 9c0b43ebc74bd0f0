#include "eval/python_peers.h"

#include <unistd.h>

#include <cstdlib>

#include "build_paths.h"
#include "core/error.h"
#include "core/process.h"
#include "io/json_file.h"
#include "kernels/cpu_isa.h"

namespace sqz::eval {

namespace {

const fs::path kSourceDir = SQZ_SOURCE_DIR;

// The interpreter an engine's runner needs: PyTorch 2.x lives in a venv of its own (the main venv
// runs on Debian's torch 1.13).
std::string python_for(const std::string& engine) {
  if (engine == "pytorch2") {
    if (const char* env = std::getenv("SQZ_PYTHON_TORCH2"); env && *env) return env;
    return (kSourceDir / "third_party" / "venv-torch2" / "bin" / "python").string();
  }
  if (const char* env = std::getenv("SQZ_PYTHON"); env && *env) return env;
  return (kSourceDir / "third_party" / "venv" / "bin" / "python").string();
}

}  // namespace

std::string PythonPeer::description() const {
  const std::string name = engine == "ctranslate2" ? "CTranslate2 " : engine == "openvino" ? "OpenVINO " : "PyTorch ";
  return name + version + " (PyPI, CPU)";
}

std::string PythonPeer::precision(const std::string& variant) const {
  if (engine == "pytorch2")
    return variant == "fp32" ? "fp32 eager" : variant == "compile" ? "fp32 torch.compile" : "int8 dynamic (quantize_dynamic)";
  if (variant == "int8") return engine == "ctranslate2" ? "int8" : "int8 QDQ (ONNX graph)";
  return variant;
}

double PythonPeer::tolerance(const std::string& variant) const {
  return variant == "fp32" || variant == "compile" ? 1e-4 : variant == "bf16" ? 0.05 : 0.2;
}

std::vector<std::string> python_peer_cases() {
  return {"ctranslate2-fp32", "ctranslate2-int8", "openvino-fp32", "openvino-bf16", "openvino-int8",
          "pytorch2-fp32",    "pytorch2-int8",    "pytorch2-compile"};
}

std::optional<PythonPeer> find_python_peer(const std::string& engine, std::string* why) {
  const std::string py = python_for(engine);
  const bool torch2 = engine == "pytorch2";
  if (!fs::exists(py)) {
    *why = "no Python venv at " + py + (torch2 ? " (bash scripts/install_deps.sh --torch2 makes it: PyPI's torch with its CUDA wheels, ~5 GB)"
                                               : " (bash scripts/install_deps.sh makes it)");
    return std::nullopt;
  }
  const fs::path log = fs::temp_directory_path() / ("sqz-peer-probe-" + std::to_string(getpid()) + ".log");
  const std::string module = torch2 ? "torch" : engine;
  const int rc = run_process({py, "-c", "import " + module + " as m; print(m.__version__.split('-')[0].split('+')[0])"}, {}, log);
  const std::string out = read_text_file(log);
  std::error_code ec;
  fs::remove(log, ec);
  if (rc != 0) {
    *why = "the venv's Python cannot import " + engine + " (python/requirements.txt pins it; bash scripts/install_deps.sh)";
    return std::nullopt;
  }
  PythonPeer peer{engine, out.substr(0, out.find_first_of("\r\n")), {"fp32", "int8"}};
  if (engine == "openvino" && kernels::cpu_has_avx512bf16()) peer.variants = {"fp32", "bf16", "int8"};
  if (torch2 && peer.version.rfind("1.", 0) == 0) {
    *why = py + " runs torch " + peer.version + "; the peer is PyTorch 2.x (python/requirements-torch2.txt)";
    return std::nullopt;
  }
  if (torch2) peer.variants = {"fp32", "int8", "compile"};
  return peer;
}

namespace {

// Runs scripts/SCRIPT for `variant` with `in` as its inputs file; returns its OUT.json.
io::json run_peer_script(const PythonPeer& peer, const OnnxRuntimePeer& files, const std::string& script, const std::string& variant,
                         const io::json& in, int runs, int warmup, int threads) {
  const fs::path inputs = files.work_dir / "inputs.json", out = files.work_dir / "out.json", log = files.work_dir / "peer.log";
  write_file_atomic(inputs, in.dump());
  const std::vector<std::string> argv{python_for(peer.engine), (kSourceDir / "scripts" / script).string(), peer.engine, variant,
                                      (files.work_dir / "model").string(), files.work_dir.string(), files.work_dir.string(),
                                      inputs.string(), out.string(), std::to_string(runs), std::to_string(warmup), std::to_string(threads)};
  if (const int rc = run_process(argv, {}, log); rc != 0)
    fail_data(peer.description(), " (scripts/", script, " ", peer.engine, " ", variant, ") failed with exit ", rc, ": ", log_tail(log));
  return io::read_json_file(out);
}

}  // namespace

OnnxRuntimeRun run_python_peer(const PythonPeer& peer, const OnnxRuntimePeer& files, const std::string& variant, const int64_t* ids,
                               const int64_t* mask, const int64_t* types, int64_t batch, int64_t seq, int runs, int warmup, int threads) {
  const size_t n = static_cast<size_t>(batch * seq);
  const io::json in = {{"batch", batch}, {"seq", seq}, {"input_ids", std::vector<int64_t>(ids, ids + n)},
                       {"attention_mask", std::vector<int64_t>(mask, mask + n)},
                       {"token_type_ids", types ? std::vector<int64_t>(types, types + n) : std::vector<int64_t>(n, 0)}};
  const io::json r = run_peer_script(peer, files, "peer_encoder.py", variant, in, runs, warmup, threads);
  OnnxRuntimeRun run;
  run.output = r.at("values").get<std::vector<float>>();
  run.timing = timing_stats(r.at("times_ms").get<std::vector<double>>());
  run.version = r.at("version").get<std::string>();
  return run;
}

OnnxRuntimeDecodeRun run_python_peer_decoder(const PythonPeer& peer, const OnnxRuntimePeer& files, const std::string& variant,
                                             models::TransformerModel& model, const torch::Tensor& prompt, int64_t decode_steps, int runs,
                                             int warmup, int threads) {
  const io::json r =
      run_peer_script(peer, files, "peer_decoder.py", variant, decoder_peer_inputs(model, prompt, decode_steps), runs, warmup, threads);
  return {r.at("values").get<std::vector<float>>(), r.at("prefill_ms").get<std::vector<double>>(),
          r.at("decode_ms_per_token").get<std::vector<double>>(), r.at("version").get<std::string>()};
}

OnnxRuntimeDecodeRun run_python_peer_seq2seq(const PythonPeer& peer, const OnnxRuntimePeer& files, const std::string& variant,
                                             const torch::Tensor& source, int64_t decode_steps, int runs, int warmup, int threads) {
  const torch::Tensor ids = source.to(torch::kLong).contiguous();
  const int64_t* p = ids.data_ptr<int64_t>();
  const io::json in = {{"batch", ids.size(0)}, {"seq", ids.size(1)}, {"input_ids", std::vector<int64_t>(p, p + ids.numel())},
                       {"decode_steps", decode_steps}};
  const io::json r = run_peer_script(peer, files, "peer_seq2seq.py", variant, in, runs, warmup, threads);
  return {r.at("values").get<std::vector<float>>(), r.at("prefill_ms").get<std::vector<double>>(),
          r.at("decode_ms_per_token").get<std::vector<double>>(), r.at("version").get<std::string>()};
}

}  // namespace sqz::eval
