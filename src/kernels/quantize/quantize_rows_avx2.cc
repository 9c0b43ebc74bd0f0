// AVX2: 8 floats per step; the scalar formula of quant_math.h for the row tails.
#include <immintrin.h>

#include <algorithm>

#include "kernels/quantize/quantize_rows.h"

namespace sqz::kernels {

namespace {

inline float hmin(__m256 v) {
  __m128 s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_min_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_min_ss(s, _mm_movehdup_ps(s)));
}
inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

}  // namespace

void quantize_rows_u8_avx2(const float* x, int64_t m, int64_t k, int64_t ldx, uint8_t* q, AffineParams* params,
                           const AffineParams* fixed) {
  const int64_t body = k / 8 * 8;
  for (int64_t i = 0; i < m; ++i) {
    const float* row = x + i * ldx;
    if (fixed) {
      params[i] = *fixed;
    } else {
      __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
      for (int64_t kk = 0; kk < body; kk += 8) {
        const __m256 v = _mm256_loadu_ps(row + kk);
        lo = _mm256_min_ps(lo, v);
        hi = _mm256_max_ps(hi, v);
      }
      float l = hmin(lo), h = hmax(hi);
      for (int64_t kk = body; kk < k; ++kk) {
        l = std::min(l, row[kk]);
        h = std::max(h, row[kk]);
      }
      params[i] = affine_u8_params(l, h);
    }
    const __m256 scale = _mm256_set1_ps(params[i].scale);
    const __m256 zero = _mm256_set1_ps(static_cast<float>(params[i].zero));
    const __m256 top = _mm256_set1_ps(255.0f);
    uint8_t* out = q + i * k;
    for (int64_t kk = 0; kk < body; kk += 8) {
      __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(row + kk), scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, zero), _mm256_setzero_ps()), top);
      const __m256i i32 = _mm256_cvtps_epi32(v);
      const __m128i i16 = _mm_packus_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + kk), _mm_packus_epi16(i16, i16));
    }
    for (int64_t kk = body; kk < k; ++kk) out[kk] = quantize_u8(row[kk], params[i]);
  }
}

void dequantize_rows_avx2(const DequantizeArgs& d, int64_t m, int64_t n, float* y, int64_t ldy) {
  const int64_t body = n / 8 * 8;
  for (int64_t i = 0; i < m; ++i) {
    const __m256 a_scale = _mm256_set1_ps(d.a[i].scale);
    const __m256i a_zero = _mm256_set1_epi32(d.a[i].zero);
    const int32_t* acc = d.acc + i * n;
    float* out = y + i * ldy;
    for (int64_t j = 0; j < body; j += 8) {
      const __m256i corrected = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + j)),
                                                 _mm256_mullo_epi32(a_zero, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d.column_sums + j))));
      __m256 v = _mm256_mul_ps(_mm256_mul_ps(a_scale, _mm256_loadu_ps(d.w_scale + j)), _mm256_cvtepi32_ps(corrected));
      if (d.bias) v = _mm256_add_ps(v, _mm256_loadu_ps(d.bias + j));
      if (d.residual) v = _mm256_add_ps(v, _mm256_loadu_ps(d.residual + i * d.ldr + j));
      _mm256_storeu_ps(out + j, v);
    }
    for (int64_t j = body; j < n; ++j) {
      float v = d.a[i].scale * d.w_scale[j] * static_cast<float>(acc[j] - d.a[i].zero * d.column_sums[j]);
      if (d.bias) v += d.bias[j];
      if (d.residual) v += d.residual[i * d.ldr + j];
      out[j] = v;
    }
  }
}

}  // namespace sqz::kernels
