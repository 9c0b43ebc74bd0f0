// sqz's inference engine for encoder-decoders: BART (BartForConditionalGeneration, post-LN,
// learned positions) and T5 (T5ForConditionalGeneration, pre-LN RMS norms, unscaled attention
// with a bucketed relative position bias, ReLU or gated FFN). The source is encoded once on the
// encoder engines' block ops; each cache then holds the cross-attention keys and values of that
// encoding, projected once, and the decoder's own self-attention keys and values, appended step
// by step. Linears run at the engine's precision like the other engines (the LM head too, unless
// told to stay fp32); heads and FFN widths follow whatever structured pruning left, per layer and
// per stack, cross-attention included.
#pragma once
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "models/beam_search.h"
#include "models/registry.h"
#include "runtime/bert_encoder.h"
#include "runtime/block.h"

namespace sqz::runtime {

class EncoderDecoder {
 public:
  // One batch of sources being decoded.
  struct Cache {
    int64_t batch = 0, source_len = 0, length = 0, capacity = 0;
    std::vector<int64_t> source_mask;  // [batch, source_len]: 0 = padding, hidden from cross-attention
    std::vector<int64_t> key_mask;     // [batch, capacity]: 0 = a padded decoder position
    std::vector<std::vector<float>> keys, values;  // self-attention, per layer [batch, heads, capacity, head_dim]
    std::vector<std::vector<float>> cross;         // per layer [batch * source_len, 2 * width]: K | V rows
  };

  EncoderDecoder(const models::LoadedModel& loaded, const EngineOptions& options);
  // From a runtime dir (runtime_dir.h): its precision is the one it was packed with.
  EncoderDecoder(const RuntimeDirReader& dir, const EngineOptions& options);
  ~EncoderDecoder();

  // Stores the engine's weights into `out`; returns the manifest (structure and scalars).
  nlohmann::json save(RuntimeDirWriter& out) const;

  // The encoder output [batch, seq, hidden] of ids [batch, seq] (mask: 1 = real, nullptr = all real).
  std::vector<float> encode(const int64_t* ids, const int64_t* mask, int64_t batch, int64_t seq) const;
  // A cache for decoding up to `capacity` positions against `memory` (what encode returned for
  // `mask`): the cross-attention keys and values are projected here.
  Cache new_cache(const std::vector<float>& memory, const int64_t* mask, int64_t batch, int64_t source_len, int64_t capacity) const;
  // `steps` decoder tokens per sequence (ids [batch, steps]) after what `cache` holds: logits
  // [batch, steps, vocab], or only the last step's [batch, 1, vocab] unless all_logits.
  // decoder_mask (nullable, [batch, steps]) marks padded decoder tokens.
  std::vector<float> decode(Cache& cache, const int64_t* ids, int64_t steps, bool all_logits,
                            const int64_t* decoder_mask = nullptr) const;
  // Greedy decoding from decoder_start_token_id, as models::generate_seq2seq_greedy: [batch, n]
  // tokens (n <= max_new_tokens), a finished row padded with pad_token_id after its EOS. Forced
  // tokens, as models::generate applies them: the first new token, and the one max_new_tokens
  // ends on.
  struct Forced {
    std::optional<int64_t> bos, eos;
  };
  std::vector<int64_t> generate_greedy(const int64_t* ids, const int64_t* mask, int64_t batch, int64_t seq, int64_t max_new_tokens,
                                       int64_t* generated, const Forced& forced = {}) const;

  // Beam rows follow the search: row r of `cache` becomes its row rows[r].
  void reorder(Cache& cache, const std::vector<int64_t>& rows) const;
  // Beam search as models::beam_search runs it on libtorch (HF's num_beams, length_penalty,
  // early_stopping, forced BOS/EOS): each source encoded once, decoded on num_beams cache rows.
  // Returns every source's new tokens (ending with EOS unless max_new_tokens cut it).
  std::vector<std::vector<int64_t>> generate_beam(const int64_t* ids, const int64_t* mask, int64_t batch, int64_t seq,
                                                  const models::BeamSearchOptions& options) const;

