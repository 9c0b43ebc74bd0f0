// sqz's inference engine for BERT-family encoders (model_type bert): no autograd, no torch in
// the forward pass, every op a kernel call on buffers the engine owns. Layers keep whatever
// head count and FFN width structured pruning left them; Q, K and V run as one fused GEMM.
// Linears run fp32 or int8 (weights per channel, activations per token); attention, norms and
// the pooler/classifier stay fp32.
#pragma once
#include <memory>
#include <vector>

#include "models/registry.h"
#include "runtime/linear_op.h"
#include "runtime/op_profile.h"

namespace sqz::runtime {

struct EngineOptions {
  Precision precision = Precision::kFp32;
  int threads = 0;  // 0 = all cores
  // Decoders: the LM head follows the precision (int8 for both int8 kinds: 2:4 applies to the
  // blocks only); false keeps it fp32.
  bool lm_head_follows_precision = true;
  // Attention's two products on the int8 GEMM (attend_head_int8) instead of fp32, whatever the
  // Linears' precision. Off by default: the int8 engine then equals the fake-quantized model.
  bool int8_attention = false;
};

struct EncoderOutputs {
  int64_t batch = 0, seq = 0, hidden = 0, num_labels = 0;
  std::vector<float> last_hidden_state;  // [batch, seq, hidden]
  std::vector<float> logits;             // [batch, num_labels]; empty without a classification head
};

class BertEncoder {
 public:
  // Copies (and packs) the weights of a loaded model; refuses families and heads it cannot run,
  // naming what it supports.
  BertEncoder(const models::LoadedModel& loaded, const EngineOptions& options);
  // From a runtime dir (runtime_dir.h): its precision is the one it was packed with.
  BertEncoder(const RuntimeDirReader& dir, const EngineOptions& options);
  ~BertEncoder();

  // Stores the engine's weights into `out`; returns the manifest (structure and scalars).
  nlohmann::json save(RuntimeDirWriter& out) const;

  // ids, mask (1 = real token; nullptr = all real) and token types (nullptr = 0): [batch, seq].
  EncoderOutputs forward(const int64_t* ids, const int64_t* mask, const int64_t* types, int64_t batch, int64_t seq) const;

  // The same on libtorch inputs (for `sqz eval --engine runtime` and tests): logits [batch, labels].
  torch::Tensor logits(const models::ModelInputs& in) const;

  int64_t weight_bytes() const;
  int64_t vocab_size() const { return vocab_; }
  int64_t max_positions() const { return max_positions_; }
  const EngineOptions& options() const { return options_; }
  // Forwards from now on add their per-op wall times to `profile` (nullptr: stop). Not owned.
  void set_profile(OpProfile* profile) { profile_ = profile; }

 private:
  struct Layer;
  EngineOptions options_;
  int64_t hidden_ = 0, vocab_ = 0, max_positions_ = 0, type_vocab_ = 0, num_labels_ = 0;
  float eps_ = 1e-12f;
  std::vector<float> word_, position_, token_type_, emb_gamma_, emb_beta_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::unique_ptr<LinearOp> pooler_, classifier_;
  OpProfile* profile_ = nullptr;
};

}  // namespace sqz::runtime
