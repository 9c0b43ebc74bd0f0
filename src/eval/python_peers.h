// CTranslate2 and OpenVINO as `sqz bench` peers of BERT sequence classifiers and of GPT-2, OPT and
// Llama decoders, and of BART and T5. Each case is one run of scripts/peer_encoder.py or scripts/peer_decoder.py in the project's Python venv (third_party/venv, made by
// scripts/install_deps.sh from python/requirements.txt; SQZ_PYTHON names another interpreter), in
// its own process with the engine's own threads, as ONNX Runtime's cases are. CTranslate2
// converts the saved model with its own Transformers converter (float32, or int8 weights with
// int8 GEMMs); OpenVINO compiles the ONNX graphs sqz's exporter wrote for ONNX Runtime (fp32 at
// f32 and at bf16 inference precision, and the dynamic-int8 graph).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "eval/onnxruntime_peer.h"

namespace sqz::eval {

struct PythonPeer {
  std::string engine;                 // "ctranslate2", "openvino"
  std::string version;                // the installed package's
  std::vector<std::string> variants;  // ctranslate2: fp32, int8; openvino: fp32, bf16 (CPUs with AVX-512 BF16), int8
  std::string case_name(const std::string& variant) const { return engine + "-" + variant; }
  std::string description() const;                        // "CTranslate2 4.5.0 (PyPI, CPU)"
  std::string precision(const std::string& variant) const;  // as the table shows it
  double tolerance(const std::string& variant) const;       // max relative error against libtorch fp32
};

// Every case name a Python peer can have (for --case).
std::vector<std::string> python_peer_cases();

// The peer when the venv's Python imports it; otherwise nullopt and *why says what is missing.
std::optional<PythonPeer> find_python_peer(const std::string& engine, std::string* why);

// One checked run (its logits) and `runs` timed ones of `variant` by scripts/peer_encoder.py, on
// the saved model and the ONNX graphs in `files` (prepare_onnxruntime's work dir). ids / mask /
// types: [batch, seq].
OnnxRuntimeRun run_python_peer(const PythonPeer& peer, const OnnxRuntimePeer& files, const std::string& variant, const int64_t* ids,
                               const int64_t* mask, const int64_t* types, int64_t batch, int64_t seq, int runs, int warmup, int threads);

// Decoders (GPT-2, OPT, Llama), by scripts/peer_decoder.py: prefill `prompt` [batch, seq], then
// `decode_steps` greedy tokens, once checked (the prompt's last logits), then `runs` timed.
OnnxRuntimeDecodeRun run_python_peer_decoder(const PythonPeer& peer, const OnnxRuntimePeer& files, const std::string& variant,
                                             models::TransformerModel& model, const torch::Tensor& prompt, int64_t decode_steps, int runs,
                                             int warmup, int threads);

// Encoder-decoders (BART, T5), by scripts/peer_seq2seq.py: encode `source` [batch, seq] and take
// the first decoder step (checked: its logits), then `decode_steps` greedy tokens; `runs` timed.
// CTranslate2 reads the saved model, OpenVINO the graphs of scripts/onnx_seq2seq.py in `files`.
OnnxRuntimeDecodeRun run_python_peer_seq2seq(const PythonPeer& peer, const OnnxRuntimePeer& files, const std::string& variant,
                                             const torch::Tensor& source, int64_t decode_steps, int runs, int warmup, int threads);

}  // namespace sqz::eval
