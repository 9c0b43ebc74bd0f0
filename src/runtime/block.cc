#include "runtime/block.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "kernels/eltwise/eltwise.h"
#include "kernels/gemm_f32/gemm_f32.h"
#include "kernels/gemm_u8s8/gemm_u8s8.h"
#include "kernels/parallel.h"
#include "kernels/quant_math.h"
#include "kernels/quantize/quantize_rows.h"
#include "runtime/runtime_dir.h"

namespace sqz::runtime {

std::vector<float> to_vector(const torch::Tensor& t, int64_t zeros_if_undefined) {
  if (!t.defined()) return std::vector<float>(static_cast<size_t>(zeros_if_undefined), 0.0f);
  auto c = t.detach().to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

const torch::Tensor& model_tensor(const std::map<std::string, torch::Tensor>& params, const std::string& name) {
  auto it = params.find(name);
  if (it == params.end()) fail_data("runtime: the model has no tensor '", name, "'");
  return it->second;
}

namespace {

// Appends `rows` rows of the i-th head_rows Linear (from its row_offset) to w and b; Q's (i == 0)
// are scaled by attention's 1/sqrt(head_dim) (see BlockOps) when scale_queries.
void append_head_rows(const models::AttentionBlock& attention, size_t i, int64_t rows, bool scale_queries, std::vector<float>& w,
                      std::vector<float>& b) {
  const auto& l = attention.head_rows[i];
  const int64_t r0 = attention.row_offset(i);
  // Heads side by side from the entry's offset, or (GPT-NeoX: each head's q, k and v adjacent) strided.
  const auto idx = attention.row_stride > 0 ? attention.head_row_indices(i) : torch::arange(r0, r0 + rows, torch::kLong);
  auto lw = to_vector(l->logical_weight().index_select(0, idx));
  auto lb = l->bias.defined() ? to_vector(l->bias.index_select(0, idx)) : std::vector<float>(static_cast<size_t>(rows), 0.0f);
  if (i == 0 && scale_queries) {
    const float q_scale = 1.0f / std::sqrt(static_cast<float>(attention.head_dim));
    for (auto& v : lw) v *= q_scale;
    for (auto& v : lb) v *= q_scale;
  }
  w.insert(w.end(), lw.begin(), lw.end());
  b.insert(b.end(), lb.begin(), lb.end());
}

}  // namespace

const char* activation_name(kernels::Activation a) {
  switch (a) {
    case kernels::Activation::kNone: return "none";
    case kernels::Activation::kGelu: return "gelu";
    case kernels::Activation::kGeluTanh: return "gelu_tanh";
    case kernels::Activation::kRelu: return "relu";
    case kernels::Activation::kSilu: return "silu";
  }
  return "?";
}

kernels::Activation parse_activation(const io::JsonFields& m, const std::string& key) {
  const auto name = m.get_string(key);
  for (auto a : {kernels::Activation::kNone, kernels::Activation::kGelu, kernels::Activation::kGeluTanh, kernels::Activation::kRelu,
                 kernels::Activation::kSilu})
    if (name == activation_name(a)) return a;
  m.fail_field(key, "one of none, gelu, gelu_tanh, relu, silu");
}

BlockOps make_block_ops(const models::AttentionBlock& attention, const models::FfnBlock& ffn, int64_t hidden,
                        Precision precision, const std::string& prefix, bool scale_queries) {
  BlockOps ops;
  ops.heads = attention.num_heads;
  ops.head_dim = attention.head_dim;
  ops.kv_heads = attention.cache_heads();
  const int64_t width = ops.q_width();
  const auto& out = attention.head_cols;
  auto out_w = to_vector(out->logical_weight()), out_b = to_vector(out->bias, out->out_features());
  if (width > 0) {
    std::vector<float> w, b;
    for (size_t i = 0; i < attention.head_rows.size(); ++i) append_head_rows(attention, i, i == 0 ? width : ops.kv_width(), scale_queries, w, b);
    ops.qkv = LinearOp(w.data(), ops.qkv_width(), hidden, b.data(), precision, prefix + " attention Q/K/V");
    ops.attn_out = LinearOp(out_w.data(), hidden, width, out_b.data(), precision, prefix + " attention output");
  } else {
    ops.attn_bias_only = out_b;
  }
  const auto& down = ffn.neuron_cols;
  ops.ffn = ffn.neuron_rows.at(0)->out_features();
  ops.gated = ffn.neuron_rows.size() == 2;
  std::vector<float> uw, ub;
  for (const auto& in : ffn.neuron_rows) {  // one Linear, or gate then up
    auto w = to_vector(in->logical_weight()), b = to_vector(in->bias, ops.ffn);
    uw.insert(uw.end(), w.begin(), w.end());
    ub.insert(ub.end(), b.begin(), b.end());
  }
  auto dw = to_vector(down->logical_weight()), db = to_vector(down->bias, hidden);
  ops.ffn_in = LinearOp(uw.data(), static_cast<int64_t>(ffn.neuron_rows.size()) * ops.ffn, hidden, ub.data(), precision,
                        prefix + " FFN input");
  ops.ffn_out = LinearOp(dw.data(), hidden, ops.ffn, db.data(), precision, prefix + " FFN output");
  return ops;
}

CrossAttentionOps make_cross_attention_ops(const models::AttentionBlock& attention, int64_t hidden, Precision precision,
                                           const std::string& prefix, bool scale_queries) {
  if (attention.head_rows.size() != 3 || attention.grouped_query())
    fail_unimplemented(prefix, ": the runtime's cross-attention takes separate Q, K and V Linears with as many K/V heads as Q heads");
  CrossAttentionOps ops;
  ops.heads = attention.num_heads;
  ops.head_dim = attention.head_dim;
  const auto& out = attention.head_cols;
  auto out_w = to_vector(out->logical_weight()), out_b = to_vector(out->bias, out->out_features());
  if (ops.width() == 0) {
    ops.bias_only = out_b;
    return ops;
  }
  std::vector<float> qw, qb, kvw, kvb;
  append_head_rows(attention, 0, ops.width(), scale_queries, qw, qb);
  append_head_rows(attention, 1, ops.width(), scale_queries, kvw, kvb);
  append_head_rows(attention, 2, ops.width(), scale_queries, kvw, kvb);
  ops.q = LinearOp(qw.data(), ops.width(), hidden, qb.data(), precision, prefix + " cross-attention Q");
  ops.kv = LinearOp(kvw.data(), 2 * ops.width(), hidden, kvb.data(), precision, prefix + " cross-attention K/V");
  ops.out = LinearOp(out_w.data(), hidden, ops.width(), out_b.data(), precision, prefix + " cross-attention output");
  return ops;
}

nlohmann::json save_cross_attention_ops(const CrossAttentionOps& ops, RuntimeDirWriter& out, const std::string& prefix, int64_t hidden) {
  nlohmann::json j = {{"heads", ops.heads}, {"head_dim", ops.head_dim}};
  if (ops.heads == 0) {
    out.add_floats(prefix + ".out.bias", ops.bias_only, {hidden});
    return j;
  }
  j["q"] = ops.q.save(out, prefix + ".q");
  j["kv"] = ops.kv.save(out, prefix + ".kv");
  j["out"] = ops.out.save(out, prefix + ".out");
  return j;
}

nlohmann::json save_block_ops(const BlockOps& ops, RuntimeDirWriter& out, const std::string& prefix, int64_t hidden) {
  nlohmann::json j = {{"heads", ops.heads}, {"head_dim", ops.head_dim}, {"kv_heads", ops.kv_heads}, {"ffn", ops.ffn}, {"gated", ops.gated}};
  if (ops.heads > 0) {
    j["qkv"] = ops.qkv.save(out, prefix + ".qkv");
    j["attn_out"] = ops.attn_out.save(out, prefix + ".attn_out");
  } else {
    out.add_floats(prefix + ".attn_out.bias", ops.attn_bias_only, {hidden});
  }
  j["ffn_in"] = ops.ffn_in.save(out, prefix + ".ffn_in");
  j["ffn_out"] = ops.ffn_out.save(out, prefix + ".ffn_out");
  return j;
}

BlockOps load_block_ops(const RuntimeDirReader& in, const io::JsonFields& entry, const std::string& where,
                        const std::string& prefix, int64_t hidden) {
  BlockOps ops;
  ops.heads = entry.get_int("heads");
  ops.head_dim = entry.get_int("head_dim");
  ops.kv_heads = entry.get_int("kv_heads");
  ops.ffn = entry.get_int("ffn");
  ops.gated = entry.get_bool("gated");
  // Counts past 2^24 are no block's, and their widths ((heads + 2 kv_heads) * head_dim) would overflow.
  constexpr int64_t kMaxCount = int64_t{1} << 24;
  if (ops.heads < 0 || ops.kv_heads < 0 || ops.ffn < 0 || ops.head_dim <= 0 ||
      (ops.heads > 0 && (ops.kv_heads == 0 || ops.heads % ops.kv_heads != 0)) ||
      std::max({ops.heads, ops.kv_heads, ops.ffn, ops.head_dim}) > kMaxCount)
    fail_invalid(entry.source(), ": heads ", ops.heads, ", kv_heads ", ops.kv_heads, ", head_dim ", ops.head_dim, ", ffn ",
                 ops.ffn, " do not describe a block (heads a multiple of kv_heads, head_dim > 0, each at most 2^24)");
  // Each Linear's shape must be the one the counts imply, or the engine would read past its buffers.
  auto linear = [&](const char* key, int64_t out, int64_t inputs) {
    return LinearOp::load(in, in.object(entry.value(), key, where + "." + key), prefix + "." + key, out, inputs);
  };
  if (ops.heads > 0) {
    ops.qkv = linear("qkv", ops.qkv_width(), hidden);
    ops.attn_out = linear("attn_out", hidden, ops.q_width());
  } else {
    ops.attn_bias_only = in.floats(prefix + ".attn_out.bias", {hidden});
  }
  ops.ffn_in = linear("ffn_in", (ops.gated ? 2 : 1) * ops.ffn, hidden);
  ops.ffn_out = linear("ffn_out", hidden, ops.ffn);
  return ops;
}

CrossAttentionOps load_cross_attention_ops(const RuntimeDirReader& in, const io::JsonFields& entry, const std::string& where,
                                           const std::string& prefix, int64_t hidden) {
  CrossAttentionOps ops;
  ops.heads = entry.get_int("heads");
  ops.head_dim = entry.get_int("head_dim");
  if (ops.heads < 0 || ops.head_dim <= 0 || std::max(ops.heads, ops.head_dim) > (int64_t{1} << 24))
    fail_invalid(entry.source(), ": ", where, " has heads ", ops.heads, ", head_dim ", ops.head_dim,
                 "; expected heads >= 0, head_dim > 0, each at most 2^24");
  if (ops.heads == 0) {
    ops.bias_only = in.floats(prefix + ".out.bias", {hidden});
    return ops;
  }
  auto linear = [&](const char* key, int64_t out, int64_t inputs) {
    return LinearOp::load(in, in.object(entry.value(), key, where + "." + key), prefix + "." + key, out, inputs);
  };
  ops.q = linear("q", ops.width(), hidden);
  ops.kv = linear("kv", 2 * ops.width(), hidden);
  ops.out = linear("out", hidden, ops.width());
  return ops;
}

namespace {

// Hides padded keys (key_mask 0) and, for causal_offset >= 0, keys after each query's position.
void mask_scores(float* scores, int64_t rows, int64_t keys, const int64_t* key_mask, int64_t causal_offset) {
  const float hidden_key = -std::numeric_limits<float>::infinity();
  if (key_mask)
    for (int64_t j = 0; j < keys; ++j)
      if (key_mask[j] == 0)
        for (int64_t i = 0; i < rows; ++i) scores[i * keys + j] = hidden_key;
  if (causal_offset >= 0)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = causal_offset + i + 1; j < keys; ++j) scores[i * keys + j] = hidden_key;
}

void add_bias(float* scores, int64_t n, const float* bias) {
  if (bias)
    for (int64_t i = 0; i < n; ++i) scores[i] += bias[i];
}

// Symmetric s8 codes of an [n, k] matrix read as m[j * stride_n + kk * stride_k], one scale per j.
void quantize_s8_rows(const float* m, int64_t n, int64_t k, int64_t stride_n, int64_t stride_k, int8_t* codes, float* scales) {
  for (int64_t j = 0; j < n; ++j) {
    float absmax = 0;
    for (int64_t kk = 0; kk < k; ++kk) absmax = std::max(absmax, std::fabs(m[j * stride_n + kk * stride_k]));
    scales[j] = kernels::symmetric_s8_scale(absmax);
    for (int64_t kk = 0; kk < k; ++kk) codes[j * k + kk] = kernels::quantize_s8(m[j * stride_n + kk * stride_k], scales[j]);
  }
}

}  // namespace

void attend_head_int8(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t rows,
                      int64_t keys, int64_t head_dim, const int64_t* key_mask, int64_t causal_offset, float* out, int64_t ldo,
                      const float* bias) {
  // Per-thread scratch, as in attend_head.
  thread_local std::vector<uint8_t> q_codes, p_codes;
  thread_local std::vector<kernels::AffineParams> q_params, p_params;
  thread_local std::vector<int8_t> kv_codes;
  thread_local std::vector<float> kv_scales, scores;
  thread_local std::vector<int32_t> acc;
  thread_local kernels::PackedS8Weights k_packed, v_packed;
  q_codes.resize(static_cast<size_t>(rows * head_dim));
  q_params.resize(static_cast<size_t>(rows));
  kernels::quantize_rows_u8(q, rows, head_dim, ldq, q_codes.data(), q_params.data(), nullptr);
  kv_codes.resize(static_cast<size_t>(keys * head_dim));
  kv_scales.resize(static_cast<size_t>(std::max(keys, head_dim)));
  quantize_s8_rows(k, keys, head_dim, ldk, 1, kv_codes.data(), kv_scales.data());
  kernels::pack_s8_weights_into(kv_codes.data(), keys, head_dim, head_dim, k_packed);
  acc.resize(static_cast<size_t>(rows * std::max(keys, head_dim)));
  kernels::gemm_u8s8s32(q_codes.data(), rows, head_dim, k_packed, acc.data(), keys);
  scores.resize(static_cast<size_t>(rows * keys));
  kernels::dequantize_rows({acc.data(), q_params.data(), kv_scales.data(), k_packed.column_sums.data()}, rows, keys,
                           scores.data(), keys);
  add_bias(scores.data(), rows * keys, bias);
  mask_scores(scores.data(), rows, keys, key_mask, causal_offset);
  kernels::softmax_rows(scores.data(), rows, keys, keys);
  p_codes.resize(static_cast<size_t>(rows * keys));
  p_params.resize(static_cast<size_t>(rows));
  kernels::quantize_rows_u8(scores.data(), rows, keys, keys, p_codes.data(), p_params.data(), nullptr);
  quantize_s8_rows(v, head_dim, keys, 1, ldv, kv_codes.data(), kv_scales.data());  // V^T: one row per feature
  kernels::pack_s8_weights_into(kv_codes.data(), head_dim, keys, keys, v_packed);
  kernels::gemm_u8s8s32(p_codes.data(), rows, keys, v_packed, acc.data(), head_dim);
  kernels::dequantize_rows({acc.data(), p_params.data(), kv_scales.data(), v_packed.column_sums.data()}, rows, head_dim, out, ldo);
}

void attend_head(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t rows,
                 int64_t keys, int64_t head_dim, const int64_t* key_mask, int64_t causal_offset, float* out, int64_t ldo,
                 const float* bias) {
  // Per-thread scratch: attention runs one (sequence, head) task per call inside parallel_for.
  thread_local kernels::PackedF32Weights kp, vp;
  thread_local std::vector<float> scores;
  scores.resize(static_cast<size_t>(rows * keys));
  kernels::pack_f32_weights_into(k, keys, head_dim, ldk, 1, kp);
  kernels::pack_f32_weights_into(v, head_dim, keys, 1, ldv, vp);
  kernels::gemm_f32(q, rows, ldq, kp, scores.data(), keys);
  add_bias(scores.data(), rows * keys, bias);
  mask_scores(scores.data(), rows, keys, key_mask, causal_offset);
  kernels::softmax_rows(scores.data(), rows, keys, keys);
  kernels::gemm_f32(scores.data(), rows, keys, vp, out, ldo);
}

Precision lm_head_precision(const EngineOptions& options) {
  if (!options.lm_head_follows_precision) return Precision::kFp32;
  return is_int8(options.precision) ? Precision::kInt8 : options.precision;
}

void record_key_mask(const int64_t* mask, int64_t batch, int64_t steps, int64_t past, int64_t capacity, int64_t* key_mask,
                     const char* what) {
  if (!mask) return;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t v = mask[b * steps + s];
      if (v != 0 && v != 1) fail_invalid("runtime: ", what, " holds ", v, "; expected 0 (padding) or 1");
      key_mask[b * capacity + past + s] = v;
    }
}

