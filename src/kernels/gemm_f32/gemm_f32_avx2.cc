// AVX2 + FMA: a 6-row x 16-column register tile (12 ymm accumulators, 2 for the panel, 1 for the
// broadcast). K is split into blocks of kKc so a panel block (16 x kKc floats) stays in L1 while
// every row tile of A streams past it; partial sums accumulate in C between k blocks.
#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm_f32/gemm_f32.h"

namespace sqz::kernels {

namespace {

constexpr int64_t kKc = 256;

template <int MR>
void tile(const float* a, int64_t lda, const float* panel, int64_t kc, float* c, int64_t ldc, bool accumulate,
          int64_t cols) {
  __m256 acc[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t kk = 0; kk < kc; ++kk) {
    const __m256 b0 = _mm256_loadu_ps(panel + kk * kF32PanelCols);
    const __m256 b1 = _mm256_loadu_ps(panel + kk * kF32PanelCols + 8);
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + kk);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  if (cols == kF32PanelCols) {
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
      float* row = c + r * ldc;
      if (accumulate) {
        acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(row));
        acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, acc[r][0]);
      _mm256_storeu_ps(row + 8, acc[r][1]);
    }
    return;
  }
  alignas(32) float buf[kF32PanelCols];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    _mm256_store_ps(buf, acc[r][0]);
    _mm256_store_ps(buf + 8, acc[r][1]);
    float* row = c + r * ldc;
    for (int64_t j = 0; j < cols; ++j) row[j] = accumulate ? row[j] + buf[j] : buf[j];
  }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, bool, int64_t);
constexpr TileFn kTails[6] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>, tile<5>};

}  // namespace

void gemm_f32_panels_6x16_avx2(const float* a, int64_t m, int64_t lda, const PackedF32Weights& w, int64_t p0, int64_t p1,
                               float* c, int64_t ldc) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* panel = w.data.data() + p * w.k * kF32PanelCols;
    const int64_t cols = std::min(kF32PanelCols, w.n - p * kF32PanelCols);
    float* cp = c + p * kF32PanelCols;
    if (w.k == 0) {
      for (int64_t i = 0; i < m; ++i) std::fill(cp + i * ldc, cp + i * ldc + cols, 0.0f);
      continue;
    }
    for (int64_t k0 = 0; k0 < w.k; k0 += kKc) {
      const int64_t kc = std::min(kKc, w.k - k0);
      const bool accumulate = k0 > 0;
      int64_t i = 0;
      for (; i + 6 <= m; i += 6) tile<6>(a + i * lda + k0, lda, panel + k0 * kF32PanelCols, kc, cp + i * ldc, ldc, accumulate, cols);
      if (i < m) kTails[m - i](a + i * lda + k0, lda, panel + k0 * kF32PanelCols, kc, cp + i * ldc, ldc, accumulate, cols);
    }
  }
}

}  // namespace sqz::kernels
