// AVX-512 VNNI: a column's 4 kept values of a window of 8 k are exactly one vpdpbusd lane, so the
// packed values of a block-window are one zmm of weights as they are. The window's 8 activations
// are broadcast to every 128-bit lane and one vpshufb per (row, block) gathers, for each column,
// the 4 activations at its kept positions (the positions bytes are the shuffle control as
// stored); vpdpbusd then multiplies them: one shuffle + one vpdpbusd per 16 columns x 8 k, where
// the dense kernel issues two vpdpbusd.
// Decode (one or two rows) is bound by reading the weights: with VBMI the controls are rebuilt
// from the 2-bit positions (vpmultishiftqb), 80 bytes per 16 x 8 instead of 128.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/gemm_sparse24/gemm_sparse24.h"
#include "kernels/gemm_u8s8/avx512_tiles.h"

namespace sqz::kernels {

namespace {

constexpr int kMaxRows = 4;
constexpr int kMaxBlocks = 4;
constexpr int64_t kWindowsPerBlock = 32;  // k block: 256 k

inline __m512i load_window(const uint8_t* p, int64_t valid) {
  int64_t v = 0;
  if (valid >= kSparseWindow) std::memcpy(&v, p, 8);  // fixed size: inlined to one load
  else if (valid > 0) std::memcpy(&v, p, static_cast<size_t>(valid));
  return _mm512_set1_epi64(v);
}

// noinline: inlined into the k-block loop's lambda (with its caller's loop state live around it)
// the full tile ran ~25% slower (measured: 330-377 vs 443-507 GOP/s at 128 x 3072/768 x 768/3072).
template <int MR, int NB>
__attribute__((noinline)) void tile(const uint8_t* a, int64_t lda, const PackedS8Sparse24& w, int64_t nb0, int64_t win0, int64_t win1, int32_t* c,
          int64_t ldc) {
  __m512i acc[MR][NB];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) acc[r][i] = _mm512_setzero_si512();
  const int64_t block_stride = w.windows * 64;
  const int8_t* values = w.values.data() + nb0 * block_stride;
  const uint8_t* positions = w.positions.data() + nb0 * block_stride;
  for (int64_t win = win0; win < win1; ++win) {
    __m512i b[NB], s[NB];
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) {
      b[i] = _mm512_loadu_si512(values + i * block_stride + win * 64);
      s[i] = _mm512_loadu_si512(positions + i * block_stride + win * 64);
    }
    const int64_t valid = w.k - win * kSparseWindow;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i av = load_window(a + r * lda + win * kSparseWindow, valid);
#pragma GCC unroll 4
      for (int i = 0; i < NB; ++i) acc[r][i] = avx512::dpbusd(acc[r][i], _mm512_shuffle_epi8(av, s[i]), b[i]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < NB; ++i) {
    const int64_t j0 = (nb0 + i) * kSparseCols;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) avx512::store_s32(c + r * ldc + j0, w.n - j0, acc[r][i], win0 > 0);
  }
}

using TileFn = void (*)(const uint8_t*, int64_t, const PackedS8Sparse24&, int64_t, int64_t, int64_t, int32_t*, int64_t);
template <int NB>
constexpr TileFn kRowTiles[kMaxRows] = {nullptr, tile<1, NB>, tile<2, NB>, tile<3, NB>};

// k is blocked (as in the dense kernel) so a strip's values and controls for one k block stay in
// L1 while every row tile passes over them.
template <int NB>
void strip(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Sparse24& w, int64_t nb, int32_t* c, int64_t ldc) {
  avx512::for_each_k_block(w.windows, kWindowsPerBlock, [&](int64_t win0, int64_t win1) {
    int64_t i = 0;
    for (; i + kMaxRows <= m; i += kMaxRows) tile<kMaxRows, NB>(a + i * lda, lda, w, nb, win0, win1, c + i * ldc, ldc);
    if (i < m) kRowTiles<NB>[m - i](a + i * lda, lda, w, nb, win0, win1, c + i * ldc, ldc);
  });
}

// One row, NB blocks at a time, controls from the 2-bit positions: the 16 bytes of a
// block-window's positions2 hold the field of byte b at bits 2b..2b+1; widening each 16 bits to
// a qword puts bytes 8q..8q+7's fields in qword q, where vpmultishiftqb picks them by offset.
template <int NB>
__attribute__((target("avx512vbmi"))) void row_from_bits(const uint8_t* a, const PackedS8Sparse24& w, int64_t nb0,
                                                           int32_t* c) {
  const __m512i offsets = _mm512_set1_epi64(0x0E0C0A0806040200LL);
  const __m512i three = _mm512_set1_epi8(3);
  const __m512i group_base = _mm512_set1_epi32(0x04040000);  // slots 2, 3 read the window's second group
  __m512i acc[NB];
#pragma GCC unroll 4
  for (int i = 0; i < NB; ++i) acc[i] = _mm512_setzero_si512();
  const int64_t block_stride = w.windows * 64;
  const int8_t* values = w.values.data() + nb0 * block_stride;
  const uint32_t* bits = w.positions2.data() + nb0 * w.windows * 4;
  for (int64_t win = 0; win < w.windows; ++win) {
    const __m512i av = load_window(a + win * kSparseWindow, w.k - win * kSparseWindow);
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) {
      const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bits + (i * w.windows + win) * 4));
      const __m512i fields = _mm512_and_si512(_mm512_multishift_epi64_epi8(offsets, _mm512_cvtepu16_epi64(packed)), three);
      const __m512i s = _mm512_add_epi8(fields, group_base);
      const __m512i b = _mm512_loadu_si512(values + i * block_stride + win * 64);
      acc[i] = avx512::dpbusd(acc[i], _mm512_shuffle_epi8(av, s), b);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < NB; ++i) {
    const int64_t j0 = (nb0 + i) * kSparseCols;
    avx512::store_s32(c + j0, w.n - j0, acc[i], false);
  }
}

}  // namespace

void gemm_u8s8s32_sparse24_avx512vnni(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Sparse24& w, int64_t nb0,
                                      int64_t nb1, int32_t* c, int64_t ldc) {
  const bool from_bits = m <= 2 && cpu_has_avx512vbmi();
  for (int64_t nb = nb0; nb < nb1; nb += kMaxBlocks) {
    const int64_t blocks = std::min<int64_t>(kMaxBlocks, nb1 - nb);
    if (from_bits) {
      for (int64_t i = 0; i < m; ++i) {
        const uint8_t* row = a + i * lda;
        int32_t* out = c + i * ldc;
        switch (blocks) {
          case 4: row_from_bits<4>(row, w, nb, out); break;
          case 3: row_from_bits<3>(row, w, nb, out); break;
          case 2: row_from_bits<2>(row, w, nb, out); break;
          default: row_from_bits<1>(row, w, nb, out); break;
        }
      }
      continue;
    }
    switch (blocks) {
      case 4: strip<4>(a, m, lda, w, nb, c, ldc); break;
      case 3: strip<3>(a, m, lda, w, nb, c, ldc); break;
      case 2: strip<2>(a, m, lda, w, nb, c, ldc); break;
      default: strip<1>(a, m, lda, w, nb, c, ldc); break;
    }
  }
}

}  // namespace sqz::kernels