void cached_self_attention(const BlockOps& ops, float* qkv, int64_t batch, int64_t steps, int64_t past, const KvCacheView& cache,
                           bool int8_attention, const std::function<void(float*, int64_t)>& rotate, float* ctx, const ScoreBias& bias) {
  const int64_t hd = ops.head_dim, qw = ops.q_width(), kvw = ops.kv_width(), row = ops.qkv_width(), group = ops.heads / ops.kv_heads;
  auto head_cache = [&](float* kv, int64_t b, int64_t k) { return kv + (b * ops.kv_heads + k) * cache.capacity * hd; };
  kernels::parallel_for(batch * ops.kv_heads, [&](int64_t begin, int64_t end) {  // append K (rotated) and V
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / ops.kv_heads, k = task % ops.kv_heads;
      float *kh = head_cache(cache.keys, b, k), *vh = head_cache(cache.values, b, k);
      for (int64_t s = 0; s < steps; ++s) {
        const float* r = qkv + (b * steps + s) * row;
        std::copy(r + qw + k * hd, r + qw + (k + 1) * hd, kh + (past + s) * hd);
        std::copy(r + qw + kvw + k * hd, r + qw + kvw + (k + 1) * hd, vh + (past + s) * hd);
        if (rotate) rotate(kh + (past + s) * hd, past + s);
      }
    }
  });
  const auto attend = int8_attention ? attend_head_int8 : attend_head;
  kernels::parallel_for(batch * ops.heads, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / ops.heads, head = task % ops.heads;
      float* q = qkv + b * steps * row + head * hd;
      if (rotate)
        for (int64_t s = 0; s < steps; ++s) rotate(q + s * row, past + s);
      attend(q, row, head_cache(cache.keys, b, head / group), hd, head_cache(cache.values, b, head / group), hd, steps, past + steps,
             hd, cache.key_mask + b * cache.capacity, past, ctx + b * steps * qw + head * hd, qw, bias.head(head));
    }
  });
}

