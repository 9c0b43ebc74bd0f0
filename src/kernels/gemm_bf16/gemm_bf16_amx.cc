// AMX-BF16: the bf16 GEMM on tiles. The bf16 packing is already what tdpbf16ps takes as its B
// operand: a panel's 16 k pairs are 16 rows of 64 bytes (16 columns x 2 k) at a 64-byte stride;
// the rounded activations (one 32-bit pair per k pair) are its A rows as they lie. Register tile:
// up to 32 rows x 32 columns in 4 accumulator tiles (2 row blocks x 2 panels), fed per 32 k by
// 2 tiles of activations and 2 of weights; a lone panel or a lone 16-row block uses the same
// tiles with fewer accumulators, so every full panel sums its products in the same order however
// the panels are split across threads. What tiles do not cover (a k whose pairs are not a
// multiple of 16, rows past the last 16, a partial last panel) runs on the AVX-512 BF16 kernel.
#include <immintrin.h>

#include <algorithm>

#include "kernels/amx_tiles.h"
#include "kernels/gemm_bf16/gemm_bf16.h"

namespace sqz::kernels {

namespace {

constexpr int64_t kTileRows = 16;
constexpr int64_t kPairWords = 2 * kBf16PanelCols;  // uint16 per (panel, pair): one 64-byte tile row

// c[0..16*RB)[0..16*CB) = the RB row blocks of a x the CB panels at b (panel stride panel_words).
template <int RB, int CB>
void tile_block(const uint32_t* a, int64_t lda_pairs, const uint16_t* b, int64_t panel_words, int64_t k_pairs, float* c,
                int64_t ldc) {
  _tile_zero(0);
  if constexpr (CB == 2) _tile_zero(1);
  if constexpr (RB == 2) _tile_zero(2);
  if constexpr (RB == 2 && CB == 2) _tile_zero(3);
  const int64_t a_stride = lda_pairs * static_cast<int64_t>(sizeof(uint32_t));
  for (int64_t q = 0; q < k_pairs; q += kTileRows) {
    _tile_loadd(4, a + q, a_stride);
    if constexpr (RB == 2) _tile_loadd(5, a + kTileRows * lda_pairs + q, a_stride);
    _tile_loadd(6, b + q * kPairWords, kPairWords * 2);
    if constexpr (CB == 2) _tile_loadd(7, b + panel_words + q * kPairWords, kPairWords * 2);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (CB == 2) _tile_dpbf16ps(1, 4, 7);
    if constexpr (RB == 2) _tile_dpbf16ps(2, 5, 6);
    if constexpr (RB == 2 && CB == 2) _tile_dpbf16ps(3, 5, 7);
  }
  const int64_t stride = ldc * static_cast<int64_t>(sizeof(float));
  _tile_stored(0, c, stride);
  if constexpr (CB == 2) _tile_stored(1, c + kBf16PanelCols, stride);
  if constexpr (RB == 2) _tile_stored(2, c + kTileRows * ldc, stride);
  if constexpr (RB == 2 && CB == 2) _tile_stored(3, c + kTileRows * ldc + kBf16PanelCols, stride);
}

// Rows [0, rows) (a multiple of 16) x panels [p0, p1), every panel full.
template <int CB>
void panel_blocks(const uint32_t* a, int64_t rows, int64_t lda_pairs, const PackedBf16Weights& w, int64_t p, float* c,
                  int64_t ldc) {
  const int64_t panel_words = w.k_pairs * kPairWords;
  const uint16_t* b = w.data.data() + p * panel_words;
  float* cp = c + p * kBf16PanelCols;
  int64_t r = 0;
  for (; r + 2 * kTileRows <= rows; r += 2 * kTileRows)
    tile_block<2, CB>(a + r * lda_pairs, lda_pairs, b, panel_words, w.k_pairs, cp + r * ldc, ldc);
  if (r < rows) tile_block<1, CB>(a + r * lda_pairs, lda_pairs, b, panel_words, w.k_pairs, cp + r * ldc, ldc);
}

}  // namespace

void gemm_bf16_panels_amx(const uint32_t* a, int64_t m, int64_t lda_pairs, const PackedBf16Weights& w, int64_t p0,
                          int64_t p1, float* c, int64_t ldc) {
  const int64_t rows = m / kTileRows * kTileRows;
  const int64_t full_panels = std::min(p1, w.n / kBf16PanelCols);  // panels past it are partial
  if (w.k_pairs == 0 || w.k_pairs % kTileRows != 0 || rows == 0 || full_panels <= p0)
    return gemm_bf16_panels_avx512bf16(a, m, lda_pairs, w, p0, p1, c, ldc);
  amx::configure_16x64_tiles(8);
  int64_t p = p0;
  for (; p + 2 <= full_panels; p += 2) panel_blocks<2>(a, rows, lda_pairs, w, p, c, ldc);
  if (p < full_panels) panel_blocks<1>(a, rows, lda_pairs, w, p++, c, ldc);
  _tile_release();
  if (rows < m) gemm_bf16_panels_avx512bf16(a + rows * lda_pairs, m - rows, lda_pairs, w, p0, p, c + rows * ldc, ldc);
  if (p < p1) gemm_bf16_panels_avx512bf16(a, m, lda_pairs, w, p, p1, c, ldc);
}

}  // namespace sqz::kernels
