// Shared by the AVX-512 int8 kernels (include only from files compiled with -mavx512f/bw): the
// fused dequantize of one finished tile row of 16 columns, the formula of dequantize_rows:
//   y = (a_scale * w_scale[j]) * float(acc - a_zero * column_sums[j]) + bias[j] + residual[j]
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/quantize/quantize_rows.h"

namespace sqz::kernels::avx512 {

inline __mmask16 column_mask(int64_t cols) {
  return cols >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << cols) - 1);
}

inline void dequantize_store(const FusedDequantize& f, int64_t row, int64_t j0, __mmask16 mask, __m512i acc) {
  const DequantizeArgs& d = f.args;
  const __m512i corrected = _mm512_sub_epi32(
      acc, _mm512_mullo_epi32(_mm512_set1_epi32(d.a[row].zero), _mm512_maskz_loadu_epi32(mask, d.column_sums + j0)));
  __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(d.a[row].scale), _mm512_maskz_loadu_ps(mask, d.w_scale + j0)),
                           _mm512_cvtepi32_ps(corrected));
  if (d.bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, d.bias + j0));
  if (d.residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, d.residual + row * d.ldr + j0));
  _mm512_mask_storeu_ps(f.y + row * f.ldy + j0, mask, v);
}

// A finished (or partial, between k blocks) tile row: partial sums go to c, the last k block's
// to y through the fused dequantize when one is asked for.
inline void store_tile_row(int32_t* c_row, int64_t row, int64_t j0, __mmask16 mask, __m512i acc, bool accumulate,
                           bool last_k_block, const FusedDequantize* fused) {
  if (accumulate) acc = _mm512_add_epi32(acc, _mm512_maskz_loadu_epi32(mask, c_row + j0));
  if (fused && last_k_block) dequantize_store(*fused, row, j0, mask, acc);
  else _mm512_mask_storeu_epi32(c_row + j0, mask, acc);
}

}  // namespace sqz::kernels::avx512
