// AVX-512 VNNI: a 4-row x 64-column register tile (16 zmm accumulators); each step broadcasts
// 4 activation bytes per row and issues vpdpbusd against 4 packed weight blocks.
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm_u8s8/gemm_u8s8.h"

namespace sqz::kernels {

namespace {

constexpr int kMaxRows = 4;
constexpr int kMaxBlocks = 4;  // 4 x 16 = 64 columns

inline int32_t load4_tail(const uint8_t* p, int64_t valid) {
  uint8_t buf[4] = {0, 0, 0, 0};
  for (int64_t t = 0; t < valid; ++t) buf[t] = p[t];
  int32_t v;
  std::memcpy(&v, buf, 4);
  return v;
}

template <int MR, int NB>
void tile(const uint8_t* a, int64_t lda, const PackedS8Weights& w, int64_t nb0, int32_t* c, int64_t ldc) {
  __m512i acc[MR][NB];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) acc[r][i] = _mm512_setzero_si512();
  const int64_t block_stride = w.k_groups * kPackCols * kPackK;
  const int8_t* base = w.data.data() + nb0 * block_stride;
  const int64_t full = w.k / kPackK;
  for (int64_t g = 0; g < w.k_groups; ++g) {
    __m512i b[NB];
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) b[i] = _mm512_loadu_si512(base + i * block_stride + g * kPackCols * kPackK);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const uint8_t* row = a + r * lda + g * kPackK;
      int32_t a4;
      if (g < full) std::memcpy(&a4, row, 4);
      else a4 = load4_tail(row, w.k - g * kPackK);
      __m512i av = _mm512_set1_epi32(a4);
#pragma GCC unroll 4
      for (int i = 0; i < NB; ++i) acc[r][i] = _mm512_dpbusd_epi32(acc[r][i], av, b[i]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < NB; ++i) {
    int64_t j0 = (nb0 + i) * kPackCols;
    int64_t cols = std::min<int64_t>(kPackCols, w.n - j0);
    __mmask16 mask = cols >= kPackCols ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << cols) - 1);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) _mm512_mask_storeu_epi32(c + r * ldc + j0, mask, acc[r][i]);
  }
}

template <int MR>
void row_block(const uint8_t* a, int64_t lda, const PackedS8Weights& w, int64_t nb0, int64_t nb1, int32_t* c,
               int64_t ldc) {
  int64_t nb = nb0;
  for (; nb + kMaxBlocks <= nb1; nb += kMaxBlocks) tile<MR, kMaxBlocks>(a, lda, w, nb, c, ldc);
  switch (nb1 - nb) {
    case 3: tile<MR, 3>(a, lda, w, nb, c, ldc); break;
    case 2: tile<MR, 2>(a, lda, w, nb, c, ldc); break;
    case 1: tile<MR, 1>(a, lda, w, nb, c, ldc); break;
    default: break;
  }
}

}  // namespace

void gemm_u8s8s32_4x64_avx512vnni(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int64_t nb0,
                                  int64_t nb1, int32_t* c, int64_t ldc) {
  int64_t i = 0;
  for (; i + kMaxRows <= m; i += kMaxRows) row_block<kMaxRows>(a + i * lda, lda, w, nb0, nb1, c + i * ldc, ldc);
  switch (m - i) {
    case 3: row_block<3>(a + i * lda, lda, w, nb0, nb1, c + i * ldc, ldc); break;
    case 2: row_block<2>(a + i * lda, lda, w, nb0, nb1, c + i * ldc, ldc); break;
    case 1: row_block<1>(a + i * lda, lda, w, nb0, nb1, c + i * ldc, ldc); break;
    default: break;
  }
}

}  // namespace sqz::kernels
