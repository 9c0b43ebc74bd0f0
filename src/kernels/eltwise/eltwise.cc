#include "kernels/eltwise/eltwise.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/parallel.h"

namespace sqz::kernels {

void layer_norm_rows_ref(const float* x, int64_t m, int64_t n, int64_t ldx, const float* gamma, const float* beta, float eps,
                         float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i) {
    const float* r = x + i * ldx;
    double mean = 0, var = 0;
    for (int64_t j = 0; j < n; ++j) mean += r[j];
    mean /= static_cast<double>(n);
    for (int64_t j = 0; j < n; ++j) var += (r[j] - mean) * (r[j] - mean);
    var /= static_cast<double>(n);
    const double inv = 1.0 / std::sqrt(var + eps);
    float* out = y + i * ldy;
    for (int64_t j = 0; j < n; ++j) out[j] = static_cast<float>((r[j] - mean) * inv * gamma[j] + beta[j]);
  }
}

void rms_norm_rows(const float* x, int64_t m, int64_t n, int64_t ldx, const float* gamma, float eps, float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i) {
    const float* r = x + i * ldx;
    float sum = 0.0f;  // fp32, as HF's LlamaRMSNorm computes it
    for (int64_t j = 0; j < n; ++j) sum += r[j] * r[j];
    const float inv = 1.0f / std::sqrt(sum / static_cast<float>(n) + eps);
    float* out = y + i * ldy;
    for (int64_t j = 0; j < n; ++j) out[j] = gamma[j] * (r[j] * inv);
  }
}

void silu_mul_rows(float* x, int64_t ldx, const float* u, int64_t ldu, int64_t m, int64_t n, Isa isa) {
  silu_rows(x, m, n, ldx, isa);
  for (int64_t i = 0; i < m; ++i)  // the compiler vectorises the product
    for (int64_t j = 0; j < n; ++j) x[i * ldx + j] *= u[i * ldu + j];
}

void silu_rows_ref(float* x, int64_t m, int64_t n, int64_t ld) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float& v = x[i * ld + j];
      v = static_cast<float>(v / (1.0 + std::exp(-double(v))));
    }
}

void gelu_rows_ref(float* x, int64_t m, int64_t n, int64_t ld) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float& v = x[i * ld + j];
      v = static_cast<float>(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
    }
}

void gelu_tanh_rows_ref(float* x, int64_t m, int64_t n, int64_t ld) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float& v = x[i * ld + j];
      const double u = std::sqrt(2.0 / M_PI) * (v + 0.044715 * double(v) * v * v);
      v = static_cast<float>(0.5 * v * (1.0 + std::tanh(u)));
    }
}

void softmax_rows_ref(float* x, int64_t m, int64_t n, int64_t ld) {
  for (int64_t i = 0; i < m; ++i) {
    float* r = x + i * ld;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, r[j]);
    if (mx == -std::numeric_limits<float>::infinity()) {
      std::fill(r, r + n, 0.0f);
      continue;
    }
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += std::exp(double(r[j]) - mx);
    for (int64_t j = 0; j < n; ++j) r[j] = static_cast<float>(std::exp(double(r[j]) - mx) / sum);
  }
}

void layer_norm_rows(const float* x, int64_t m, int64_t n, int64_t ldx, const float* gamma, const float* beta, float eps,
                     float* y, int64_t ldy, Isa isa) {
  // Rows split across the kernels' threads (each row on one thread: same result at any count).
  parallel_for(m, [&](int64_t r0, int64_t r1) {
    const float* xr = x + r0 * ldx;
    float* yr = y + r0 * ldy;
    switch (isa) {
      case Isa::kRef: return layer_norm_rows_ref(xr, r1 - r0, n, ldx, gamma, beta, eps, yr, ldy);
      case Isa::kAvx512Vnni: return layer_norm_rows_avx512(xr, r1 - r0, n, ldx, gamma, beta, eps, yr, ldy);
      case Isa::kAvx2: return layer_norm_rows_avx2(xr, r1 - r0, n, ldx, gamma, beta, eps, yr, ldy);
    }
  });
}
void gelu_rows(float* x, int64_t m, int64_t n, int64_t ld, Isa isa) {
  if (isa == Isa::kRef) return gelu_rows_ref(x, m, n, ld);
  if (isa == Isa::kAvx512Vnni) return gelu_rows_avx512(x, m, n, ld);
  gelu_rows_avx2(x, m, n, ld);
}
void gelu_tanh_rows(float* x, int64_t m, int64_t n, int64_t ld, Isa isa) {
  if (isa == Isa::kRef) return gelu_tanh_rows_ref(x, m, n, ld);
  if (isa == Isa::kAvx512Vnni) return gelu_tanh_rows_avx512(x, m, n, ld);
  gelu_tanh_rows_avx2(x, m, n, ld);
}
void silu_rows(float* x, int64_t m, int64_t n, int64_t ld, Isa isa) {
  if (isa == Isa::kRef) return silu_rows_ref(x, m, n, ld);
  if (isa == Isa::kAvx512Vnni) return silu_rows_avx512(x, m, n, ld);
  silu_rows_avx2(x, m, n, ld);
}
void activate_rows(Activation activation, float* x, int64_t m, int64_t n, int64_t ld, Isa isa) {
  switch (activation) {
    case Activation::kNone: return;
    case Activation::kGelu: return gelu_rows(x, m, n, ld, isa);
    case Activation::kGeluTanh: return gelu_tanh_rows(x, m, n, ld, isa);
    case Activation::kSilu: return silu_rows(x, m, n, ld, isa);
    case Activation::kRelu:  // one loop for every ISA: the compiler vectorises max(x, 0)
      for (int64_t i = 0; i < m; ++i)
        for (float* r = x + i * ld; r < x + i * ld + n; ++r) *r = *r > 0.0f ? *r : 0.0f;
      return;
  }
}
void softmax_rows(float* x, int64_t m, int64_t n, int64_t ld, Isa isa) {
  if (isa == Isa::kRef) return softmax_rows_ref(x, m, n, ld);
  if (isa == Isa::kAvx512Vnni) return softmax_rows_avx512(x, m, n, ld);
  softmax_rows_avx2(x, m, n, ld);
}

}  // namespace sqz::kernels
