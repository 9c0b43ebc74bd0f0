// AVX-512 VNNI: a register tile of up to 8 rows x 48 columns (24 zmm accumulators); each step
// broadcasts 4 activation bytes per row and issues vpdpbusd against up to 3 packed weight blocks.
// Column strips are the outer loop so a strip's weights (48 x K bytes) are read from memory once
// and then from cache by every row tile, rather than streaming the whole matrix per row tile.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/gemm_u8s8/avx512_tiles.h"
#include "kernels/gemm_u8s8/gemm_u8s8.h"

namespace sqz::kernels {

namespace {

constexpr int kMaxRows = 8;
constexpr int kMaxBlocks = 3;  // 3 x 16 = 48 columns
constexpr int64_t kKGroups = 128;  // k block: 512 k (48 x 512 bytes of weights stay in L1)

inline int32_t load4(const uint8_t* p, int64_t valid) {
  uint8_t buf[4] = {0, 0, 0, 0};
  std::memcpy(buf, p, static_cast<size_t>(std::min<int64_t>(valid, 4)));
  int32_t v;
  std::memcpy(&v, buf, 4);
  return v;
}

template <int MR, int NB>
void tile(const uint8_t* a, int64_t lda, const PackedS8Weights& w, int64_t nb0, int64_t g0, int64_t g1, int32_t* c,
          int64_t ldc) {
  __m512i acc[MR][NB];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) acc[r][i] = _mm512_setzero_si512();
  const int64_t block_stride = w.k_groups * kPackCols * kPackK;
  const int8_t* base = w.data.data() + nb0 * block_stride;
  // One k group: NB weight blocks, then per row a broadcast of 4 activation bytes.
  auto step = [&](int64_t g, bool tail) {
    __m512i b[NB];
#pragma GCC unroll 4
    for (int i = 0; i < NB; ++i) b[i] = _mm512_loadu_si512(base + i * block_stride + g * kPackCols * kPackK);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const uint8_t* row = a + r * lda + g * kPackK;
      int32_t a4;
      if (!tail) std::memcpy(&a4, row, 4);
      else a4 = load4(row, w.k - g * kPackK);
      const __m512i av = _mm512_set1_epi32(a4);
#pragma GCC unroll 4
      for (int i = 0; i < NB; ++i) acc[r][i] = avx512::dpbusd(acc[r][i], av, b[i]);
    }
  };
  // The last group may be partial (k not a multiple of 4): its own loop keeps the main one
  // free of the check.
  const int64_t g_full = std::min(g1, w.k / kPackK);
  int64_t g = g0;
  for (; g < g_full; ++g) step(g, false);
  for (; g < g1; ++g) step(g, true);
#pragma GCC unroll 4
  for (int i = 0; i < NB; ++i) {
    const int64_t j0 = (nb0 + i) * kPackCols;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) avx512::store_s32(c + r * ldc + j0, w.n - j0, acc[r][i], g0 > 0);
  }
}

using TileFn = void (*)(const uint8_t*, int64_t, const PackedS8Weights&, int64_t, int64_t, int64_t, int32_t*, int64_t);
template <int NB>
constexpr TileFn kRowTiles[kMaxRows] = {nullptr, tile<1, NB>, tile<2, NB>, tile<3, NB>, tile<4, NB>, tile<5, NB>, tile<6, NB>, tile<7, NB>};

// k is blocked so the strip's weights for one k block (48 x 4 x kKGroups bytes) stay in L1
// while every row tile passes over them; partial sums accumulate in c between k blocks.
template <int NB>
void strip(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int64_t nb, int32_t* c, int64_t ldc) {
  avx512::for_each_k_block(w.k_groups, kKGroups, [&](int64_t g0, int64_t g1) {
    int64_t i = 0;
    for (; i + kMaxRows <= m; i += kMaxRows) tile<kMaxRows, NB>(a + i * lda, lda, w, nb, g0, g1, c + i * ldc, ldc);
    if (i < m) kRowTiles<NB>[m - i](a + i * lda, lda, w, nb, g0, g1, c + i * ldc, ldc);
  });
}

}  // namespace

void gemm_u8s8s32_avx512vnni(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int64_t nb0, int64_t nb1,
                             int32_t* c, int64_t ldc) {
  for (int64_t nb = nb0; nb < nb1; nb += kMaxBlocks) {
    switch (std::min<int64_t>(kMaxBlocks, nb1 - nb)) {
      case 3: strip<3>(a, m, lda, w, nb, c, ldc); break;
      case 2: strip<2>(a, m, lda, w, nb, c, ldc); break;
      default: strip<1>(a, m, lda, w, nb, c, ldc); break;
    }
  }
}

}  // namespace sqz::kernels
