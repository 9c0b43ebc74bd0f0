#include "kernels/gemm_f32/gemm_f32.h"

#include <algorithm>

#include "kernels/parallel.h"

namespace sqz::kernels {

void pack_f32_weights_into(const float* w, int64_t n, int64_t k, int64_t stride_n, int64_t stride_k, PackedF32Weights& out) {
  out.n = n;
  out.k = k;
  out.panels = (n + kF32PanelCols - 1) / kF32PanelCols;
  out.data.resize(static_cast<size_t>(out.panels * k * kF32PanelCols));
  for (int64_t p = 0; p < out.panels; ++p) {
    float* dst = out.data.data() + p * k * kF32PanelCols;
    const int64_t cols = std::min(kF32PanelCols, n - p * kF32PanelCols);
    for (int64_t kk = 0; kk < k; ++kk) {
      const float* src = w + (p * kF32PanelCols) * stride_n + kk * stride_k;
      float* d = dst + kk * kF32PanelCols;
      int64_t j = 0;
      if (stride_n == 1) {  // a [k, n] source (attention's V): each panel row is contiguous
        std::copy(src, src + cols, d);
        j = cols;
      }
      for (; j < cols; ++j) d[j] = src[j * stride_n];
      for (; j < kF32PanelCols; ++j) d[j] = 0.0f;
    }
  }
}

PackedF32Weights pack_f32_weights(const float* w, int64_t n, int64_t k, int64_t stride_n, int64_t stride_k) {
  PackedF32Weights out;
  pack_f32_weights_into(w, n, k, stride_n, stride_k, out);
  return out;
}

void unpack_f32_weights(const PackedF32Weights& p, float* w) {
  for (int64_t j = 0; j < p.n; ++j) {
    const float* col = p.data.data() + (j / kF32PanelCols) * p.k * kF32PanelCols + j % kF32PanelCols;
    for (int64_t kk = 0; kk < p.k; ++kk) w[j * p.k + kk] = col[kk * kF32PanelCols];
  }
}

void apply_gemm_f32_epilogue(const GemmF32Epilogue& e, int64_t m, int64_t j0, int64_t j1, float* c, int64_t ldc, Isa isa) {
  if (e.alpha == 1.0f && !e.bias && !e.residual && e.activation == Activation::kNone) return;
  const bool activate = e.activation != Activation::kNone;
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    const float* res = e.residual ? e.residual + i * e.ldr : nullptr;
    for (int64_t j = j0; j < j1; ++j) {
      float v = e.alpha * row[j];
      if (e.bias) v += e.bias[j];
      if (res && !activate) v += res[j];
      row[j] = v;
    }
    if (!activate) continue;
    activate_rows(e.activation, row + j0, 1, j1 - j0, ldc, isa);  // the residual comes after it
    if (res)
      for (int64_t j = j0; j < j1; ++j) row[j] += res[j];
  }
}

void gemm_f32(const float* a, int64_t m, int64_t lda, const PackedF32Weights& w, float* c, int64_t ldc,
              const GemmF32Epilogue& epilogue, Isa isa) {
  if (m <= 0 || w.n <= 0) return;
  parallel_for(w.panels, [&](int64_t p0, int64_t p1) {
    switch (isa) {
      case Isa::kAvx512Vnni: gemm_f32_panels_avx512(a, m, lda, w, p0, p1, c, ldc); break;
      case Isa::kAvx2: gemm_f32_panels_6x16_avx2(a, m, lda, w, p0, p1, c, ldc); break;
      case Isa::kRef: gemm_f32_panels_ref(a, m, lda, w, p0, p1, c, ldc); break;
    }
    apply_gemm_f32_epilogue(epilogue, m, p0 * kF32PanelCols, std::min(w.n, p1 * kF32PanelCols), c, ldc, isa);
  });
}

}  // namespace sqz::kernels
