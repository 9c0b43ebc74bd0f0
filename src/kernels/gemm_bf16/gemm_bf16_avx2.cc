// AVX2 (no bf16 instructions): a bf16 value is the top half of an fp32, so each packed 32-bit
// lane (even k low, odd k high) becomes two fp32 vectors by a shift and a mask, then FMA. Tile:
// up to 6 rows x 16 columns, the even and the odd product of a pair one after the other (12
// accumulators + 2 weight vectors + 1 broadcast). K is split into blocks of kKc pairs (8 KB of
// panel) that stay in L1 while the row tiles stream past.
#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm_bf16/gemm_bf16.h"

namespace sqz::kernels {

namespace {

constexpr int64_t kKc = 128;  // pairs
constexpr int kMaxRows = 6;
constexpr int64_t kPairWords = 2 * kBf16PanelCols;

template <int MR>
void tile(const uint32_t* a, int64_t lda, const uint16_t* panel, int64_t kc, float* c, int64_t ldc, bool accumulate,
          int64_t cols) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  for (int64_t q = 0; q < kc; ++q) {
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + q * kPairWords));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + q * kPairWords + kBf16PanelCols));
    __m256 b0 = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16)), b1 = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16));
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(a[r * lda + q] << 16)));
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
    b0 = _mm256_castsi256_ps(_mm256_and_si256(w0, high));
    b1 = _mm256_castsi256_ps(_mm256_and_si256(w1, high));
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(a[r * lda + q] & 0xFFFF0000u)));
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* out = c + r * ldc;
    if (cols == kBf16PanelCols) {
      __m256 v0 = acc[r][0], v1 = acc[r][1];
      if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(out));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(out + 8));
      }
      _mm256_storeu_ps(out, v0);
      _mm256_storeu_ps(out + 8, v1);
      continue;
    }
    alignas(32) float tmp[kBf16PanelCols];  // a narrow last panel: write only its columns
    _mm256_store_ps(tmp, acc[r][0]);
    _mm256_store_ps(tmp + 8, acc[r][1]);
    for (int64_t j = 0; j < cols; ++j) out[j] = accumulate ? out[j] + tmp[j] : tmp[j];
  }
}

using TileFn = void (*)(const uint32_t*, int64_t, const uint16_t*, int64_t, float*, int64_t, bool, int64_t);
constexpr TileFn kRowTiles[kMaxRows + 1] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>};

}  // namespace

void gemm_bf16_panels_avx2(const uint32_t* a, int64_t m, int64_t lda_pairs, const PackedBf16Weights& w, int64_t p0,
                           int64_t p1, float* c, int64_t ldc) {
  for (int64_t p = p0; p < p1; ++p) {
    const uint16_t* panel = w.data.data() + p * w.k_pairs * kPairWords;
    const int64_t cols = std::min(kBf16PanelCols, w.n - p * kBf16PanelCols);
    float* cp = c + p * kBf16PanelCols;
    if (w.k_pairs == 0) {  // an empty sum: zeros
      for (int64_t i = 0; i < m; ++i) std::fill(cp + i * ldc, cp + i * ldc + cols, 0.0f);
      continue;
    }
    for (int64_t q0 = 0; q0 < w.k_pairs; q0 += kKc) {
      const int64_t kc = std::min(kKc, w.k_pairs - q0);
      for (int64_t i = 0; i < m; i += kMaxRows) {
        const int64_t rows = std::min<int64_t>(kMaxRows, m - i);
        kRowTiles[rows](a + i * lda_pairs + q0, lda_pairs, panel + q0 * kPairWords, kc, cp + i * ldc, ldc, q0 > 0, cols);
      }
    }
  }
}

}  // namespace sqz::kernels
