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

void int8_linear_forward(const Int8Linear& layer, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, Isa isa,
                         const float* residual, int64_t ldr, Activation activation) {
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
  const AffineParams* fixed = layer.static_input ? &*layer.static_input : nullptr;
  parallel_for(m, [&](int64_t r0, int64_t r1) {
    quantize_rows_u8(x + r0 * ldx, r1 - r0, w.k, ldx, qd + r0 * w.k, pd + r0, fixed, isa);
  });
  if (layer.sparse) gemm_u8s8s32_sparse24(qd, m, w.k, *layer.sparse, acc.data(), w.n, isa);
  else gemm_u8s8s32(qd, m, w.k, w, acc.data(), w.n, isa);
  DequantizeArgs args{acc.data(), pd, layer.w_scale.data(), w.column_sums.data(),
                      layer.bias.empty() ? nullptr : layer.bias.data(), residual, ldr, activation};
  parallel_for(m, [&](int64_t r0, int64_t r1) {
    DequantizeArgs rows = args;
    rows.acc += r0 * w.n;
    rows.a += r0;
    if (rows.residual) rows.residual += r0 * ldr;
    dequantize_rows(rows, r1 - r0, w.n, y + r0 * ldy, ldy, isa);
  });
}

}  // namespace sqz::kernels
