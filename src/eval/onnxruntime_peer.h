// ONNX Runtime as a `sqz bench` peer: the benchmarked model is written to ONNX by
// scripts/onnx_bert.py (BERT encoders), scripts/onnx_decoder.py (GPT-2, OPT and Llama decoders with a
// KV cache) or scripts/onnx_seq2seq.py (BART and T5: an encoder graph and a decoder graph with a KV
// cache, in one directory) — fp32, and int8 in the QDQ or MatMulInteger form — then checked and
// timed by scripts/ort_run.js (encoders), scripts/ort_decode.js (prefill + greedy decode) or
// scripts/ort_seq2seq.js (encode + first step, then greedy decode) under
// Node.js with the npm package
// onnxruntime-node, which scripts/install_deps.sh installs into third_party/onnxruntime
// (SQZ_ONNXRUNTIME_NODE=DIR points elsewhere). Each run is its own process with ONNX Runtime's
// own thread pool, so nothing it does contends with libtorch's or sqz's threads.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/fs.h"
#include "eval/latency.h"
#include "models/registry.h"

namespace sqz::eval {

struct OnnxRuntimePeer {
  fs::path work_dir;    // temporary: the saved model, the .onnx files, inputs and outputs
  fs::path module_dir;  // onnxruntime-node
  std::string version;  // its package.json's
  // int8 weights' range: 8 bits, or 7 on x86 CPUs without VNNI, where ONNX Runtime's u8 x s8
  // kernels (vpmaddubsw) add pairs of products in saturating int16 — its reduce_range.
  int int8_weight_bits = 8;
  // "int8 QDQ" (the "int8" graph) or "int8 MatMulInteger" ("int8-matmulinteger"), with the
  // weight range when it is 7 bits.
  std::string int8_precision(const std::string& variant = "int8") const;
  bool seq2seq = false;  // the exporter writes a directory (encoder and decoder graphs)
  // What the exporter writes for `variant`: model-VARIANT.onnx, or the directory model-VARIANT.
  fs::path graph(const std::string& variant) const;
  ~OnnxRuntimePeer();
};

// "" when Node.js, onnxruntime-node and the exporter's Python modules are all there; else what
// is missing and how to get it.
std::string onnxruntime_missing();

// The exporter script for this model_type ("bert", "gpt2", "bart"), or "" when there is none.
std::string onnx_exporter_for(const std::string& model_type);

// The peers' work dir with the model saved in it (WORK_DIR/model) and no ONNX graph: what
// CTranslate2 converts for itself.
std::unique_ptr<OnnxRuntimePeer> save_peer_copy(models::LoadedModel& loaded);

// Saves the model and writes model-VARIANT.onnx for each of `variants` ("fp32", "int8",
// "int8-matmulinteger"; see export_onnx) into the peer's work dir; throws naming the exporter's
// error.
std::unique_ptr<OnnxRuntimePeer> prepare_onnxruntime(models::LoadedModel& loaded,
                                                     const std::vector<std::string>& variants = {"fp32", "int8"});

// `sqz export --format onnx`: `loaded` as one ONNX graph at `out` (encoder-decoders: a directory
// with encoder_model.onnx, decoder_model.onnx and cache_shapes.json; temp, then rename): `variant`
// "fp32", "int8" (QDQ: DequantizeLinear pairs before float MatMuls, the form deployment tools
// exchange; ONNX Runtime and OpenVINO fuse it into their int8 kernels) or "int8-matmulinteger"
// (as ONNX Runtime's dynamic quantization writes Linears). Both int8 forms compute the same: u8
// activations quantized per call, s8 weights per output channel. Checked by ONNX Runtime on a
// [2, 16] batch of random ids first: {"out", "variant", "bytes", "onnxruntime", "max_rel_err"}
// against libtorch fp32 (encoders: the logits; decoders: the prompt's last logits; encoder-decoders:
// the first decoder step's logits). An fp32
// graph whose error exceeds 1e-4 is refused and nothing is written; int8's error is reported.
io::json export_onnx(models::LoadedModel& loaded, const fs::path& out, const std::string& variant, int threads);

struct OnnxRuntimeRun {
  std::vector<float> output;  // the first run's first output (logits)
  TimingStats timing;
  std::string version;
};
// variant: "fp32" or "int8". ids / mask / types: [batch, seq] row-major.
OnnxRuntimeRun run_onnxruntime(const OnnxRuntimePeer& peer, const std::string& variant, const int64_t* ids,
                               const int64_t* mask, const int64_t* types, int64_t batch, int64_t seq, int runs, int warmup,
                               int threads);

struct OnnxRuntimeDecodeRun {
  std::vector<float> first_logits;  // the checked run's prompt logits at the last position, [batch, vocab]
  std::vector<double> prefill_ms, decode_ms_per_token;  // one per timed run
  std::string version;
};
// What a decoder peer's runner reads (scripts/ort_decode.js, scripts/peer_decoder.py): the prompt
// [batch, seq], decode_steps, and the KV-cache shape (layers, K/V heads, head size) of `model`.
io::json decoder_peer_inputs(models::TransformerModel& model, const torch::Tensor& prompt, int64_t decode_steps);
// `model` exported by scripts/onnx_decoder.py: prefill `prompt` [batch, seq], then `decode_steps`
// greedy tokens, once checked, `warmup` times, then `runs` timed times. The KV-cache inputs are
// shaped from the model (layers, KV heads, head size).
OnnxRuntimeDecodeRun run_onnxruntime_decoder(const OnnxRuntimePeer& peer, const std::string& variant, models::TransformerModel& model,
                                             const torch::Tensor& prompt, int64_t decode_steps, int runs, int warmup, int threads);

// `model` exported by scripts/onnx_seq2seq.py: encode `source` [batch, seq] and take the first decoder
// step (its logits are checked), then `decode_steps` greedy tokens; once checked, `warmup` times,
// then `runs` timed times.
OnnxRuntimeDecodeRun run_onnxruntime_seq2seq(const OnnxRuntimePeer& peer, const std::string& variant, const torch::Tensor& source,
                                             int64_t decode_steps, int runs, int warmup, int threads);

// max |got - want| / max |want|: how every engine's output is checked against libtorch fp32.
double max_rel_err(const torch::Tensor& got, const torch::Tensor& want);

}  // namespace sqz::eval
