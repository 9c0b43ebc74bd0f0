// AVX-512 VNNI block-sparse kernel. Register tile: up to 64 rows (4 zmm of 16 rows) x one group
// of 4 outputs = 16 accumulators; per stored block, 4 activation loads and 4 weight-word
// broadcasts feed 16 vpdpbusd (the dense kernel's ratio of loads to multiply-adds). Row panels
// are the outer loop so a panel's regrouped activations stay in cache while every output group
// of this thread passes over them. A tile holds rows in lanes, so its results are transposed on
// the way to c: 4 groups' tiles (16 outputs x 64 rows) are stored whole into an L1 staging block,
// then written to c by 16 x 16 register transposes, one 64-byte row store each (storing each
// tile's 64 rows x 4 outputs directly took 16-byte masked stores across cache lines and cost
// more than the multiply-adds at BERT shapes). The activations are regrouped with the same
// transpose. Up to 4 rows (decode) take a path of their own: one xmm vpdpbusd per block and row,
// the 4 outputs in its lanes.
#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm_block_sparse/gemm_block_sparse.h"
#include "kernels/gemm_u8s8/avx512_tiles.h"

namespace sqz::kernels {

namespace {

constexpr int kMaxVectors = 4;  // 64 rows

__mmask16 output_mask(int64_t outputs) { return static_cast<__mmask16>((1u << std::min<int64_t>(outputs, 4)) - 1); }

// r[i] = row i of a 16 x 16 int32 block -> r[c] = column c (unpacks within 128-bit lanes, then
// 128-bit lane shuffles).
inline void transpose16(__m512i (&r)[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // u[4 i + j], 128-bit lane L: rows 4i..4i+3 of column 4L + j
  __m512i u[16];
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512i s0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88), s1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xDD);
    const __m512i s2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88), s3 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xDD);
    r[j] = _mm512_shuffle_i32x4(s0, s2, 0x88);
    r[4 + j] = _mm512_shuffle_i32x4(s1, s3, 0x88);
    r[8 + j] = _mm512_shuffle_i32x4(s0, s2, 0xDD);
    r[12 + j] = _mm512_shuffle_i32x4(s1, s3, 0xDD);
  }
}

constexpr int kChunkGroups = 4;  // 16 outputs: one transposed row store
constexpr int kPanelRows = kMaxVectors * 16;

// staging[i][row]: output i (of the chunk's 16) at panel row `row`. Writes rows [0, rows) and
// `outputs` (<= 16) outputs of c, whose first element is the chunk's first output of row 0.
void write_chunk(const int32_t (&staging)[16][kPanelRows], int64_t rows, int64_t outputs, int32_t* c, int64_t ldc) {
  const __mmask16 keep = outputs >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << outputs) - 1);
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    __m512i v[16];
    for (int i = 0; i < 16; ++i) v[i] = _mm512_load_si512(&staging[i][r0]);
    transpose16(v);
    for (int64_t j = 0; j < std::min<int64_t>(16, rows - r0); ++j) _mm512_mask_storeu_epi32(c + (r0 + j) * ldc, keep, v[j]);
  }
}

// One group's tile of up to R x 16 rows into its 4 rows of the staging block.
template <int R>
void panel(const uint8_t* at, int64_t m_pad, int64_t r0, const PackedS8BlockSparse& w, int64_t o, int32_t (*staging)[kPanelRows]) {
  __m512i acc[R][4];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < 4; ++i) acc[r][i] = _mm512_setzero_si512();
  const int32_t* words = reinterpret_cast<const int32_t*>(w.values.data());
  const int32_t* ks = w.block_k.data();
  for (int64_t b = w.group_start[o], end = w.group_start[o + 1]; b < end; ++b) {
    const uint8_t* x = at + (ks[b] * m_pad + r0) * kBlockK;
    __m512i xv[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) xv[r] = _mm512_loadu_si512(x + 64 * r);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const __m512i wv = _mm512_set1_epi32(words[b * 4 + i]);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][i] = avx512::dpbusd(acc[r][i], xv[r], wv);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) _mm512_store_si512(&staging[i][16 * r], acc[r][i]);
}