  int64_t weight_bytes() const;
  int64_t vocab_size() const { return vocab_; }
  int64_t hidden_size() const { return hidden_; }
  int64_t max_positions() const { return max_positions_; }
  int64_t decoder_start_token_id() const { return decoder_start_; }
  int64_t pad_token_id() const { return pad_; }
  const EngineOptions& options() const { return options_; }
  void set_profile(OpProfile* profile) { profile_ = profile; }

 private:
  // What one stack's embedding, position bias and final norm need.
  struct Stack {
    std::vector<float> positions;              // BART: [2 + max_positions, hidden] (HF's offset of 2); T5: none
    std::vector<float> norm_gamma, norm_beta;  // BART: layernorm_embedding; T5: none
    std::vector<float> final_gamma;            // T5: the stack's final RMS norm; BART: none
    std::vector<float> bias_table;             // T5: [buckets, bias_heads] relative attention bias; BART: none
    bool bidirectional = true;                 // T5's buckets: both directions (encoder) or the past only (decoder)
  };
  // Norms: gamma and beta (BART's LayerNorms) or gamma alone (T5's RMS norms).
  struct EncoderLayer {
    BlockOps ops;  // self-attention and FFN
    std::vector<float> attn_gamma, attn_beta, ffn_gamma, ffn_beta;
    std::vector<int64_t> bias_heads;  // T5: the unpruned head each head reads its position bias from
  };
  struct DecoderLayer {
    BlockOps ops;
    CrossAttentionOps cross;
    std::vector<float> self_gamma, self_beta, cross_gamma, cross_beta, ffn_gamma, ffn_beta;
    std::vector<int64_t> bias_heads;
  };
  void build_bart(const models::LoadedModel& loaded, const std::string& source);
  void build_t5(const models::LoadedModel& loaded, const std::string& source);
  void embed(const Stack& stack, const int64_t* ids, int64_t batch, int64_t steps, int64_t past, float* x) const;
  void norm(const float* x, int64_t m, const std::vector<float>& gamma, const std::vector<float>& beta, float* y) const;
  // T5: [heads, rows, keys] biases for queries at past.. over keys 0..keys-1 (empty for BART).
  std::vector<float> position_bias(const Stack& stack, int64_t past, int64_t rows, int64_t keys) const;
  void decoder_layer(const DecoderLayer& layer, size_t li, Cache& cache, int64_t steps, const std::vector<float>& bias,
                     std::vector<float>& x, std::vector<float>& y) const;
  int64_t position_limit() const { return max_positions_ > 0 ? max_positions_ : std::numeric_limits<int64_t>::max(); }

  EngineOptions options_;
  bool t5_ = false;  // pre-LN RMS norms, relative position bias, no learned positions; else BART
  int64_t hidden_ = 0, vocab_ = 0, max_positions_ = 0;  // max_positions_ 0: no limit (T5)
  int64_t decoder_start_ = 0, eos_ = 0, pad_ = 0;
  float embed_scale_ = 1.0f, eps_ = 1e-5f;
  kernels::Activation activation_ = kernels::Activation::kGelu;
  std::vector<float> shared_;  // token embedding of both stacks, [vocab, hidden]
  int64_t buckets_ = 0, max_distance_ = 0, bias_heads_ = 0;  // T5's relative attention buckets, the unpruned head count
  std::unique_ptr<Stack> encoder_stack_, decoder_stack_;
  std::vector<std::unique_ptr<EncoderLayer>> encoder_;
  std::vector<std::unique_ptr<DecoderLayer>> decoder_;
  std::unique_ptr<LinearOp> lm_head_;  // with final_logits_bias as its bias
  OpProfile* profile_ = nullptr;
};

// Teacher-forced logits [batch, target, vocab] of decoder_input_ids given input_ids (and masks):
// what the seq2seq perplexity is computed from.
torch::Tensor seq2seq_logits(const EncoderDecoder& engine, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const torch::Tensor& decoder_input_ids);

}  // namespace sqz::runtime
