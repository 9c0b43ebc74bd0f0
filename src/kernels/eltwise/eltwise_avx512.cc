// AVX-512 versions of the AVX2 row ops: the same arithmetic (Cody-Waite exp with a degree-7
// polynomial, Abramowitz & Stegun 7.1.26 erf, so the same error bounds), 16 lanes at a time,
// and row tails through masked loads and stores instead of a bounce buffer.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/eltwise/eltwise.h"

namespace sqz::kernels {

namespace {

inline __m512 exp16(__m512 x) {
  const __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);  // -inf included
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f})
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(k), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(static_cast<__mmask16>(~underflow), p, _mm512_castsi512_ps(bits));
}

inline __m512 gelu16(__m512 v) {
  const __m512 z = _mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f));
  const __m512 az = _mm512_abs_ps(z);
  const __m512 t =
      _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(az, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
  __m512 poly = _mm512_set1_ps(1.061405429f);
  for (float c : {-1.453152027f, 1.421413741f, -0.284496736f, 0.254829592f})
    poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(c));
  poly = _mm512_mul_ps(poly, t);
  const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(az, az)));
  const __m512 erf_abs = _mm512_fnmadd_ps(poly, e, _mm512_set1_ps(1.0f));
  // erf(z) = sign(z) * erf(|z|): copy z's sign bit onto erf_abs.
  const __m512 sign = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(INT32_MIN)));
  const __m512 erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_abs), _mm512_castps_si512(sign)));
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

// tanh(u) = 1 - 2 / (exp(2u) + 1); exp16 saturates at both ends, so |u| large gives +-1.
inline __m512 gelu_tanh16(__m512 v) {
  const __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
  const __m512 u =
      _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f), _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), v3, v));
  const __m512 e = exp16(_mm512_add_ps(u, u));
  const __m512 t =
      _mm512_sub_ps(_mm512_set1_ps(1.0f), _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(_mm512_set1_ps(1.0f), t));
}

inline __mmask16 tail_mask(int64_t count) { return static_cast<__mmask16>((1u << count) - 1); }

// f on every 16-float chunk of each row (the tail masked), written back in place.
template <typename F>
void map_rows(float* x, int64_t m, int64_t n, int64_t ld, F f) {
  const int64_t body = n / 16 * 16;
  const __mmask16 tail = tail_mask(n - body);
  for (int64_t i = 0; i < m; ++i) {
    float* r = x + i * ld;
    for (int64_t j = 0; j < body; j += 16) _mm512_storeu_ps(r + j, f(_mm512_loadu_ps(r + j)));
    if (tail) _mm512_mask_storeu_ps(r + body, tail, f(_mm512_maskz_loadu_ps(tail, r + body)));
  }
}

}  // namespace

void layer_norm_rows_avx512(const float* x, int64_t m, int64_t n, int64_t ldx, const float* gamma, const float* beta,
                            float eps, float* y, int64_t ldy) {
  const int64_t body = n / 16 * 16;
  const __mmask16 tail = tail_mask(n - body);
  for (int64_t i = 0; i < m; ++i) {
    const float* r = x + i * ldx;
    __m512 s = _mm512_setzero_ps();
    for (int64_t j = 0; j < body; j += 16) s = _mm512_add_ps(s, _mm512_loadu_ps(r + j));
    if (tail) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail, r + body));
    const float mean = _mm512_reduce_add_ps(s) / static_cast<float>(n);
    const __m512 vm = _mm512_set1_ps(mean);
    __m512 q = _mm512_setzero_ps();
    for (int64_t j = 0; j < body; j += 16) {
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(r + j), vm);
      q = _mm512_fmadd_ps(d, d, q);
    }
    if (tail) {
      const __m512 d = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, r + body), vm);
      q = _mm512_fmadd_ps(d, d, q);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(q) / static_cast<float>(n) + eps));
    float* out = y + i * ldy;
    auto norm = [&](__m512 v, __m512 g, __m512 b) {
      return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(v, vm), inv), g, b);
    };
    for (int64_t j = 0; j < body; j += 16)
      _mm512_storeu_ps(out + j, norm(_mm512_loadu_ps(r + j), _mm512_loadu_ps(gamma + j), _mm512_loadu_ps(beta + j)));
    if (tail)
      _mm512_mask_storeu_ps(out + body, tail,
                            norm(_mm512_maskz_loadu_ps(tail, r + body), _mm512_maskz_loadu_ps(tail, gamma + body),
                                 _mm512_maskz_loadu_ps(tail, beta + body)));
  }
}

void gelu_rows_avx512(float* x, int64_t m, int64_t n, int64_t ld) { map_rows(x, m, n, ld, gelu16); }
void gelu_tanh_rows_avx512(float* x, int64_t m, int64_t n, int64_t ld) { map_rows(x, m, n, ld, gelu_tanh16); }
void silu_rows_avx512(float* x, int64_t m, int64_t n, int64_t ld) {
  map_rows(x, m, n, ld, [](__m512 v) {  // x / (1 + exp(-x)), exp16 saturating at both ends
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp16(_mm512_sub_ps(_mm512_setzero_ps(), v))));
  });
}

void softmax_rows_avx512(float* x, int64_t m, int64_t n, int64_t ld) {
  const int64_t body = n / 16 * 16;
  const __mmask16 tail = tail_mask(n - body);
  const float ninf = -INFINITY;
  for (int64_t i = 0; i < m; ++i) {
    float* r = x + i * ld;
    __m512 mx = _mm512_set1_ps(ninf);
    for (int64_t j = 0; j < body; j += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(r + j));
    if (tail) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(ninf), tail, r + body));
    const float rmax = _mm512_reduce_max_ps(mx);
    if (rmax == ninf) {
      std::fill(r, r + n, 0.0f);
      continue;
    }
    const __m512 vmax = _mm512_set1_ps(rmax);
    __m512 s = _mm512_setzero_ps();
    for (int64_t j = 0; j < body; j += 16) {
      const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(r + j), vmax));
      _mm512_storeu_ps(r + j, e);
      s = _mm512_add_ps(s, e);
    }
    if (tail) {
      const __m512 e = _mm512_maskz_mov_ps(
          tail, exp16(_mm512_sub_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(ninf), tail, r + body), vmax)));
      _mm512_mask_storeu_ps(r + body, tail, e);
      s = _mm512_add_ps(s, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(s));
    for (int64_t j = 0; j < body; j += 16) _mm512_storeu_ps(r + j, _mm512_mul_ps(_mm512_loadu_ps(r + j), inv));
    if (tail) _mm512_mask_storeu_ps(r + body, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, r + body), inv));
  }
}

}  // namespace sqz::kernels
