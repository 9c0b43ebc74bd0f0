// AMX-INT8: the dense int8 GEMM on tiles. The VNNI packing is already what tdpbusd takes as its B
// operand: a column block's 16 k groups are 16 rows of 64 bytes (16 columns x 4 k) at a 64-byte
// stride. Register tile: 32 rows x 32 columns in 4 accumulator tiles, fed per 64 k by 2 tiles of
// activations (16 rows x 64 u8, straight from the row-major input) and 2 of weights; column pairs
// are the outer loop so their weights stay in cache while every row block passes over them.
// What tiles do not cover (k not a multiple of 64, rows past the last 32, an odd or partial last
// column block) runs on the AVX-512 VNNI kernel, so results are exact and equal either way.
#include <immintrin.h>

#include "kernels/amx_tiles.h"
#include "kernels/gemm_u8s8/gemm_u8s8.h"

namespace sqz::kernels {

namespace {

// c[r0..r0+31][j0..j0+31] = a rows x the two column blocks at b0 and b1 (k_groups rows each).
void tile_32x32(const uint8_t* a, int64_t lda, const int8_t* b0, const int8_t* b1, int64_t k_groups, int32_t* c, int64_t ldc) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t g = 0; g < k_groups; g += 16) {
    _tile_loadd(4, a + g * kPackK, lda);
    _tile_loadd(5, a + 16 * lda + g * kPackK, lda);
    _tile_loadd(6, b0 + g * kPackCols * kPackK, kPackCols * kPackK);
    _tile_loadd(7, b1 + g * kPackCols * kPackK, kPackCols * kPackK);
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
  }
  const int64_t stride = ldc * static_cast<int64_t>(sizeof(int32_t));
  _tile_stored(0, c, stride);
  _tile_stored(1, c + kPackCols, stride);
  _tile_stored(2, c + 16 * ldc, stride);
  _tile_stored(3, c + 16 * ldc + kPackCols, stride);
}

}  // namespace

void gemm_u8s8s32_amx(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int64_t nb0, int64_t nb1, int32_t* c,
                      int64_t ldc) {
  if (w.k % 64 != 0 || m < 32) return gemm_u8s8s32_avx512vnni(a, m, lda, w, nb0, nb1, c, ldc);
  const int64_t rows = m / 32 * 32, block_bytes = w.k_groups * kPackCols * kPackK;
  int64_t nb = nb0;
  amx::configure_16x64_tiles(8);
  for (; nb + 2 <= nb1 && (nb + 2) * kPackCols <= w.n; nb += 2) {
    const int8_t* b0 = w.data.data() + nb * block_bytes;
    for (int64_t r = 0; r < rows; r += 32)
      tile_32x32(a + r * lda, lda, b0, b0 + block_bytes, w.k_groups, c + r * ldc + nb * kPackCols, ldc);
  }
  _tile_release();
  if (rows < m && nb > nb0) gemm_u8s8s32_avx512vnni(a + rows * lda, m - rows, lda, w, nb0, nb, c + rows * ldc, ldc);
  if (nb < nb1) gemm_u8s8s32_avx512vnni(a, m, lda, w, nb, nb1, c, ldc);
}

}  // namespace sqz::kernels
