// AVX2 (no VNNI): per window of 8 k, one load of 8 activations widened to int16 and copied to
// both 128-bit halves; per quad of 4 columns a vpshufb (control precomputed at pack time) puts
// each column's 4 kept activations next to its 4 kept weights, and one vpmaddwd multiplies them —
// half the multiply-adds of the dense kernel for the same k. Exact in int32.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/gemm_sparse24/gemm_sparse24.h"
#include "kernels/gemm_u8s8/avx2_pair_lanes.h"

namespace sqz::kernels {

namespace {

inline __m256i load_window(const uint8_t* p, int64_t valid) {
  int64_t v = 0;
  if (valid >= kSparseWindow) std::memcpy(&v, p, 8);
  else if (valid > 0) std::memcpy(&v, p, static_cast<size_t>(valid));
  const __m128i w16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(v));
  return _mm256_broadcastsi128_si256(w16);
}

// The vpshufb control of one quad from its 16 2-bit positions: int16 lane L (column L/4, slot
// L%4) takes window element p = 4*(slot/2) + pos, i.e. bytes 2p and 2p+1.
inline __m256i controls_from_bits(uint32_t bits) {
  const __m256i w = _mm256_set1_epi32(static_cast<int>(bits));
  const __m256i three = _mm256_set1_epi32(3);
  const __m256i lo = _mm256_and_si256(_mm256_srlv_epi32(w, _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)), three);
  const __m256i hi = _mm256_and_si256(_mm256_srlv_epi32(w, _mm256_setr_epi32(16, 18, 20, 22, 24, 26, 28, 30)), three);
  __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8);  // lanes back in order 0..15
  p = _mm256_add_epi16(p, _mm256_setr_epi16(0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4));
  return _mm256_add_epi16(_mm256_mullo_epi16(p, _mm256_set1_epi16(0x0202)), _mm256_set1_epi16(0x0100));
}

// Decode: one row, the controls built from the 2-bit positions (less to stream than the
// precomputed controls when every weight is read once per token).
void row_from_bits(const uint8_t* a, const PackedS8Sparse24& w, int64_t nb, int32_t* c) {
  __m256i acc[4];
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) acc[q] = _mm256_setzero_si256();
  const int8_t* values = w.values.data() + nb * w.windows * 64;
  const uint32_t* bits = w.positions2.data() + nb * w.windows * 4;
  for (int64_t win = 0; win < w.windows; ++win) {
    const __m256i av = load_window(a + win * kSparseWindow, w.k - win * kSparseWindow);
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(values + win * 64 + 16 * q)));
      const __m256i s = controls_from_bits(bits[win * 4 + q]);
      acc[q] = _mm256_add_epi32(acc[q], _mm256_madd_epi16(_mm256_shuffle_epi8(av, s), b));
    }
  }
  const int64_t j0 = nb * kSparseCols;
  avx2::store_pair_lanes(acc, c + j0, std::min<int64_t>(kSparseCols, w.n - j0));
}

template <int MR>
void tile(const uint8_t* a, int64_t lda, const PackedS8Sparse24& w, int64_t nb, int32_t* c, int64_t ldc) {
  __m256i acc[MR][4];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_setzero_si256();
  const int8_t* values = w.values.data() + nb * w.windows * 64;
  const uint8_t* shuffles = w.shuffle_avx2.data() + nb * w.windows * 128;
  for (int64_t win = 0; win < w.windows; ++win) {
    __m256i b[4], s[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      b[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(values + win * 64 + 16 * q)));
      s[q] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(shuffles + win * 128 + 32 * q));
    }
    const int64_t valid = w.k - win * kSparseWindow;
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256i av = load_window(a + r * lda + win * kSparseWindow, valid);
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(_mm256_shuffle_epi8(av, s[q]), b[q]));
    }
  }
  const int64_t j0 = nb * kSparseCols;
  const int64_t cols = std::min<int64_t>(kSparseCols, w.n - j0);
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) avx2::store_pair_lanes(acc[r], c + r * ldc + j0, cols);
}

}  // namespace

void gemm_u8s8s32_sparse24_avx2(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Sparse24& w, int64_t nb0, int64_t nb1,
                                int32_t* c, int64_t ldc) {
  if (m <= 2) {
    for (int64_t nb = nb0; nb < nb1; ++nb)
      for (int64_t i = 0; i < m; ++i) row_from_bits(a + i * lda, w, nb, c + i * ldc);
    return;
  }
  for (int64_t nb = nb0; nb < nb1; ++nb) {
    int64_t i = 0;
    for (; i + 3 <= m; i += 3) tile<3>(a + i * lda, lda, w, nb, c + i * ldc, ldc);
    for (; i + 2 <= m; i += 2) tile<2>(a + i * lda, lda, w, nb, c + i * ldc, ldc);
    if (i < m) tile<1>(a + i * lda, lda, w, nb, c + i * ldc, ldc);
  }
}

}  // namespace sqz::kernels
