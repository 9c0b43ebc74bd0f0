// AVX-512F: a register tile of up to 8 rows x 3 panels (48 columns; 24 zmm accumulators, one
// zmm per panel row of 16, one broadcast). K is split into blocks of kKc so the tile's panel
// blocks (3 x 16 x kKc floats = 24 KB) stay in L1 while every row tile streams past them;
// partial sums accumulate in C between k blocks.
#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm_f32/gemm_f32.h"

namespace sqz::kernels {

namespace {

constexpr int64_t kKc = 128;
constexpr int kMaxRows = 8;
constexpr int kMaxPanels = 3;

template <int MR, int NP>
void tile(const float* a, int64_t lda, const float* panels, int64_t panel_stride, int64_t kc, float* c, int64_t ldc,
          bool accumulate, int64_t n_left) {
  __m512 acc[MR][NP];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 3
    for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < kc; ++kk) {
    __m512 b[NP];
#pragma GCC unroll 3
    for (int p = 0; p < NP; ++p) b[p] = _mm512_loadu_ps(panels + p * panel_stride + kk * kF32PanelCols);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + kk]);
#pragma GCC unroll 3
      for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_fmadd_ps(av, b[p], acc[r][p]);
    }
  }
#pragma GCC unroll 3
  for (int p = 0; p < NP; ++p) {
    const int64_t cols = std::min(kF32PanelCols, n_left - p * kF32PanelCols);
    const __mmask16 mask = cols >= kF32PanelCols ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << cols) - 1);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      float* out = c + r * ldc + p * kF32PanelCols;
      __m512 v = acc[r][p];
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, out));
      _mm512_mask_storeu_ps(out, mask, v);
    }
  }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t, bool, int64_t);

template <int NP>
constexpr TileFn kRowTiles[kMaxRows + 1] = {nullptr,      tile<1, NP>, tile<2, NP>, tile<3, NP>, tile<4, NP>,
                                            tile<5, NP>, tile<6, NP>, tile<7, NP>, tile<8, NP>};

template <int NP>
void strip(const float* a, int64_t m, int64_t lda, const PackedF32Weights& w, int64_t p, float* c, int64_t ldc) {
  const int64_t panel_stride = w.k * kF32PanelCols;
  const float* panels = w.data.data() + p * panel_stride;
  float* cp = c + p * kF32PanelCols;
  const int64_t n_left = w.n - p * kF32PanelCols;
  for (int64_t k0 = 0; k0 < w.k; k0 += kKc) {
    const int64_t kc = std::min(kKc, w.k - k0);
    int64_t i = 0;
    for (; i + kMaxRows <= m; i += kMaxRows)
      tile<kMaxRows, NP>(a + i * lda + k0, lda, panels + k0 * kF32PanelCols, panel_stride, kc, cp + i * ldc, ldc, k0 > 0,
                         n_left);
    if (i < m)
      kRowTiles<NP>[m - i](a + i * lda + k0, lda, panels + k0 * kF32PanelCols, panel_stride, kc, cp + i * ldc, ldc, k0 > 0,
                           n_left);
  }
}

}  // namespace

void gemm_f32_panels_avx512(const float* a, int64_t m, int64_t lda, const PackedF32Weights& w, int64_t p0, int64_t p1,
                            float* c, int64_t ldc) {
  if (w.k == 0) {  // an empty sum: zeros, as the other ISAs write
    for (int64_t i = 0; i < m; ++i)
      std::fill(c + i * ldc + p0 * kF32PanelCols, c + i * ldc + std::min(w.n, p1 * kF32PanelCols), 0.0f);
    return;
  }
  for (int64_t p = p0; p < p1; p += kMaxPanels) {
    switch (std::min<int64_t>(kMaxPanels, p1 - p)) {
      case 3: strip<3>(a, m, lda, w, p, c, ldc); break;
      case 2: strip<2>(a, m, lda, w, p, c, ldc); break;
      default: strip<1>(a, m, lda, w, p, c, ldc); break;
    }
  }
}

}  // namespace sqz::kernels
