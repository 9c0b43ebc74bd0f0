// AVX-512 BF16: the fp32 kernel's register tile (up to 8 rows x 3 panels, 24 zmm accumulators)
// with vdpbf16ps, which adds two products per lane: per k pair, one 64-byte panel load per
// panel and one 32-bit broadcast of the pair per row. K is split into blocks of kKc pairs so
// the tile's panel blocks (3 x 64 B x kKc = 24 KB) stay in L1 while the row tiles stream past.
#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm_bf16/gemm_bf16.h"

namespace sqz::kernels {

// acc + the bf16 pair products of a and b: vdpbf16ps in inline assembly, for the reason given at
// avx512::dpbusd (GCC 12 copies the accumulators after every intrinsic call).
inline __m512 dpbf16(__m512 acc, __m512bh a, __m512bh b) {
  asm("vdpbf16ps %[b], %[a], %[acc]" : [acc] "+v"(acc) : [a] "v"(a), [b] "v"(b));
  return acc;
}

namespace {

constexpr int64_t kKc = 128;  // pairs
constexpr int kMaxRows = 8;
constexpr int kMaxPanels = 3;
constexpr int64_t kPairWords = 2 * kBf16PanelCols;  // uint16 per (panel, pair)

template <int MR, int NP>
void tile(const uint32_t* a, int64_t lda, const uint16_t* panels, int64_t panel_stride, int64_t kc, float* c,
          int64_t ldc, bool accumulate, int64_t n_left) {
  __m512 acc[MR][NP];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 3
    for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_setzero_ps();
  for (int64_t q = 0; q < kc; ++q) {
    __m512bh b[NP];
#pragma GCC unroll 3
    for (int p = 0; p < NP; ++p) b[p] = (__m512bh)_mm512_loadu_si512(panels + p * panel_stride + q * kPairWords);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[r * lda + q]));
#pragma GCC unroll 3
      for (int p = 0; p < NP; ++p) acc[r][p] = dpbf16(acc[r][p], av, b[p]);
    }
  }
#pragma GCC unroll 3
  for (int p = 0; p < NP; ++p) {
    const int64_t cols = std::min(kBf16PanelCols, n_left - p * kBf16PanelCols);
    const __mmask16 mask = cols >= kBf16PanelCols ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << cols) - 1);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      float* out = c + r * ldc + p * kBf16PanelCols;
      __m512 v = acc[r][p];
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, out));
      _mm512_mask_storeu_ps(out, mask, v);
    }
  }
}

using TileFn = void (*)(const uint32_t*, int64_t, const uint16_t*, int64_t, int64_t, float*, int64_t, bool, int64_t);

template <int NP>
constexpr TileFn kRowTiles[kMaxRows + 1] = {nullptr,      tile<1, NP>, tile<2, NP>, tile<3, NP>, tile<4, NP>,
                                            tile<5, NP>, tile<6, NP>, tile<7, NP>, tile<8, NP>};

template <int NP>
void strip(const uint32_t* a, int64_t m, int64_t lda, const PackedBf16Weights& w, int64_t p, float* c, int64_t ldc) {
  const int64_t panel_stride = w.k_pairs * kPairWords;
  const uint16_t* panels = w.data.data() + p * panel_stride;
  float* cp = c + p * kBf16PanelCols;
  const int64_t n_left = w.n - p * kBf16PanelCols;
  for (int64_t q0 = 0; q0 < w.k_pairs; q0 += kKc) {
    const int64_t kc = std::min(kKc, w.k_pairs - q0);
    int64_t i = 0;
    for (; i + kMaxRows <= m; i += kMaxRows)
      tile<kMaxRows, NP>(a + i * lda + q0, lda, panels + q0 * kPairWords, panel_stride, kc, cp + i * ldc, ldc, q0 > 0,
                         n_left);
    if (i < m)
      kRowTiles<NP>[m - i](a + i * lda + q0, lda, panels + q0 * kPairWords, panel_stride, kc, cp + i * ldc, ldc, q0 > 0,
                           n_left);
  }
}

}  // namespace

void gemm_bf16_panels_avx512bf16(const uint32_t* a, int64_t m, int64_t lda_pairs, const PackedBf16Weights& w,
                                 int64_t p0, int64_t p1, float* c, int64_t ldc) {
  if (w.k_pairs == 0) {  // an empty sum: zeros, as the other ISAs write
    for (int64_t i = 0; i < m; ++i)
      std::fill(c + i * ldc + p0 * kBf16PanelCols, c + i * ldc + std::min(w.n, p1 * kBf16PanelCols), 0.0f);
    return;
  }
  for (int64_t p = p0; p < p1; p += kMaxPanels) {
    switch (std::min<int64_t>(kMaxPanels, p1 - p)) {
      case 3: strip<3>(a, m, lda_pairs, w, p, c, ldc); break;
      case 2: strip<2>(a, m, lda_pairs, w, p, c, ldc); break;
      default: strip<1>(a, m, lda_pairs, w, p, c, ldc); break;
    }
  }
}

void round_rows_to_bf16_avx512bf16(const float* a, int64_t m, int64_t k, int64_t lda, uint32_t* out) {
  const int64_t words = 2 * ((k + 1) / 2);  // per output row, including the odd-k zero pad
  for (int64_t i = 0; i < m; ++i) {
    uint16_t* dst = reinterpret_cast<uint16_t*>(out) + i * words;
    for (int64_t k0 = 0; k0 < words; k0 += 16) {
      const int64_t in = std::clamp<int64_t>(k - k0, 0, 16), outn = std::min<int64_t>(16, words - k0);
      const __m512 x = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << in) - 1), a + i * lda + k0);
      const __m256i h = (__m256i)_mm512_cvtneps_pbh(x);
      _mm256_mask_storeu_epi16(dst + k0, static_cast<__mmask16>((1u << outn) - 1), h);
    }
  }
}

}  // namespace sqz::kernels
