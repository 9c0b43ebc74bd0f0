#include "kernels/gemm_u8s8/linear_int8.h"

namespace sqz::kernels {

Int8Linear make_int8_linear(const float* w, int64_t n, int64_t k, const float* bias) {
  Int8Linear layer;
  std::vector<int8_t> q(static_cast<size_t>(n * k));
  layer.w_scale.resize(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    float absmax = 0;
    for (int64_t kk = 0; kk < k; ++kk) absmax = std::max(absmax, std::fabs(w[j * k + kk]));
    float s = symmetric_s8_scale(absmax);
    layer.w_scale[j] = s;
    for (int64_t kk = 0; kk < k; ++kk) q[j * k + kk] = quantize_s8(w[j * k + kk], s);
  }
  layer.weights = pack_s8_weights(q.data(), n, k, k);
  if (bias) layer.bias.assign(bias, bias + n);
  return layer;
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

void int8_linear_forward(const Int8Linear& layer, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, Isa isa) {
  const auto& w = layer.weights;
  std::vector<uint8_t> q(static_cast<size_t>(m * w.k));
  std::vector<AffineParams> params(static_cast<size_t>(m));
  quantize_rows_u8(x, m, w.k, ldx, q.data(), params.data());
  std::vector<int32_t> acc(static_cast<size_t>(m * w.n));
  gemm_u8s8s32(q.data(), m, w.k, w, acc.data(), w.n, isa);
  for (int64_t i = 0; i < m; ++i) {
    const float a_scale = params[i].scale;
    const int32_t a_zero = params[i].zero;
    for (int64_t j = 0; j < w.n; ++j) {
      float v = a_scale * layer.w_scale[j] * static_cast<float>(acc[i * w.n + j] - a_zero * w.column_sums[j]);
      y[i * ldy + j] = layer.bias.empty() ? v : v + layer.bias[j];
    }
  }
}

}  // namespace sqz::kernels
