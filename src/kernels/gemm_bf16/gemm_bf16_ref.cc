// Reference: one dot product per output over the packed layout (so packing is tested too), and
// the scalar rounding every ISA's activations go through unless AVX-512 BF16 converts them.
#include <algorithm>
#include <cstring>

#include "kernels/gemm_bf16/gemm_bf16.h"

namespace sqz::kernels {

uint16_t float_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7F800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);  // zero and subnormals
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN, quieted
  u += 0x7FFFu + ((u >> 16) & 1u);  // round to nearest, ties to even (overflow rounds to inf)
  return static_cast<uint16_t>(u >> 16);
}

float bf16_to_float(uint16_t x) {
  const uint32_t u = static_cast<uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void round_rows_to_bf16_ref(const float* a, int64_t m, int64_t k, int64_t lda, uint32_t* out) {
  const int64_t pairs = (k + 1) / 2;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t q = 0; q < pairs; ++q) {
      const uint32_t lo = float_to_bf16(a[i * lda + 2 * q]);
      const uint32_t hi = 2 * q + 1 < k ? float_to_bf16(a[i * lda + 2 * q + 1]) : 0u;
      out[i * pairs + q] = lo | (hi << 16);
    }
}

void gemm_bf16_panels_ref(const uint32_t* a, int64_t m, int64_t lda_pairs, const PackedBf16Weights& w, int64_t p0,
                          int64_t p1, float* c, int64_t ldc) {
  for (int64_t p = p0; p < p1; ++p) {
    const uint16_t* panel = w.data.data() + p * w.k_pairs * 2 * kBf16PanelCols;
    const int64_t cols = std::min(kBf16PanelCols, w.n - p * kBf16PanelCols);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        double acc = 0;  // double: the reference should not share the fast kernels' rounding
        for (int64_t q = 0; q < w.k_pairs; ++q) {
          const uint32_t pair = a[i * lda_pairs + q];
          const uint16_t* wq = panel + q * 2 * kBf16PanelCols + 2 * j;
          acc += double(bf16_to_float(static_cast<uint16_t>(pair))) * bf16_to_float(wq[0]);
          acc += double(bf16_to_float(static_cast<uint16_t>(pair >> 16))) * bf16_to_float(wq[1]);
        }
        c[i * ldc + p * kBf16PanelCols + j] = static_cast<float>(acc);
      }
  }
}

}  // namespace sqz::kernels
