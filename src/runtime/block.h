// What the encoder and decoder engines share: the weights of one Transformer block's Linears
// (Q, K and V stacked into one GEMM) and attention for one (sequence, head) pair.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "models/model.h"
#include "runtime/bert_encoder.h"
#include "runtime/linear_op.h"
#include "runtime/op_profile.h"

namespace sqz::runtime {

// A tensor's values as fp32 (an undefined tensor gives `zeros_if_undefined` zeros).
std::vector<float> to_vector(const torch::Tensor& t, int64_t zeros_if_undefined = 0);

// params[name], or an error naming the tensor the engine expected.
const torch::Tensor& model_tensor(const std::map<std::string, torch::Tensor>& params, const std::string& name);

struct BlockOps {
  int64_t heads = 0, head_dim = 0, ffn = 0;
  int64_t kv_heads = 0;  // K and V heads (grouped-query attention: fewer than `heads`)
  // qkv's Q rows (weights and bias) come pre-multiplied by 1/sqrt(head_dim), so attention needs
  // no pass scaling the scores (for int8 the factor lands in the per-channel weight scales).
  // Its output row: Q [heads * head_dim], K and V [kv_heads * head_dim] each.
  LinearOp qkv, attn_out, ffn_in, ffn_out;
  // Gated FFN (SwiGLU): ffn_in stacks gate and up, [2 * ffn] outputs, gate first.
  bool gated = false;
  std::vector<float> attn_bias_only;  // heads == 0: the attention adds its output bias alone
  // The FFN's inner activations pass between its Linears as u8 codes (both int8, not gated).
  bool ffn_requantizes() const { return !gated && ffn > 0 && is_int8(ffn_in.precision()) && is_int8(ffn_out.precision()); }
  int64_t q_width() const { return heads * head_dim; }
  int64_t kv_width() const { return kv_heads * head_dim; }
  int64_t qkv_width() const { return q_width() + 2 * kv_width(); }
};

// Cross-attention of an encoder-decoder: queries from the decoder's stream, keys and values from
// the encoder output, projected once per source (K and V stacked into one GEMM, [K | V] rows).
// Q is pre-scaled by 1/sqrt(head_dim) as in BlockOps.
struct CrossAttentionOps {
  int64_t heads = 0, head_dim = 0;
  LinearOp q, kv, out;
  std::vector<float> bias_only;  // heads == 0: the block adds its output bias alone
  int64_t width() const { return heads * head_dim; }
};

// An FFN activation as runtime dirs name it ("gelu", "gelu_tanh", "relu", "silu", "none"), and
// back (an unknown name fails naming `key` of `m`).
const char* activation_name(kernels::Activation a);
kernels::Activation parse_activation(const io::JsonFields& m, const std::string& key);

// From the model's dependency groups: each head_rows entry contributes its rows
// [row_offset, row_offset + heads * head_dim) to the stacked QKV weight (three Linears for BERT,
// three slices of GPT-2's fused c_attn; K and V kv_heads * head_dim under grouped-query
// attention); two FFN input Linears (gate, up) are stacked into one. `prefix` names the layer.
// scale_queries false: scores are not scaled (T5), Q keeps its weights.
BlockOps make_block_ops(const models::AttentionBlock& attention, const models::FfnBlock& ffn, int64_t hidden,
                        Precision precision, const std::string& prefix, bool scale_queries = true);

// From a cross-attention group (head_rows q, k, v; head_cols the output Linear).
CrossAttentionOps make_cross_attention_ops(const models::AttentionBlock& attention, int64_t hidden, Precision precision,
                                           const std::string& prefix, bool scale_queries = true);
nlohmann::json save_cross_attention_ops(const CrossAttentionOps& ops, RuntimeDirWriter& out, const std::string& prefix, int64_t hidden);
CrossAttentionOps load_cross_attention_ops(const RuntimeDirReader& in, const io::JsonFields& entry, const std::string& where,
                                           const std::string& prefix, int64_t hidden);

// A block as a runtime dir stores it: the manifest entry (counts, each Linear's entry) returned,
// tensors under `prefix` ("layers.3" -> "layers.3.qkv.weight", ...).
nlohmann::json save_block_ops(const BlockOps& ops, RuntimeDirWriter& out, const std::string& prefix, int64_t hidden);
// `entry` is the block's manifest object, `where` its path there ("layers[3]").
BlockOps load_block_ops(const RuntimeDirReader& in, const io::JsonFields& entry, const std::string& where,
                        const std::string& prefix, int64_t hidden);

// An additive score bias per head (T5's relative positions): `values` holds [heads, rows, keys]
// for the model's unpruned heads; `head_index` (may be null or empty) maps a block's head to its
// slice there, as pruning left the block.
struct ScoreBias {
  const float* values = nullptr;
  const std::vector<int64_t>* head_index = nullptr;
  int64_t rows = 0, keys = 0;
  const float* head(int64_t h) const {
    if (!values) return nullptr;
    const int64_t i = head_index && !head_index->empty() ? (*head_index)[static_cast<size_t>(h)] : h;
    return values + i * rows * keys;
  }
};

// out [rows, head_dim] (row stride ldo) = softmax(q k^T + bias) v for one sequence and head, q
// already scaled (BlockOps::qkv), bias (nullable) [rows, keys]:
// q [rows, head_dim], k and v [keys, head_dim], each with its row stride. key_mask (nullable,
// [keys], 0 = padding) hides keys; causal_offset >= 0 lets query i see keys 0..causal_offset+i.
void attend_head(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t rows,
                 int64_t keys, int64_t head_dim, const int64_t* key_mask, int64_t causal_offset, float* out, int64_t ldo,
                 const float* bias = nullptr);

// The same with both products on the int8 GEMM, quantized as the int8 Linears are: Q rows and
// softmax rows asymmetric u8 per row (softmax rows include 0, so their zero point is 0), K
// symmetric s8 per key and V symmetric s8 per feature (the "output channels" of P·V); the masked
// softmax stays fp32. EngineOptions::int8_attention selects it.
void attend_head_int8(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t rows,
                      int64_t keys, int64_t head_dim, const int64_t* key_mask, int64_t causal_offset, float* out, int64_t ldo,
                      const float* bias = nullptr);

// The LM head's precision under `options`: fp32 when it does not follow the engine, int8 for both
// int8 kinds (2:4 applies to the blocks only), else the engine's.
Precision lm_head_precision(const EngineOptions& options);

// Records a step's decoder mask ([batch, steps], 0 = padding; nullable) at positions past.. of a
// cache's key_mask ([batch, capacity]); any value but 0 or 1 is refused, naming `what`.
void record_key_mask(const int64_t* mask, int64_t batch, int64_t steps, int64_t past, int64_t capacity, int64_t* key_mask,
                     const char* what);

// A decoder's per-layer self-attention cache: per sequence and K/V head, `capacity` rows of
// head_dim ([batch, kv_heads, capacity, head_dim]); key_mask [batch, capacity], 0 hides a position.
struct KvCacheView {
  float* keys;
  float* values;
  const int64_t* key_mask;
  int64_t capacity;
};

// Causal self-attention of `steps` new positions per sequence (qkv: [batch * steps, qkv_width],
// what BlockOps::qkv wrote) against the cache: appends their K and V at position `past`, then
// every query head attends to the first past + steps positions; ctx [batch * steps, q_width].
// `rotate` (rotary models; may be empty) turns a head vector to its position before it is cached
// or attends.
void cached_self_attention(const BlockOps& ops, float* qkv, int64_t batch, int64_t steps, int64_t past, const KvCacheView& cache,
                           bool int8_attention, const std::function<void(float*, int64_t)>& rotate, float* ctx,
                           const ScoreBias& bias = {});

// The two halves of an encoder block, for post-LN (BERT) and pre-LN (ViT) engines alike; x and
// residual are [batch * seq, hidden], y must not alias x. Each op's time goes to `profile`.
// y = attention(x) + residual: the fused Q/K/V GEMM, every (sequence, head) pair in parallel
// (mask: [batch, seq], 0 = padding, nullable), then the output Linear with the residual added.
void encoder_self_attention(const BlockOps& ops, const float* x, int64_t batch, int64_t seq, int64_t hidden, const int64_t* mask,
                            bool int8_attention, const float* residual, float* y, OpProfile* profile, const ScoreBias& bias = {});
// y = ffn_out(act(ffn_in(x))) + residual, or ffn_out(act(gate(x)) * up(x)) + residual when gated;
// int8 FFNs (not gated) pass the inner rows as u8 codes.
void encoder_ffn(const BlockOps& ops, const float* x, int64_t m, int64_t hidden, kernels::Activation activation, const float* residual,
                 float* y, OpProfile* profile);

}  // namespace sqz::runtime
