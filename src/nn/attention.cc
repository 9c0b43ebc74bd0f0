#include "nn/attention.h"

#include <limits>

namespace sqz::nn {

torch::Tensor split_heads(const torch::Tensor& x, int64_t num_heads) {
  auto b = x.size(0), t = x.size(1);
  // A block whose heads were all pruned has zero-width projections: [B, 0, T, 0].
  const int64_t head_dim = num_heads == 0 ? 0 : x.size(2) / num_heads;
  return x.view({b, t, num_heads, head_dim}).transpose(1, 2);
}

torch::Tensor merge_heads(const torch::Tensor& x) {
  auto b = x.size(0), h = x.size(1), t = x.size(2), d = x.size(3);
  return x.transpose(1, 2).contiguous().view({b, t, h * d});
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  auto halves = x.chunk(2, -1);
  return x * cos + torch::cat({-halves[1], halves[0]}, -1) * sin;
}

torch::Tensor attention_allowed(const torch::Tensor& key_padding_mask, int64_t batch, int64_t query_len,
                                int64_t key_len, bool causal) {
  torch::Tensor allowed;
  if (key_padding_mask.defined())
    allowed = key_padding_mask.to(torch::kBool).view({batch, 1, 1, key_len});
  if (causal && query_len > 0) {
    auto q_pos = torch::arange(key_len - query_len, key_len, torch::kLong).view({query_len, 1});
    auto k_pos = torch::arange(key_len, torch::kLong).view({1, key_len});
    auto tri = (k_pos <= q_pos).view({1, 1, query_len, key_len});
    allowed = allowed.defined() ? allowed.logical_and(tri) : tri;
  }
  return allowed;
}

AttentionResult dot_product_attention(const torch::Tensor& q, const torch::Tensor& k_in, const torch::Tensor& v_in,
                                      const torch::Tensor& allowed, double scale, double dropout, bool training,
                                      bool need_probs, const torch::Tensor& score_bias) {
  torch::Tensor k = k_in, v = v_in;
  int64_t groups = k.size(1) == 0 ? 1 : q.size(1) / k.size(1);  // 0 heads: a pruned-away block
  if (groups > 1) {
    k = k.repeat_interleave(groups, 1);
    v = v.repeat_interleave(groups, 1);
  }
  auto scores = torch::matmul(q, k.transpose(-1, -2));
  if (scale != 1.0) scores = scores * scale;
  if (score_bias.defined()) scores = scores + score_bias;
  if (allowed.defined())
    scores = scores.masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
  auto probs = torch::softmax(scores, -1);
  auto dropped = (training && dropout > 0) ? torch::dropout(probs, dropout, true) : probs;
  AttentionResult r;
  r.context = torch::matmul(dropped, v);
  if (need_probs) r.probs = probs;
  return r;
}

}  // namespace sqz::nn