void encoder_self_attention(const BlockOps& ops, const float* x, int64_t batch, int64_t seq, int64_t hidden, const int64_t* mask,
                            bool int8_attention, const float* residual, float* y, OpProfile* profile, const ScoreBias& bias) {
  const int64_t m = batch * seq, h = hidden;
  if (ops.heads == 0) {
    ScopedOpTimer timer(profile, "attention output (no heads)");
    for (int64_t t = 0; t < m; ++t)
      for (int64_t d = 0; d < h; ++d) y[t * h + d] = residual[t * h + d] + ops.attn_bias_only[d];
    return;
  }
  // Activations reused across forwards (per calling thread): fresh multi-MB vectors each call
  // cost page faults and zero-fills. Plain references, so that the kernels' worker threads see
  // the caller's buffers, not their own thread_local ones.
  thread_local std::vector<float> qkv_scratch, ctx_scratch;
  std::vector<float>& qkv = qkv_scratch;
  std::vector<float>& ctx = ctx_scratch;
  const int64_t a = ops.heads * ops.head_dim, hd = ops.head_dim;
  qkv.resize(static_cast<size_t>(m * 3 * a));
  ctx.resize(static_cast<size_t>(m * a));
  {
    ScopedOpTimer t(profile, "Q/K/V Linear");
    ops.qkv.forward(x, m, h, qkv.data(), 3 * a);
  }
  {
    ScopedOpTimer t(profile, "attention (softmax(QK^T)V)");
    const auto attend = int8_attention ? attend_head_int8 : attend_head;
    kernels::parallel_for(batch * ops.heads, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / ops.heads, head = task % ops.heads;
        const float* q = qkv.data() + b * seq * 3 * a + head * hd;
        attend(q, 3 * a, q + a, 3 * a, q + 2 * a, 3 * a, seq, seq, hd, mask ? mask + b * seq : nullptr, -1,
               ctx.data() + b * seq * a + head * hd, a, bias.head(head));
      }
    });
  }
  ScopedOpTimer t(profile, "attention output Linear + residual");
  ops.attn_out.forward(ctx.data(), m, a, y, h, residual, h);
}

