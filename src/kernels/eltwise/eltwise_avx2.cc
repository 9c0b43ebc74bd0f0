// AVX2 versions: 8 lanes at a time, row tails through an 8-float buffer so every element takes
// the same arithmetic path. exp: Cody-Waite reduction to |r| <= ln2/2 and a degree-7 Taylor
// polynomial (truncation < 6e-9); erf: Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/eltwise/eltwise.h"

namespace sqz::kernels {

namespace {

inline __m256 exp8(__m256 x) {
  const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);  // -inf included
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.428606765330187e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

inline __m256 gelu8(__m256 v) {
  const __m256 z = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f));
  const __m256 sign = _mm256_and_ps(z, _mm256_set1_ps(-0.0f));
  const __m256 az = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(az, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
  __m256 poly = _mm256_set1_ps(1.061405429f);
  for (float c : {-1.453152027f, 1.421413741f, -0.284496736f, 0.254829592f}) poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(c));
  poly = _mm256_mul_ps(poly, t);
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az)));
  const __m256 erf_abs = _mm256_fnmadd_ps(poly, e, _mm256_set1_ps(1.0f));
  const __m256 erf = _mm256_or_ps(erf_abs, sign);
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
}

// tanh(u) = 1 - 2 / (exp(2u) + 1); exp8 saturates at both ends, so |u| large gives +-1.
inline __m256 gelu_tanh8(__m256 v) {
  const __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
  const __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), v3, v));
  const __m256 e = exp8(_mm256_add_ps(u, u));
  const __m256 t = _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), t));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Loads the last n % 8 floats of a row padded with `fill`.
inline __m256 load_tail(const float* p, int64_t count, float fill) {
  alignas(32) float buf[8];
  for (int64_t t = 0; t < 8; ++t) buf[t] = t < count ? p[t] : fill;
  return _mm256_load_ps(buf);
}
inline void store_tail(float* p, int64_t count, __m256 v) {
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v);
  std::copy(buf, buf + count, p);
}

}  // namespace

void layer_norm_rows_avx2(const float* x, int64_t m, int64_t n, int64_t ldx, const float* gamma, const float* beta, float eps,
                          float* y, int64_t ldy) {
  const int64_t body = n / 8 * 8;
  for (int64_t i = 0; i < m; ++i) {
    const float* r = x + i * ldx;
    __m256 s = _mm256_setzero_ps();
    for (int64_t j = 0; j < body; j += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(r + j));
    if (body < n) s = _mm256_add_ps(s, load_tail(r + body, n - body, 0.0f));
    const float mean = hsum(s) / static_cast<float>(n);
    const __m256 vm = _mm256_set1_ps(mean);
    __m256 q = _mm256_setzero_ps();
    for (int64_t j = 0; j < body; j += 8) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(r + j), vm);
      q = _mm256_fmadd_ps(d, d, q);
    }
    if (body < n) {
      const __m256 d = _mm256_sub_ps(load_tail(r + body, n - body, mean), vm);
      q = _mm256_fmadd_ps(d, d, q);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / std::sqrt(hsum(q) / static_cast<float>(n) + eps));
    float* out = y + i * ldy;
    auto norm = [&](__m256 v, __m256 g, __m256 b) { return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_sub_ps(v, vm), inv), g, b); };
    for (int64_t j = 0; j < body; j += 8)
      _mm256_storeu_ps(out + j, norm(_mm256_loadu_ps(r + j), _mm256_loadu_ps(gamma + j), _mm256_loadu_ps(beta + j)));
    if (body < n)
      store_tail(out + body, n - body,
                 norm(load_tail(r + body, n - body, 0), load_tail(gamma + body, n - body, 0), load_tail(beta + body, n - body, 0)));
  }
}

void gelu_rows_avx2(float* x, int64_t m, int64_t n, int64_t ld) {
  const int64_t body = n / 8 * 8;
  for (int64_t i = 0; i < m; ++i) {
    float* r = x + i * ld;
    for (int64_t j = 0; j < body; j += 8) _mm256_storeu_ps(r + j, gelu8(_mm256_loadu_ps(r + j)));
    if (body < n) store_tail(r + body, n - body, gelu8(load_tail(r + body, n - body, 0.0f)));
  }
}

void silu_rows_avx2(float* x, int64_t m, int64_t n, int64_t ld) {
  // x / (1 + exp(-x)); exp8 saturates, so very negative x gives -0 and very positive x gives x.
  auto silu8 = [](__m256 v) {
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
  };
  const int64_t body = n / 8 * 8;
  for (int64_t i = 0; i < m; ++i) {
    float* r = x + i * ld;
    for (int64_t j = 0; j < body; j += 8) _mm256_storeu_ps(r + j, silu8(_mm256_loadu_ps(r + j)));
    if (body < n) store_tail(r + body, n - body, silu8(load_tail(r + body, n - body, 0.0f)));
  }
}

void gelu_tanh_rows_avx2(float* x, int64_t m, int64_t n, int64_t ld) {
  const int64_t body = n / 8 * 8;
  for (int64_t i = 0; i < m; ++i) {
    float* r = x + i * ld;
    for (int64_t j = 0; j < body; j += 8) _mm256_storeu_ps(r + j, gelu_tanh8(_mm256_loadu_ps(r + j)));
    if (body < n) store_tail(r + body, n - body, gelu_tanh8(load_tail(r + body, n - body, 0.0f)));
  }
}

void softmax_rows_avx2(float* x, int64_t m, int64_t n, int64_t ld) {
  const int64_t body = n / 8 * 8;
  const float ninf = -INFINITY;
  for (int64_t i = 0; i < m; ++i) {
    float* r = x + i * ld;
    __m256 mx = _mm256_set1_ps(ninf);
    for (int64_t j = 0; j < body; j += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(r + j));
    if (body < n) mx = _mm256_max_ps(mx, load_tail(r + body, n - body, ninf));
    const float rmax = hmax(mx);
    if (rmax == ninf) {
      std::fill(r, r + n, 0.0f);
      continue;
    }
    const __m256 vmax = _mm256_set1_ps(rmax);
    __m256 s = _mm256_setzero_ps();
    for (int64_t j = 0; j < body; j += 8) {
      const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(r + j), vmax));
      _mm256_storeu_ps(r + j, e);
      s = _mm256_add_ps(s, e);
    }
    if (body < n) {
      const __m256 e = exp8(_mm256_sub_ps(load_tail(r + body, n - body, ninf), vmax));
      store_tail(r + body, n - body, e);
      s = _mm256_add_ps(s, e);
    }
    const float inv_sum = 1.0f / hsum(s);
    const __m256 inv = _mm256_set1_ps(inv_sum);
    for (int64_t j = 0; j < body; j += 8) _mm256_storeu_ps(r + j, _mm256_mul_ps(_mm256_loadu_ps(r + j), inv));
    for (int64_t j = body; j < n; ++j) r[j] *= inv_sum;
  }
}

}  // namespace sqz::kernels
