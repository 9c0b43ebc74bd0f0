// Shared by the AVX-512 int8 kernels (include only from files compiled with -mavx512f): how a
// register tile's k loop is blocked and how its int32 rows reach c.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace sqz::kernels::avx512 {

// acc + the dot products of 4 u8 (a) with 4 s8 (b) per int32 lane: vpdpbusd, written as inline
// assembly because GCC 12's intrinsic does not tie the accumulator to the destination register
// and copies every accumulator after each instruction (about one extra move per multiply-add in
// the register tiles, and stack spills in the larger ones).
inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpbusd %[b], %[a], %[acc]" : [acc] "+v"(acc) : [a] "v"(a), [b] "v"(b));
  return acc;
}

// Calls f(begin, end) for k steps [0, total) in blocks of `block`; once with an empty range when
// total = 0, so that the tiles still store their zeros (an empty sum, as the other ISAs write).
template <typename F>
inline void for_each_k_block(int64_t total, int64_t block, F&& f) {
  for (int64_t b0 = 0; b0 == 0 || b0 < total; b0 += block) f(b0, std::min(total, b0 + block));
}

// Stores the first `cols` (at most 16) int32 results of a tile row; `accumulate` (every k block
// after the first) adds them to what c already holds.
inline void store_s32(int32_t* c, int64_t cols, __m512i acc, bool accumulate) {
  const __mmask16 mask = cols >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << cols) - 1);
  if (accumulate) acc = _mm512_add_epi32(acc, _mm512_maskz_loadu_epi32(mask, c));
  _mm512_mask_storeu_epi32(c, mask, acc);
}

}  // namespace sqz::kernels::avx512
