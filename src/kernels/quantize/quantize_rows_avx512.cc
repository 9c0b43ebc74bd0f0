// AVX-512: 16 floats per step, row tails under masks; the same operations in the same order as
// the scalar formulas of quant_math.h (divide, round half to even, clamp), so the codes are
// bit-identical to the reference's.
#include <immintrin.h>

#include "kernels/quantize/quantize_rows.h"

namespace sqz::kernels {

namespace {

inline __mmask16 tail_mask(int64_t count) { return static_cast<__mmask16>((1u << count) - 1); }

}  // namespace

void quantize_rows_u8_avx512(const float* x, int64_t m, int64_t k, int64_t ldx, uint8_t* q, AffineParams* params,
                             const AffineParams* fixed) {
  const int64_t body = k / 16 * 16;
  const __mmask16 tail = tail_mask(k - body);
  for (int64_t i = 0; i < m; ++i) {
    const float* row = x + i * ldx;
    if (fixed) {
      params[i] = *fixed;
    } else {
      // Zeros in the masked-off lanes: the range always includes 0 anyway.
      __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
      for (int64_t kk = 0; kk < body; kk += 16) {
        const __m512 v = _mm512_loadu_ps(row + kk);
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
      }
      const __m512 v = _mm512_maskz_loadu_ps(tail, row + body);
      params[i] = affine_u8_params(_mm512_reduce_min_ps(_mm512_min_ps(lo, v)), _mm512_reduce_max_ps(_mm512_max_ps(hi, v)));
    }
    const __m512 scale = _mm512_set1_ps(params[i].scale);
    const __m512 zero = _mm512_set1_ps(static_cast<float>(params[i].zero));
    const __m512 top = _mm512_set1_ps(255.0f);
    uint8_t* out = q + i * k;
    auto codes = [&](__m512 v) {
      v = _mm512_roundscale_ps(_mm512_div_ps(v, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      return _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_add_ps(v, zero), _mm512_setzero_ps()), top)));
    };
    for (int64_t kk = 0; kk < body; kk += 16) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + kk), codes(_mm512_loadu_ps(row + kk)));
    if (body < k) _mm_mask_storeu_epi8(out + body, tail, codes(_mm512_maskz_loadu_ps(tail, row + body)));
  }
}

void dequantize_rows_avx512(const DequantizeArgs& d, int64_t m, int64_t n, float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i) {
    const __m512 a_scale = _mm512_set1_ps(d.a[i].scale);
    const __m512i a_zero = _mm512_set1_epi32(d.a[i].zero);
    const int32_t* acc = d.acc + i * n;
    float* out = y + i * ldy;
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 mask = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : tail_mask(n - j);
      const __m512i corrected =
          _mm512_sub_epi32(_mm512_maskz_loadu_epi32(mask, acc + j),
                           _mm512_mullo_epi32(a_zero, _mm512_maskz_loadu_epi32(mask, d.column_sums + j)));
      __m512 v = _mm512_mul_ps(_mm512_mul_ps(a_scale, _mm512_maskz_loadu_ps(mask, d.w_scale + j)), _mm512_cvtepi32_ps(corrected));
      if (d.bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, d.bias + j));
      if (d.residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, d.residual + i * d.ldr + j));
      _mm512_mask_storeu_ps(out + j, mask, v);
    }
  }
}

}  // namespace sqz::kernels
