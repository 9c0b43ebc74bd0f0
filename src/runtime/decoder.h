// sqz's inference engine for pre-LN decoders: GPT-2 (GPT2LMHeadModel), OPT (OPTForCausalLM with
// do_layer_norm_before and no embedding projection), Llama (LlamaForCausalLM: RMSNorm, rotary
// positions, SwiGLU, grouped-query attention; Qwen2 alike) and GPT-NeoX (GPTNeoXForCausalLM:
// partial rotary, parallel or sequential residual). It prefills a prompt, then decodes one
// token at a time against a KV cache the engine owns. Linears (and the tied LM head) run fp32 or
// int8 like the encoder engine; per-layer head counts and FFN widths follow whatever structured
// pruning left. Padded batches take an attention mask: padded positions are hidden from every
// query; positions are counted as each family's HF model counts them (GPT-2 and Llama from the
// start of the row, OPT over real tokens only, offset by 2).
#pragma once
#include <memory>
#include <vector>

#include "models/registry.h"
#include "runtime/bert_encoder.h"

namespace sqz::runtime {

class Decoder {
 public:
  // Keys and values of the positions seen so far: per layer [batch, kv_heads, capacity, head_dim].
  struct Cache {
    int64_t batch = 0, length = 0, capacity = 0;
    std::vector<std::vector<float>> keys, values;
    std::vector<int64_t> key_mask;  // [batch, capacity]: 0 = a padded position, hidden from queries
    std::vector<int64_t> real;      // [batch]: real (unpadded) tokens seen so far (OPT's positions)
  };

  Decoder(const models::LoadedModel& loaded, const EngineOptions& options);
  // From a runtime dir (runtime_dir.h): its precision is the one it was packed with.
  Decoder(const RuntimeDirReader& dir, const EngineOptions& options);
  ~Decoder();

  // Stores the engine's weights into `out`; returns the manifest (structure and scalars).
  nlohmann::json save(RuntimeDirWriter& out) const;

  Cache new_cache(int64_t batch, int64_t capacity) const;
  // Runs `steps` new tokens per sequence (ids [batch, steps]) after what `cache` holds, appends
  // their keys and values, and returns logits [batch, steps, vocab] (only the last step's,
  // [batch, 1, vocab], unless all_logits). attention_mask (nullable, [batch, steps], 0 = padding)
  // marks padded tokens; their own logits are not meaningful.
  std::vector<float> forward(Cache& cache, const int64_t* ids, int64_t steps, bool all_logits,
                             const int64_t* attention_mask = nullptr) const;
  // The greedy next token of each sequence from last-position logits [batch, vocab] (what
  // forward returns without all_logits): each row's first maximum, as torch.argmax picks it.
  std::vector<int64_t> greedy_next(const std::vector<float>& logits) const;
  // Greedy continuation: [batch, prompt + new] ids, like models::generate without sampling.
  std::vector<int64_t> generate_greedy(const int64_t* prompt, int64_t batch, int64_t prompt_len, int64_t new_tokens) const;

  // Bytes of weights one decode step reads (blocks, LM head, the step's embedding rows aside).
  int64_t weight_bytes() const;
  int64_t vocab_size() const { return vocab_; }
  int64_t max_positions() const { return max_positions_; }
  const EngineOptions& options() const { return options_; }
  // Forwards from now on add their per-op wall times to `profile` (nullptr: stop). Not owned.
  void set_profile(OpProfile* profile) { profile_ = profile; }

 private:
  struct Layer;
  void norm(const float* x, int64_t m, const std::vector<float>& gamma, const std::vector<float>& beta, float* y) const;
  void rotate(float* v, int64_t position) const;
  void embed(Cache& cache, const int64_t* ids, int64_t steps, float* x) const;
  void attention_block(const Layer& layer, size_t li, Cache& cache, int64_t steps, std::vector<float>& x, std::vector<float>& next) const;
  // `normed_from`: what the FFN's norm reads (the block input for a parallel residual); null = x.
  void ffn_block(const Layer& layer, int64_t m, std::vector<float>& x, std::vector<float>& next,
                 const std::vector<float>* normed_from = nullptr) const;

  EngineOptions options_;
  int64_t hidden_ = 0, vocab_ = 0, max_positions_ = 0;
  int64_t position_offset_ = 0;      // rows of the position table before position 0 (OPT: 2)
  bool positions_count_real_ = false;  // OPT: a token's position counts the real tokens before it
  bool rms_norm_ = false;              // Llama: RMSNorm (gamma only) instead of LayerNorm
  bool parallel_residual_ = false;     // GPT-NeoX: x + attention(norm1(x)) + ffn(norm2(x))
  std::vector<float> inv_freq_;        // rotary models: per-pair inverse frequencies (GPT-NeoX: of the rotated first dims); empty = learned positions
  float eps_ = 1e-5f;
  kernels::Activation activation_ = kernels::Activation::kGeluTanh;  // of the FFN input Linear
  std::vector<float> wte_, wpe_, lnf_gamma_, lnf_beta_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::unique_ptr<LinearOp> lm_head_;
  OpProfile* profile_ = nullptr;
};

// All positions' logits [batch, seq, vocab] of `ids` [batch, seq] (with its 0/1 `mask`), prefilled
// on a fresh cache: what perplexity is computed from.
torch::Tensor prefill_logits(const Decoder& decoder, const torch::Tensor& ids, const torch::Tensor& mask);

}  // namespace sqz::runtime
