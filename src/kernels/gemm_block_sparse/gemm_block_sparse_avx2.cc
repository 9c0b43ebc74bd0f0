// AVX2 block-sparse kernel (no VNNI): rows in the 8 int32 lanes of a ymm. Each row's 4 u8
// activations of a block are split into even and odd bytes as int16 pairs and multiplied with
// vpmaddwd against the output's sign-extended weight bytes, so no product saturates (vpmaddubsw
// would). Tile: up to 16 rows (2 ymm) x 4 outputs. Up to 4 rows (decode) use one ymm per row.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/gemm_block_sparse/gemm_block_sparse.h"

namespace sqz::kernels {

namespace {

constexpr int kMaxVectors = 2;  // 16 rows

// Writes `outputs` (<= 4) int32 of one row.
inline void store_row(int32_t* c, __m128i v, int64_t outputs) {
  if (outputs >= 4) return _mm_storeu_si128(reinterpret_cast<__m128i*>(c), v);
  alignas(16) int32_t tmp[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(tmp), v);
  std::memcpy(c, tmp, static_cast<size_t>(outputs) * sizeof(int32_t));
}

template <int R>
void store_tile(const __m256i (&acc)[R][4], int32_t* c, int64_t ldc, int64_t rows, int64_t outputs) {
  for (int r = 0; r < R; ++r) {
    const __m256i t0 = _mm256_unpacklo_epi32(acc[r][0], acc[r][1]), t1 = _mm256_unpackhi_epi32(acc[r][0], acc[r][1]);
    const __m256i t2 = _mm256_unpacklo_epi32(acc[r][2], acc[r][3]), t3 = _mm256_unpackhi_epi32(acc[r][2], acc[r][3]);
    const __m256i u[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2), _mm256_unpacklo_epi64(t1, t3),
                          _mm256_unpackhi_epi64(t1, t3)};
    for (int q = 0; q < 2; ++q)
      for (int j = 0; j < 4; ++j) {
        const int64_t row = 8 * r + 4 * q + j;
        if (row >= rows) return;
        store_row(c + row * ldc, q == 0 ? _mm256_castsi256_si128(u[j]) : _mm256_extracti128_si256(u[j], 1), outputs);
      }
  }
}

template <int R>
void panel(const uint8_t* at, int64_t m_pad, int64_t r0, int64_t rows, const PackedS8BlockSparse& w, int64_t o,
           int32_t* c, int64_t ldc) {
  __m256i acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < 4; ++i) acc[r][i] = _mm256_setzero_si256();
  const __m256i low_bytes = _mm256_set1_epi16(0x00FF);
  const int32_t* words = reinterpret_cast<const int32_t*>(w.values.data());
  const int32_t* ks = w.block_k.data();
  for (int64_t b = w.group_start[o], end = w.group_start[o + 1]; b < end; ++b) {
    const uint8_t* x = at + (ks[b] * m_pad + r0) * kBlockK;
    __m256i even[R], odd[R];
    for (int r = 0; r < R; ++r) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32 * r));
      even[r] = _mm256_and_si256(xv, low_bytes);  // bytes 0 and 2 of each row's word, as int16
      odd[r] = _mm256_srli_epi16(xv, 8);          // bytes 1 and 3
    }
    for (int i = 0; i < 4; ++i) {
      const __m256i wv = _mm256_set1_epi32(words[b * 4 + i]);
      const __m256i w_even = _mm256_srai_epi16(_mm256_slli_epi16(wv, 8), 8), w_odd = _mm256_srai_epi16(wv, 8);
      for (int r = 0; r < R; ++r)
        acc[r][i] = _mm256_add_epi32(acc[r][i], _mm256_add_epi32(_mm256_madd_epi16(even[r], w_even), _mm256_madd_epi16(odd[r], w_odd)));
    }
  }
  store_tile<R>(acc, c + r0 * ldc + o * kBlockOutputs, ldc, rows, w.n - o * kBlockOutputs);
}

// Up to 4 rows: a block's 16 weight bytes widened to int16 (output i in lanes 4i..4i+3) against
// the row's 4 activations repeated; pairs of int32 lanes are folded at the end.
void few_rows(const uint8_t* at, int64_t m, const PackedS8BlockSparse& w, int64_t o0, int64_t o1, int32_t* c, int64_t ldc) {
  const int32_t* ks = w.block_k.data();
  const int32_t* words = reinterpret_cast<const int32_t*>(at);
  for (int64_t o = o0; o < o1; ++o) {
    __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int64_t b = w.group_start[o], end = w.group_start[o + 1]; b < end; ++b) {
      const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.values.data() + b * 16)));
      for (int64_t r = 0; r < m; ++r) {
        const __m256i xv = _mm256_cvtepu8_epi16(_mm_set1_epi32(words[ks[b] * m + r]));
        acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(xv, wv));
      }
    }
    for (int64_t r = 0; r < m; ++r) {
      // lanes (2i, 2i+1) hold output i's two halves
      const __m256i pairs = _mm256_hadd_epi32(acc[r], acc[r]);  // per 128-bit half: o0 o1 o0 o1 | o2 o3 o2 o3
      const __m128i out = _mm_unpacklo_epi64(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
      store_row(c + r * ldc + o * kBlockOutputs, out, w.n - o * kBlockOutputs);
    }
  }
}

}  // namespace

void gemm_u8s8s32_block_sparse_avx2(const uint8_t* at, int64_t m, const PackedS8BlockSparse& w, int64_t o0, int64_t o1,
                                    int32_t* c, int64_t ldc) {
  const int64_t m_pad = block_sparse_rows_padded(m);
  if (m <= 4) return few_rows(at, m, w, o0, o1, c, ldc);
  for (int64_t r0 = 0; r0 < m; r0 += kMaxVectors * 8) {
    const int64_t rows = std::min<int64_t>(kMaxVectors * 8, m - r0);
    for (int64_t o = o0; o < o1; ++o) {
      if (rows > 8) panel<2>(at, m_pad, r0, rows, w, o, c, ldc);
      else panel<1>(at, m_pad, r0, rows, w, o, c, ldc);
    }
  }
}

}  // namespace sqz::kernels