void encoder_ffn(const BlockOps& ops, const float* x, int64_t m, int64_t hidden, kernels::Activation activation, const float* residual,
                 float* y, OpProfile* profile) {
  thread_local std::vector<float> inner_scratch;
  thread_local kernels::QuantizedRows inner_codes_scratch;  // the int8 FFN's inner rows (requantized)
  std::vector<float>& inner = inner_scratch;
  kernels::QuantizedRows& inner_codes = inner_codes_scratch;
  const int64_t h = hidden;
  if (ops.gated) {  // act(gate) * up over the stacked [gate | up] rows, then the output Linear on the gate half
    const int64_t width = 2 * ops.ffn;
    inner.resize(static_cast<size_t>(m * width));
    {
      ScopedOpTimer t(profile, "FFN gate/up Linear + activation * up");
      ops.ffn_in.forward(x, m, h, inner.data(), width);
      if (activation == kernels::Activation::kSilu) {
        kernels::silu_mul_rows(inner.data(), width, inner.data() + ops.ffn, width, m, ops.ffn);
      } else {
        kernels::activate_rows(activation, inner.data(), m, ops.ffn, width);
        for (int64_t r = 0; r < m; ++r)
          for (int64_t j = 0; j < ops.ffn; ++j) inner[r * width + j] *= inner[r * width + ops.ffn + j];
      }
    }
    ScopedOpTimer t(profile, "FFN output Linear + residual");
    ops.ffn_out.forward(inner.data(), m, width, y, h, residual, h);
    return;
  }
  const bool requantize = ops.ffn_requantizes();
  if (!requantize) inner.resize(static_cast<size_t>(m * ops.ffn));
  {
    ScopedOpTimer t(profile, activation == kernels::Activation::kGelu ? "FFN input Linear + GELU" : "FFN input Linear + activation");
    if (requantize)
      ops.ffn_in.forward_requantize(x, m, h, inner_codes, activation);
    else
      ops.ffn_in.forward(x, m, h, inner.data(), ops.ffn, nullptr, 0, activation);
  }
  ScopedOpTimer t(profile, "FFN output Linear + residual");
  if (requantize)
    ops.ffn_out.forward_quantized(inner_codes, y, h, residual, h);
  else
    ops.ffn_out.forward(inner.data(), m, ops.ffn, y, h, residual, h);
}

}  // namespace sqz::runtime