using PanelFn = void (*)(const uint8_t*, int64_t, int64_t, const PackedS8BlockSparse&, int64_t, int32_t (*)[kPanelRows]);
constexpr PanelFn kPanels[kMaxVectors + 1] = {nullptr, panel<1>, panel<2>, panel<3>, panel<4>};

// Up to 4 rows, m_pad = m: each row's activation word broadcast against a block's 16 bytes.
void few_rows(const uint8_t* at, int64_t m, const PackedS8BlockSparse& w, int64_t o0, int64_t o1, int32_t* c, int64_t ldc) {
  const int32_t* ks = w.block_k.data();
  const int32_t* words = reinterpret_cast<const int32_t*>(at);
  for (int64_t o = o0; o < o1; ++o) {
    __m128i acc[4] = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
    for (int64_t b = w.group_start[o], end = w.group_start[o + 1]; b < end; ++b) {
      const __m128i wv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.values.data() + b * 16));
      for (int64_t r = 0; r < m; ++r) acc[r] = _mm_dpbusd_epi32(acc[r], _mm_set1_epi32(words[ks[b] * m + r]), wv);
    }
    const auto keep = static_cast<__mmask8>(output_mask(w.n - o * kBlockOutputs));
    for (int64_t r = 0; r < m; ++r) _mm_mask_storeu_epi32(c + r * ldc + o * kBlockOutputs, keep, acc[r]);
  }
}

}  // namespace

void pack_block_sparse_activations_avx512(const uint8_t* a, int64_t m, int64_t lda, int64_t k, uint8_t* at) {
  const int64_t m_pad = block_sparse_rows_padded(m), groups = (k + kBlockK - 1) / kBlockK;
  int32_t* out = reinterpret_cast<int32_t*>(at);
  // a as int32 words [m][groups] -> at [groups][m_pad], 16 rows x 16 words at a time; bytes past
  // k and rows past m read as zero.
  for (int64_t r0 = 0; r0 < m_pad; r0 += 16)
    for (int64_t g0 = 0; g0 < groups; g0 += 16) {
      const int64_t bytes = std::min<int64_t>(64, k - g0 * kBlockK);
      const __mmask64 load = bytes >= 64 ? ~__mmask64{0} : ((__mmask64{1} << bytes) - 1);
      __m512i v[16];
      for (int i = 0; i < 16; ++i)
        v[i] = r0 + i < m ? _mm512_maskz_loadu_epi8(load, a + (r0 + i) * lda + g0 * kBlockK) : _mm512_setzero_si512();
      transpose16(v);
      for (int64_t j = 0; j < std::min<int64_t>(16, groups - g0); ++j) _mm512_storeu_si512(out + (g0 + j) * m_pad + r0, v[j]);
    }
}

void gemm_u8s8s32_block_sparse_avx512vnni(const uint8_t* at, int64_t m, const PackedS8BlockSparse& w, int64_t o0,
                                          int64_t o1, int32_t* c, int64_t ldc) {
  const int64_t m_pad = block_sparse_rows_padded(m);
  if (m <= 4) return few_rows(at, m, w, o0, o1, c, ldc);
  alignas(64) int32_t staging[16][kPanelRows];
  for (int64_t r0 = 0; r0 < m; r0 += kPanelRows) {
    const int64_t rows = std::min<int64_t>(kPanelRows, m - r0);
    const PanelFn fn = kPanels[(rows + kBlockRows - 1) / kBlockRows];
    for (int64_t o = o0; o < o1; o += kChunkGroups) {
      const int64_t groups = std::min<int64_t>(kChunkGroups, o1 - o);
      for (int64_t g = 0; g < groups; ++g) fn(at, m_pad, r0, w, o + g, staging + 4 * g);
      write_chunk(staging, rows, std::min(groups * kBlockOutputs, w.n - o * kBlockOutputs), c + r0 * ldc + o * kBlockOutputs, ldc);
    }
  }
}

}  // namespace sqz::kernels
