// AVX2 (no VNNI): weights and activations are widened to int16 and multiplied with vpmaddwd,
// which is exact (vpmaddubsw would saturate u8*s8 pair sums at int16). A 2-row x 16-column tile
// keeps pair sums per lane and folds them with vphaddd at the end.
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm_u8s8/avx2_pair_lanes.h"
#include "kernels/gemm_u8s8/gemm_u8s8.h"

namespace sqz::kernels {

namespace {

constexpr int kRows = 3;

inline int32_t load4(const uint8_t* p, int64_t valid) {
  if (valid >= 4) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
  uint8_t buf[4] = {0, 0, 0, 0};
  for (int64_t t = 0; t < valid; ++t) buf[t] = p[t];
  int32_t v;
  std::memcpy(&v, buf, 4);
  return v;
}

template <int MR>
void tile(const uint8_t* a, int64_t lda, const PackedS8Weights& w, int64_t nb, int32_t* c, int64_t ldc) {
  __m256i acc[MR][4];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_setzero_si256();
  const int8_t* block = w.data.data() + nb * w.k_groups * kPackCols * kPackK;
  for (int64_t g = 0; g < w.k_groups; ++g) {
    const int8_t* bg = block + g * kPackCols * kPackK;
    __m256i b[4];
    for (int q = 0; q < 4; ++q) b[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bg + 16 * q)));
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      int32_t a4 = load4(a + r * lda + g * kPackK, w.k - g * kPackK);
      __m256i av = _mm256_cvtepu8_epi16(_mm_set1_epi32(a4));
      for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(av, b[q]));
    }
  }
  int64_t j0 = nb * kPackCols;
  int64_t cols = std::min<int64_t>(kPackCols, w.n - j0);
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) avx2::store_pair_lanes(acc[r], c + r * ldc + j0, cols);
}

}  // namespace

void gemm_u8s8s32_avx2(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int64_t nb0, int64_t nb1,
                       int32_t* c, int64_t ldc) {
  for (int64_t nb = nb0; nb < nb1; ++nb) {
    int64_t i = 0;
    for (; i + kRows <= m; i += kRows) tile<kRows>(a + i * lda, lda, w, nb, c + i * ldc, ldc);
    for (; i < m; ++i) tile<1>(a + i * lda, lda, w, nb, c + i * ldc, ldc);
  }
}

}  // namespace sqz::kernels
