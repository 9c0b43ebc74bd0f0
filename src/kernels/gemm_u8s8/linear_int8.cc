#include "kernels/gemm_u8s8/linear_int8.h"

#include <algorithm>

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
  if (m <= 0 || w.n <= 0) return;
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
  // One parallel region for the GEMM and the dequantization: each thread takes strips of
  // kStripBlocks column blocks (one register-tile strip) and dequantizes a strip's columns for
  // every row while its int32 results are still in cache, instead of a second pass over all of acc.
  constexpr int64_t kStripBlocks = 3;
  const int64_t n_blocks = (w.n + kPackCols - 1) / kPackCols, strips = (n_blocks + kStripBlocks - 1) / kStripBlocks;
  int32_t* accd = acc.data();
  const DequantizeArgs args{accd, pd, layer.w_scale.data(), w.column_sums.data(), layer.bias.empty() ? nullptr : layer.bias.data(),
                            residual, ldr, activation, w.n};
  parallel_for(strips, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t nb0 = s * kStripBlocks, nb1 = std::min(n_blocks, nb0 + kStripBlocks);
      if (layer.sparse) gemm_u8s8s32_sparse24_blocks(qd, m, w.k, *layer.sparse, nb0, nb1, accd, w.n, isa);
      else gemm_u8s8s32_blocks(qd, m, w.k, w, nb0, nb1, accd, w.n, isa);
      const int64_t j0 = nb0 * kPackCols, j1 = std::min(w.n, nb1 * kPackCols);
      DequantizeArgs cols = args;
      cols.acc += j0;
      cols.w_scale += j0;
      cols.column_sums += j0;
      if (cols.bias) cols.bias += j0;
      if (cols.residual) cols.residual += j0;
      dequantize_rows(cols, m, j1 - j0, y + j0, ldy, isa);
    }
  });
}

}  // namespace sqz::kernels
