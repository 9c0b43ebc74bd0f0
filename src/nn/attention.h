// Scaled dot-product attention shared by every family: masks are boolean "may attend" tensors
// so that padding and causality combine without -inf arithmetic.
#pragma once
#include <torch/torch.h>

namespace sqz::nn {

// [B, T, H*D] -> [B, H, T, D]
torch::Tensor split_heads(const torch::Tensor& x, int64_t num_heads);
// [B, H, T, D] -> [B, T, H*D]
torch::Tensor merge_heads(const torch::Tensor& x);
// Rotary positions as HF applies them: x * cos + rotate_half(x) * sin, where rotate_half pairs
// dimension j with j + D/2. cos and sin broadcast against x ([B, 1, T, D] for [B, H, T, D]).
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// key_padding_mask: [B, S] (1 = real token) or undefined. Returns bool [B, 1, T, S] or an
// undefined tensor when nothing is masked. With `causal`, query i (absolute position S-T+i)
// sees keys 0..S-T+i.
torch::Tensor attention_allowed(const torch::Tensor& key_padding_mask, int64_t batch, int64_t query_len,
                                int64_t key_len, bool causal);

struct AttentionResult {
  torch::Tensor context;  // [B, H, T, D]
  torch::Tensor probs;    // [B, H, T, S], only when asked for
};

// q: [B, H, T, D]; k, v: [B, Hkv, S, D] with H a multiple of Hkv (grouped-query attention).
// Masked scores get the dtype's lowest value, as HF does, so a fully masked row stays finite.
// `score_bias` (optional) is added to the scaled scores, broadcast to [B, H, T, S]: T5's relative
// position bias.
AttentionResult dot_product_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const torch::Tensor& allowed, double scale, double dropout, bool training,
                                      bool need_probs, const torch::Tensor& score_bias = {});

}  // namespace sqz::nn
