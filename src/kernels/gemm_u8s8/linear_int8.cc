#include "kernels/gemm_u8s8/linear_int8.h"

#include "kernels/parallel.h"

namespace sqz::kernels {

Int8Linear make_int8_linear_from_codes(const int8_t* q, const float* scales, int64_t n, int64_t k, const float* bias,
                                       bool sparse24) {
  Int8Linear layer;
  if (sparse24) {
    layer.sparse = pack_s8_sparse24(q, n, k, k);
    layer.weights.n = n;
    layer.weights.k = k;
    layer.weights.column_sums = layer.sparse->column_sums;
  } else {
    layer.weights = pack_s8_weights(q, n, k, k);
  }
  layer.w_scale.assign(scales, scales + n);
  if (bias) layer.bias.assign(bias, bias + n);
  return layer;
}

Int8Linear make_int8_linear(const float* w, int64_t n, int64_t k, const float* bias, bool sparse24) {
  std::vector<int8_t> q(static_cast<size_t>(n * k));
  std::vector<float> scales(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    float absmax = 0;
    for (int64_t kk = 0; kk < k; ++kk) absmax = std::max(absmax, std::fabs(w[j * k + kk]));
    scales[j] = symmetric_s8_scale(absmax);
    for (int64_t kk = 0; kk < k; ++kk) q[j * k + kk] = quantize_s8(w[j * k + kk], scales[j]);
  }
  return make_int8_linear_from_codes(q.data(), scales.data(), n, k, bias, sparse24);
}

void quantize_rows_u8(const float* x, int64_t m, int64_t k, int64_t ldx, uint8_t* q, AffineParams* params) {
  for (int64_t i = 0; i < m; ++i) {
    const float* row = x + i * ldx;
    float lo = 0, hi = 0;
    for (int64_t kk = 0; kk < k; ++kk) {
      lo = std::min(lo, row[kk]);
      hi = std::max(hi, row[kk]);
    }
    params[i] = affine_u8_params(lo, hi);
    for (int64_t kk = 0; kk < k; ++kk) q[i * k + kk] = quantize_u8(row[kk], params[i]);
  }
}

void int8_linear_forward(const Int8Linear& layer, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, Isa isa,
                         const float* residual, int64_t ldr) {
  const auto& w = layer.weights;
  // Scratch reused across calls: a forward pass makes several calls per layer.
  thread_local std::vector<uint8_t> q;
  thread_local std::vector<AffineParams> params;
  thread_local std::vector<int32_t> acc;
  q.resize(static_cast<size_t>(m * w.k));
  params.resize(static_cast<size_t>(m));
  acc.resize(static_cast<size_t>(m * w.n));
  uint8_t* qd = q.data();
  AffineParams* pd = params.data();
  parallel_for(m, [&](int64_t r0, int64_t r1) {
    if (!layer.static_input) return quantize_rows_u8(x + r0 * ldx, r1 - r0, w.k, ldx, qd + r0 * w.k, pd + r0);
    for (int64_t i = r0; i < r1; ++i) {
      pd[i] = *layer.static_input;
      for (int64_t kk = 0; kk < w.k; ++kk) qd[i * w.k + kk] = quantize_u8(x[i * ldx + kk], pd[i]);
    }
  });
  if (layer.sparse) gemm_u8s8s32_sparse24(qd, m, w.k, *layer.sparse, acc.data(), w.n, isa);
  else gemm_u8s8s32(qd, m, w.k, w, acc.data(), w.n, isa);
  const int32_t* ad = acc.data();
  parallel_for(m, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const float a_scale = pd[i].scale;
      const int32_t a_zero = pd[i].zero;
      float* out = y + i * ldy;
      const int32_t* row = ad + i * w.n;
      for (int64_t j = 0; j < w.n; ++j) {
        float v = a_scale * layer.w_scale[j] * static_cast<float>(row[j] - a_zero * w.column_sums[j]);
        if (!layer.bias.empty()) v += layer.bias[j];
        if (residual) v += residual[i * ldr + j];
        out[j] = v;
      }
    }
  });
}

}  // namespace sqz::kernels
